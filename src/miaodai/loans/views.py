"""What the loans API answers, shaped once: the borrower's loan with its plan, the payoff and prepayment quotes
and the statement, and the field types of amounts and rates.

The routers (``api_loans``, ``api_lines``, ``api_products``) answer with these, and the app's pages
(``web/loans.py``, ``web/draw.py``) show the same figures by calling the same functions, so a page never imports
a router. Each function reads in its own transaction and takes only the platform port.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StrictInt

from miaodai.core.clock import business_date
from miaodai.core.errors import DomainError
from miaodai.core.ports import Platform
from miaodai.loans import contract_service, loan_service, read_models, repayment_service
from miaodai.loans.errors import LoanErrors
from miaodai.loans.models import Loan, LoanContract, LoanInstallment
from miaodai.loans.repayment_math import PrepaymentMode
from miaodai.loans.schedule import RepaymentMethod
from miaodai.loans.statement import statement
from miaodai.loans.states import ON_BOOK, LoanStatus

Rate = Annotated[Decimal, Field(ge=0, lt=1, max_digits=8, decimal_places=6, description='Decimal, e.g. "0.18"')]
# Rates leave the API as decimal strings without trailing zeros, whichever database they came from ("0.12").
RateOut = Annotated[Decimal, PlainSerializer(lambda d: format(d.normalize(), "f"), return_type=str)]
# Strict: "100000", 100000.0 and true are not amounts (lax pydantic would read true as 1 fen).
Fen = Annotated[StrictInt, Field(gt=0, le=10**12, description="Amount in fen (分)")]


# -- a loan and its plan ----------------------------------------------------------------------------------


class InstallmentLine(BaseModel):
    period: int
    due_date: date
    principal_fen: int
    interest_fen: int
    fee_fen: int
    penalty_fen: int = 0
    total_fen: int
    paid_fen: int = 0
    status: str = Field(description="scheduled (quote, not yet paid out) | pending | due | overdue | paid")


class ContractView(BaseModel):
    contract_no: str
    template_version: str
    sha256: str
    signed_at: datetime | None
    signed_with: str | None = Field(default=None, description=(
        "How the borrower confirmed the signature, as the signing record states it, e.g. \"sms_code sent to "
        "138****8001 at …, for contract … hash …, entered at …\"; null before signing"))
    download_url: str


class LoanView(BaseModel):
    id: int
    loan_no: str
    status: LoanStatus
    line_id: int
    principal_fen: int
    method: RepaymentMethod
    term_months: int | None
    term_days: int | None
    apr: RateOut = Field(description="Annualized rate, IRR method, all costs; shown before signing")
    annual_rate: RateOut
    monthly_fee_rate: RateOut
    penalty_annual_rate: RateOut
    total_interest_fen: int
    total_fee_fen: int
    total_cost_fen: int
    principal_outstanding_fen: int
    start_date: date
    requested_at: datetime
    signed_at: datetime | None
    disbursed_at: datetime | None
    payout_attempts: int
    installments: list[InstallmentLine]
    contract: ContractView | None


def _status(line: LoanInstallment, today: date) -> str:
    outstanding = sum(line.outstanding.values())
    if outstanding == 0:
        return "paid"
    if line.due_date < today:
        return "overdue"
    return "due" if line.due_date == today else "pending"


def loan_view(ports: Platform, loan: Loan) -> LoanView:
    """The loan as ``GET /v1/loans/{id}`` answers it: its installments, or the quoted plan until paid out."""
    today = business_date(ports.clock.now())
    with ports.db.transaction() as session:
        rows = loan_service.installments_of(session, loan.id)
        contract = session.query(LoanContract).filter_by(loan_id=loan.id).one_or_none()
        signed_with = contract_service.signed_with(session, contract) if contract is not None else None
    if rows:
        lines = [
            InstallmentLine(
                period=r.period, due_date=r.due_date, principal_fen=r.principal_fen, interest_fen=r.interest_fen,
                fee_fen=r.fee_fen, penalty_fen=r.penalty_fen,
                total_fen=r.principal_fen + r.interest_fen + r.fee_fen + r.penalty_fen,
                paid_fen=r.principal_paid_fen + r.interest_paid_fen + r.fee_paid_fen + r.penalty_paid_fen,
                status=_status(r, today),
            )
            for r in rows
        ]
    else:  # not paid out yet: the quoted schedule (due dates move with the actual payout date)
        lines = [
            InstallmentLine(period=i.period, due_date=i.due_date, principal_fen=i.principal_fen,
                            interest_fen=i.interest_fen, fee_fen=i.fee_fen, total_fen=i.total_fen, status="scheduled")
            for i in loan_service.loan_schedule(loan).installments
        ]
    return LoanView(
        id=loan.id, loan_no=loan.loan_no, status=loan.status, line_id=loan.credit_line_id,
        principal_fen=loan.principal_fen, method=loan.method, term_months=loan.term_months, term_days=loan.term_days,
        apr=loan.apr, annual_rate=loan.annual_rate, monthly_fee_rate=loan.monthly_fee_rate,
        penalty_annual_rate=loan.penalty_annual_rate, total_interest_fen=loan.total_interest_fen,
        total_fee_fen=loan.total_fee_fen, total_cost_fen=loan.total_interest_fen + loan.total_fee_fen,
        principal_outstanding_fen=loan.principal_outstanding_fen, start_date=loan.start_date,
        requested_at=loan.requested_at, signed_at=loan.signed_at, disbursed_at=loan.disbursed_at,
        payout_attempts=loan.payout_attempts, installments=lines,
        contract=ContractView(
            contract_no=contract.contract_no, template_version=contract.template_version, sha256=contract.sha256,
            signed_at=contract.signed_at, signed_with=signed_with, download_url=f"/v1/loans/{loan.id}/contract",
        ) if contract else None,
    )


# -- the borrower's bills ----------------------------------------------------------------------------------


class BillLine(BaseModel):
    """One installment as a bill: which loan (the day it was paid out, its principal), when, how much, and its state."""

    loan_id: int
    loan_status: LoanStatus
    loan_start_date: date
    loan_principal_fen: int
    credit_line_id: int
    period: int
    periods: int
    due_date: date
    total_fen: int
    paid_fen: int
    held_fen: int = Field(description="Money paid ahead on the loan that pays this installment on its due date")
    to_pay_fen: int = Field(description="Still to pay: the total less what is paid and what is held for it")
    status: str = Field(description="pending | due | overdue | paid")


class BillMonth(BaseModel):
    month: date = Field(description="The month's first day")
    total_fen: int
    to_pay_fen: int
    lines: list[BillLine]


class DueThisPeriod(BaseModel):
    """本期应还: the next bills across all loans — every unpaid installment not yet past due that falls in the
    calendar month of the earliest of them."""

    due_date: date = Field(description="The earliest due date among them")
    days_left: int = Field(description="Days from today to that date; 0: due today")
    to_pay_fen: int
    lines: list[BillLine]


class BillsView(BaseModel):
    as_of: date
    months: list[BillMonth] = Field(description="Every month with an installment, oldest first")
    this_period: DueThisPeriod | None
    overdue_fen: int = Field(description="Unpaid past its due date, on every loan")


def bills_view(ports: Platform, borrower_id: int) -> BillsView:
    """Every installment of the borrower's loans on the book and paid off, by month, and what is due this period."""
    today = business_date(ports.clock.now())
    with ports.db.transaction() as session:
        rows = read_models.borrower_installments(session, borrower_id)
    periods: dict[int, int] = {}
    for loan, row in rows:
        periods[loan.id] = max(periods.get(loan.id, 0), row.period)
    held = {loan.id: loan.overpayment_fen for loan, _row in rows}
    lines: list[BillLine] = []
    for loan, row in rows:  # by due date: held money goes to each loan's earliest unpaid installments first
        total = row.principal_fen + row.interest_fen + row.fee_fen + row.penalty_fen
        if total == 0:
            continue  # dropped by an early repayment: not a bill
        paid = row.principal_paid_fen + row.interest_paid_fen + row.fee_paid_fen + row.penalty_paid_fen
        status = _status(row, today)
        covered = min(held[loan.id], total - paid) if status != "paid" and loan.status in ON_BOOK else 0
        held[loan.id] -= covered
        lines.append(BillLine(
            loan_id=loan.id, loan_status=loan.status, loan_start_date=loan.start_date,
            loan_principal_fen=loan.principal_fen, credit_line_id=loan.credit_line_id, period=row.period,
            periods=periods[loan.id], due_date=row.due_date, total_fen=total, paid_fen=paid, held_fen=covered,
            to_pay_fen=0 if status == "paid" else total - paid - covered, status=status))
    months: dict[date, list[BillLine]] = {}
    for line in lines:
        months.setdefault(line.due_date.replace(day=1), []).append(line)
    upcoming = [line for line in lines if line.status in ("pending", "due") and line.loan_status in ON_BOOK]
    this_period = None
    if upcoming:
        first = upcoming[0].due_date
        current = [line for line in upcoming if (line.due_date.year, line.due_date.month) == (first.year, first.month)]
        this_period = DueThisPeriod(due_date=first, days_left=(first - today).days,
                                    to_pay_fen=sum(line.to_pay_fen for line in current), lines=current)
    return BillsView(
        as_of=today, this_period=this_period,
        months=[BillMonth(month=month, total_fen=sum(line.total_fen for line in group),
                          to_pay_fen=sum(line.to_pay_fen for line in group), lines=group)
                for month, group in sorted(months.items())],
        overdue_fen=sum(line.to_pay_fen for line in lines if line.status == "overdue"))


# -- repaying ---------------------------------------------------------------------------------------------


def repayable(loan: Loan) -> None:
    """Refuse a loan that is not on the book (nothing to repay)."""
    if loan.status not in ON_BOOK:
        raise DomainError(LoanErrors.NOT_REPAYABLE, params={"status": loan.status.value})


class PayoffView(BaseModel):
    as_of: date
    due_penalty_fen: int
    due_fee_fen: int
    due_interest_fen: int
    due_principal_fen: int
    remaining_principal_fen: int
    accrued_interest_fen: int = Field(description="Interest accrued to today on the principal not yet due")
    early_repayment_fee_fen: int
    total_fen: int = Field(description="Pay this today and the loan is settled; no future interest or fees")


def payoff_view(ports: Platform, borrower_id: int, loan_id: int) -> PayoffView:
    """What paying the borrower's loan off today takes (refused unless the loan is theirs and on the book)."""
    today = business_date(ports.clock.now())
    with ports.db.transaction() as session:
        loan = loan_service.owned_loan(session, borrower_id, loan_id)
        repayable(loan)
        quote = repayment_service.payoff_quote(session, loan, today)
    return PayoffView(as_of=today, due_penalty_fen=quote.due_penalty_fen, due_fee_fen=quote.due_fee_fen,
                      due_interest_fen=quote.due_interest_fen, due_principal_fen=quote.due_principal_fen,
                      remaining_principal_fen=quote.remaining_principal_fen,
                      accrued_interest_fen=quote.accrued_interest_fen,
                      early_repayment_fee_fen=quote.early_repayment_fee_fen, total_fen=quote.total_fen)


class PrepaymentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_fen: Fen
    mode: PrepaymentMode = PrepaymentMode.SHORTER_TERM


class PrepaymentView(BaseModel):
    as_of: date
    amount_fen: int
    due_paid_fen: int = Field(description="Goes first to what is already due")
    accrued_interest_fen: int = Field(description="Interest accrued to today, paid with the prepayment")
    principal_fen: int = Field(description="Principal prepaid")
    mode: PrepaymentMode
    installments: list[InstallmentLine] = Field(description="The recomputed installments not yet due")


def prepayment_view(ports: Platform, borrower_id: int, loan_id: int, body: PrepaymentBody) -> PrepaymentView:
    """The plan after an early partial repayment of the borrower's loan, before anything is paid."""
    today = business_date(ports.clock.now())
    with ports.db.transaction() as session:
        loan = loan_service.owned_loan(session, borrower_id, loan_id)
        repayable(loan)
        plan = repayment_service.prepayment_plan(session, loan, body.amount_fen, body.mode, today)
    return PrepaymentView(
        as_of=today, amount_fen=body.amount_fen, due_paid_fen=plan.due.applied_fen,
        accrued_interest_fen=plan.accrued_interest_fen, principal_fen=plan.principal_fen, mode=body.mode,
        installments=[InstallmentLine(period=i.period, due_date=i.due_date, principal_fen=i.principal_fen,
                                      interest_fen=i.interest_fen, fee_fen=i.fee_fen, total_fen=i.total_fen,
                                      status="pending") for i in plan.installments],
    )


# -- the statement ----------------------------------------------------------------------------------------


class StatementBalances(BaseModel):
    principal_fen: int
    interest_fen: int
    fee_fen: int
    penalty_fen: int
    overpayment_fen: int


class StatementLineView(BaseModel):
    entry_id: int = Field(description="The journal entry behind this line")
    business_date: date
    posted_at: datetime
    kind: str
    name_zh: str
    name_en: str
    memo: str
    cash_fen: int = Field(description="+ received from you, − paid out to you")
    change: StatementBalances
    balance: StatementBalances


def statement_view(ports: Platform, borrower_id: int, loan_id: int) -> list[StatementLineView]:
    """Every transaction of the borrower's loan with running balances."""
    with ports.db.transaction() as session:
        loan = loan_service.owned_loan(session, borrower_id, loan_id)
        return [StatementLineView.model_validate(line.as_dict()) for line in statement(session, loan.id)]
