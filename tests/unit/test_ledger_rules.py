"""The rules of a journal entry, checked in code: the chart of accounts, signs, balance, channels."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from miaodai.core.errors import DomainError
from miaodai.ledger.accounts import CHART, Account, AccountKind, Side
from miaodai.ledger.errors import LedgerErrors
from miaodai.ledger.rules import MAX_LEG_FEN, Leg, check_header, check_legs, credit, debit, leg_signature, negated

CHANNEL = "sandbox"


def code_of(legs, **kwargs) -> str:
    with pytest.raises(DomainError) as raised:
        check_legs(legs, **kwargs)
    return raised.value.code


def test_every_account_has_a_kind_a_normal_side_and_names_in_both_languages():
    assert set(CHART) == set(Account)
    for account in Account:
        assert re.search(r"[\u4e00-\u9fff]", account.name_zh) and account.name_en
    assert Account.PRINCIPAL_RECEIVABLE.name_zh == "应收本金"
    assert Account.PRINCIPAL_RECEIVABLE.normal_side is Side.DEBIT
    assert Account.INTEREST_INCOME.kind is AccountKind.INCOME and Account.INTEREST_INCOME.normal_side is Side.CREDIT
    assert Account.OVERPAYMENT_LIABILITY.normal_side is Side.CREDIT
    assert Account.WRITE_OFF_EXPENSE.normal_side is Side.DEBIT
    assert [a for a in Account if a.has_channels] == [Account.CASH]


def test_normal_balance_reads_a_credit_balance_as_owed():
    assert Account.PRINCIPAL_RECEIVABLE.normal_balance(100_000) == 100_000
    assert Account.OVERPAYMENT_LIABILITY.normal_balance(-500) == 500


def test_a_drawdown_of_ten_thousand_yuan_balances():
    legs = [debit(Account.PRINCIPAL_RECEIVABLE, 1_000_000), credit(Account.PAYOUT_IN_TRANSIT, 1_000_000)]
    checked = check_legs(legs, loan_id=7)
    assert [leg.amount_fen for leg in checked] == [1_000_000, -1_000_000]
    assert all(leg.loan_id == 7 for leg in checked)  # legs take the entry's loan


def test_a_leg_keeps_its_own_loan_id():
    legs = [Leg(Account.OVERPAYMENT_LIABILITY, 300, loan_id=1), Leg(Account.OVERPAYMENT_LIABILITY, -300, loan_id=2)]
    assert [leg.loan_id for leg in check_legs(legs, loan_id=1)] == [1, 2]


def test_accounts_may_be_given_by_their_names():
    checked = check_legs([Leg("fee_receivable", 10), Leg("fee_income", -10)])  # type: ignore[arg-type]
    assert checked[0].account is Account.FEE_RECEIVABLE


def test_one_leg_is_not_an_entry():
    assert code_of([]) == "LEDGER_TOO_FEW_LEGS"
    assert code_of([Leg(Account.SUSPENSE, 1)]) == "LEDGER_TOO_FEW_LEGS"


def test_debits_must_equal_credits():
    with pytest.raises(DomainError) as raised:
        check_legs([Leg(Account.INTEREST_RECEIVABLE, 4500), Leg(Account.INTEREST_INCOME, -4499)])
    assert raised.value.spec is LedgerErrors.UNBALANCED
    assert raised.value.params == {"total_fen": 1}
    assert "1 fen" in raised.value.message_en and "1 分" in raised.value.message_zh


@pytest.mark.parametrize("amount", [0, True, False, 1.0, "100", None, MAX_LEG_FEN + 1, -(MAX_LEG_FEN + 1)])
def test_amounts_are_non_zero_whole_fen(amount):
    legs = [Leg(Account.FEE_RECEIVABLE, amount), Leg(Account.FEE_INCOME, -1)]
    assert code_of(legs) == "LEDGER_BAD_AMOUNT"


def test_unknown_accounts_are_refused():
    legs = [Leg("loans_to_friends", 1), Leg(Account.SUSPENSE, -1)]  # type: ignore[arg-type]
    assert code_of(legs) == "LEDGER_UNKNOWN_ACCOUNT"


def test_cash_names_its_channel_and_nothing_else_does():
    assert code_of([Leg(Account.CASH, 100), Leg(Account.SUSPENSE, -100)]) == "LEDGER_CHANNEL_REQUIRED"
    assert code_of([Leg(Account.CASH, 100, channel=" "), Leg(Account.SUSPENSE, -100)]) == "LEDGER_CHANNEL_REQUIRED"
    assert code_of([Leg(Account.CASH, 100, channel="x" * 33), Leg(Account.SUSPENSE, -100)]) == (
        "LEDGER_CHANNEL_REQUIRED"
    )
    wrong = [Leg(Account.CASH, 100, channel=CHANNEL), Leg(Account.SUSPENSE, -100, channel=CHANNEL)]
    assert code_of(wrong) == "LEDGER_CHANNEL_NOT_ALLOWED"
    check_legs([Leg(Account.CASH, 100, channel=CHANNEL), Leg(Account.SUSPENSE, -100)])


@pytest.mark.parametrize(("kind", "key"), [("", "k"), ("x" * 33, "k"), ("drawdown", ""), ("drawdown", "k" * 129)])
def test_entry_header_fields_have_bounded_lengths(kind, key):
    with pytest.raises(DomainError) as raised:
        check_header(kind=kind, idempotency_key=key)
    assert raised.value.code == "LEDGER_BAD_POSTING"


def test_a_reversal_negates_every_leg_and_the_signature_ignores_order():
    legs = check_legs([Leg(Account.CASH, 500, channel=CHANNEL), Leg(Account.PRINCIPAL_RECEIVABLE, -500)], loan_id=3)
    back = negated(legs)
    assert [leg.amount_fen for leg in back] == [-500, 500]
    assert leg_signature(legs) == leg_signature(list(reversed(legs)))
    assert leg_signature(legs) != leg_signature(back)


def test_every_ledger_error_is_bilingual_with_matching_placeholders():
    def fields(text: str | None) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text or "") if name}

    specs = [value for value in vars(LedgerErrors).values() if hasattr(value, "code")]
    assert specs and all(spec.code.startswith("LEDGER_") for spec in specs)
    for spec in specs:
        assert re.search(r"[\u4e00-\u9fff]", spec.message_zh), spec.code
        assert fields(spec.message_zh) == fields(spec.message_en), spec.code
        assert fields(spec.action_zh) == fields(spec.action_en), spec.code


# Random entries: some amounts on random accounts, closed by legs that bring the sum to zero.
accounts = st.sampled_from([a for a in Account if not a.has_channels])
amounts = st.integers(min_value=-10**12, max_value=10**12).filter(lambda n: n != 0)


def _leg(account: Account, amount: int) -> Leg:
    return Leg(account, amount, channel=CHANNEL if account.has_channels else None)


@st.composite
def balanced_legs(draw: st.DrawFn) -> list[Leg]:
    legs = [_leg(draw(st.sampled_from(list(Account))), draw(amounts)) for _ in range(draw(st.integers(1, 8)))]
    total = sum(leg.amount_fen for leg in legs)
    if total != 0:
        legs.append(_leg(draw(accounts), -total))
    else:
        # Already balanced (e.g. +n and -n): keep it at two legs or more.
        legs.extend([_leg(draw(accounts), 1), _leg(draw(accounts), -1)])
    return draw(st.permutations(legs))


@given(balanced_legs())
def test_any_balanced_set_of_legs_is_accepted(legs):
    checked = check_legs(legs, loan_id=1)
    assert sum(leg.amount_fen for leg in checked) == 0 and len(checked) >= 2


@given(balanced_legs(), st.integers(min_value=-10**6, max_value=10**6).filter(lambda n: n != 0), st.data())
def test_any_unbalanced_set_of_legs_is_refused(legs, error, data):
    # Shift one leg by a non-zero amount (unless that makes it zero, then add a stray leg instead).
    index = data.draw(st.integers(0, len(legs) - 1))
    leg = legs[index]
    if leg.amount_fen + error != 0:
        legs = [*legs[:index], _leg(leg.account, leg.amount_fen + error), *legs[index + 1:]]
    else:
        legs = [*legs, _leg(Account.SUSPENSE, error)]
    with pytest.raises(DomainError) as raised:
        check_legs(legs)
    assert raised.value.code == "LEDGER_UNBALANCED"
    assert raised.value.params["total_fen"] == error
