"""The borrower's loans: draw money on a line, read and sign the contract, follow the loan. Thin.

Money-moving requests (a drawdown) need an ``Idempotency-Key`` header: a retry with the same key
and body answers with the same loan, never a second one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from miaodai.core.fields import RowId, RowIdField
from miaodai.core.http import client_ip
from miaodai.core.idempotency import IdempotencyDep
from miaodai.identity.http import CurrentBorrower
from miaodai.identity.models import OtpChannel
from miaodai.identity.step_up import RecentStepUp
from miaodai.loans import contract_service, loan_service
from miaodai.loans.ports import LoanPorts, LoanPortsDep
from miaodai.loans.schedule import RepaymentMethod
from miaodai.loans.views import (
    Fen,
    LoanView,
    PayoffView,
    PrepaymentBody,
    PrepaymentView,
    StatementLineView,
    loan_view,
    payoff_view,
    prepayment_view,
    statement_view,
)

router = APIRouter(tags=["loans"])


class DrawdownBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_id: RowIdField
    principal_fen: Fen
    method: RepaymentMethod = RepaymentMethod.EQUAL_INSTALLMENT
    term_months: StrictInt | None = Field(default=None, ge=1, le=60)
    term_days: StrictInt | None = Field(default=None, ge=1, le=365)


@router.post("/v1/loans", status_code=201,
             summary="Draw money on a credit line: quote, reserve, draft the contract (Idempotency-Key: a retry "
                     "gets the first answer)")
def draw(body: DrawdownBody, ports: LoanPortsDep, auth: CurrentBorrower, idem: IdempotencyDep) -> LoanView:
    def drawn() -> LoanView:
        # The key also names the drawdown for good (request_key): a retry after the key layer forgot the
        # request (kept at least 24 h) still finds the loan it made.
        request = loan_service.DrawdownRequest(
            line_id=body.line_id, principal_fen=body.principal_fen, method=body.method, term_months=body.term_months,
            term_days=body.term_days, request_key=idem.key,
        )
        loan, _created = loan_service.request_drawdown(ports, auth, request)
        return loan_view(ports, loan)

    return idem.run(f"borrower:{auth.borrower_id}", status_code=201, handler=drawn)  # type: ignore[return-value]


@router.get("/v1/loans", summary="My loans, newest first")
def my_loans(ports: LoanPortsDep, auth: CurrentBorrower) -> list[LoanView]:
    return [loan_view(ports, loan) for loan in loan_service.borrower_loans(ports, auth.borrower_id)]


@router.get("/v1/loans/{loan_id}", summary="One loan with its schedule (quoted until paid out)")
def one_loan(loan_id: RowId, ports: LoanPortsDep, auth: CurrentBorrower) -> LoanView:
    with ports.db.transaction() as session:
        loan = loan_service.owned_loan(session, auth.borrower_id, loan_id)
    return loan_view(ports, loan)


@router.get("/v1/loans/{loan_id}/contract", response_class=HTMLResponse,
            summary="The contract as printable HTML; its SHA-256 is in the X-Content-SHA256 header")
def contract_document(loan_id: RowId, ports: LoanPortsDep, auth: CurrentBorrower) -> HTMLResponse:
    contract, html = loan_service.open_contract(ports, auth, loan_id)
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
def sign_code(loan_id: RowId, body: SignCodeBody, request: Request, ports: LoanPortsDep,
              auth: CurrentBorrower) -> SignCodeView:
    with ports.db.transaction() as session:
        loan = loan_service.owned_loan(session, auth.borrower_id, loan_id)
    contract, sent = contract_service.request_sign_code(ports, auth, loan, read_sha256=body.contract_sha256,
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
def sign(loan_id: RowId, body: SignBody, ports: LoanPortsDep, auth: CurrentBorrower,
         idem: IdempotencyDep) -> LoanView:
    def signed() -> LoanView:
        loan_service.sign(ports, auth, loan_id, read_sha256=body.contract_sha256, code=body.code,
                          request_key=idem.key)
        return _after_payout_ordered(ports, auth.borrower_id, loan_id)

    return idem.run(f"borrower:{auth.borrower_id}", status_code=200, handler=signed)  # type: ignore[return-value]


def _after_payout_ordered(ports: LoanPorts, borrower_id: int, loan_id: int) -> LoanView:
    """The order is stored with the signature; send it now (:func:`loan_service.send_payout`), and answer
    with the loan as it stands."""
    loan_service.send_payout(ports, loan_id)
    with ports.db.transaction() as session:
        loan = loan_service.owned_loan(session, borrower_id, loan_id)
    return loan_view(ports, loan)


@router.post("/v1/loans/{loan_id}/payout-retry",
             summary="After a failed payout, order it again to the default card (step-up, Idempotency-Key)")
def retry_payout(loan_id: RowId, ports: LoanPortsDep, auth: RecentStepUp, idem: IdempotencyDep) -> LoanView:
    def retried() -> LoanView:
        loan_service.retry_payout(ports, auth, loan_id, request_key=idem.key)
        return _after_payout_ordered(ports, auth.borrower_id, loan_id)

    return idem.run(f"borrower:{auth.borrower_id}", status_code=200, handler=retried)  # type: ignore[return-value]


@router.post("/v1/loans/{loan_id}/cancel", summary="Withdraw a drawdown before the money has left")
def cancel(loan_id: RowId, ports: LoanPortsDep, auth: CurrentBorrower) -> LoanView:
    return loan_view(ports, loan_service.cancel(ports, auth, loan_id))


# -- repaying -----------------------------------------------------------------------------------------


@router.get("/v1/loans/{loan_id}/payoff-quote", summary="What paying the whole loan off today takes (提前结清)")
def payoff_quote(loan_id: RowId, ports: LoanPortsDep, auth: CurrentBorrower) -> PayoffView:
    return payoff_view(ports, auth.borrower_id, loan_id)


@router.post("/v1/loans/{loan_id}/prepayment-quote",
             summary="Preview an early partial repayment: the recomputed plan, before anything is paid")
def prepayment_quote(loan_id: RowId, body: PrepaymentBody, ports: LoanPortsDep,
                     auth: CurrentBorrower) -> PrepaymentView:
    return prepayment_view(ports, auth.borrower_id, loan_id, body)


@router.get("/v1/loans/{loan_id}/statement", summary="Every transaction of the loan with running balances")
def loan_statement(loan_id: RowId, ports: LoanPortsDep, auth: CurrentBorrower) -> list[StatementLineView]:
    return statement_view(ports, auth.borrower_id, loan_id)


# Reversals and write-offs by staff are maker-checker now: miaodai.backoffice.api_approvals proposes them.
