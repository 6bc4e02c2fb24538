"""Model monitoring (``miaodai model monitor``): is the population still the one the model was built on,
and are its loans behaving as its grades said?

Per business day, for applications scored by a model: how many, the approval rate, the score
distribution over the training histogram's bins and its PSI (population stability index) against
training, and each variable's PSI over its scorecard bins (from the decisions' snapshots). Then the
early delinquency of booked loans by the grade their line was given.

PSI = Σ (actual − expected) · ln(actual / expected) over bins. Shares are smoothed (add ½ to every
bin's count, floor the expected share at 0.0001) so an empty bin is a large number, not infinity.
Rules of thumb: < 0.1 stable, 0.1–0.25 watch, > 0.25 the population has moved — retrain or recalibrate.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select

from miaodai.credit.models import SNAPSHOT_FIELD, CreditApplication, Decision
from miaodai.credit.ports import CreditPorts
from miaodai.credit.scorecard import Scorecard
from miaodai.loans.models import CreditLine, Loan
from miaodai.loans.states import LoanStatus

EXPECTED_FLOOR = 0.0001
PSI_WATCH, PSI_ACT = 0.1, 0.25


def psi(expected: Sequence[float], counts: Sequence[int]) -> float:
    """PSI of observed ``counts`` against ``expected`` shares (same bins, same order), smoothed."""
    if len(expected) != len(counts) or not expected:
        raise ValueError("expected shares and counts need the same, non-zero number of bins")
    floored = [max(e, EXPECTED_FLOOR) for e in expected]
    total_e = sum(floored)
    n = sum(counts)
    k = len(counts)
    value = 0.0
    for e, c in zip(floored, counts, strict=True):
        e_share = e / total_e
        a_share = (c + 0.5) / (n + 0.5 * k)
        value += (a_share - e_share) * math.log(a_share / e_share)
    return value


def verdict(value: float) -> str:
    return "stable" if value < PSI_WATCH else "watch" if value < PSI_ACT else "shifted"


def score_bin(uppers: Sequence[float | None], score: float) -> int:
    for i, upper in enumerate(uppers):
        if upper is None or score < upper:
            return i
    return len(uppers) - 1


@dataclass
class DayReport:
    day: date
    applications: int = 0
    approved: int = 0
    declined: int = 0
    review: int = 0
    score_counts: list[int] = field(default_factory=list)
    feature_counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def summary(self, model: Scorecard) -> dict[str, Any]:
        training = model.document.get("training", {})
        expected = [b["share"] for b in training.get("score_distribution", [])]
        score_psi = psi(expected, self.score_counts) if expected and self.applications else None
        features = {}
        for name, bins in training.get("feature_distributions", {}).items():
            counts = self.feature_counts.get(name, Counter())
            keys = [b["bin"] for b in bins]
            features[name] = round(psi([b["share"] for b in bins], [counts.get(str(k), 0) for k in keys]), 4)
        return {
            "date": self.day.isoformat(), "applications": self.applications,
            "approval_rate": round(self.approved / self.applications, 4) if self.applications else None,
            "decisions": {"approved": self.approved, "declined": self.declined, "review": self.review},
            "score_distribution": self.score_counts,
            "score_psi": None if score_psi is None else round(score_psi, 4),
            "score_psi_verdict": None if score_psi is None else verdict(score_psi),
            "feature_psi": features,
            "features_to_watch": sorted(n for n, v in features.items() if v >= PSI_WATCH),
        }


def monitor(ports: CreditPorts, *, since: date | None = None, until: date | None = None,
            model: Scorecard | None = None) -> dict[str, Any]:
    """The report for the champion (or ``model``) over the given business days."""
    with ports.db.transaction() as session:
        model = model or ports.credit_policy.active(session).champion
        query = select(CreditApplication).where(CreditApplication.model_id == model.model_id)
        if since is not None:
            query = query.where(CreditApplication.application_date >= since)
        if until is not None:
            query = query.where(CreditApplication.application_date <= until)
        rows = list(session.execute(query.order_by(CreditApplication.application_date, CreditApplication.id))
                    .scalars())
        delinquency = early_delinquency(session)
    uppers = [b["upper"] for b in model.document.get("training", {}).get("score_distribution", [])]
    tracked = list(model.document.get("training", {}).get("feature_distributions", {}))
    days: dict[date, DayReport] = {}
    for row in rows:
        day = days.setdefault(row.application_date, DayReport(row.application_date, score_counts=[0] * len(uppers)))
        day.applications += 1
        if row.decision is Decision.APPROVED:
            day.approved += 1
        elif row.decision is Decision.DECLINED:
            day.declined += 1
        else:
            day.review += 1
        if row.score is not None and uppers:
            day.score_counts[score_bin(uppers, float(row.score))] += 1
        if tracked:
            features = json.loads(ports.vault.decrypt(row.snapshot_enc, SNAPSHOT_FIELD))["features"]
            for name in tracked:
                if name in model.variables:
                    day.feature_counts[name][str(model.bin_of(name, features.get(name)))] += 1
    return {
        "model_id": model.model_id,
        "days": [days[d].summary(model) for d in sorted(days)],
        "early_delinquency_by_grade": delinquency,
    }


def early_delinquency(session: Any) -> dict[str, dict[str, Any]]:
    """Booked loans by their line's grade: how many, how many are past due now, 30+ days, written off."""
    booked = (LoanStatus.ACTIVE, LoanStatus.OVERDUE, LoanStatus.PAID_OFF, LoanStatus.WRITTEN_OFF)
    rows = session.execute(
        select(CreditLine.risk_grade, Loan.status, Loan.days_past_due, func.count())
        .join(CreditLine, CreditLine.id == Loan.credit_line_id)
        .where(Loan.status.in_(booked))
        .group_by(CreditLine.risk_grade, Loan.status, Loan.days_past_due)
    ).all()
    grades: dict[str, dict[str, Any]] = {}
    for grade, status, dpd, count in rows:
        g = grades.setdefault(grade, {"loans": 0, "past_due": 0, "dpd30_plus": 0, "written_off": 0})
        g["loans"] += count
        g["past_due"] += count if dpd > 0 else 0
        g["dpd30_plus"] += count if dpd >= 30 or status is LoanStatus.WRITTEN_OFF else 0
        g["written_off"] += count if status is LoanStatus.WRITTEN_OFF else 0
    for g in grades.values():
        g["dpd30_plus_rate"] = round(g["dpd30_plus"] / g["loans"], 4) if g["loans"] else None
    return dict(sorted(grades.items()))


