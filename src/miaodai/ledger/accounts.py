"""The chart of accounts (pure: no database, no web).

Sign convention of the whole ledger: a leg's ``amount_fen`` is signed, **debit positive, credit
negative**, and the legs of a journal entry sum to zero. An account's balance is the plain sum of its
legs, so an asset or expense normally has a positive balance and a liability or income a negative one;
:meth:`Account.normal_balance` turns it round for display ("how much is owed to us / by us").

Cash is one account held per payment channel: a cash leg names its channel ("sandbox", a bank's code);
no other account has channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AccountKind(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    INCOME = "income"
    EXPENSE = "expense"


class Side(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


@dataclass(frozen=True, slots=True)
class AccountInfo:
    kind: AccountKind
    name_zh: str
    name_en: str

    @property
    def normal_side(self) -> Side:
        return Side.DEBIT if self.kind in (AccountKind.ASSET, AccountKind.EXPENSE) else Side.CREDIT


class Account(StrEnum):
    PRINCIPAL_RECEIVABLE = "principal_receivable"
    INTEREST_RECEIVABLE = "interest_receivable"
    FEE_RECEIVABLE = "fee_receivable"
    PENALTY_RECEIVABLE = "penalty_receivable"
    INTEREST_INCOME = "interest_income"
    FEE_INCOME = "fee_income"
    PENALTY_INCOME = "penalty_income"
    # Owed to the borrower between the drawdown and the channel confirming the payout.
    PAYOUT_IN_TRANSIT = "payout_in_transit"
    CASH = "cash"
    # Money received beyond what is due, owed back to the borrower until applied or refunded.
    OVERPAYMENT_LIABILITY = "overpayment_liability"
    WRITE_OFF_EXPENSE = "write_off_expense"
    # Money received that cannot yet be matched to a loan (e.g. an unidentified transfer).
    SUSPENSE = "suspense"

    @property
    def info(self) -> AccountInfo:
        return CHART[self]

    @property
    def kind(self) -> AccountKind:
        return CHART[self].kind

    @property
    def normal_side(self) -> Side:
        return CHART[self].normal_side

    @property
    def name_zh(self) -> str:
        return CHART[self].name_zh

    @property
    def name_en(self) -> str:
        return CHART[self].name_en

    @property
    def has_channels(self) -> bool:
        """Only cash is held per channel."""
        return self is Account.CASH

    def normal_balance(self, balance_fen: int) -> int:
        """A signed ledger balance seen from the account's normal side (positive when it holds its usual kind)."""
        return balance_fen if self.normal_side is Side.DEBIT else -balance_fen


CHART: dict[Account, AccountInfo] = {
    Account.PRINCIPAL_RECEIVABLE: AccountInfo(AccountKind.ASSET, "应收本金", "Principal receivable"),
    Account.INTEREST_RECEIVABLE: AccountInfo(AccountKind.ASSET, "应收利息", "Interest receivable"),
    Account.FEE_RECEIVABLE: AccountInfo(AccountKind.ASSET, "应收费用", "Fee receivable"),
    Account.PENALTY_RECEIVABLE: AccountInfo(AccountKind.ASSET, "应收罚息", "Penalty receivable"),
    Account.INTEREST_INCOME: AccountInfo(AccountKind.INCOME, "利息收入", "Interest income"),
    Account.FEE_INCOME: AccountInfo(AccountKind.INCOME, "费用收入", "Fee income"),
    Account.PENALTY_INCOME: AccountInfo(AccountKind.INCOME, "罚息收入", "Penalty income"),
    Account.PAYOUT_IN_TRANSIT: AccountInfo(AccountKind.LIABILITY, "在途放款", "Payout in transit"),
    Account.CASH: AccountInfo(AccountKind.ASSET, "渠道资金", "Cash at channel"),
    Account.OVERPAYMENT_LIABILITY: AccountInfo(AccountKind.LIABILITY, "借款人溢缴款", "Borrower overpayment"),
    Account.WRITE_OFF_EXPENSE: AccountInfo(AccountKind.EXPENSE, "核销损失", "Write-off expense"),
    Account.SUSPENSE: AccountInfo(AccountKind.LIABILITY, "待查暂收款", "Suspense"),
}
