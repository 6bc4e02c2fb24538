"""The bureau sandbox's documented test IDs and its synthetic reports; the feature builder."""

from __future__ import annotations

import pytest
from stdnum.cn import ric

from miaodai.core.providers import ProviderError, ProviderTimeout
from miaodai.credit import bureau
from miaodai.credit.bureau import SandboxBureau, synthetic_report
from miaodai.credit.carrier_data import CARRIER_DATA_TIMEOUT_PHONE, SHORT_TENURE_PHONE, SandboxCarrierData
from miaodai.credit.features import (
    FEATURE_NAMES,
    ApplicationInput,
    Education,
    InternalHistory,
    LoanPurpose,
    Occupation,
    build_features,
)

DOCUMENTED = (bureau.THIN_FILE_ID, bureau.MULTI_BORROWING_ID, bureau.CURRENT_OVERDUE_ID, bureau.WRITTEN_OFF_ID,
              bureau.FRAUD_LIST_ID, bureau.BUREAU_TIMEOUT_ID, bureau.BUREAU_ERROR_ID, bureau.CLEAN_FILE_ID)


def _sandbox(slept: list[float]) -> SandboxBureau:
    return SandboxBureau(timeout_seconds=3, latency_seconds=0.01, sleep=slept.append)


@pytest.mark.parametrize("id_number", DOCUMENTED)
def test_documented_ids_are_valid_resident_ids(id_number: str) -> None:
    assert ric.is_valid(id_number)


def test_documented_cases() -> None:
    party = _sandbox([])
    assert party.report(bureau.THIN_FILE_ID, "张三").file_age_months is None
    heavy = party.report(bureau.MULTI_BORROWING_ID, "张三")
    assert (heavy.inquiries_1m, heavy.inquiries_3m, heavy.inquiries_6m) == (4, 9, 14)
    overdue = party.report(bureau.CURRENT_OVERDUE_ID, "张三")
    assert (overdue.current_overdue_fen, overdue.current_overdue_days) == (345_000, 45)
    assert party.report(bureau.WRITTEN_OFF_ID, "张三").written_off
    assert party.report(bureau.FRAUD_LIST_ID, "张三").fraud_list_hit
    clean = party.report(bureau.CLEAN_FILE_ID, "张三")
    assert clean.worst_overdue_days_24m == 0 and clean.utilisation == pytest.approx(0.1)


def test_timeout_waits_the_timeout_and_error_answers() -> None:
    slept: list[float] = []
    with pytest.raises(ProviderTimeout):
        _sandbox(slept).report(bureau.BUREAU_TIMEOUT_ID, "张三")
    assert slept == [3]
    with pytest.raises(ProviderError) as caught:
        _sandbox([]).report(bureau.BUREAU_ERROR_ID, "张三")
    assert caught.value.code == "BUREAU_UNAVAILABLE"


def test_synthetic_reports_are_deterministic_and_consistent() -> None:
    reports = []
    for n in range(400):
        body = f"3301061985{n % 12 + 1:02d}15{n % 1000:03d}"
        id_number = body + ric.calc_check_digit(body + "0")  # it reads the first 17 of 18
        first, again = synthetic_report(id_number), synthetic_report(id_number)
        assert first == again
        reports.append(first)
    for r in reports:
        assert 0 <= r.inquiries_1m <= r.inquiries_3m <= r.inquiries_6m
        assert r.revolving_balance_fen <= r.total_balance_fen
        assert r.internet_consumer_credit_fen <= r.total_balance_fen
        assert (r.worst_overdue_days_24m == 0) == (r.months_since_last_overdue is None)
    thin = sum(r.file_age_months is None for r in reports)
    assert 0 < thin < len(reports) * 0.2  # some thin files, mostly ordinary ones
    assert len({r.inquiries_3m for r in reports}) > 4  # varied enough to learn from


def test_carrier_data_sandbox() -> None:
    slept: list[float] = []
    party = SandboxCarrierData(timeout_seconds=2, latency_seconds=0, sleep=slept.append)
    assert party.phone_tenure_months(SHORT_TENURE_PHONE) == 2
    assert 6 <= party.phone_tenure_months("+8613812345678") <= 180
    assert party.phone_tenure_months("+8613812345678") == party.phone_tenure_months("+8613812345678")
    with pytest.raises(ProviderTimeout):
        party.phone_tenure_months(CARRIER_DATA_TIMEOUT_PHONE)
    assert slept == [0, 0, 0, 0, 2]  # four answers after zero latency, then the whole timeout


APPLICATION = ApplicationInput(monthly_income_fen=1_000_000, occupation=Occupation.EMPLOYEE,
                               education=Education.BACHELOR, loan_purpose=LoanPurpose.TRAVEL)


def test_features_from_a_clean_report() -> None:
    report = bureau.documented_report(bureau.CLEAN_FILE_ID, "r")
    internal = InternalHistory(monthly_repayment_fen=20_000, loans_paid_off=2)
    features = build_features(application=APPLICATION, age=36, report=report, phone_tenure_months=50,
                              internal=internal)
    assert tuple(features) == FEATURE_NAMES
    assert features["monthly_income_yuan"] == 10_000
    assert features["bureau_utilisation"] == 0.1
    assert features["debt_to_income"] == 0.1  # (800 + 200 yuan) / 10,000 yuan
    assert features["internal_loans_paid_off"] == 2
    assert features["occupation"] == "employee"


def test_features_without_a_report_are_unknown_not_zero() -> None:
    features = build_features(application=APPLICATION, age=36, report=None, phone_tenure_months=None,
                              internal=InternalHistory())
    assert features["bureau_inquiries_3m"] is None and features["debt_to_income"] is None
    assert features["phone_tenure_months"] is None and features["age"] == 36
