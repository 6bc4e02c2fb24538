"""Policy rules, the ruleset document, and risk-based limits and prices — exact answers."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from importlib import resources

import pytest

from miaodai.credit.pricing import annuity_factor, grade_rate, offer
from miaodai.credit.reasons import score_reason_codes
from miaodai.credit.rules import BureauStatus, Facts, Outcome, Ruleset, RulesetError, evaluate, worst


def _default_document() -> dict:
    return json.loads(resources.files("miaodai.credit").joinpath("data/default_ruleset.json").read_text("utf-8"))


RULESET = Ruleset.from_document(_default_document())
GOOD_FEATURES = {"age": 30, "occupation": "employee", "bureau_inquiries_3m": 1, "debt_to_income": 0.2,
                 "phone_tenure_months": 48}
GOOD_FACTS = Facts(identity_verified=True, missing_consents=(), blocked_on=(), bureau_status=BureauStatus.OK,
                   application_date=date(2026, 11, 22))


def _codes(features: dict | None = None, **facts) -> list[tuple[str, Outcome]]:
    merged = {**GOOD_FEATURES, **(features or {})}
    fact_values = Facts(**{**{n: getattr(GOOD_FACTS, n) for n in Facts.__slots__}, **facts})
    return [(f.code, f.outcome) for f in evaluate(RULESET, merged, fact_values)]


def test_a_good_applicant_passes_every_rule() -> None:
    assert _codes() == []
    assert worst([]) is Outcome.PASS


@pytest.mark.parametrize(("features", "facts", "expected"), [
    ({}, {"identity_verified": False}, ("CREDIT_IDENTITY_NOT_VERIFIED", Outcome.DECLINE)),
    ({"age": 17}, {}, ("CREDIT_AGE_OUT_OF_POLICY", Outcome.DECLINE)),
    ({"age": 61}, {}, ("CREDIT_AGE_OUT_OF_POLICY", Outcome.DECLINE)),
    ({}, {"missing_consents": ("credit_bureau_query",)}, ("CREDIT_CONSENT_MISSING", Outcome.DECLINE)),
    ({"occupation": "student"}, {}, ("CREDIT_STUDENT", Outcome.DECLINE)),
    ({}, {"blocked_on": ("device",)}, ("CREDIT_POLICY_NOT_MET", Outcome.DECLINE)),
    ({}, {"bureau_fraud_list_hit": True}, ("CREDIT_POLICY_NOT_MET", Outcome.DECLINE)),
    ({}, {"bureau_status": BureauStatus.TIMEOUT}, ("CREDIT_BUREAU_UNAVAILABLE", Outcome.REFER)),
    ({}, {"bureau_status": BureauStatus.ERROR}, ("CREDIT_BUREAU_UNAVAILABLE", Outcome.REFER)),
    ({}, {"bureau_current_overdue_fen": 1}, ("CREDIT_BUREAU_CURRENT_OVERDUE", Outcome.DECLINE)),
    ({}, {"bureau_written_off": True}, ("CREDIT_BUREAU_WRITTEN_OFF", Outcome.DECLINE)),
    ({"bureau_inquiries_3m": 7}, {}, ("CREDIT_TOO_MANY_INQUIRIES", Outcome.DECLINE)),
    ({"debt_to_income": 0.6001}, {}, ("CREDIT_DEBT_TO_INCOME_HIGH", Outcome.DECLINE)),
    ({}, {"internet_consumer_credit_fen": 20_000_000}, ("CREDIT_TOTAL_CREDIT_CAP", Outcome.DECLINE)),
    ({}, {"active_lines": 1}, ("CREDIT_TOO_MANY_LINES", Outcome.DECLINE)),
    ({}, {"last_decline_on": date(2026, 10, 24)}, ("CREDIT_COOLING_OFF", Outcome.DECLINE)),
    ({"phone_tenure_months": 5}, {}, ("CREDIT_PHONE_TENURE_SHORT", Outcome.REFER)),
    ({}, {"device_applicants": 4}, ("CREDIT_DEVICE_SHARED", Outcome.REFER)),
])
def test_each_rule_fires_with_its_code(features: dict, facts: dict, expected: tuple[str, Outcome]) -> None:
    assert _codes(features, **facts) == [expected]


@pytest.mark.parametrize(("features", "facts"), [
    ({"age": 18}, {}),
    ({"age": 60}, {}),
    ({"bureau_inquiries_3m": 6}, {}),
    ({"debt_to_income": 0.6}, {}),
    ({"bureau_inquiries_3m": None, "debt_to_income": None}, {}),  # unknown is for bureau_unavailable to judge
    ({}, {"internet_consumer_credit_fen": 19_999_999}),
    ({}, {"last_decline_on": date(2026, 10, 23)}),  # exactly 30 days ago: allowed again today
    ({"phone_tenure_months": 6}, {}),
    ({}, {"device_applicants": 3}),
])
def test_boundaries_pass(features: dict, facts: dict) -> None:
    assert _codes(features, **facts) == []


def test_cooling_off_says_when_to_reapply() -> None:
    facts = Facts(**{**{n: getattr(GOOD_FACTS, n) for n in Facts.__slots__}, "last_decline_on": date(2026, 11, 1)})
    (finding,) = evaluate(RULESET, GOOD_FEATURES, facts)
    assert finding.params == {"reapply_on": "2026-12-01"}


def test_worst_outcome_wins() -> None:
    findings = evaluate(RULESET, {**GOOD_FEATURES, "phone_tenure_months": 1, "occupation": "student"}, GOOD_FACTS)
    assert worst(findings) is Outcome.DECLINE


def test_a_rule_set_to_pass_is_off() -> None:
    document = _default_document()
    document["rules"]["student"]["outcome"] = "pass"
    assert evaluate(Ruleset.from_document(document), {**GOOD_FEATURES, "occupation": "student"}, GOOD_FACTS) == []


def test_facts_round_trip_through_json() -> None:
    facts = Facts(identity_verified=True, missing_consents=("carrier_data",), blocked_on=("phone",),
                  bureau_status=BureauStatus.TIMEOUT, last_decline_on=date(2026, 1, 2),
                  application_date=date(2026, 11, 22), device_applicants=2)
    assert Facts.from_json(json.loads(json.dumps(facts.to_json()))) == facts


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["rules"].update({"astrology": {"outcome": "decline"}}), "unknown rule 'astrology'"),
    (lambda d: d["rules"]["inquiries_3m"].pop("max_3m"), "rule 'inquiries_3m' needs max_3m"),
    (lambda d: d["rules"]["student"].update({"outcome": "maybe"}), "malformed ruleset"),
    (lambda d: d["limits"].pop("dti_cap"), "limits needs dti_cap"),
    (lambda d: d.pop("grades"), "malformed ruleset"),
    (lambda d: d["limits"].update({"thin_file_max_fen": 0}), "thin_file_max_fen must be positive"),
])
def test_malformed_rulesets_are_refused_on_load(mutate, message: str) -> None:
    document = copy.deepcopy(_default_document())
    mutate(document)
    with pytest.raises(RulesetError, match=message):
        Ruleset.from_document(document)


def test_ruleset_hash_ignores_key_order() -> None:
    document = _default_document()
    reordered = json.loads(json.dumps(document, sort_keys=True))
    assert Ruleset.from_document(reordered).sha256 == RULESET.sha256
    document["rules"]["age"]["max_age"] = 59
    assert Ruleset.from_document(document).sha256 != RULESET.sha256


def test_grade_rate_is_the_position_within_the_range() -> None:
    assert grade_rate(0.0, Decimal("0.072"), Decimal("0.18")) == Decimal("0.072")
    assert grade_rate(0.25, Decimal("0.072"), Decimal("0.18")) == Decimal("0.0990")
    assert grade_rate(0.5, Decimal("0.072"), Decimal("0.18")) == Decimal("0.1260")
    assert grade_rate(1.0, Decimal("0.072"), Decimal("0.18")) == Decimal("0.18")
    assert grade_rate(1 / 3, Decimal("0.10"), Decimal("0.20")) == Decimal("0.1333")  # half-up to 0.01 %


def test_annuity_factor() -> None:
    assert annuity_factor(Decimal(0), 12) == Decimal(1) / 12
    # 12 % a year, 12 months: the textbook 0.0888487887...
    assert annuity_factor(Decimal("0.12"), 12).quantize(Decimal("1e-10")) == Decimal("0.0888487887")


_OFFER_DEFAULTS = dict(grade="B", monthly_income_fen=1_000_000, existing_monthly_fen=300_000, existing_credit_fen=0,
                       product_max_fen=5_000_000, min_rate=Decimal("0.072"), max_rate=Decimal("0.18"))


def _offer(**overrides):
    return offer(RULESET, **{**_OFFER_DEFAULTS, **overrides})


def test_limit_bound_by_debt_to_income() -> None:
    # Headroom 0.6 × 10,000 − 3,000 = 3,000 yuan a month; at 9.9 % over 12 months one yuan costs
    # 0.0878691 a month, so 34,141.7 yuan fits — rounded down to 100 yuan.
    result = _offer()
    assert (result.limit_fen, result.annual_rate, result.binding) == (3_410_000, Decimal("0.0990"), "dti")


def test_limit_bound_by_income_multiple_product_and_credit_cap() -> None:
    assert _offer(existing_monthly_fen=0, grade="C").binding == "income_multiple"
    assert _offer(existing_monthly_fen=0, grade="C").limit_fen == 4_000_000
    assert _offer(existing_monthly_fen=0, monthly_income_fen=5_000_000, product_max_fen=5_000_000).binding == (
        "product_max")
    capped = _offer(existing_monthly_fen=0, monthly_income_fen=5_000_000, product_max_fen=50_000_000,
                    existing_credit_fen=18_765_432)
    assert (capped.limit_fen, capped.binding) == (1_230_000, "credit_cap")


def test_a_thin_file_gets_the_starter_limit_at_most() -> None:
    # Same applicant as the debt-to-income case (34,100 yuan): with no bureau history, 5,000 yuan.
    thin = _offer(thin_file=True)
    assert (thin.limit_fen, thin.binding, thin.annual_rate) == (500_000, "thin_file", _offer().annual_rate)
    assert _offer(thin_file=True, existing_monthly_fen=580_000).binding == "dti"  # a lower bound still wins
    uncapped = Ruleset.from_document({**RULESET.document, "version": "no-thin-cap", "limits": {
        k: v for k, v in RULESET.limits.items() if k != "thin_file_max_fen"}})
    assert offer(uncapped, **{**_OFFER_DEFAULTS, "thin_file": True}).limit_fen == 3_410_000


def test_no_room_means_a_zero_limit() -> None:
    assert _offer(existing_monthly_fen=700_000).limit_fen == 0
    assert _offer(grade="E", existing_monthly_fen=0).limit_fen == 0


def test_a_score_reason_that_restates_a_policy_decline_is_not_told_twice():
    worst_first = ["bureau_inquiries_3m", "bureau_file_age_months", "debt_to_income", "bureau_inquiries_1m"]
    assert score_reason_codes(worst_first, ["CREDIT_TOO_MANY_INQUIRIES"]) == [
        "SCORE_bureau_file_age_months", "SCORE_debt_to_income"]
    assert score_reason_codes(worst_first, ["CREDIT_DEBT_TO_INCOME_HIGH"]) == [
        "SCORE_bureau_inquiries_3m", "SCORE_bureau_file_age_months", "SCORE_bureau_inquiries_1m"]
    assert score_reason_codes(worst_first, ["CREDIT_SCORE_TOO_LOW"]) == [f"SCORE_{v}" for v in worst_first]
