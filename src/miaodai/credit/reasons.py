"""What a borrower is told about a decision (PIPL art. 24: automated decisions must be explainable):
each reason code with a zh-CN and English sentence and, where they can act, a concrete tip.

Two sources of reasons: the policy rules (codes from ``rules.py``) and the scorecard (the variables
whose points fell furthest below their best bin, as ``SCORE_<variable>``). Fraud and block-list hits
are deliberately vague to the borrower (``CREDIT_POLICY_NOT_MET``); staff see the rule that fired.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ReasonText:
    zh: str
    en: str
    tip_zh: str = ""
    tip_en: str = ""


_TIP_REPAY_ZH, _TIP_REPAY_EN = "按时偿还现有的信用卡和贷款。", "Repay your existing cards and loans on time."
_TIP_DEBT_ZH, _TIP_DEBT_EN = "先还掉一部分现有欠款，降低负债。", "Pay down some of your existing debt first."
_TIP_APPLY_ZH, _TIP_APPLY_EN = "减少短期内向多家机构申请贷款。", "Apply to fewer lenders in a short time."

CATALOG: dict[str, ReasonText] = {
    "CREDIT_IDENTITY_NOT_VERIFIED": ReasonText(
        "实名认证尚未完成。", "Your real-name verification is not complete.",
        "请先完成实名认证（身份证、运营商校验、人脸）。",
        "Finish real-name verification (ID, carrier check, face) first."),
    "CREDIT_AGE_OUT_OF_POLICY": ReasonText(
        "申请人年龄需在 {min_age} 至 {max_age} 岁之间。", "Applicants must be {min_age} to {max_age} years old."),
    "CREDIT_CONSENT_MISSING": ReasonText(
        "缺少必要的授权：{kinds}。", "A required authorization is missing: {kinds}.",
        "请在“授权管理”中阅读并同意后重新申请。", "Read and grant it under Consents, then apply again."),
    "CREDIT_STUDENT": ReasonText(
        "按照监管规定，我们不向在校学生发放互联网消费贷款。",
        "By regulation we do not lend internet consumer loans to students."),
    "CREDIT_POLICY_NOT_MET": ReasonText(
        "综合评估未满足我们的准入政策。", "Our overall assessment did not meet our lending policy.",
        "如有疑问可申请人工复核。", "You may ask for a human review if you think this is wrong."),
    "CREDIT_BUREAU_UNAVAILABLE": ReasonText(
        "暂时无法取得您的征信报告，申请已转人工审核。",
        "We could not get your credit report just now, so a person will review your application.",
        "审核结果会通过短信通知您，无需重复申请。", "We will tell you the outcome by SMS; no need to apply again."),
    "CREDIT_BUREAU_CURRENT_OVERDUE": ReasonText(
        "征信报告显示您当前有逾期未还的欠款。", "Your credit report shows an amount overdue right now.",
        "还清逾期欠款后再申请。", "Repay the overdue amount, then apply again."),
    "CREDIT_BUREAU_WRITTEN_OFF": ReasonText(
        "征信报告中有呆账记录。", "Your credit report has a written-off account.",
        _TIP_REPAY_ZH, _TIP_REPAY_EN),
    "CREDIT_TOO_MANY_INQUIRIES": ReasonText(
        "近 3 个月您的贷款审批查询有 {count} 次，超过 {max} 次的上限。",
        "Lenders queried your credit {count} times in the last 3 months, more than our limit of {max}.",
        _TIP_APPLY_ZH, _TIP_APPLY_EN),
    "CREDIT_DEBT_TO_INCOME_HIGH": ReasonText(
        "您每月的还款额约占收入的 {percent}%，超过 {max_percent}% 的上限。",
        "Your monthly repayments are about {percent}% of your income, above our limit of {max_percent}%.",
        _TIP_DEBT_ZH, _TIP_DEBT_EN),
    "CREDIT_TOTAL_CREDIT_CAP": ReasonText(
        "您的互联网消费贷款总额已达到 {cap_yuan} 元的上限。",
        "Your internet consumer credit has reached the {cap_yuan} yuan cap.", _TIP_DEBT_ZH, _TIP_DEBT_EN),
    "CREDIT_TOO_MANY_LINES": ReasonText(
        "您在本平台已有可用额度，请直接使用。", "You already have a credit line with us; use it.",
        "在“我的额度”中查看可用额度。", "See your available credit under My credit line."),
    "CREDIT_COOLING_OFF": ReasonText(
        "距上次申请未通过不足冷静期，{reapply_on} 起可再次申请。",
        "Your last application was declined recently; you may apply again from {reapply_on}."),
    "CREDIT_PHONE_TENURE_SHORT": ReasonText(
        "您的手机号在网时长为 {months} 个月，短于 {min_months} 个月，需人工审核。",
        "Your phone number has been in service for {months} months, under {min_months}; a person will review.",
        "审核结果会通过短信通知您。", "We will tell you the outcome by SMS."),
    "CREDIT_DEVICE_SHARED": ReasonText(
        "该设备近期被多人用于申请，需人工审核。",
        "Several people applied from this device recently, so a person will review.",
        "请使用本人常用的手机申请。", "Apply from your own phone."),
    "CREDIT_SCORE_REVIEW": ReasonText(
        "您的申请需要人工进一步审核。", "Your application needs a closer look by a person.",
        "审核结果会通过短信通知您。", "We will tell you the outcome by SMS."),
    "CREDIT_SCORE_TOO_LOW": ReasonText(
        "综合信用评分未达到准入标准。", "Your overall credit score is below what we can approve.",
        _TIP_REPAY_ZH, _TIP_REPAY_EN),
    "CREDIT_INSUFFICIENT_CAPACITY": ReasonText(
        "根据您的收入和现有负债，可提供的额度低于产品最低额度。",
        "For your income and existing debt, the line we could offer is below the product's minimum.",
        _TIP_DEBT_ZH, _TIP_DEBT_EN),
    "CREDIT_HUMAN_REVIEW_DECLINED": ReasonText(
        "人工审核后，申请未获通过。", "After review by a person, the application was not approved."),
    # Scorecard variables: why the score was lower than it could be.
    "SCORE_bureau_inquiries_1m": ReasonText("近 1 个月贷款申请较多。", "Many credit applications in the last month.",
                                            _TIP_APPLY_ZH, _TIP_APPLY_EN),
    "SCORE_bureau_inquiries_3m": ReasonText("近 3 个月贷款申请较多。", "Many credit applications in the last 3 months.",
                                            _TIP_APPLY_ZH, _TIP_APPLY_EN),
    "SCORE_bureau_inquiries_6m": ReasonText("近 6 个月贷款申请较多。", "Many credit applications in the last 6 months.",
                                            _TIP_APPLY_ZH, _TIP_APPLY_EN),
    "SCORE_bureau_utilisation": ReasonText("信用卡额度使用率较高。", "You use a large share of your card limits.",
                                           "降低信用卡欠款，使用率保持在 30% 以下。",
                                           "Keep card balances under 30% of limits."),
    "SCORE_bureau_worst_overdue_days_24m": ReasonText("近两年有逾期记录。", "Late payments in the last two years.",
                                                      _TIP_REPAY_ZH, _TIP_REPAY_EN),
    "SCORE_bureau_months_since_last_overdue": ReasonText("最近一次逾期距今较近。", "A recent late payment.",
                                                         _TIP_REPAY_ZH, _TIP_REPAY_EN),
    "SCORE_bureau_file_age_months": ReasonText("信用记录时间较短。", "A short credit history.",
                                               "持续按时使用和偿还信用卡，积累信用记录。",
                                               "Build your history by using and repaying a card on time."),
    "SCORE_bureau_open_accounts": ReasonText("信用账户数量不利于评分。", "The number of your credit accounts.",
                                             _TIP_REPAY_ZH, _TIP_REPAY_EN),
    "SCORE_bureau_total_balance_yuan": ReasonText("现有欠款余额较高。", "High outstanding balances.",
                                                  _TIP_DEBT_ZH, _TIP_DEBT_EN),
    "SCORE_debt_to_income": ReasonText("负债收入比较高。", "High debt payments for your income.",
                                       _TIP_DEBT_ZH, _TIP_DEBT_EN),
    "SCORE_monthly_income_yuan": ReasonText("月收入水平。", "Your monthly income.",
                                            "如收入有变化，请更新收入信息。", "Update your income if it has changed."),
    "SCORE_age": ReasonText("年龄因素。", "Your age group."),
    "SCORE_occupation": ReasonText("职业类别。", "Your occupation."),
    "SCORE_education": ReasonText("学历因素。", "Your education."),
    "SCORE_loan_purpose": ReasonText("借款用途。", "The purpose of the loan."),
    "SCORE_phone_tenure_months": ReasonText("手机号在网时长较短。", "Your phone number is fairly new.",
                                            "使用本人长期使用的手机号。", "Use the number you have had longest."),
    "SCORE_internal_loans_paid_off": ReasonText("在本平台的还款记录较少。", "Little repayment history with us.",
                                                "按时还款可提高以后的额度。", "Repaying on time raises future limits."),
    "SCORE_internal_max_overdue_days": ReasonText("在本平台有逾期记录。", "Late payments on loans with us.",
                                                  _TIP_REPAY_ZH, _TIP_REPAY_EN),
}

_GENERIC = ReasonText("信用评分因素：{variable}。", "A credit-score factor: {variable}.")

# A score reason that says again what a policy decline already told the borrower, with the same advice: the
# decline's own sentence is the more precise ("queried 9 times, more than 6"), so the score's is not repeated.
RESTATES = {
    "SCORE_bureau_inquiries_1m": "CREDIT_TOO_MANY_INQUIRIES",
    "SCORE_bureau_inquiries_3m": "CREDIT_TOO_MANY_INQUIRIES",
    "SCORE_bureau_inquiries_6m": "CREDIT_TOO_MANY_INQUIRIES",
    "SCORE_debt_to_income": "CREDIT_DEBT_TO_INCOME_HIGH",
}


def score_reason_codes(variables: Iterable[str], given: Iterable[str]) -> list[str]:
    """The scorecard's reasons (``SCORE_<variable>``, worst first) that add to the reason codes ``given``."""
    told = set(given)
    return [code for code in (f"SCORE_{v}" for v in variables) if RESTATES.get(code) not in told]


def explain(code: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The borrower-facing form of one reason: code, messages and tips, placeholders filled."""
    params = dict(params or {})
    text = CATALOG.get(code)
    if text is None:
        text, params = _GENERIC, {"variable": code.removeprefix("SCORE_"), **params}
    reason: dict[str, Any] = {"code": code, "message_zh": text.zh.format(**params),
                              "message_en": text.en.format(**params)}
    if text.tip_zh:
        reason["tip_zh"], reason["tip_en"] = text.tip_zh, text.tip_en
    return reason
