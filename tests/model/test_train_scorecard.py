"""Training a scorecard on UCI German Credit: the quality bar, the export, the report, the errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from miaodai.credit.scorecard import Scorecard, canonical_sha256
from miaodai.credit.training.dataset import read_labelled_csv
from miaodai.credit.training.scorecard_model import fit_scorecard
from tests.model.conftest import GERMAN_CREDIT, run_model_cli


def test_cross_validated_auc_on_german_credit_clears_the_bar(german_scorecard: dict[str, Any]) -> None:
    summary = german_scorecard["summary"]
    # Same protocol, same data: plain logistic regression 0.776, a default optbinning scorecard 0.784.
    assert summary["auc"] >= 0.79
    assert summary["gini"] == pytest.approx(2 * summary["auc"] - 1, abs=1e-4)
    assert 0.35 <= summary["ks"] <= 0.6
    assert summary["brier"] < 0.21  # the base rate alone (0.3 x 0.7) scores 0.21
    assert (summary["n_rows"], summary["bad_rate"]) == (1000, 0.3)
    assert 5 <= summary["n_features"] <= 20


def test_the_artifact_is_what_the_summary_says(german_scorecard: dict[str, Any]) -> None:
    summary, out = german_scorecard["summary"], german_scorecard["out"]
    document = json.loads(Path(summary["artifact"]).read_text(encoding="utf-8"))
    card = Scorecard.from_dict(document)
    assert card.sha256 == summary["sha256"] == canonical_sha256(document)
    assert document["model_id"] == summary["model_id"]
    assert document["metrics"]["auc"] == summary["auc"] and document["metrics"]["cv"] == "stratified 5-fold"
    assert len(card.variables) == summary["n_features"]
    assert document["training"]["n_rows"] == 1000 and document["training"]["target"] == "creditability"
    shares = [b["share"] for b in document["training"]["score_distribution"]]
    assert len(shares) == 10 and sum(shares) == pytest.approx(1, abs=1e-5)
    for bins in document["training"]["feature_distributions"].values():
        assert sum(b["share"] for b in bins) == pytest.approx(1, abs=1e-5)
    calibration = document["calibration"]
    assert [p["pd"] for p in calibration] == sorted((p["pd"] for p in calibration), reverse=True)
    assert calibration[0]["pd"] > 0.3 > calibration[-1]["pd"]  # the worst decile is worse than average
    for name in ("report.html", "roc.png", "ks.png", "scores.png", "calibration.png"):
        assert (out / name).stat().st_size > 1000
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "status_of_existing_checking_account" in page and 'src="roc.png"' in page


def test_the_points_table_reproduces_optbinnings_own_scores(german_scorecard: dict[str, Any]) -> None:
    card = Scorecard.load(german_scorecard["summary"]["artifact"])
    data = read_labelled_csv(GERMAN_CREDIT, "creditability", bad_value="bad")
    fitted = fit_scorecard(data.features, data.target, data.categorical)  # the same fit: deterministic
    theirs = fitted.score(data.features)
    rows = data.features.to_dict("records")
    ours = np.array([card.score(row).score for row in rows])
    assert np.max(np.abs(ours - theirs)) <= 0.01
    # Higher score, lower risk: the bads score lower on average.
    assert ours[data.target == 1].mean() < ours[data.target == 0].mean() - 15


def test_an_unseen_category_gets_the_neutral_points(german_scorecard: dict[str, Any]) -> None:
    document = json.loads(Path(german_scorecard["summary"]["artifact"]).read_text(encoding="utf-8"))
    card = Scorecard.from_dict(document)
    categorical = [v for v in document["variables"] if v["kind"] == "categorical"]
    assert categorical
    neutral = {v["other_points"] for v in categorical}
    assert len(neutral) == 1  # WoE 0: the same share of the intercept for every variable
    name = categorical[0]["name"]
    assert card.score({name: "a category never seen"}).points[name] == neutral.pop()


def test_a_zero_one_target_needs_no_bad_value(tmp_path: Path) -> None:
    frame = pd.read_csv(GERMAN_CREDIT)
    frame["default"] = (frame.pop("creditability") == "bad").astype(int)
    frame = frame[["duration_in_month", "credit_amount", "status_of_existing_checking_account", "default"]]
    data = tmp_path / "zero_one.csv"
    frame.to_csv(data, index=False)
    result = run_model_cli("train", "--data", str(data), "--target", "default", "--out", str(tmp_path / "out"),
                           "--model-id", "three-columns-1", "--description", "three columns")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    card = Scorecard.load(summary["artifact"])
    assert card.model_id == "three-columns-1" and card.document["training"]["description"] == "three columns"
    assert set(card.variables) <= {"duration_in_month", "credit_amount", "status_of_existing_checking_account"}
    assert 0.65 < summary["auc"] < 0.8


def _csv(tmp_path: Path, frame: pd.DataFrame) -> str:
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(("make", "args", "message"), [
    (lambda p: str(p / "absent.csv"), ["--target", "bad"], "no such file"),
    (lambda p: str(GERMAN_CREDIT), ["--target", "default", "--bad-value", "bad"], "no column 'default'"),
    (lambda p: str(GERMAN_CREDIT), ["--target", "creditability"], "must be 0/1"),
    (lambda p: str(GERMAN_CREDIT), ["--target", "creditability", "--bad-value", "terrible"], "one class only"),
    (lambda p: _csv(p, pd.read_csv(GERMAN_CREDIT).head(60)), ["--target", "creditability", "--bad-value", "bad"],
     "too few rows: 60"),
    (lambda p: _csv(p, pd.DataFrame({"x": range(200), "y": [1] * 5 + [0] * 195})), ["--target", "y"],
     "too few rows of one class"),
    (lambda p: _csv(p, pd.DataFrame({"x": [1] * 300, "y": [0, 1, 1] * 100})), ["--target", "y"],
     "no column carries enough information"),
    (lambda p: str(GERMAN_CREDIT), ["--target", "creditability", "--bad-value", "bad", "--algorithm", "svm"],
     "unknown algorithm 'svm'"),
    (lambda p: str(GERMAN_CREDIT), ["--target", "creditability", "--bad-value", "bad", "--ignore", "salary"],
     "cannot ignore salary"),
])
def test_bad_input_is_a_clear_message_and_a_non_zero_exit(tmp_path: Path, make, args: list[str], message: str) -> None:
    result = run_model_cli("train", "--data", make(tmp_path), "--out", str(tmp_path / "out"), *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
