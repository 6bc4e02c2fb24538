"""What other domains read of the loans domain's tables (lines, products, loans, installments), as SQL
expressions: loans owns these queries, the reader composes them.

The staff's customer view reads one borrower's lines and loans with their schedules, contracts and statements
(:func:`loans_picture`) and finds a borrower by loan or contract number.

A credit decision reads all it needs on the applicant's one row (one round trip), so the read models here are
labelled scalar subqueries and join conditions that the reader puts into its own SELECT; re-scoring and the
review queue run the same expressions alone. Bind parameters are named in each docstring.

The tables appear under one-letter aliases: the applicant's row must stay within psycopg's query cache
(tests/unit/test_hot_statements.py), and every byte of its text counts: so are the labels inside the
subqueries (``n``) and the zeros of ``coalesce``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Date, Integer, and_, bindparam, exists, func, literal_column, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Exists, FromClause, ScalarSelect

from miaodai.core.db import days_between, table_of
from miaodai.ledger.service import entries_of_loans
from miaodai.loans.models import (
    CreditLine,
    CreditLineProposal,
    Loan,
    LoanContract,
    LoanInstallment,
    LoanProduct,
    Reminder,
    Repayment,
)
from miaodai.loans.statement import StatementLine, statement_of
from miaodai.loans.states import LineStatus, LoanStatus

LINES = table_of(CreditLine)
_L = LINES.alias("l")
_O = table_of(Loan).alias("o")
_I = table_of(LoanInstallment).alias("i")
_OPEN_LOANS = (LoanStatus.ACTIVE, LoanStatus.OVERDUE)
_ZERO: ColumnElement[int] = literal_column("0", Integer())  # as text, not a bind parameter: shorter


def open_line(borrower: Any, lines: FromClause = LINES) -> ColumnElement[bool]:
    """The one definition of a borrower's open line: any line not closed (a borrower holds one at a time).
    ``lines``: the credit_lines table or an alias of it."""
    return and_(lines.c.borrower_id == borrower, lines.c.status != LineStatus.CLOSED)


def open_line_count(borrower: Any) -> ScalarSelect[int]:
    """How many open lines the borrower has (on the table itself: for a statement that also locks)."""
    return select(func.count()).where(open_line(borrower)).scalar_subquery()


def other_open_line(borrower: Any, line_id: Any) -> Exists:
    """Whether the borrower has an open line other than ``line_id`` (0: any open line)."""
    return exists().where(open_line(borrower), LINES.c.id != line_id)


def open_line_columns(borrower: Any) -> tuple[Any, ...]:
    """``active_lines`` (open lines) and ``limits`` (the sum of their limits), labelled."""
    mine = open_line(borrower, _L)
    return (
        select(func.count().label("n")).where(mine).scalar_subquery().label("active_lines"),
        select(func.coalesce(func.sum(_L.c.limit_fen), _ZERO).label("n")).where(mine).scalar_subquery().label("limits"),
    )


def open_lines(session: Session, borrower_id: int) -> int:
    return session.execute(select(open_line_count(bindparam("borrower_id"))), {"borrower_id": borrower_id}).scalar_one()


# The active product of a code, outer-joined (bind parameter ``code``): no row of it, no such product on sale.
PRODUCT = table_of(LoanProduct)
ACTIVE_PRODUCT = and_(PRODUCT.c.code == bindparam("code"), PRODUCT.c.active.is_(True))
PRODUCT_COLUMNS = (PRODUCT.c.id.label("product_id"), PRODUCT.c.min_amount_fen, PRODUCT.c.max_amount_fen,
                   PRODUCT.c.min_annual_rate, PRODUCT.c.max_annual_rate)


@dataclass(frozen=True)
class LoanHistory:
    """A borrower's loans with us, summed up."""

    outstanding_principal_fen: int  # on open loans
    monthly_repayment_fen: int  # falling due within a month on open loans, unpaid
    loans_paid_off: int
    max_overdue_days: int  # the most days any installment was (or, unpaid, is) paid after its due date


def history_columns(borrower: Any) -> tuple[Any, ...]:
    """``LoanHistory`` as labelled scalar subqueries (bind parameters ``today`` and ``month_ahead``:
    :func:`history_params`)."""
    # An IN list would be an "expanding" parameter, re-rendered on every execution: spelled out instead.
    mine, open_loan = _O.c.borrower_id == borrower, or_(*(_O.c.status == s for s in _OPEN_LOANS))
    of_mine = select().join_from(_I, _O, _I.c.loan_id == _O.c.id).where(mine)
    late = days_between(func.coalesce(_I.c.paid_off_on, bindparam("today", type_=Date())), _I.c.due_date)
    return (
        select(func.coalesce(func.sum(_O.c.principal_outstanding_fen), _ZERO).label("n")).where(mine, open_loan)
        .scalar_subquery().label("outstanding_principal_fen"),
        select(func.count().label("n")).where(mine, _O.c.status == LoanStatus.PAID_OFF)
        .scalar_subquery().label("loans_paid_off"),
        of_mine.add_columns(func.coalesce(func.sum(_I.c.principal_fen + _I.c.interest_fen + _I.c.fee_fen), _ZERO)
                            .label("n"))
        .where(open_loan, _I.c.paid_off_on.is_(None), _I.c.due_date <= bindparam("month_ahead", type_=Date()))
        .scalar_subquery().label("monthly_repayment_fen"),
        of_mine.add_columns(func.max(late).label("n")).scalar_subquery().label("max_overdue_days"),
    )


def history_params(today: date) -> dict[str, date]:
    return {"today": today, "month_ahead": today + timedelta(days=31)}


def history_from(row: Any) -> LoanHistory:
    """The history from a row carrying :func:`history_columns`."""
    m = row._mapping
    return LoanHistory(
        outstanding_principal_fen=int(m["outstanding_principal_fen"]),
        monthly_repayment_fen=int(m["monthly_repayment_fen"]), loans_paid_off=m["loans_paid_off"],
        max_overdue_days=max(0, m["max_overdue_days"] or 0),
    )


_HISTORY = select(*history_columns(bindparam("borrower_id")))


def loan_history(session: Session, borrower_id: int, *, today: date) -> LoanHistory:
    return history_from(session.connection().execute(_HISTORY, {"borrower_id": borrower_id,
                                                                **history_params(today)}).one())


# -- the borrower's bills (loans.views.bills_view, the app's home and bills pages) ------------------------------

# Loans whose installments are the borrower's bills: on the book, and paid off (their paid history).
BILLED_LOANS = (LoanStatus.ACTIVE, LoanStatus.OVERDUE, LoanStatus.PAID_OFF)


def borrower_installments(session: Session, borrower_id: int) -> list[tuple[Loan, LoanInstallment]]:
    """Every installment of the borrower's billed loans with its loan, by due date (then loan and period): one
    statement however many loans."""
    return [(row.Loan, row.LoanInstallment) for row in session.execute(
        select(Loan, LoanInstallment).join(LoanInstallment, LoanInstallment.loan_id == Loan.id)
        .where(Loan.borrower_id == borrower_id, Loan.status.in_(BILLED_LOANS))
        .order_by(LoanInstallment.due_date, Loan.id, LoanInstallment.period))]


# -- the staff's customer view (backoffice.search, backoffice.customer360) ------------------------------------


def borrower_of_loan_no(session: Session, loan_no: str) -> int | None:
    """The borrower of the loan numbered ``loan_no`` (unique), or None."""
    return session.scalars(select(Loan.borrower_id).where(Loan.loan_no == loan_no)).one_or_none()


def borrower_of_contract_no(session: Session, contract_no: str) -> int | None:
    """The borrower of the loan whose contract is numbered ``contract_no`` (unique), or None."""
    return session.scalars(select(Loan.borrower_id).join(LoanContract, LoanContract.loan_id == Loan.id)
                           .where(LoanContract.contract_no == contract_no)).one_or_none()


@dataclass(frozen=True)
class LoanPicture:
    """One loan with its schedule, contract, statement, repayments and the reminders sent about it."""

    loan: Loan
    installments: list[LoanInstallment]
    contract: LoanContract | None
    statement: list[StatementLine]
    repayments: list[Repayment]
    reminders: list[Reminder]


@dataclass(frozen=True)
class LoansPicture:
    lines: list[CreditLine]
    proposals: list[CreditLineProposal]
    loans: list[LoanPicture]  # newest first


def loans_picture(session: Session, borrower_id: int) -> LoansPicture:
    """Everything the loan engine holds about one borrower, ORM rows read in the caller's session: a fixed number
    of statements (one per table, two for the journal) however many loans there are."""
    lines = list(session.scalars(select(CreditLine).where(CreditLine.borrower_id == borrower_id)
                                 .order_by(CreditLine.id.desc())))
    proposals = list(session.scalars(select(CreditLineProposal).where(CreditLineProposal.borrower_id == borrower_id)
                                     .order_by(CreditLineProposal.id.desc())))
    loans = list(session.scalars(select(Loan).where(Loan.borrower_id == borrower_id).order_by(Loan.id.desc())))
    ids = [loan.id for loan in loans]
    if not ids:
        return LoansPicture(lines, proposals, [])
    installments: dict[int, list[LoanInstallment]] = {i: [] for i in ids}
    for row in session.scalars(select(LoanInstallment).where(LoanInstallment.loan_id.in_(ids))
                               .order_by(LoanInstallment.loan_id, LoanInstallment.period)):
        installments[row.loan_id].append(row)
    contracts = {c.loan_id: c for c in session.scalars(select(LoanContract).where(LoanContract.loan_id.in_(ids)))}
    repayments: dict[int, list[Repayment]] = {i: [] for i in ids}
    for paid in session.scalars(select(Repayment).where(Repayment.loan_id.in_(ids)).order_by(Repayment.id)):
        repayments[paid.loan_id].append(paid)
    reminders: dict[int, list[Reminder]] = {i: [] for i in ids}
    for sent in session.scalars(select(Reminder).where(Reminder.loan_id.in_(ids)).order_by(Reminder.id)):
        reminders[sent.loan_id].append(sent)
    entries = entries_of_loans(session, ids)
    return LoansPicture(lines, proposals, [
        LoanPicture(loan, installments[loan.id], contracts.get(loan.id), statement_of(entries, loan.id),
                    repayments[loan.id], reminders[loan.id])
        for loan in loans
    ])
