"""A loan's statement (对账单): every journal entry of the loan, oldest first, with running balances.

Built from the ledger alone, so each line is traceable to its journal entry (``entry_id``) and the
closing balances are, by construction, the loan's sub-ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from miaodai.ledger.accounts import Account
from miaodai.ledger.models import JournalEntry
from miaodai.ledger.service import loan_entries

# The statement's columns: what the borrower owes per part, and what we hold for them.
_BALANCES = {
    Account.PRINCIPAL_RECEIVABLE: "principal_fen",
    Account.INTEREST_RECEIVABLE: "interest_fen",
    Account.FEE_RECEIVABLE: "fee_fen",
    Account.PENALTY_RECEIVABLE: "penalty_fen",
    Account.OVERPAYMENT_LIABILITY: "overpayment_fen",
}
KIND_NAMES = {
    "payout_ordered": ("放款申请", "payout ordered"),
    "payout_paid": ("放款成功", "paid out"),
    "reversal": ("冲正", "reversal"),
    "repayment": ("还款", "repayment"),
    "installment_due": ("当期到期", "installment due"),
    "penalty": ("罚息及滞纳金", "penalty interest and late fee"),
    "held_applied": ("溢缴款冲抵", "held overpayment applied"),
    "write_off": ("核销", "write-off"),
    "penalty_waiver": ("罚息及滞纳金减免", "penalty and late fee waived"),
}


@dataclass(frozen=True)
class Balances:
    principal_fen: int = 0
    interest_fen: int = 0
    fee_fen: int = 0
    penalty_fen: int = 0
    overpayment_fen: int = 0


@dataclass(frozen=True)
class StatementLine:
    entry_id: int
    business_date: date
    posted_at: datetime
    kind: str
    name_zh: str
    name_en: str
    memo: str
    # Money that moved through a channel in this entry: + received from the borrower, − paid to them.
    cash_fen: int
    # The change of each balance in this entry, and the balances after it (owed: positive).
    change: Balances
    balance: Balances

    def as_dict(self) -> dict[str, object]:
        body = asdict(self)
        body["business_date"] = self.business_date.isoformat()
        body["posted_at"] = self.posted_at.isoformat()
        return body


def statement(session: Session, loan_id: int) -> list[StatementLine]:
    return statement_of(loan_entries(session, loan_id), loan_id)


def statement_of(entries: Iterable[JournalEntry], loan_id: int) -> list[StatementLine]:
    """The statement of ``loan_id`` from its journal entries, oldest first (entries of other loans are skipped)."""
    running = dict.fromkeys(_BALANCES.values(), 0)
    lines: list[StatementLine] = []
    for entry in entries:
        if entry.loan_id != loan_id:
            continue
        change = dict.fromkeys(_BALANCES.values(), 0)
        cash = 0
        for leg in entry.legs:
            if leg.loan_id != loan_id:
                continue
            account = Account(leg.account)
            if account is Account.CASH:
                cash += leg.amount_fen
            elif account in _BALANCES:
                change[_BALANCES[account]] += account.normal_balance(leg.amount_fen)
        for name, fen in change.items():
            running[name] += fen
        kind = entry.kind
        zh, en = KIND_NAMES.get(kind, (kind, kind))
        lines.append(StatementLine(
            entry_id=entry.id, business_date=entry.business_date, posted_at=entry.posted_at, kind=kind,
            name_zh=zh, name_en=en, memo=entry.memo, cash_fen=cash, change=Balances(**change),
            balance=Balances(**running),
        ))
    return lines
