"""Run the ``miaodai`` command in-process against a test's database and keyring."""

from __future__ import annotations

from typer.testing import CliRunner

from miaodai.cli import app
from miaodai.core.settings import Settings, get_settings


def run_cli(settings: Settings, *args: str, **extra_env: str):  # noqa: ANN201 - click's Result
    env = {
        "MIAODAI_ENV": "test",
        "MIAODAI_DATABASE_URL": settings.database_url,
        "MIAODAI_KEYRING_FILE": str(settings.keyring_file),
        "MIAODAI_CONTRACT_SIGNING_KEY_FILE": str(settings.contract_signing_key_file),
        "MIAODAI_LOG_JSON": "true",
        **{f"MIAODAI_{key.upper()}": value for key, value in extra_env.items()},
    }
    get_settings.cache_clear()  # the CLI reads settings through an lru_cache
    try:
        return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    finally:
        get_settings.cache_clear()
