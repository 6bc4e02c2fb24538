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


def test_the_served_forest_is_lightgbm_to_the_last_bit(challenger: tuple[dict, dict]) -> None:
    """The hand-written tree walk against LightGBM's own predict, on every applicant and on rows that take every
    odd branch: each feature missing, unseen categories, negatives, zeros, huge values."""
    document = challenger[1]
    scorer = GbmScorer.from_dict(document)
    booster = lightgbm.Booster(model_str=document["booster"])
    data = read_labelled_csv(GERMAN_CREDIT, "creditability", bad_value="bad")
    rows = [scorer.encode(r) for r in data.features.to_dict("records")]
    rng = np.random.default_rng(7)
    for base in rows[:40]:
        for column in range(len(base)):
            for odd in (float("nan"), 0.0, -1.0, -0.5, 1e12, float(rng.integers(0, 40))):
                rows.append([*base[:column], odd, *base[column + 1:]])
    expected = booster.predict(np.array(rows, dtype=float), num_threads=1)
    served = np.array([scorer.probability_of_row(row) for row in rows])
    assert len(rows) > 5000 and np.array_equal(served, expected)


def test_serving_a_lightgbm_model_needs_no_modelling_library(challenger: tuple[dict, dict], tmp_path: Path) -> None:
    """The runtime install has no lightgbm or numpy: a LightGBM champion still scores there, and the same."""
    import subprocess
    import sys

    artifact = tmp_path / "gbm.json"
    artifact.write_text(json.dumps(challenger[1]), encoding="utf-8")
    applicant = {"purpose": "a yacht", "duration_in_month": 24, "credit_amount": 4000}
    program = f"""
import json, sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("numpy", "pandas", "sklearn", "optbinning", "lightgbm", "scipy"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Blocker())
from miaodai.credit.gbm import GbmScorer
print(json.dumps(GbmScorer.load({str(artifact)!r}).score({applicant!r}).score))
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == GbmScorer.from_dict(challenger[1]).score(applicant).score


@pytest.mark.parametrize("zero_as_missing", [False, True])
def test_the_forest_takes_lightgbm_s_missing_value_and_category_branches(zero_as_missing: bool) -> None:
    """German credit has no missing values, so its trees never take a default branch: a model trained on data
    with NaNs and zeros (missing type NaN, or Zero) and a categorical feature of 70 values (bitsets over three
    words) shows the walk takes each of them as LightGBM does."""
    from miaodai.credit.gbm import Forest

    rng = np.random.default_rng(11)
    n = 3000
    x = rng.normal(size=(n, 4))
    x[rng.random(n) < 0.2, 0] = np.nan
    x[rng.random(n) < 0.2, 1] = 0.0
    x[:, 3] = rng.integers(0, 70, size=n)
    logit = np.nan_to_num(x[:, 0]) + (x[:, 1] == 0) * 1.5 + x[:, 2] + (x[:, 3] % 7 == 0) * 2.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    data = lightgbm.Dataset(x, label=y, categorical_feature=[3], free_raw_data=True)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "deterministic": True, "seed": 3,
              "min_data_per_group": 5, "cat_smooth": 1, "max_cat_to_onehot": 2, "zero_as_missing": zero_as_missing}
    booster = lightgbm.train(params, data, num_boost_round=60)
    text = booster.model_to_string()
    assert "decision_type=" in text and "cat_threshold=" in text
    forest = Forest.parse(text)
    probe = rng.normal(size=(2000, 4))
    probe[::3, 0] = np.nan
    probe[::4, 1] = 0.0
    probe[::5, 2] = np.nan
    probe[:, 3] = rng.integers(-2, 90, size=2000)  # negatives and categories never seen
    probe[::7, 3] = np.nan
    expected = booster.predict(probe, num_threads=1)
    served = np.array([forest.probability(list(row)) for row in probe])
    assert np.array_equal(served, expected)
    decisions = {int(d) for line in text.splitlines() if line.startswith("decision_type=") for d in line[14:].split()}
    assert any(d & 1 for d in decisions) and any((d >> 2) & 3 for d in decisions)  # categorical and missing splits
