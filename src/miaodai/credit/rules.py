"""Policy rules (准入规则): small pure functions over a decision's facts, driven by a versioned ruleset.

Why code *and* data: each rule's logic is a few lines of Python, reviewed and unit-tested like any code;
its thresholds and outcomes (decline, refer to manual review, or off) live in a ruleset document
(JSON, see ``data/default_ruleset.json``) that the risk team edits, backtests against stored decisions
(``miaodai rules backtest``) and activates with a second staff member's approval — without a release.
A ruleset names every rule it configures; a rule it does not name does not run, and an unknown rule
name or a missing parameter is refused when the ruleset is loaded, not when an applicant arrives.

The facts a rule reads (:class:`Facts`) are stored with every decision, so replaying a ruleset over
past decisions gives exactly what it would have decided then.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from miaodai.loans.overdue import DelinquencyPolicy


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    REFER = "refer"  # manual review
    DECLINE = "decline"


_SEVERITY = {Outcome.PASS: 0, Outcome.REFER: 1, Outcome.DECLINE: 2}


class BureauStatus(StrEnum):
    OK = "ok"
    TIMEOUT = "timeout"
    ERROR = "error"
    NOT_QUERIED = "not_queried"  # no consent to query it


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the rules read besides the features. JSON-friendly: stored in the decision's snapshot."""

    identity_verified: bool
    missing_consents: tuple[str, ...]
    blocked_on: tuple[str, ...]  # which block lists hold the ID, phone or device ("id_number", "phone", "device")
    bureau_status: BureauStatus
    bureau_current_overdue_fen: int = 0
    bureau_written_off: bool = False
    bureau_fraud_list_hit: bool = False
    internet_consumer_credit_fen: int = 0  # outstanding elsewhere (bureau) plus our own open limits
    monthly_repayment_fen: int = 0  # scheduled monthly repayments elsewhere (bureau) and with us
    active_lines: int = 0
    last_decline_on: date | None = None
    device_applicants: int = 1  # distinct borrowers who applied from this device in the window
    application_date: date | None = None

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__}
        data["missing_consents"] = list(self.missing_consents)
        data["blocked_on"] = list(self.blocked_on)
        data["bureau_status"] = self.bureau_status.value
        for name in ("last_decline_on", "application_date"):
            data[name] = data[name].isoformat() if data[name] else None
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Facts:
        values = dict(data)
        values["missing_consents"] = tuple(values.get("missing_consents", ()))
        values["blocked_on"] = tuple(values.get("blocked_on", ()))
        values["bureau_status"] = BureauStatus(values["bureau_status"])
        for name in ("last_decline_on", "application_date"):
            values[name] = date.fromisoformat(values[name]) if values.get(name) else None
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    code: str  # stable reason code, e.g. CREDIT_TOO_MANY_INQUIRIES
    outcome: Outcome
    params: Mapping[str, Any] = field(default_factory=dict)  # numbers for the message ("{count} queries")


Features = Mapping[str, Any]
# A rule: (features, facts, its parameters) -> None (nothing to say) or (reason code, message params).
RuleFn = Callable[[Features, Facts, Mapping[str, Any]], "tuple[str, dict[str, Any]] | None"]


@dataclass(frozen=True)
class RuleSpec:
    fn: RuleFn
    params: tuple[str, ...]  # parameters the ruleset must give


def _identity_verified(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    return None if x.identity_verified else ("CREDIT_IDENTITY_NOT_VERIFIED", {})


def _age(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    age = f.get("age")
    if age is None or not p["min_age"] <= age <= p["max_age"]:
        return "CREDIT_AGE_OUT_OF_POLICY", {"min_age": p["min_age"], "max_age": p["max_age"]}
    return None


def _consents(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    return ("CREDIT_CONSENT_MISSING", {"kinds": ", ".join(x.missing_consents)}) if x.missing_consents else None


def _student(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    return ("CREDIT_STUDENT", {}) if f.get("occupation") == "student" else None


def _block_list(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    # The borrower is not told which list (that would teach fraudsters); staff see ``blocked_on``.
    return ("CREDIT_POLICY_NOT_MET", {}) if x.blocked_on else None


def _bureau_fraud(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    return ("CREDIT_POLICY_NOT_MET", {}) if x.bureau_fraud_list_hit else None


def _bureau_unavailable(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    # Never a blind approval: without the bureau's answer the ruleset says refer or decline.
    if x.bureau_status in (BureauStatus.TIMEOUT, BureauStatus.ERROR):
        return "CREDIT_BUREAU_UNAVAILABLE", {}
    return None


def _bureau_current_overdue(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    if x.bureau_current_overdue_fen > p["max_fen"]:
        return "CREDIT_BUREAU_CURRENT_OVERDUE", {}
    return None


def _bureau_written_off(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    return ("CREDIT_BUREAU_WRITTEN_OFF", {}) if x.bureau_written_off else None


def _inquiries(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    count = f.get("bureau_inquiries_3m")
    if count is not None and count > p["max_3m"]:
        return "CREDIT_TOO_MANY_INQUIRIES", {"count": count, "max": p["max_3m"]}
    return None


def _debt_to_income(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    dti = f.get("debt_to_income")
    if dti is not None and dti > p["max"]:
        return "CREDIT_DEBT_TO_INCOME_HIGH", {"percent": round(dti * 100), "max_percent": round(p["max"] * 100)}
    return None


def _internet_credit_cap(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    if x.internet_consumer_credit_fen >= p["max_fen"]:
        return "CREDIT_TOTAL_CREDIT_CAP", {"cap_yuan": p["max_fen"] // 100}
    return None


def _active_lines(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    if x.active_lines >= p["max"]:
        return "CREDIT_TOO_MANY_LINES", {"max": p["max"]}
    return None


def _cooling_off(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    if x.last_decline_on is None or x.application_date is None:
        return None
    allowed_on = date.fromordinal(x.last_decline_on.toordinal() + p["days"])
    if x.application_date < allowed_on:
        return "CREDIT_COOLING_OFF", {"reapply_on": allowed_on.isoformat()}
    return None


def _phone_tenure(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    months = f.get("phone_tenure_months")
    if months is not None and months < p["min_months"]:
        return "CREDIT_PHONE_TENURE_SHORT", {"months": months, "min_months": p["min_months"]}
    return None


def _device_sharing(f: Features, x: Facts, p: Mapping[str, Any]) -> tuple[str, dict] | None:
    if x.device_applicants > p["max_applicants"]:
        return "CREDIT_DEVICE_SHARED", {}
    return None


RULES: dict[str, RuleSpec] = {
    "identity_verified": RuleSpec(_identity_verified, ()),
    "age": RuleSpec(_age, ("min_age", "max_age")),
    "consents": RuleSpec(_consents, ()),
    "student": RuleSpec(_student, ()),
    "block_list": RuleSpec(_block_list, ()),
    "bureau_fraud_list": RuleSpec(_bureau_fraud, ()),
    "bureau_unavailable": RuleSpec(_bureau_unavailable, ()),
    "bureau_current_overdue": RuleSpec(_bureau_current_overdue, ("max_fen",)),
    "bureau_written_off": RuleSpec(_bureau_written_off, ()),
    "inquiries_3m": RuleSpec(_inquiries, ("max_3m",)),
    "debt_to_income": RuleSpec(_debt_to_income, ("max",)),
    "internet_credit_cap": RuleSpec(_internet_credit_cap, ("max_fen",)),
    "active_lines": RuleSpec(_active_lines, ("max",)),
    "cooling_off": RuleSpec(_cooling_off, ("days",)),
    "phone_tenure": RuleSpec(_phone_tenure, ("min_months",)),
    "device_sharing": RuleSpec(_device_sharing, ("max_applicants", "window_days")),
}


class RulesetError(ValueError):
    """The ruleset document is malformed; the message says where."""


@dataclass(frozen=True)
class GradePolicy:
    outcome: Outcome  # what the score alone decides for this grade
    income_multiple: int  # the limit is at most this many months of declared income
    rate_position: float  # 0 = the product's lowest rate, 1 = its highest


@dataclass(frozen=True)
class Ruleset:
    version: str
    description: str
    rules: tuple[tuple[str, Outcome, Mapping[str, Any]], ...]  # (rule name, outcome when it fires, params)
    grades: Mapping[str, GradePolicy]
    # dti_cap, credit_cap_fen, line_term_months, line_valid_days, limit_step_fen; optional thin_file_max_fen
    limits: Mapping[str, Any]
    document: Mapping[str, Any]  # the JSON it was read from
    sha256: str
    # What a borrower's line does while they are overdue (the ``delinquency`` section; defaults when absent).
    delinquency: DelinquencyPolicy = DelinquencyPolicy()

    def param(self, rule: str, name: str, default: Any = None) -> Any:
        for rule_name, _outcome, params in self.rules:
            if rule_name == rule:
                return params.get(name, default)
        return default

    def reapply_on(self, declined_on: date) -> date:
        """When someone declined on ``declined_on`` may apply again (the cooling-off rule's days, 30 if off)."""
        return date.fromordinal(declined_on.toordinal() + int(self.param("cooling_off", "days", 30)))

    def line_expires_on(self, granted_on: date) -> date:
        return date.fromordinal(granted_on.toordinal() + int(self.limits["line_valid_days"]))

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Ruleset:
        try:
            version = str(document["version"])
            rules = []
            for name, config in document["rules"].items():
                if name not in RULES:
                    raise RulesetError(f"unknown rule {name!r} (known: {', '.join(RULES)})")
                outcome = Outcome(config["outcome"])
                params = {k: v for k, v in config.items() if k != "outcome"}
                missing = [p for p in RULES[name].params if p not in params]
                if missing:
                    raise RulesetError(f"rule {name!r} needs {', '.join(missing)}")
                rules.append((name, outcome, params))
            grades = {
                grade: GradePolicy(Outcome(g["outcome"]), int(g["income_multiple"]), float(g["rate_position"]))
                for grade, g in document["grades"].items()
            }
            limits = dict(document["limits"])
            for key in ("dti_cap", "credit_cap_fen", "line_term_months", "line_valid_days", "limit_step_fen"):
                if key not in limits:
                    raise RulesetError(f"limits needs {key}")
            if "thin_file_max_fen" in limits and int(limits["thin_file_max_fen"]) <= 0:
                raise RulesetError("limits.thin_file_max_fen must be positive (leave it out for no cap)")
            try:
                delinquency = DelinquencyPolicy.from_document(document.get("delinquency"))
            except ValueError as exc:
                raise RulesetError(str(exc)) from None
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, RulesetError):
                raise
            raise RulesetError(f"malformed ruleset: {exc!r}") from None
        if not version:
            raise RulesetError("version is empty")
        return cls(version=version, description=str(document.get("description", "")), rules=tuple(rules),
                   grades=grades, limits=limits, document=document, sha256=document_sha256(document),
                   delinquency=delinquency)


def document_sha256(document: Mapping[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def evaluate(ruleset: Ruleset, features: Features, facts: Facts) -> list[Finding]:
    """Every finding of every configured rule that fires (rules set to ``pass`` are not evaluated)."""
    findings = []
    for name, outcome, params in ruleset.rules:
        if outcome is Outcome.PASS:
            continue
        hit = RULES[name].fn(features, facts, params)
        if hit is not None:
            code, message_params = hit
            findings.append(Finding(name, code, outcome, message_params))
    return findings


def worst(findings: list[Finding]) -> Outcome:
    return max((f.outcome for f in findings), key=_SEVERITY.__getitem__, default=Outcome.PASS)
