"""Training runs shared by the model tests (each is a few seconds of fitting; run once per session)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from miaodai.cli import app

GERMAN_CREDIT = Path(__file__).parent.parent / "data" / "german_credit.csv"


def run_model_cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["model", *args], catch_exceptions=False)


def last_json_line(output: str) -> dict[str, Any]:
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def german_scorecard(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("german-scorecard")
    result = run_model_cli("train", "--data", str(GERMAN_CREDIT), "--target", "creditability", "--bad-value", "bad",
                           "--out", str(out), "--seed", "0")
    assert result.exit_code == 0, result.output
    return {"summary": last_json_line(result.stdout), "out": out}
