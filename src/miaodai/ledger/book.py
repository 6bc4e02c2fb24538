"""Reading the book: balances per loan and per account, the trial balance, and the structural checks
behind ``miaodai ledger check``. All set-based SQL (GROUP BY over the legs), never a loop per entry.

Re-exported by :mod:`miaodai.ledger.service`, which is where callers import them from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from miaodai.ledger.accounts import Account
from miaodai.ledger.models import JournalEntry, JournalLeg

_CHART_ORDER = {account: position for position, account in enumerate(Account)}


# --------------------------------------------------------------------------------------------- balances


def loan_balances(session: Session, loan_id: int) -> dict[Account, int]:
    """The loan's sub-ledger: the signed balance (debit positive) of every account its legs touch."""
    return balances_by_loan(session, [loan_id]).get(loan_id, {})


def balances_by_loan(session: Session, loan_ids: Iterable[int] | None = None) -> dict[int, dict[Account, int]]:
    """Signed balances per account of many loans (all loans with legs when ``loan_ids`` is None), in one query."""
    query = (
        select(JournalLeg.loan_id, JournalLeg.account, func.sum(JournalLeg.amount_fen))
        .where(JournalLeg.loan_id.is_not(None))
        .group_by(JournalLeg.loan_id, JournalLeg.account)
    )
    if loan_ids is not None:
        query = query.where(JournalLeg.loan_id.in_(list(loan_ids)))
    result: dict[int, dict[Account, int]] = {}
    for loan_id, account, total in session.execute(query):
        assert loan_id is not None  # the WHERE keeps only legs of a loan
        result.setdefault(loan_id, {})[Account(account)] = int(total)
    return result


@dataclass(frozen=True)
class LoanSubLedger:
    """What a loan's legs say is outstanding, each as a positive amount on the account's normal side."""

    loan_id: int
    principal_fen: int
    interest_fen: int
    fee_fen: int
    penalty_fen: int
    # Owed back to the borrower.
    overpayment_fen: int

    @classmethod
    def from_balances(cls, loan_id: int, balances: dict[Account, int]) -> LoanSubLedger:
        def owed(account: Account) -> int:
            return account.normal_balance(balances.get(account, 0))

        return cls(
            loan_id=loan_id,
            principal_fen=owed(Account.PRINCIPAL_RECEIVABLE),
            interest_fen=owed(Account.INTEREST_RECEIVABLE),
            fee_fen=owed(Account.FEE_RECEIVABLE),
            penalty_fen=owed(Account.PENALTY_RECEIVABLE),
            overpayment_fen=owed(Account.OVERPAYMENT_LIABILITY),
        )


def loan_subledger(session: Session, loan_id: int) -> LoanSubLedger:
    return LoanSubLedger.from_balances(loan_id, loan_balances(session, loan_id))


def loan_entries(session: Session, loan_id: int) -> list[JournalEntry]:
    """Every entry posted for a loan, oldest first (its legs loaded): the trail behind a statement."""
    return list(session.scalars(select(JournalEntry).where(JournalEntry.loan_id == loan_id).order_by(JournalEntry.id)))


def entries_of_loans(session: Session, loan_ids: Iterable[int]) -> list[JournalEntry]:
    """Every entry posted for any of the loans, oldest first, legs loaded: two statements however many loans
    (the staff's customer view shows each loan's statement)."""
    ids = list(loan_ids)
    if not ids:
        return []
    return list(session.scalars(select(JournalEntry).where(JournalEntry.loan_id.in_(ids)).order_by(JournalEntry.id)))


def account_balances(session: Session) -> dict[tuple[Account, str | None], int]:
    """Signed balance of every account (cash per channel) over the whole book."""
    query = select(JournalLeg.account, JournalLeg.channel, func.sum(JournalLeg.amount_fen)).group_by(
        JournalLeg.account, JournalLeg.channel
    )
    return {(Account(account), channel): int(total) for account, channel, total in session.execute(query)}


# -------------------------------------------------------------------------------------- trial balance


@dataclass(frozen=True)
class TrialBalanceRow:
    account: Account
    channel: str | None
    # Totals of the debit legs and of the credit legs (both positive), and the signed balance.
    debit_fen: int
    credit_fen: int

    @property
    def balance_fen(self) -> int:
        return self.debit_fen - self.credit_fen


@dataclass(frozen=True)
class TrialBalance:
    rows: tuple[TrialBalanceRow, ...]
    entries: int
    legs: int

    @property
    def total_debit_fen(self) -> int:
        return sum(row.debit_fen for row in self.rows)

    @property
    def total_credit_fen(self) -> int:
        return sum(row.credit_fen for row in self.rows)

    @property
    def balanced(self) -> bool:
        return self.total_debit_fen == self.total_credit_fen

    def as_json(self) -> dict[str, object]:
        return {
            "balanced": self.balanced,
            "entries": self.entries,
            "legs": self.legs,
            "total_debit_fen": self.total_debit_fen,
            "total_credit_fen": self.total_credit_fen,
            "rows": [
                {
                    "account": row.account.value, "name_zh": row.account.name_zh, "name_en": row.account.name_en,
                    "kind": row.account.kind.value, "channel": row.channel, "debit_fen": row.debit_fen,
                    "credit_fen": row.credit_fen, "balance_fen": row.balance_fen,
                }
                for row in self.rows
            ],
        }


def trial_balance(session: Session) -> TrialBalance:
    """Debit and credit totals per account (cash per channel); in a sound book the two totals are equal."""
    amount = JournalLeg.amount_fen
    query = select(
        JournalLeg.account,
        JournalLeg.channel,
        func.sum(case((amount > 0, amount), else_=0)),
        func.sum(case((amount < 0, -amount), else_=0)),
    ).group_by(JournalLeg.account, JournalLeg.channel)
    rows = [
        TrialBalanceRow(Account(account), channel, int(debits), int(credits))
        for account, channel, debits, credits in session.execute(query)
    ]
    rows.sort(key=lambda row: (_CHART_ORDER[row.account], row.channel or ""))
    entries = session.scalar(select(func.count()).select_from(JournalEntry)) or 0
    legs = session.scalar(select(func.count()).select_from(JournalLeg)) or 0
    return TrialBalance(tuple(rows), entries=entries, legs=legs)


# ------------------------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the book. ``code`` is stable (for scripts); ``message`` is for people."""

    code: str
    message: str
    entry_id: int | None = None
    loan_id: int | None = None


def check_book(session: Session) -> list[Finding]:
    """Structural checks of the whole book; an empty list means it is sound.

    The database already refuses most of these; the checks prove it for the data actually stored
    (after a restore, a manual repair, or a SQLite connection that had foreign keys off).
    """
    findings: list[Finding] = []
    for check in (_unbalanced_entries, _headerless_legs, _unknown_accounts, _broken_reversal_links,
                  _reversals_not_negating):
        findings.extend(check(session))
    return findings


def _unbalanced_entries(session: Session) -> list[Finding]:
    leg_count = func.count(JournalLeg.id)
    total = func.coalesce(func.sum(JournalLeg.amount_fen), 0)
    query = (
        select(JournalEntry.id, JournalEntry.loan_id, leg_count, total)
        .outerjoin(JournalLeg, JournalLeg.entry_id == JournalEntry.id)
        .group_by(JournalEntry.id, JournalEntry.loan_id)
        .having(or_(leg_count < 2, total != 0))
        .order_by(JournalEntry.id)
    )
    findings = []
    for entry_id, loan_id, legs, summed in session.execute(query):
        if legs < 2:
            findings.append(Finding("too_few_legs", f"entry {entry_id} has {legs} leg(s); needs at least 2",
                                    entry_id, loan_id))
        if summed != 0:
            findings.append(Finding("unbalanced", f"entry {entry_id}'s legs sum to {int(summed)} fen, not 0",
                                    entry_id, loan_id))
    return findings


def _headerless_legs(session: Session) -> list[Finding]:
    query = (
        select(JournalLeg.entry_id, func.count())
        .outerjoin(JournalEntry, JournalEntry.id == JournalLeg.entry_id)
        .where(JournalEntry.id.is_(None))
        .group_by(JournalLeg.entry_id)
        .order_by(JournalLeg.entry_id)
    )
    return [
        Finding("legs_without_entry", f"{count} leg(s) point at entry {entry_id}, which does not exist", entry_id)
        for entry_id, count in session.execute(query)
    ]


def _unknown_accounts(session: Session) -> list[Finding]:
    query = (
        select(JournalLeg.account, func.count(), func.min(JournalLeg.entry_id))
        .where(JournalLeg.account.not_in([account.value for account in Account]))
        .group_by(JournalLeg.account)
        .order_by(JournalLeg.account)
    )
    return [
        Finding("unknown_account", f"{count} leg(s) post to {account!r}, not in the chart of accounts "
                f"(first in entry {first})", first)
        for account, count, first in session.execute(query)
    ]


def _broken_reversal_links(session: Session) -> list[Finding]:
    reversal, target = aliased(JournalEntry), aliased(JournalEntry)
    links = (
        select(reversal.id, reversal.reverses_entry_id, target.id, target.reverses_entry_id)
        .outerjoin(target, target.id == reversal.reverses_entry_id)
        .where(reversal.reverses_entry_id.is_not(None))
        .where(or_(target.id.is_(None), target.id == reversal.id, target.reverses_entry_id.is_not(None)))
        .order_by(reversal.id)
    )
    findings = []
    for reversal_id, reverses_id, found_id, target_reverses in session.execute(links):
        if found_id is None:
            message = f"entry {reversal_id} reverses entry {reverses_id}, which does not exist"
        elif found_id == reversal_id:
            message = f"entry {reversal_id} reverses itself"
        else:
            message = f"entry {reversal_id} reverses entry {reverses_id}, itself a reversal of {target_reverses}"
        findings.append(Finding("bad_reversal_link", message, reversal_id))
    twice = (
        select(JournalEntry.reverses_entry_id, func.count())
        .where(JournalEntry.reverses_entry_id.is_not(None))
        .group_by(JournalEntry.reverses_entry_id)
        .having(func.count() > 1)
    )
    findings.extend(
        Finding("reversed_twice", f"entry {entry_id} is reversed by {count} entries", entry_id)
        for entry_id, count in session.execute(twice)
    )
    return findings


def _reversals_not_negating(session: Session) -> list[Finding]:
    """Reversals whose legs are not exactly the original's legs negated (as a multiset).

    Each reversal's legs count +1 and its original's legs, negated, count -1, grouped by what a leg is
    (account, channel, loan, amount): any group not netting to zero is a leg without its mirror.
    """
    reversal = aliased(JournalEntry)
    own = (
        select(reversal.id.label("reversal_id"), JournalLeg.account, JournalLeg.channel, JournalLeg.loan_id,
               JournalLeg.amount_fen.label("amount"), literal(1).label("n"))
        .join(JournalLeg, JournalLeg.entry_id == reversal.id)
        .where(reversal.reverses_entry_id.is_not(None))
    )
    mirrored = (
        select(reversal.id, JournalLeg.account, JournalLeg.channel, JournalLeg.loan_id,
               -JournalLeg.amount_fen, literal(-1))
        .join(JournalLeg, JournalLeg.entry_id == reversal.reverses_entry_id)
        .where(reversal.reverses_entry_id.is_not(None))
    )
    legs = union_all(own, mirrored).subquery()
    unmatched = (
        select(legs.c.reversal_id)
        .group_by(legs.c.reversal_id, legs.c.account, legs.c.channel, legs.c.loan_id, legs.c.amount)
        .having(func.sum(legs.c.n) != 0)
        .subquery()
    )
    query = select(unmatched.c.reversal_id).distinct().order_by(unmatched.c.reversal_id)
    return [
        Finding("reversal_mismatch", f"entry {entry_id}'s legs are not the exact negation of the entry it reverses",
                entry_id)
        for entry_id in session.scalars(query)
    ]
