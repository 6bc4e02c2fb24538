"""The lender's own outcomes as a training file (``miaodai model outcomes``): what retraining needs.

One row per approved application whose line has booked loans old enough to judge: the features the
decision saw (from its encrypted snapshot, exactly as scored) and the outcome — ``bad`` = 1 if any
of its loans was written off or had an installment 30 or more days late (paid late, or still unpaid),
0 if its loans are at least ``min_days_on_book`` old and none was. Younger loans are left out (their
outcome is not known yet), and so are declined applicants (they have no outcome: no reject inference).
The file goes straight to ``miaodai model train --data FILE --target bad``.
"""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from miaodai.core.clock import business_date
from miaodai.core.ports import Platform
from miaodai.credit.features import FEATURE_NAMES
from miaodai.credit.models import SNAPSHOT_FIELD, ApplicationStatus, CreditApplication
from miaodai.loans.models import Loan, LoanInstallment
from miaodai.loans.states import LoanStatus

BAD_DAYS_LATE = 30


def loan_outcomes(session, line_ids: list[int], *, today: date, min_days_on_book: int) -> dict[int, int]:
    """line id -> 1 (bad) / 0 (good, seasoned); lines with nothing to judge yet are absent."""
    loans = session.execute(
        select(Loan.id, Loan.credit_line_id, Loan.status, Loan.disbursed_at)
        .where(Loan.credit_line_id.in_(line_ids), Loan.disbursed_at.is_not(None))
    ).all()
    if not loans:
        return {}
    worst_late: dict[int, int] = {}
    for loan_id, due, paid_on in session.execute(
        select(LoanInstallment.loan_id, LoanInstallment.due_date, LoanInstallment.paid_off_on)
        .where(LoanInstallment.loan_id.in_([row[0] for row in loans]))
    ):
        late = ((paid_on or today) - due).days
        worst_late[loan_id] = max(worst_late.get(loan_id, 0), late)
    outcome: dict[int, int] = {}
    for loan_id, line_id, status, disbursed_at in loans:
        if status is LoanStatus.WRITTEN_OFF or worst_late.get(loan_id, 0) >= BAD_DAYS_LATE:
            outcome[line_id] = 1
        elif business_date(disbursed_at) <= today - timedelta(days=min_days_on_book) and outcome.get(line_id) != 1:
            outcome[line_id] = 0
    return outcome


def export_outcomes(ports: Platform, out: Path, *, min_days_on_book: int = 90) -> dict[str, int]:
    today = business_date(ports.clock.now())
    with ports.db.transaction() as session:
        rows = list(session.execute(
            select(CreditApplication).where(CreditApplication.status == ApplicationStatus.APPROVED,
                                            CreditApplication.credit_line_id.is_not(None))
            .order_by(CreditApplication.id)).scalars())
        outcomes = loan_outcomes(session, [r.credit_line_id for r in rows], today=today,
                                 min_days_on_book=min_days_on_book)
    written = {"rows": 0, "bad": 0, "too_young_or_unused": 0}
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*FEATURE_NAMES, "application_id", "bad"])
        for row in rows:
            bad = outcomes.get(row.credit_line_id)
            if bad is None:
                written["too_young_or_unused"] += 1
                continue
            features = json.loads(ports.vault.decrypt(row.snapshot_enc, SNAPSHOT_FIELD))["features"]
            writer.writerow([("" if features.get(n) is None else features[n]) for n in FEATURE_NAMES]
                            + [row.id, bad])
            written["rows"] += 1
            written["bad"] += bad
    return written
