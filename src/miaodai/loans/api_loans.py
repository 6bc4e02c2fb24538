"""The borrower's loans: draw money on a line, read and sign the contract, follow the loan. Thin.

Money-moving requests (a drawdown) need an ``Idempotency-Key`` header: a retry with the same key
and body answers with the same loan, never a second one.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from miaodai.core.clock import business_date
from miaodai.core.errors import DomainError
from miaodai.core.idempotency import IdempotencyDep
from miaodai.deps import ContainerDep, CurrentBorrower, RowId, RowIdField, client_ip
from miaodai.identity.models import OtpChannel
from miaodai.identity.staff_deps import require_permission
from miaodai.identity.staff_service import StaffContext
from miaodai.identity.step_up import RecentStepUp
from miaodai.loans import contract_service, loan_service, repayment_service, write_off
from miaodai.loans.api_products import Fen, RateOut
from miaodai.loans.errors import LoanErrors
from miaodai.loans.models import Loan, LoanContract, LoanInstallment
from miaodai.loans.repayment_math import PrepaymentMode
from miaodai.loans.schedule import RepaymentMethod
from miaodai.loans.statement import statement
from miaodai.loans.states import ON_BOOK, LoanStatus

router = APIRouter(tags=["loans"])


class DrawdownBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_id: RowIdField
    principal_fen: Fen
    method: RepaymentMethod = RepaymentMethod.EQUAL_INSTALLMENT
    term_months: StrictInt | None = Field(default=None, ge=1, le=60)
    term_days: StrictInt | None = Field(default=None, ge=1, le=365)


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


def loan_view(container: ContainerDep, loan: Loan) -> LoanView:
    today = business_date(container.clock.now())
    with container.db.transaction() as session:
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


@router.post("/v1/loans", status_code=201,
             summary="Draw money on a credit line: quote, reserve, draft the contract (Idempotency-Key: a retry "
                     "gets the first answer)")
def draw(body: DrawdownBody, container: ContainerDep, auth: CurrentBorrower, idem: IdempotencyDep) -> LoanView:
    def drawn() -> LoanView:
        # The key also names the drawdown for good (request_key): a retry after the key layer forgot the
        # request (kept at least 24 h) still finds the loan it made.
        request = loan_service.DrawdownRequest(
            line_id=body.line_id, principal_fen=body.principal_fen, method=body.method, term_months=body.term_months,
            term_days=body.term_days, request_key=idem.key,
        )
        loan, _created = loan_service.request_drawdown(container, auth, request)
        return loan_view(container, loan)

    return idem.run(f"borrower:{auth.borrower_id}", status_code=201, handler=drawn)  # type: ignore[return-value]


@router.get("/v1/loans", summary="My loans, newest first")
def my_loans(container: ContainerDep, auth: CurrentBorrower) -> list[LoanView]:
    return [loan_view(container, loan) for loan in loan_service.borrower_loans(container, auth.borrower_id)]


@router.get("/v1/loans/{loan_id}", summary="One loan with its schedule (quoted until paid out)")
def one_loan(loan_id: RowId, container: ContainerDep, auth: CurrentBorrower) -> LoanView:
    with container.db.transaction() as session:
        loan = loan_service.owned_loan(session, auth.borrower_id, loan_id)
    return loan_view(container, loan)


@router.get("/v1/loans/{loan_id}/contract", response_class=HTMLResponse,
            summary="The contract as printable HTML; its SHA-256 is in the X-Content-SHA256 header")
def contract_document(loan_id: RowId, container: ContainerDep, auth: CurrentBorrower) -> HTMLResponse:
    contract, html = loan_service.open_contract(container, auth, loan_id)
    return HTMLResponse(html, headers={
        "Content-Disposition": f'inline; filename="{contract.contract_no}.html"', "X-Content-SHA256": contract.sha256})


ContractHash = Annotated[str, Field(pattern="^[0-9a-f]{64}$",
                                    description="SHA-256 of the contract text you read (X-Content-SHA256)")]


class SignCodeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contract_sha256: ContractHash
    channel: OtpChannel = Field(default=OtpChannel.SMS, description="sms, or voice when texts do not arrive")


class SignCodeView(BaseModel):
    contract_no: str
    contract_sha256: str = Field(description="The text the code signs: it signs this hash and nothing else")
    phone_masked: str
    channel: OtpChannel
    expires_at: datetime
    resend_after: datetime


@router.post("/v1/loans/{loan_id}/sign-code",
             summary="Send a code that signs this contract as you read it (to your own phone; bound to its SHA-256)")
def sign_code(loan_id: RowId, body: SignCodeBody, request: Request, container: ContainerDep,
              auth: CurrentBorrower) -> SignCodeView:
    with container.db.transaction() as session:
        loan = loan_service.owned_loan(session, auth.borrower_id, loan_id)
    contract, sent = contract_service.request_sign_code(container, auth, loan, read_sha256=body.contract_sha256,
                                                        channel=body.channel, ip=client_ip(request))
    return SignCodeView(contract_no=contract.contract_no, contract_sha256=contract.sha256,
                        phone_masked=sent.phone_masked, channel=sent.channel, expires_at=sent.expires_at,
                        resend_after=sent.resend_after)


class SignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contract_sha256: ContractHash
    code: str | None = Field(default=None, max_length=12, description=(
        "The code POST /v1/loans/{id}/sign-code sent for this contract and hash; without it the signing is "
        "refused (CONTRACT_SIGN_CODE_REQUIRED) — a login or step-up, however recent, does not sign"))


@router.post("/v1/loans/{loan_id}/sign",
             summary="Sign the contract you read with the code sent for it (POST …/sign-code); the payout is "
                     "ordered (Idempotency-Key: a retry gets the first answer)")
def sign(loan_id: RowId, body: SignBody, container: ContainerDep, auth: CurrentBorrower,
         idem: IdempotencyDep) -> LoanView:
    def signed() -> LoanView:
        loan_service.sign(container, auth, loan_id, read_sha256=body.contract_sha256, code=body.code,
                          request_key=idem.key)
        return _after_payout_ordered(container, auth.borrower_id, loan_id)

    return idem.run(f"borrower:{auth.borrower_id}", status_code=200, handler=signed)  # type: ignore[return-value]


def _after_payout_ordered(container: ContainerDep, borrower_id: int, loan_id: int) -> LoanView:
    """The order is stored with the signature; send it now (:func:`loan_service.send_payout`), and answer
    with the loan as it stands."""
    loan_service.send_payout(container, loan_id)
    with container.db.transaction() as session:
        loan = loan_service.owned_loan(session, borrower_id, loan_id)
    return loan_view(container, loan)


@router.post("/v1/loans/{loan_id}/payout-retry",
             summary="After a failed payout, order it again to the default card (step-up, Idempotency-Key)")
def retry_payout(loan_id: RowId, container: ContainerDep, auth: RecentStepUp, idem: IdempotencyDep) -> LoanView:
    def retried() -> LoanView:
        loan_service.retry_payout(container, auth, loan_id, request_key=idem.key)
        return _after_payout_ordered(container, auth.borrower_id, loan_id)

    return idem.run(f"borrower:{auth.borrower_id}", status_code=200, handler=retried)  # type: ignore[return-value]


@router.post("/v1/loans/{loan_id}/cancel", summary="Withdraw a drawdown before the money has left")
def cancel(loan_id: RowId, container: ContainerDep, auth: CurrentBorrower) -> LoanView:
    return loan_view(container, loan_service.cancel(container, auth, loan_id))


# -- repaying -----------------------------------------------------------------------------------------


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


@router.get("/v1/loans/{loan_id}/payoff-quote", summary="What paying the whole loan off today takes (提前结清)")
def payoff_quote(loan_id: RowId, container: ContainerDep, auth: CurrentBorrower) -> PayoffView:
    today = business_date(container.clock.now())
    with container.db.transaction() as session:
        loan = loan_service.owned_loan(session, auth.borrower_id, loan_id)
        repayable(loan)
        quote = repayment_service.payoff_quote(session, loan, today)
    return PayoffView(as_of=today, due_penalty_fen=quote.due_penalty_fen, due_fee_fen=quote.due_fee_fen,
                      due_interest_fen=quote.due_interest_fen, due_principal_fen=quote.due_principal_fen,
                      remaining_principal_fen=quote.remaining_principal_fen,
                      accrued_interest_fen=quote.accrued_interest_fen,
                      early_repayment_fee_fen=quote.early_repayment_fee_fen, total_fen=quote.total_fen)


def repayable(loan: Loan) -> None:
    if loan.status not in ON_BOOK:
        raise DomainError(LoanErrors.NOT_REPAYABLE, params={"status": loan.status.value})


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


@router.post("/v1/loans/{loan_id}/prepayment-quote",
             summary="Preview an early partial repayment: the recomputed plan, before anything is paid")
def prepayment_quote(loan_id: RowId, body: PrepaymentBody, container: ContainerDep,
                     auth: CurrentBorrower) -> PrepaymentView:
    today = business_date(container.clock.now())
    with container.db.transaction() as session:
        loan = loan_service.owned_loan(session, auth.borrower_id, loan_id)
        repayable(loan)
        plan = repayment_service.prepayment_plan(session, loan, body.amount_fen, body.mode, today)
    return PrepaymentView(
        as_of=today, amount_fen=body.amount_fen, due_paid_fen=plan.due.applied_fen,
        accrued_interest_fen=plan.accrued_interest_fen, principal_fen=plan.principal_fen, mode=body.mode,
        installments=[InstallmentLine(period=i.period, due_date=i.due_date, principal_fen=i.principal_fen,
                                      interest_fen=i.interest_fen, fee_fen=i.fee_fen, total_fen=i.total_fen,
                                      status="pending") for i in plan.installments],
    )


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


@router.get("/v1/loans/{loan_id}/statement", summary="Every transaction of the loan with running balances")
def loan_statement(loan_id: RowId, container: ContainerDep, auth: CurrentBorrower) -> list[StatementLineView]:
    with container.db.transaction() as session:
        loan = loan_service.owned_loan(session, auth.borrower_id, loan_id)
        return [StatementLineView.model_validate(line.as_dict()) for line in statement(session, loan.id)]


class ReversalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=200)


class ReversalView(BaseModel):
    id: int
    reverses_id: int
    loan_id: int
    amount_fen: int
    journal_entry_id: int | None


Reverser = Annotated[StaffContext, Depends(require_permission("payment.refund"))]


@router.post("/v1/staff/repayments/{repayment_id}/reverse",
             summary="Reverse a repayment by compensating entries (a chargeback, a mistaken posting)")
def reverse_repayment(repayment_id: RowId, body: ReversalBody, staff: Reverser, container: ContainerDep,
                      idem: IdempotencyDep) -> ReversalView:
    def reversed_() -> ReversalView:
        reversal = repayment_service.reverse_repayment(
            container, repayment_id, idempotency_key=idem.key, actor=staff.actor, reason=body.reason)
        assert reversal.reverses_id is not None
        return ReversalView(id=reversal.id, reverses_id=reversal.reverses_id, loan_id=reversal.loan_id,
                            amount_fen=reversal.amount_fen, journal_entry_id=reversal.journal_entry_id)

    return idem.run(f"staff:{staff.actor}"[:64], status_code=200, handler=reversed_)  # type: ignore[return-value]


class WriteOffBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=200)


class WriteOffView(BaseModel):
    loan_id: int
    status: str
    days_past_due: int


WriteOffStaff = Annotated[StaffContext, Depends(require_permission("loan.write_off"))]


@router.post("/v1/staff/loans/{loan_id}/write-off", summary="Write off a loan more than 90 days past due (核销)")
def write_off_loan(loan_id: RowId, body: WriteOffBody, staff: WriteOffStaff, container: ContainerDep) -> WriteOffView:
    loan = write_off.write_off(container, loan_id, actor=staff.actor, reason=body.reason)
    return WriteOffView(loan_id=loan.id, status=loan.status.value, days_past_due=loan.days_past_due)
