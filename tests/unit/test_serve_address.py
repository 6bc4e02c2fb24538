"""`miaodai serve --port P`: the sandbox channel's callbacks go to port P, unless an address was configured."""

from __future__ import annotations

import os

import pytest
import uvicorn
from typer.testing import CliRunner

from miaodai.cli import app
from miaodai.core.settings import get_settings

VARIABLE = "MIAODAI_PUBLIC_BASE_URL"


@pytest.fixture
def served(monkeypatch, tmp_path):
    """Run ``miaodai serve`` up to uvicorn, and return the callback address the app factory would read."""
    monkeypatch.chdir(tmp_path)  # no .env of the working tree
    monkeypatch.setenv(VARIABLE, "placeholder")  # so that whatever serve writes is undone after the test
    monkeypatch.delenv(VARIABLE)
    seen: dict[str, object] = {}

    def fake_run(target, **options):
        seen.update(options, public_base_url=get_settings().public_base_url)

    monkeypatch.setattr(uvicorn, "run", fake_run)

    def serve(*args: str, env: dict[str, str] | None = None) -> dict[str, object]:
        seen.clear()
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(app, ["serve", *args], env=env, catch_exceptions=False)
        finally:
            get_settings.cache_clear()
        assert result.exit_code == 0, result.output
        return seen

    yield serve
    get_settings.cache_clear()


def test_the_callbacks_go_to_the_port_the_service_listens_on(served):
    seen = served("--port", "8123")
    assert seen["port"] == 8123
    assert seen["public_base_url"] == "http://127.0.0.1:8123"
    assert os.environ[VARIABLE] == "http://127.0.0.1:8123"  # what --workers processes inherit


EVERYWHERE = "0.0.0.0"  # noqa: S104 - an address served on, not bound here


@pytest.mark.parametrize(("host", "expected"), [
    (EVERYWHERE, "http://127.0.0.1:9001"), ("::", "http://[::1]:9001"), ("10.1.2.3", "http://10.1.2.3:9001"),
])
def test_an_address_listening_everywhere_is_reached_on_loopback(served, host, expected):
    assert served("--host", host, "--port", "9001")["public_base_url"] == expected


def test_a_configured_address_is_kept(served):
    seen = served("--port", "8123", env={VARIABLE: "https://api.example.cn"})
    assert seen["public_base_url"] == "https://api.example.cn"


def test_a_configured_address_in_the_dotenv_file_is_kept(served, tmp_path):
    (tmp_path / ".env").write_text(f"{VARIABLE}=https://pay.example.cn\n")
    assert served("--port", "8123")["public_base_url"] == "https://pay.example.cn"
