"""Features of a credit application (pure: no I/O). The scorecard, the policy rules and the monitoring
all read the same flat dictionary, and the decision stores it as its snapshot, so a decision can be
replayed exactly (``miaodai rules backtest``) and a model retrained on what was known at the time.

Values are ints, floats (rounded to 4 places so a snapshot round-trips through JSON unchanged),
strings for categories, or None for "unknown" (no bureau file, the bureau did not answer, no
carrier data): the scorecard gives unknown values their own points, rules decide what unknown means.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from miaodai.credit.bureau import BureauReport


class Occupation(StrEnum):
    EMPLOYEE = "employee"  # 企业职员
    CIVIL_SERVANT = "civil_servant"  # 公务员 / 事业单位
    SELF_EMPLOYED = "self_employed"  # 个体经营
    FREELANCER = "freelancer"  # 自由职业
    RETIRED = "retired"  # 退休
    UNEMPLOYED = "unemployed"  # 待业
    STUDENT = "student"  # 在校学生: refused by policy (internet consumer loans to students are barred)


class Education(StrEnum):
    BELOW_HIGH_SCHOOL = "below_high_school"
    HIGH_SCHOOL = "high_school"  # 高中 / 中专
    ASSOCIATE = "associate"  # 大专
    BACHELOR = "bachelor"  # 本科
    POSTGRADUATE = "postgraduate"  # 硕士及以上


class LoanPurpose(StrEnum):
    DAILY_CONSUMPTION = "daily_consumption"  # 日常消费
    HOME_FURNISHING = "home_furnishing"  # 家装家电
    EDUCATION = "education"  # 教育培训
    TRAVEL = "travel"  # 旅游
    MEDICAL = "medical"  # 医疗
    WEDDING = "wedding"  # 婚庆
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ApplicationInput:
    """What the borrower declares on the application form."""

    monthly_income_fen: int
    occupation: Occupation
    education: Education
    loan_purpose: LoanPurpose


@dataclass(frozen=True, slots=True)
class InternalHistory:
    """What our own book says about the borrower."""

    active_lines: int = 0
    existing_limit_fen: int = 0  # limits of their open lines with us
    outstanding_principal_fen: int = 0
    monthly_repayment_fen: int = 0  # their next month's installments with us
    loans_paid_off: int = 0
    max_overdue_days: int = 0  # the longest overdue on any of their loans with us


FEATURE_NAMES: tuple[str, ...] = (
    "age",
    "monthly_income_yuan",
    "occupation",
    "education",
    "loan_purpose",
    "bureau_file_age_months",
    "bureau_open_accounts",
    "bureau_utilisation",
    "bureau_inquiries_1m",
    "bureau_inquiries_3m",
    "bureau_inquiries_6m",
    "bureau_worst_overdue_days_24m",
    "bureau_months_since_last_overdue",
    "bureau_total_balance_yuan",
    "debt_to_income",
    "phone_tenure_months",
    "internal_loans_paid_off",
    "internal_max_overdue_days",
)

Features = dict[str, int | float | str | None]


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator > 0 else None


def build_features(
    *, application: ApplicationInput, age: int, report: BureauReport | None, phone_tenure_months: int | None,
    internal: InternalHistory,
) -> Features:
    """The feature dictionary, keys exactly :data:`FEATURE_NAMES`. ``report`` None: the bureau did not answer."""
    income = application.monthly_income_fen
    features: Features = {
        "age": age,
        "monthly_income_yuan": income // 100,
        "occupation": application.occupation.value,
        "education": application.education.value,
        "loan_purpose": application.loan_purpose.value,
        "phone_tenure_months": phone_tenure_months,
        "internal_loans_paid_off": internal.loans_paid_off,
        "internal_max_overdue_days": internal.max_overdue_days,
    }
    if report is None:
        features.update(dict.fromkeys((
            "bureau_file_age_months", "bureau_open_accounts", "bureau_utilisation", "bureau_inquiries_1m",
            "bureau_inquiries_3m", "bureau_inquiries_6m", "bureau_worst_overdue_days_24m",
            "bureau_months_since_last_overdue", "bureau_total_balance_yuan", "debt_to_income",
        )))
    else:
        utilisation = report.utilisation
        features.update({
            "bureau_file_age_months": report.file_age_months,
            "bureau_open_accounts": report.open_accounts,
            "bureau_utilisation": None if utilisation is None else round(utilisation, 4),
            "bureau_inquiries_1m": report.inquiries_1m,
            "bureau_inquiries_3m": report.inquiries_3m,
            "bureau_inquiries_6m": report.inquiries_6m,
            "bureau_worst_overdue_days_24m": report.worst_overdue_days_24m,
            "bureau_months_since_last_overdue": report.months_since_last_overdue,
            "bureau_total_balance_yuan": report.total_balance_fen // 100,
            "debt_to_income": _ratio(report.monthly_repayment_fen + internal.monthly_repayment_fen, income),
        })
    return {name: features[name] for name in FEATURE_NAMES}
