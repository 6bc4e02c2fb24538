"""Replaying stored decisions under another ruleset (``miaodai rules backtest``), before it is activated.

Every decision stored its exact inputs (features and facts, encrypted), so a candidate ruleset can be
run over the same applicants and compared with the ruleset active now — same model, same inputs —
showing how the approval rate would move and which applicants would get a different answer.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select

from miaodai.credit.models import SNAPSHOT_FIELD, CreditApplication, Decision
from miaodai.credit.ports import CreditPorts
from miaodai.credit.registry import ActivePolicy
from miaodai.credit.rules import Facts, Ruleset
from miaodai.credit.service import decide
from miaodai.loans.models import LoanProduct


@dataclass
class BacktestReport:
    candidate: str
    baseline: str
    applications: int = 0
    baseline_counts: Counter = field(default_factory=Counter)
    candidate_counts: Counter = field(default_factory=Counter)
    changed: list[dict[str, Any]] = field(default_factory=list)

    def rate(self, counts: Counter) -> float:
        return round(counts[Decision.APPROVED.value] / self.applications, 4) if self.applications else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate, "baseline": self.baseline, "applications": self.applications,
            "baseline_decisions": dict(self.baseline_counts), "candidate_decisions": dict(self.candidate_counts),
            "baseline_approval_rate": self.rate(self.baseline_counts),
            "candidate_approval_rate": self.rate(self.candidate_counts),
            "changed": len(self.changed),
        }


def backtest(ports: CreditPorts, candidate: Ruleset, *, since: date | None = None,
             limit: int = 10_000) -> BacktestReport:
    """Decide the last ``limit`` stored applications (since ``since``) under the active and the candidate
    ruleset, with the active models."""
    with ports.db.transaction() as session:
        active = ports.credit_policy.active(session)
        query = select(CreditApplication).order_by(CreditApplication.id.desc()).limit(limit)
        if since is not None:
            query = query.where(CreditApplication.application_date >= since)
        rows = list(session.execute(query).scalars())
        products = {p.id: p.spec() for p in session.execute(select(LoanProduct)).scalars()}
    report = BacktestReport(candidate=candidate.version, baseline=active.ruleset.version)
    trial = ActivePolicy(candidate, active.champion, None)
    baseline = ActivePolicy(active.ruleset, active.champion, None)
    for row in reversed(rows):
        snapshot = json.loads(ports.vault.decrypt(row.snapshot_enc, SNAPSHOT_FIELD))
        features, facts = snapshot["features"], Facts.from_json(snapshot["facts"])
        income = snapshot["application"]["monthly_income_fen"]
        product = products[row.product_id]
        before = decide(baseline, features, facts, product=product, monthly_income_fen=income)
        after = decide(trial, features, facts, product=product, monthly_income_fen=income)
        report.applications += 1
        report.baseline_counts[before.decision.value] += 1
        report.candidate_counts[after.decision.value] += 1
        if (before.decision, before.limit_fen) != (after.decision, after.limit_fen):
            report.changed.append({
                "application_id": row.id, "application_date": row.application_date.isoformat(),
                "baseline": before.decision.value, "candidate": after.decision.value,
                "baseline_limit_fen": before.limit_fen, "candidate_limit_fen": after.limit_fen,
                "candidate_codes": [r["code"] for r in after.reasons],
            })
    return report
