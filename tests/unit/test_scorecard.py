"""Scoring a points table: exact answers on a small hand-written scorecard."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from typing import Any

import pytest

from miaodai.credit.scorecard import (
    FORMAT,
    Reason,
    Scorecard,
    ScorecardFormatError,
    parse_scaling,
)
from miaodai.credit.scorers import scorer_from_dict
from tests.mutation import DELETE, mutated

TABLE: dict[str, Any] = {
    "format": FORMAT,
    "model_id": "hand-written-1",
    "algorithm": "hand_written_for_tests",
    "scaling": {"pdo": 20, "base_score": 600, "base_odds": 50},
    "variables": [
        {"name": "age", "kind": "numeric", "missing_points": 5,
         "bins": [{"upper": 25, "points": 10}, {"upper": 35, "points": 20}, {"upper": None, "points": 30}]},
        {"name": "monthly_income_yuan", "kind": "numeric", "missing_points": 8,
         "bins": [{"upper": 3000, "points": 0}, {"upper": 8000, "points": 15}, {"upper": None, "points": 25}]},
        {"name": "occupation", "kind": "categorical", "missing_points": 5, "other_points": 10,
         "bins": [{"categories": ["student", "unemployed"], "points": 2},
                  {"categories": ["employee", "civil_servant"], "points": 25}]},
        {"name": "bureau_inquiries_3m", "kind": "numeric", "missing_points": 30,
         "bins": [{"upper": 2, "points": 40}, {"upper": 5, "points": 20}, {"upper": None, "points": 0}]},
        {"name": "phone_tenure_months", "kind": "numeric", "missing_points": 0,
         "bins": [{"upper": 6, "points": 0}, {"upper": None, "points": 10}]},
    ],
    "calibration": [{"score": 40, "pd": 0.5}, {"score": 80, "pd": 0.2}, {"score": 100, "pd": 0.05},
                    {"score": 120, "pd": 0.01}],
    "grades": [{"grade": "A", "max_pd": 0.02}, {"grade": "B", "max_pd": 0.05}, {"grade": "C", "max_pd": 0.10},
               {"grade": "D", "max_pd": 0.20}, {"grade": "E", "max_pd": 1.0}],
}
CARD = Scorecard.from_dict(TABLE)
GOOD = {"age": 40, "monthly_income_yuan": 9000, "occupation": "employee", "bureau_inquiries_3m": 0,
        "phone_tenure_months": 48}


def _points(variable: str, value: Any) -> float:
    return CARD.score({**GOOD, variable: value}).points[variable]


@pytest.mark.parametrize(("value", "points"), [
    (-5, 10), (0, 10), (24.999, 10), (25, 20), (25.0, 20), (34.99, 20), (35, 30), (120, 30), (math.inf, 30),
    ("30", 20), (None, 5), (math.nan, 5), ("unknown", 5),
])
def test_numeric_bins_are_right_open_and_missing_has_its_points(value: Any, points: float) -> None:
    assert _points("age", value) == points


def test_an_absent_feature_scores_its_missing_points() -> None:
    features = {k: v for k, v in GOOD.items() if k != "monthly_income_yuan"}
    assert CARD.score(features).points["monthly_income_yuan"] == 8


@pytest.mark.parametrize(("value", "points"), [
    ("student", 2), ("unemployed", 2), ("employee", 25), ("civil_servant", 25), ("pilot", 10), ("", 10),
    (None, 5), (math.nan, 5),
])
def test_categories_unseen_in_training_get_other_points(value: Any, points: float) -> None:
    assert _points("occupation", value) == points


def test_a_good_applicant_scores_the_best_points_and_has_no_reasons() -> None:
    result = CARD.score(GOOD)
    assert result.score == 30 + 25 + 25 + 40 + 10 == 130
    assert (result.pd, result.grade, result.reasons) == (0.01, "A", ())


def test_score_pd_and_grade_between_calibration_points() -> None:
    result = CARD.score({**GOOD, "age": 25, "monthly_income_yuan": 8000, "bureau_inquiries_3m": 1,
                         "phone_tenure_months": 5})
    # 20 + 25 + 25 + 40 + 0 = 110: halfway from 100 (PD 0.05) to 120 (PD 0.01)
    assert (result.score, result.pd, result.grade) == (110, 0.03, "B")
    assert result.reasons == (Reason("age", 20, 30, 10), Reason("phone_tenure_months", 0, 10, 10))


def test_reasons_are_the_four_largest_shortfalls_ties_by_name() -> None:
    result = CARD.score({"age": 20, "monthly_income_yuan": 2000, "occupation": "pilot", "bureau_inquiries_3m": 3,
                         "phone_tenure_months": 3})
    assert result.points == {"age": 10, "monthly_income_yuan": 0, "occupation": 10, "bureau_inquiries_3m": 20,
                             "phone_tenure_months": 0}
    assert [(r.variable, r.shortfall) for r in result.reasons] == [
        ("monthly_income_yuan", 25), ("age", 20), ("bureau_inquiries_3m", 20), ("occupation", 15)]
    assert (result.score, result.pd, result.grade) == (40, 0.5, "E")


def test_reasons_measure_against_missing_and_other_points_when_they_are_the_best() -> None:
    table = copy.deepcopy(TABLE)
    table["variables"][2]["other_points"] = 40  # an unseen occupation beats every known one
    result = Scorecard.from_dict(table).score(GOOD)
    assert result.reasons == (Reason("occupation", 25, 40, 15),)


@pytest.mark.parametrize(("score", "pd"), [
    (-100, 0.5), (40, 0.5), (60, 0.35), (80, 0.2), (90, 0.125), (100, 0.05), (119, 0.012), (120, 0.01), (500, 0.01),
])
def test_calibration_is_linear_between_points_and_clamped_at_the_ends(score: float, pd: float) -> None:
    assert CARD.pd_of(score) == pytest.approx(pd, abs=1e-12)


@pytest.mark.parametrize(("pd", "grade"), [
    (0.0, "A"), (0.02, "A"), (0.0201, "B"), (0.05, "B"), (0.0501, "C"), (0.10, "C"), (0.2, "D"), (0.2001, "E"),
    (1.0, "E"),
])
def test_grade_is_the_first_whose_max_pd_is_not_exceeded(pd: float, grade: str) -> None:
    assert CARD.grade_of(pd) == grade


def test_names_grades_and_bins_for_callers_and_monitoring() -> None:
    assert CARD.variables == ("age", "monthly_income_yuan", "occupation", "bureau_inquiries_3m",
                              "phone_tenure_months")
    assert CARD.grades == ("A", "B", "C", "D", "E")
    assert [CARD.bin_of("age", v) for v in (18, 25, 60, None)] == [0, 1, 2, "missing"]
    assert [CARD.bin_of("occupation", v) for v in ("student", "employee", "pilot")] == [0, 1, "other"]
    assert CARD.model_id == "hand-written-1"


def test_sha256_is_of_the_canonical_json_and_stable() -> None:
    reordered = json.loads(json.dumps(TABLE, sort_keys=True))
    reordered = dict(reversed(list(reordered.items())))
    assert Scorecard.from_dict(reordered).sha256 == CARD.sha256
    # Fixed: a change in how the fingerprint is computed would orphan every recorded decision's model hash.
    assert CARD.sha256 == "c1ae4d5795067f78c16478c5d8d8bb284d30493c9413b0a0960de652b71b016b"
    changed = copy.deepcopy(TABLE)
    changed["variables"][0]["bins"][0]["points"] = 10.5
    assert Scorecard.from_dict(changed).sha256 != CARD.sha256


def test_load_from_a_file(tmp_path) -> None:
    path = tmp_path / "scorecard.json"
    path.write_text(json.dumps(TABLE, ensure_ascii=False), encoding="utf-8")
    loaded = Scorecard.load(path)
    assert (loaded.sha256, loaded.score(GOOD)) == (CARD.sha256, CARD.score(GOOD))


def _broken(path: str, value: Any) -> dict[str, Any]:
    return mutated(TABLE, path, value)


_DELETE = DELETE


@pytest.mark.parametrize(("path", "value", "message"), [
    ("format", "miaodai.scorecard/2", "format must be"),
    ("model_id", "", "model_id"),
    ("model_id", "x" * 65, "model_id"),
    ("variables", [], "variables must be a list"),
    ("variables.0.name", None, "has no name"),
    ("variables.0.kind", "ordinal", "kind must be numeric or categorical"),
    ("variables.0.bins", [], "bins must be a list"),
    ("variables.0.bins.1", "20", "bin 1 must be an object"),
    ("variables.0.bins.1.points", "20", "bin 1 points must be a finite number"),
    ("variables.0.bins.1.points", math.nan, "finite number"),
    ("variables.0.bins.0.upper", None, "only the last bin may have upper null"),
    ("variables.0.bins.2.upper", 50, "the last bin must have upper null"),
    ("variables.0.bins.1.upper", 20, "bin edges must increase"),
    ("variables.0.missing_points", _DELETE, "missing_points must be a finite number"),
    ("variables.2.bins.1.categories", ["employee", "student"], "category 'student' is in two bins"),
    ("variables.2.bins.0.categories", [], "categories must be a non-empty list"),
    ("variables.2.other_points", True, "other_points must be a finite number"),
    ("variables.1.name", "age", "a variable appears twice"),
    ("calibration", [{"score": 40, "pd": 0.5}], "calibration must be a list of at least 2"),
    ("calibration.1.score", 40, "calibration scores must increase"),
    ("calibration.1.pd", 1.2, "calibration pd must be within 0..1"),
    ("calibration.2.pd", 0.3, "calibration pd must not increase"),
    ("grades.4.max_pd", 0.9, "the last must be 1.0"),
    ("grades.1.max_pd", 0.01, "max_pd must increase"),
    ("grades.1.grade", "A", "distinct"),
    ("scaling.pdo", 0, "pdo and base_odds must be positive"),
    ("scaling.base_score", "600", "scaling base_score must be a finite number"),
])
def test_a_malformed_artifact_is_refused_saying_what_is_wrong(path: str, value: Any, message: str) -> None:
    with pytest.raises(ScorecardFormatError, match=message.replace("(", r"\(").replace(".", r"\.")):
        Scorecard.from_dict(_broken(path, value))


def test_not_a_document_at_all() -> None:
    for document in (None, [], "scorecard"):
        with pytest.raises(ScorecardFormatError, match="format must be"):
            Scorecard.from_dict(document)  # type: ignore[arg-type]


def test_score_of_pd_follows_the_scaling() -> None:
    scaling = parse_scaling(TABLE["scaling"])
    assert scaling.score_of_pd(1 / 51) == pytest.approx(600)  # odds 50:1 at the base score
    assert scaling.score_of_pd(1 / 101) == pytest.approx(600 + 20 * math.log2(100 / 50))
    assert scorer_from_dict(TABLE).sha256 == CARD.sha256


def test_serving_imports_no_modelling_library() -> None:
    code = ("import sys, miaodai.credit.scorecard; "
            "print(sorted({'numpy', 'pandas', 'sklearn', 'optbinning', 'lightgbm'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_packaged_default_model_loads_and_grades_applicants() -> None:
    from miaodai.credit.bureau import CLEAN_FILE_ID, MULTI_BORROWING_ID, THIN_FILE_ID, documented_report
    from miaodai.credit.features import (
        FEATURE_NAMES,
        ApplicationInput,
        Education,
        InternalHistory,
        LoanPurpose,
        Occupation,
        build_features,
    )
    from miaodai.credit.registry import default_scorecard

    card = default_scorecard()
    assert card.model_id == "synthetic-scorecard-2026.11.1" and set(card.variables) <= set(FEATURE_NAMES)
    assert "SYNTHETIC" in card.document["training"]["description"]

    def applicant(bureau_id: str, income_fen: int, occupation: Occupation, tenure: int | None):
        form = ApplicationInput(income_fen, occupation, Education.BACHELOR, LoanPurpose.HOME_FURNISHING)
        return card.score(build_features(application=form, age=32, report=documented_report(bureau_id, "r"),
                                         phone_tenure_months=tenure, internal=InternalHistory()))

    good = applicant(CLEAN_FILE_ID, 2_000_000, Occupation.EMPLOYEE, 48)
    heavy = applicant(MULTI_BORROWING_ID, 800_000, Occupation.FREELANCER, 30)
    thin = applicant(THIN_FILE_ID, 500_000, Occupation.EMPLOYEE, None)
    assert good.grade in ("A", "B") and good.pd < heavy.pd
    assert heavy.grade in ("C", "D", "E") and "bureau_inquiries_3m" in [r.variable for r in heavy.reasons]
    assert thin.score < good.score and thin.grade in card.grades
