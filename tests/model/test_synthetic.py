"""Synthetic applicants: valid IDs, the service's own features, a ground truth the pipeline recovers."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from miaodai.credit.features import FEATURE_NAMES
from miaodai.credit.scorecard import Scorecard
from miaodai.credit.training.synthetic import REFERENCE_DATE, ApplicantGenerator, applicants, true_logit
from miaodai.identity.resident_id import age_on, parse_resident_id
from tests.model.conftest import last_json_line, run_model_cli

ROWS = 4000


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("synthetic")
    made = run_model_cli("synth", "--rows", str(ROWS), "--seed", "7", "--out", str(folder / "applicants.csv"))
    assert made.exit_code == 0, made.output
    trained = run_model_cli("train", "--data", str(folder / "applicants.csv"), "--target", "bad",
                            "--ignore", "true_pd", "--out", str(folder / "model"))
    assert trained.exit_code == 0, trained.output
    with (folder / "applicants.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {"synth": last_json_line(made.stdout), "train": last_json_line(trained.stdout), "rows": rows}


def test_the_file_has_every_feature_the_outcome_and_the_true_pd(synthetic: dict) -> None:
    rows = synthetic["rows"]
    assert len(rows) == ROWS and list(rows[0]) == [*FEATURE_NAMES, "bad", "true_pd"]
    bad_rate = synthetic["synth"]["bad_rate"]
    assert bad_rate == round(sum(int(r["bad"]) for r in rows) / ROWS, 4)
    assert 0.06 < bad_rate < 0.14 and abs(bad_rate - synthetic["synth"]["mean_true_pd"]) < 0.02
    assert {r["occupation"] for r in rows} >= {"employee", "civil_servant", "self_employed", "student"}
    assert 0.04 < sum(r["bureau_file_age_months"] == "" for r in rows) / ROWS < 0.13  # thin files


def test_the_pipeline_recovers_the_ground_truth(synthetic: dict) -> None:
    rows, summary = synthetic["rows"], synthetic["train"]
    ceiling = roc_auc_score([int(r["bad"]) for r in rows], [float(r["true_pd"]) for r in rows])
    assert 0.78 < ceiling < 0.9
    assert ceiling - 0.04 <= summary["auc"] <= ceiling + 0.01  # cross-validated, so no better than the truth
    card = Scorecard.load(summary["artifact"])
    assert set(card.variables) <= set(FEATURE_NAMES) and "true_pd" not in card.variables
    assert {"debt_to_income", "bureau_inquiries_3m", "bureau_utilisation", "occupation"} <= set(card.variables)
    # Scores order applicants as the true PD does.
    results = [card.score(_typed(r)) for r in rows]
    true_pd = np.array([float(r["true_pd"]) for r in rows])
    ranks = np.corrcoef(np.argsort(np.argsort([r.score for r in results])), np.argsort(np.argsort(true_pd)))
    assert ranks[0, 1] < -0.85
    # Thin files (no bureau history) are missing several variables at once; their PD is still right,
    # not counted as good once per missing variable (conditional missing WoE, docs/model.md).
    # (Measured against the observed bad rates: in 4,000 rows the ~330 thin files' own rate is noisy.
    # Without it, in a 12,000-row trial, thin files scored 1.6 % PD against 6.3 % observed.)
    pd_ = np.array([r.pd for r in results])
    bad = np.array([int(r["bad"]) for r in rows])
    thin = np.array([r["bureau_file_age_months"] == "" for r in rows])
    assert abs(pd_[thin].mean() - bad[thin].mean()) < 0.015
    assert abs(pd_[~thin].mean() - bad[~thin].mean()) < 0.01


def _typed(row: dict[str, str]) -> dict:
    out: dict = {}
    for name in FEATURE_NAMES:
        value = row[name]
        categorical = name in ("occupation", "education", "loan_purpose")
        out[name] = None if value == "" else value if categorical else float(value)
    return out


def test_applicants_are_valid_people_of_lending_age() -> None:
    generator = ApplicantGenerator(seed=3)
    for _ in range(300):
        number, age = generator.id_number()
        parsed = parse_resident_id(number, today=REFERENCE_DATE)
        assert 18 <= age == age_on(parsed.birth_date, REFERENCE_DATE) <= 60


def test_the_same_seed_gives_the_same_applicants_and_the_truth_is_the_documented_formula() -> None:
    first, again, other = applicants(50, seed=11), applicants(50, seed=11), applicants(50, seed=12)
    assert first == again and first != other
    features = {name: first[0][name] for name in FEATURE_NAMES}
    assert first[0]["true_pd"] == round(1 / (1 + math.exp(-true_logit(features))), 6)
    none, three, twelve = ({**features, "bureau_inquiries_3m": n} for n in (0, 3, 12))
    assert true_logit(three) - true_logit(none) == pytest.approx(0.90)
    assert true_logit(twelve) - true_logit(none) == pytest.approx(2.40)  # capped at 8 inquiries


def test_synth_writes_the_same_bytes_for_the_same_seed(tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        assert run_model_cli("synth", "--rows", "200", "--seed", "5", "--out", str(tmp_path / name)).exit_code == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
