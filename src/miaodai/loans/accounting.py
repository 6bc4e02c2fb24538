"""How a loan's life reaches the ledger, and the check that its sub-ledger matches its installments.

The rules every writer follows (the loan service, repayments, the end-of-day batch):

* **Payout** (:mod:`miaodai.loans.loan_service`): the whole principal becomes receivable when the
  payout is ordered (Dr principal receivable / Cr payout in transit) and is paid out of the channel's
  cash when the channel confirms; a definite failure reverses the order's entry.
* **Falling due** (end-of-day batch, the close of the day before the due date): an installment's
  *unpaid* interest and fee become receivable — Dr interest receivable / Cr interest income, Dr fee
  receivable / Cr fee income, for ``interest_fen − interest_paid_fen`` and ``fee_fen − fee_paid_fen`` —
  and its ``posted_due`` flag is set. Interest is recognised as income when due; the daily accrual
  register on the loan (``accrued_interest_fen``) is for reporting and early payoff, not posted.
* **Overdue charges** (end-of-day batch): penalty interest and the late fee are charged to the
  installment's ``penalty_fen`` and posted Dr penalty receivable / Cr penalty income.
* **Money received** (repayments): Dr cash at the channel. Each allocated amount credits
  principal receivable for principal; for interest and fee it credits the receivable when the
  installment is ``posted_due``, and the income account directly when it is not (interest accrued to an
  early payoff, an installment paid before it fell due); penalty credits penalty receivable. What is not
  allocated is held: Cr overpayment liability (and ``loans.overpayment_fen``). Applying held money later
  is Dr overpayment liability / Cr the receivables.
* **Write-off**: Dr write-off expense / Cr every receivable the loan still has.

So at every moment, for a loan that has been paid out and not written off (:func:`expected_subledger`):

* principal receivable = Σ (principal − principal paid) over its installments = ``principal_outstanding_fen``
* interest receivable = Σ (interest − interest paid) over installments with ``posted_due``; fees alike
* penalty receivable = Σ (penalty − penalty paid)
* overpayment liability = ``overpayment_fen``

Balances here are seen from the account's normal side (receivables positive, the liability positive).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import fields

from sqlalchemy import select
from sqlalchemy.orm import Session

from miaodai.ledger.service import Finding, LoanSubLedger, balances_by_loan
from miaodai.loans.models import Loan, LoanInstallment
from miaodai.loans.states import LoanStatus

# Loans whose money has left: they have installments and a sub-ledger to match.
PAID_OUT = (LoanStatus.ACTIVE, LoanStatus.OVERDUE, LoanStatus.PAID_OFF)


def expected_subledger(loan: Loan, installments: Iterable[LoanInstallment]) -> LoanSubLedger:
    """What the ledger must hold for ``loan``, from its installments and the rules above."""
    if loan.status is LoanStatus.DISBURSING:  # ordered, not yet confirmed: receivable against money in transit
        return LoanSubLedger(loan.id, loan.principal_fen, 0, 0, 0, 0)
    if loan.status not in PAID_OUT:
        return LoanSubLedger(loan.id, 0, 0, 0, 0, 0)
    rows = list(installments)
    return LoanSubLedger(
        loan_id=loan.id,
        principal_fen=sum(r.principal_fen - r.principal_paid_fen for r in rows),
        interest_fen=sum(r.interest_fen - r.interest_paid_fen for r in rows if r.posted_due),
        fee_fen=sum(r.fee_fen - r.fee_paid_fen for r in rows if r.posted_due),
        penalty_fen=sum(r.penalty_fen - r.penalty_paid_fen for r in rows),
        overpayment_fen=loan.overpayment_fen,
    )


def differences(expected: LoanSubLedger, actual: LoanSubLedger) -> dict[str, tuple[int, int]]:
    """{bucket: (expected, in the ledger)} where the loan's installments and its ledger disagree."""
    return {f.name: (getattr(expected, f.name), getattr(actual, f.name)) for f in fields(LoanSubLedger)
            if getattr(expected, f.name) != getattr(actual, f.name)}


def subledger_findings(session: Session) -> list[Finding]:
    """``miaodai ledger check``'s part for loans: LOAN_SUBLEDGER_MISMATCH for every loan whose sub-ledger
    disagrees with its installments."""
    findings = []
    for loan_id, diff in mismatched_loans(session):
        detail = ", ".join(f"{bucket} installments {want} ≠ ledger {got}" for bucket, (want, got) in diff.items())
        findings.append(Finding("LOAN_SUBLEDGER_MISMATCH", f"loan {loan_id}: {detail}", loan_id=loan_id))
    return findings


def mismatched_loans(session: Session, *, chunk: int = 5000) -> Iterator[tuple[int, dict[str, tuple[int, int]]]]:
    """Every loan whose sub-ledger disagrees with its installments, in chunks of ``chunk`` loans."""
    last = 0
    while True:
        loans = list(session.scalars(select(Loan).where(Loan.id > last).order_by(Loan.id).limit(chunk)))
        if not loans:
            return
        last = loans[-1].id
        ids = [loan.id for loan in loans]
        rows: dict[int, list[LoanInstallment]] = {}
        for row in session.scalars(select(LoanInstallment).where(LoanInstallment.loan_id.in_(ids))):
            rows.setdefault(row.loan_id, []).append(row)
        balances = balances_by_loan(session, ids)
        for loan in loans:
            actual = LoanSubLedger.from_balances(loan.id, balances.get(loan.id, {}))
            diff = differences(expected_subledger(loan, rows.get(loan.id, [])), actual)
            if diff:
                yield loan.id, diff
