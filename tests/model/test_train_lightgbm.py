"""The LightGBM challenger: trained by the same command, served by miaodai.credit.gbm like a scorecard."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm
import numpy as np
import pytest

from miaodai.credit.gbm import GbmScorer
from miaodai.credit.scorecard import ScorecardFormatError
from miaodai.credit.scorers import scorer_from_dict
from miaodai.credit.training.dataset import read_labelled_csv
from miaodai.credit.training.lightgbm_model import scores_of
from tests.model.conftest import GERMAN_CREDIT, last_json_line, run_model_cli


@pytest.fixture(scope="module")
def challenger(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("german-lightgbm")
    result = run_model_cli("train", "--data", str(GERMAN_CREDIT), "--target", "creditability", "--bad-value", "bad",
                           "--out", str(out), "--algorithm", "lightgbm", "--model-id", "german-gbm-1")
    assert result.exit_code == 0, result.output
    summary = last_json_line(result.stdout)
    return summary, json.loads(Path(summary["artifact"]).read_text(encoding="utf-8"))


def test_the_challenger_is_cross_validated_like_the_scorecard(challenger: tuple[dict, dict]) -> None:
    summary, document = challenger
    assert summary["algorithm"] == "lightgbm" and document["format"] == "miaodai.lightgbm/1"
    assert summary["auc"] >= 0.77 and document["metrics"]["cv"] == "stratified 5-fold"
    assert summary["n_features"] == 20 and (Path(summary["report"]).parent / "roc.png").exists()


def test_served_scores_rank_applicants_as_the_training_scores_did(challenger: tuple[dict, dict]) -> None:
    summary, document = challenger
    scorer = scorer_from_dict(document)
    assert isinstance(scorer, GbmScorer) and scorer.sha256 == summary["sha256"]
    data = read_labelled_csv(GERMAN_CREDIT, "creditability", bad_value="bad")
    results = [scorer.score(row) for row in data.features.to_dict("records")]
    scores = np.array([r.score for r in results])
    booster = lightgbm.Booster(model_str=document["booster"])
    assert np.array_equal(scores, scores_of(booster, data.features, document["features"]))  # batch = one by one
    assert scores[data.target == 1].mean() < scores[data.target == 0].mean() - 10
    assert {r.grade for r in results} <= set(scorer.grades) and all(r.reasons == () for r in results)
    assert all(0 < r.pd < 1 for r in results)
    # Unseen categories and missing values go down the trees' missing branch instead of failing.
    odd = scorer.score({"purpose": "a yacht", "duration_in_month": None})
    assert odd.grade in scorer.grades


def test_a_booster_that_does_not_match_its_encoding_is_refused(challenger: tuple[dict, dict]) -> None:
    document = dict(challenger[1])
    document["features"] = document["features"][:-1]
    with pytest.raises(ScorecardFormatError, match="the booster has 20 features, the encoding 19"):
        GbmScorer.from_dict(document)
    with pytest.raises(ScorecardFormatError, match="booster must be"):
        GbmScorer.from_dict({**challenger[1], "booster": "pickle"})
