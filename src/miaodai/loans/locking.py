"""The one locking protocol for a loan's money and state: the end-of-day batch and every online posting.

**Rule.** Whoever changes a loan's money or state (its installments, its journal entries, its held
money, its status, its days past due) locks the loan's row first, in the transaction that makes the
change, and reads what it will change only after the lock is granted.

* Online postings (repayments due, payoff and prepayment; collections settled from a query or a
  callback; auto-debit claims; payouts paid or voided; reversals; write-offs; refunds of held money;
  the borrower's own requests through ``loan_service.owned_loan``) lock one loan with :func:`lock_loan`
  (or :func:`for_loan_update` on a statement that reads more besides).
* The end-of-day batch locks every loan of a chunk with :func:`lock_loan_range`, ids in ascending order,
  as the first statement of each chunk transaction of the steps that change money or state (penalty,
  accrue, fall_due, apply_held, status); its SELECTs and UPDATEs run only afterwards.

**Why it is enough.** On PostgreSQL (READ COMMITTED) every statement reads what was committed when the
statement began. A reader that holds the loan's lock before its first read sees every change of the
previous holder, and nobody else changes that loan until it commits: the batch's chunk and an online
posting of one of its loans run one after the other, never interleaved. Without it the batch could
post an installment's interest from a read taken before a repayment committed (income counted twice),
or add a penalty to an installment a repayment had just paid off (owed forever, never reminded).

**No deadlocks.** Online transactions lock at most one loan (after, at most, the payment order being
settled); the batch locks loan rows in id order and locks no payment order. SQLite's
``BEGIN IMMEDIATE`` already serialises writers, so there the lock clauses are not rendered and
:func:`lock_loan_range` does nothing.

**FOR NO KEY UPDATE**, not FOR UPDATE: it conflicts with every other update lock on the row, but not
with the key-share lock an INSERT takes on the loan it references (a reminder, a journal
leg, a payment order), so those are never blocked by a loan being changed.

Documented for operators in docs/operations.md ("Locking: the batch and online postings").
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import Select, bindparam, select, text
from sqlalchemy.orm import Session

from miaodai.core.db import has_row_locks
from miaodai.loans.models import Loan

S = TypeVar("S", bound=Select)

_LOCK_RANGE = text(
    "WITH locked AS (SELECT id FROM loans WHERE id BETWEEN :low AND :high ORDER BY id FOR NO KEY UPDATE) "
    "SELECT COUNT(*) FROM locked"
)


def for_loan_update(statement: S) -> S:
    """``statement`` (which selects a :class:`Loan`) taking the loan's lock: the protocol's one lock clause."""
    return statement.with_for_update(key_share=True, of=Loan).execution_options(populate_existing=True)


_LOCK_ONE = for_loan_update(select(Loan).where(Loan.id == bindparam("loan_id")))


def lock_loan(session: Session, loan_id: int) -> Loan | None:
    """Lock one loan and load it as it is once the lock is granted; None if there is no such loan."""
    return session.execute(_LOCK_ONE, {"loan_id": loan_id}).scalar_one_or_none()


def lock_loan_range(session: Session, low: int, high: int) -> int:
    """Lock every loan with ``low <= id <= high`` in id order (the batch's chunk), whatever its status: a
    loan leaving or joining the book during the chunk is changed by someone who holds its lock too.
    Returns how many rows were locked (0 on SQLite, whose transactions already run one at a time)."""
    if not has_row_locks(session):
        return 0
    return int(session.execute(_LOCK_RANGE, {"low": low, "high": high}).scalar_one())
