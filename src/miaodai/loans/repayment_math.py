"""Repayment math: allocating money, overdue charges, payoff and prepayment. Pure: no I/O, no clock, no database.

The loan engine keeps each loan's installments in a table and calls these functions inside its
service; the end-of-day batch is the SQL twin of :func:`overdue_charges`. Every amount is integer
fen, every rate a Decimal, and every rounding goes through :func:`miaodai.core.money.round_fen`
(half-up) or the schedule helpers built on it (:func:`daily_interest`, :func:`monthly_interest`,
:func:`equal_installment_payment`).

Allocation (:func:`allocate`)
    Money goes to installments that are due (due date ≤ the payment date), **oldest installment
    first, then bucket by bucket within it** in the product's order (default penalty → fee →
    interest → principal): installment 1 is settled completely before a fen reaches installment 2.
    Nothing is ever allocated beyond what a bucket still owes. What is left over (``unapplied_fen``)
    is not pushed onto installments that are not yet due: the caller holds it as an overpayment
    liability, to apply when the next installment falls due, to use for a prepayment, or to refund.

Overdue charges (:func:`overdue_charges`), for the close of one business date D, with
``n = D − due date`` days overdue and ``P`` the installment's unpaid principal:
    * Penalty base: the overdue **principal** only (逾期罚息 on 逾期本金, PBoC Yinfa [2003] 251). Unpaid
      interest is not compounded (no 复利) and fees bear no penalty: the borrower-friendly reading.
    * Grace: nothing at all is charged while ``n ≤ grace_days`` — a borrower who pays within grace pays
      no penalty and no late fee. At the close of day ``n = grace_days + 1`` penalty interest is charged
      for all ``n`` days since the due date (it counts from the due date, grace included) plus the late
      fee, once; from then on one day of penalty interest per date.
    * One day of penalty interest = ``daily_interest(P, penalty rate, 1)``; the catch-up on the first day
      after grace is ``daily_interest(P, penalty rate, n)`` (one rounding over the n days).
    * Cost cap: the installment's cumulative overdue charges (penalty interest and late fee, i.e. its
      ``penalty_fen``) never exceed ``daily_interest(P, cost_cap, n)`` = round(P × cap × n / basis).
      What the cap cuts is waived, not deferred: the late fee is cut first, then penalty interest.
      The cap is recomputed on today's P, so after a partial principal payment it can leave no room
      for a while (charges pause; nothing already charged is reversed).
    * No principal unpaid (only interest or fees left) → no penalty, no late fee (the cap is 0).
    The function returns the increment for date D only; the caller charges each date exactly once (the
    batch's ``penalty_through`` guard) and passes the installment's charges so far as ``already_charged_fen``.

Interest accrued to a date (:func:`accrued_interest`)
    Daily accrual (docs/architecture.md §3) on the principal not yet due, from the date interest was last settled
    through — the last due date on or before the date, the loan start, or a prepayment since — to the
    date: ``daily_interest(B, rate, days)``, never more than the unpaid interest of the next installment,
    so paying early never costs more interest than paying on the due date.

Early full repayment (:func:`payoff_amount`)
    Everything due and unpaid (penalty, fee, interest, principal of installments due on or before the
    date) + the principal not yet due + interest accrued to the date on it. Future interest and future
    fees are not charged. An early-repayment fee, zero by default, is ``round(principal not yet due × rate)``.

Early partial repayment (:func:`reschedule_after_prepayment`)
    The borrower first settles what is due, then pays the interest accrued to the prepayment date
    (:func:`accrued_interest`) and a chunk of principal; the principal left, ``B'``, is re-amortised
    over the remaining periods, which keep their period numbers and the loan's monthly anchor day
    (``add_months(start date, period)``):
    * First new installment: interest = daily accrual on ``B'`` from the prepayment date to its due
      date, never more than the old installment's interest minus the accrued interest just paid (so the
      period never costs more than its schedule said). Later installments: ``monthly_interest(balance)``.
    * The old level: for equal installment the old payment ``A`` (principal + interest of the next
      installment, which every installment but the last pays exactly; ``B × (1 + r)`` when one is left);
      for equal principal the old per-period principal ``L`` (the next installment's principal).
    * ``smaller_installment`` keeps the number of remaining periods ``m``: equal installment → level
      payment ``min(equal_installment_payment(B', rate, m), A)``; equal principal → level principal
      ``min(round(B' / m), L)`` (the mins only matter when a fen of rounding would otherwise raise it).
    * ``shorter_term`` keeps (about) the payment and drops periods: equal installment → the fewest ``n ≤ m``
      with ``equal_installment_payment(B', rate, n) ≤ A``, paid at that level; equal principal → ``L`` a
      period, ``n = min(m, ceil(B' / L))`` periods.
    * Interest-first loans only reduce principal (all of it still due with the last period), in either
      mode; a bullet loan keeps its due date and its principal drops, interest accruing daily.
    * The last new installment takes the balance, so new principal sums exactly to ``B'``; fees stay as
      they were per period (a dropped period drops its fee). Prepaying all of ``B`` is a payoff: ``()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date
from decimal import Decimal, localcontext
from enum import StrEnum
from typing import Any

from miaodai.core.money import round_fen
from miaodai.loans.products import DEFAULT_ALLOCATION, Bucket
from miaodai.loans.schedule import (
    DayCount,
    Installment,
    LoanTerms,
    RepaymentMethod,
    add_months,
    daily_interest,
    equal_installment_payment,
    monthly_interest,
)

# Enough digits that rate products are exact far beyond the fen (as in schedule.py).
_PRECISION = 50


def _fen(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be integer fen, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative")


def _rate(name: str, value: Any) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite rate ≥ 0")


# -- installments and allocation --------------------------------------------------------------------

_CHARGED = {
    Bucket.PENALTY: "penalty_fen",
    Bucket.FEE: "fee_fen",
    Bucket.INTEREST: "interest_fen",
    Bucket.PRINCIPAL: "principal_fen",
}
_PAID = {
    Bucket.PENALTY: "penalty_paid_fen",
    Bucket.FEE: "fee_paid_fen",
    Bucket.INTEREST: "interest_paid_fen",
    Bucket.PRINCIPAL: "principal_paid_fen",
}


@dataclass(frozen=True, slots=True)
class InstallmentState:
    """One installment: what it charges per bucket and what has been paid against each."""

    period: int
    due_date: date
    principal_fen: int
    interest_fen: int
    fee_fen: int
    penalty_fen: int = 0  # penalty interest and late fees charged so far
    principal_paid_fen: int = 0
    interest_paid_fen: int = 0
    fee_paid_fen: int = 0
    penalty_paid_fen: int = 0

    def __post_init__(self) -> None:
        for bucket in Bucket:
            charged, paid = getattr(self, _CHARGED[bucket]), getattr(self, _PAID[bucket])
            _fen(_CHARGED[bucket], charged)
            _fen(_PAID[bucket], paid)
            if paid > charged:
                raise ValueError(f"period {self.period}: {bucket.value} paid {paid} exceeds {charged} charged")

    @classmethod
    def of(cls, row: Any) -> InstallmentState:
        """The state of anything with the same attribute names (a ``LoanInstallment`` row, say)."""
        return cls(*(getattr(row, name) for name in _STATE_FIELDS))

    @classmethod
    def from_installment(cls, line: Installment) -> InstallmentState:
        """A fresh schedule line: nothing paid, no penalty."""
        return cls(line.period, line.due_date, line.principal_fen, line.interest_fen, line.fee_fen)

    def charged(self, bucket: Bucket) -> int:
        return int(getattr(self, _CHARGED[bucket]))

    def paid(self, bucket: Bucket) -> int:
        return int(getattr(self, _PAID[bucket]))

    def outstanding(self, bucket: Bucket) -> int:
        return self.charged(bucket) - self.paid(bucket)

    @property
    def total_outstanding(self) -> int:
        return sum(self.outstanding(bucket) for bucket in Bucket)

    @property
    def is_settled(self) -> bool:
        return self.total_outstanding == 0


# The fields in order, read once: ``dataclasses.fields`` for every row adds up on the repayment path.
_STATE_FIELDS = tuple(f.name for f in fields(InstallmentState))


@dataclass(frozen=True, slots=True)
class AllocationLine:
    """What one payment puts on one installment, per bucket."""

    period: int
    penalty_fen: int = 0
    fee_fen: int = 0
    interest_fen: int = 0
    principal_fen: int = 0

    def amount(self, bucket: Bucket) -> int:
        return int(getattr(self, _CHARGED[bucket]))

    @property
    def total_fen(self) -> int:
        return self.penalty_fen + self.fee_fen + self.interest_fen + self.principal_fen

    def as_dict(self) -> dict[str, int]:
        return {"period": self.period, "penalty_fen": self.penalty_fen, "fee_fen": self.fee_fen,
                "interest_fen": self.interest_fen, "principal_fen": self.principal_fen}


@dataclass(frozen=True, slots=True)
class Allocation:
    """Lines oldest installment first (only installments that received money) and what was left over."""

    amount_fen: int
    lines: tuple[AllocationLine, ...]
    unapplied_fen: int

    @property
    def applied_fen(self) -> int:
        return sum(line.total_fen for line in self.lines)

    def bucket_total(self, bucket: Bucket) -> int:
        return sum(line.amount(bucket) for line in self.lines)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape a repayment record can store."""
        return {"amount_fen": self.amount_fen, "unapplied_fen": self.unapplied_fen,
                "lines": [line.as_dict() for line in self.lines]}


def _check_order(order: Sequence[Bucket]) -> tuple[Bucket, ...]:
    buckets = tuple(Bucket(b) for b in order)
    if sorted(buckets) != sorted(Bucket):
        raise ValueError("an allocation order names penalty, fee, interest and principal once each")
    return buckets


def _oldest_first(installments: Iterable[InstallmentState]) -> list[InstallmentState]:
    return sorted(installments, key=lambda i: (i.due_date, i.period))


def allocate(
    installments: Iterable[InstallmentState],
    amount_fen: int,
    *,
    order: Sequence[Bucket] = DEFAULT_ALLOCATION,
    as_of: date,
) -> Allocation:
    """Spread ``amount_fen`` over the installments due on or before ``as_of``: oldest installment first,
    and within an installment bucket by bucket in ``order``, never beyond what a bucket owes.
    The remainder is ``unapplied_fen`` (an overpayment for the caller to hold)."""
    _fen("amount_fen", amount_fen)
    buckets = _check_order(order)
    left = amount_fen
    lines: list[AllocationLine] = []
    for inst in _oldest_first(installments):
        if left == 0:
            break
        if inst.due_date > as_of:
            continue
        parts: dict[str, int] = {}
        for bucket in buckets:
            take = min(left, inst.outstanding(bucket))
            parts[_CHARGED[bucket]] = take
            left -= take
        line = AllocationLine(inst.period, **parts)
        if line.total_fen:
            lines.append(line)
    return Allocation(amount_fen, tuple(lines), left)


def apply(installments: Iterable[InstallmentState], allocation: Allocation) -> tuple[InstallmentState, ...]:
    """The installments (in the order given) after ``allocation`` is paid against them."""
    by_period = {line.period: line for line in allocation.lines}
    if len(by_period) != len(allocation.lines):
        raise ValueError("an allocation names each period once")
    result: list[InstallmentState] = []
    for inst in installments:
        line = by_period.pop(inst.period, None)
        if line is None:
            result.append(inst)
            continue
        paid = {bucket: inst.paid(bucket) + line.amount(bucket) for bucket in Bucket}
        result.append(replace(  # __post_init__ refuses paying beyond what is charged
            inst, penalty_paid_fen=paid[Bucket.PENALTY], fee_paid_fen=paid[Bucket.FEE],
            interest_paid_fen=paid[Bucket.INTEREST], principal_paid_fen=paid[Bucket.PRINCIPAL]))
    if by_period:
        raise ValueError(f"allocation names periods not among the installments: {sorted(by_period)}")
    return tuple(result)


# -- overdue charges -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverdueCharge:
    """One date's overdue charges for one installment, after the cost cap."""

    penalty_interest_fen: int
    late_fee_fen: int
    waived_fen: int  # what the cap cut from that date's charges

    @property
    def total_fen(self) -> int:
        return self.penalty_interest_fen + self.late_fee_fen


def overdue_charge_parts(
    inst: InstallmentState,
    *,
    as_of: date,
    penalty_annual_rate: Decimal,
    late_fee_fen: int,
    grace_days: int,
    cost_cap: Decimal,
    day_count: DayCount,
    already_charged_fen: int,
) -> OverdueCharge:
    """:func:`overdue_charges` with the penalty interest and the late fee apart (for the ledger)."""
    _rate("penalty_annual_rate", penalty_annual_rate)
    _rate("cost_cap", cost_cap)
    _fen("late_fee_fen", late_fee_fen)
    if not isinstance(grace_days, int) or grace_days < 0:
        raise ValueError("grace_days must be a whole number of days ≥ 0")
    _fen("already_charged_fen", already_charged_fen)
    days_overdue = (as_of - inst.due_date).days
    principal = inst.outstanding(Bucket.PRINCIPAL)
    if days_overdue <= grace_days or principal == 0:
        return OverdueCharge(0, 0, 0)
    first = days_overdue == grace_days + 1  # the first date past grace: catch up from the due date, late fee once
    penalty = daily_interest(principal, penalty_annual_rate, days_overdue if first else 1, day_count)
    fee = late_fee_fen if first else 0
    room = max(0, daily_interest(principal, cost_cap, days_overdue, day_count) - already_charged_fen)
    kept_fee = min(fee, max(0, room - penalty))  # the cap cuts the late fee first
    kept_penalty = min(penalty, room)
    return OverdueCharge(kept_penalty, kept_fee, penalty + fee - kept_penalty - kept_fee)


def overdue_charges(
    inst: InstallmentState,
    *,
    as_of: date,
    penalty_annual_rate: Decimal,
    late_fee_fen: int,
    grace_days: int,
    cost_cap: Decimal,
    day_count: DayCount,
    already_charged_fen: int,
) -> int:
    """Penalty interest and late fee to add to ``inst`` at the close of ``as_of`` (see the module rules)."""
    return overdue_charge_parts(
        inst, as_of=as_of, penalty_annual_rate=penalty_annual_rate, late_fee_fen=late_fee_fen,
        grace_days=grace_days, cost_cap=cost_cap, day_count=day_count, already_charged_fen=already_charged_fen,
    ).total_fen


# -- interest to date and early full repayment --------------------------------------------------------


def _not_yet_due(installments: Iterable[InstallmentState], as_of: date) -> list[InstallmentState]:
    return [i for i in _oldest_first(installments) if i.due_date > as_of]


def accrued_interest(
    installments: Iterable[InstallmentState],
    *,
    as_of: date,
    annual_rate: Decimal,
    day_count: DayCount,
    last_due_or_start: date,
) -> int:
    """Interest accrued from ``last_due_or_start`` to ``as_of`` on the principal not yet due, by daily
    accrual, at most the unpaid interest of the next installment."""
    _rate("annual_rate", annual_rate)
    if last_due_or_start > as_of:
        raise ValueError("last_due_or_start is after as_of")
    future = _not_yet_due(installments, as_of)
    if not future:
        return 0
    balance = sum(i.outstanding(Bucket.PRINCIPAL) for i in future)
    accrued = daily_interest(balance, annual_rate, (as_of - last_due_or_start).days, day_count)
    return min(accrued, future[0].outstanding(Bucket.INTEREST))


@dataclass(frozen=True, slots=True)
class Payoff:
    """What repays a loan in full on a date, by part."""

    due_penalty_fen: int
    due_fee_fen: int
    due_interest_fen: int
    due_principal_fen: int
    remaining_principal_fen: int  # principal not yet due
    accrued_interest_fen: int  # on the remaining principal, to the date
    early_repayment_fee_fen: int

    @property
    def principal_fen(self) -> int:
        return self.due_principal_fen + self.remaining_principal_fen

    @property
    def total_fen(self) -> int:
        return (self.due_penalty_fen + self.due_fee_fen + self.due_interest_fen + self.principal_fen
                + self.accrued_interest_fen + self.early_repayment_fee_fen)


def payoff_amount(
    installments: Sequence[InstallmentState],
    *,
    as_of: date,
    annual_rate: Decimal,
    day_count: DayCount,
    last_due_or_start: date,
    outstanding_principal_fen: int,
    early_repayment_fee_rate: Decimal = Decimal(0),
) -> Payoff:
    """Early full repayment on ``as_of``: all that is due, the principal not yet due, interest accrued to
    the date on it, and the early-repayment fee (none by default). ``last_due_or_start`` is the date interest
    is settled through (the last due date, the loan start, or a prepayment since); ``outstanding_principal_fen``
    is the loan's unpaid principal (due and not yet due) and must agree with the installments."""
    _rate("early_repayment_fee_rate", early_repayment_fee_rate)
    _fen("outstanding_principal_fen", outstanding_principal_fen)
    if sum(i.outstanding(Bucket.PRINCIPAL) for i in installments) != outstanding_principal_fen:
        raise ValueError("outstanding_principal_fen disagrees with the installments")
    due = [i for i in installments if i.due_date <= as_of]
    remaining = outstanding_principal_fen - sum(i.outstanding(Bucket.PRINCIPAL) for i in due)
    accrued = accrued_interest(installments, as_of=as_of, annual_rate=annual_rate, day_count=day_count,
                               last_due_or_start=last_due_or_start)
    with localcontext(prec=_PRECISION):
        fee = round_fen(Decimal(remaining) * early_repayment_fee_rate)
    return Payoff(
        due_penalty_fen=sum(i.outstanding(Bucket.PENALTY) for i in due),
        due_fee_fen=sum(i.outstanding(Bucket.FEE) for i in due),
        due_interest_fen=sum(i.outstanding(Bucket.INTEREST) for i in due),
        due_principal_fen=sum(i.outstanding(Bucket.PRINCIPAL) for i in due),
        remaining_principal_fen=remaining,
        accrued_interest_fen=accrued,
        early_repayment_fee_fen=fee,
    )


# -- early partial repayment -----------------------------------------------------------------------


class PrepaymentMode(StrEnum):
    SHORTER_TERM = "shorter_term"  # 缩短期限
    SMALLER_INSTALLMENT = "smaller_installment"  # 减少月供


def last_due_or_start(terms: LoanTerms, installments: Iterable[InstallmentState], as_of: date) -> date:
    """The latest due date on or before ``as_of``, or the loan's start date when none has passed."""
    passed = [i.due_date for i in installments if i.due_date <= as_of]
    return max(passed, default=terms.start_date)


def reschedule_after_prepayment(
    terms: LoanTerms,
    installments: Sequence[InstallmentState],
    *,
    prepaid_principal_fen: int,
    as_of: date,
    mode: PrepaymentMode | str,
    interest_from: date | None = None,
) -> tuple[Installment, ...]:
    """The new installments replacing those not yet due after ``prepaid_principal_fen`` of principal is
    prepaid on ``as_of`` (with the interest accrued to that date, :func:`accrued_interest`, paid alongside).

    ``terms`` are the loan's original terms (method, rate, day count, start date); ``installments`` its
    current ones. Everything due on or before ``as_of`` must already be settled. ``interest_from`` is the
    date interest is settled through: by default the last due date or the start (:func:`last_due_or_start`);
    after an earlier prepayment in the same period, that prepayment's date.
    """
    mode = PrepaymentMode(mode)
    _fen("prepaid_principal_fen", prepaid_principal_fen)
    if as_of < terms.start_date:
        raise ValueError("as_of is before the loan started")
    if any(i.due_date <= as_of and not i.is_settled for i in installments):
        raise ValueError("settle what is due before prepaying")
    future = _not_yet_due(installments, as_of)
    if not future:
        raise ValueError("no installment is left to prepay")
    balance = sum(i.outstanding(Bucket.PRINCIPAL) for i in future)
    if not 0 < prepaid_principal_fen <= balance:
        raise ValueError(f"prepaid principal must be 1..{balance} fen")
    new_balance = balance - prepaid_principal_fen
    if new_balance == 0:
        return ()

    rate, method, m = terms.annual_rate, terms.method, len(future)
    accrued = accrued_interest(installments, as_of=as_of, annual_rate=rate, day_count=terms.day_count,
                               last_due_or_start=interest_from or last_due_or_start(terms, installments, as_of))
    first = future[0]
    first_interest_cap = first.outstanding(Bucket.INTEREST) - accrued

    def first_interest(opening: int) -> int:
        days = (first.due_date - as_of).days
        return min(daily_interest(opening, rate, days, terms.day_count), first_interest_cap)

    if method is RepaymentMethod.BULLET:
        interest = first_interest(new_balance)
        return (Installment(first.period, first.due_date, new_balance, interest, first.fee_fen, 0),)

    periods = m
    payment = level_principal = 0
    if method is RepaymentMethod.EQUAL_INSTALLMENT:
        # The level payment the balance is being repaid at: any installment but the last pays exactly it.
        old_payment = first.principal_fen + first.interest_fen if m > 1 else equal_installment_payment(balance, rate, 1)
        if mode is PrepaymentMode.SHORTER_TERM:
            periods = next(
                (n for n in range(1, m + 1) if equal_installment_payment(new_balance, rate, n) <= old_payment), m
            )
        payment = min(equal_installment_payment(new_balance, rate, periods), old_payment)
    elif method is RepaymentMethod.EQUAL_PRINCIPAL:
        old_principal = first.principal_fen  # the level principal (the last period only absorbs rounding)
        if mode is PrepaymentMode.SHORTER_TERM and old_principal > 0:
            level_principal = old_principal
            periods = min(m, -(-new_balance // old_principal))
        else:
            with localcontext(prec=_PRECISION):
                level_principal = round_fen(Decimal(new_balance) / m)
            if m > 1:
                level_principal = min(level_principal, old_principal)

    rows: list[Installment] = []
    remaining = new_balance
    for k, old in enumerate(future[:periods]):
        interest = first_interest(remaining) if k == 0 else monthly_interest(remaining, rate)
        if k == periods - 1:
            paid = remaining  # the last takes what remains: principal sums to B' exactly
        elif method is RepaymentMethod.EQUAL_INSTALLMENT:
            paid = payment - interest
        elif method is RepaymentMethod.EQUAL_PRINCIPAL:
            paid = level_principal
        else:  # interest first: principal only with the last period
            paid = 0
        paid = max(0, min(paid, remaining))
        remaining -= paid
        due = add_months(terms.start_date, old.period)
        rows.append(Installment(old.period, due, paid, interest, old.fee_fen, remaining))
    return tuple(rows)
