"""Repay now (the borrower's collection) and its progress. Thin: parse, call ``payments.collections``, shape
the answer. The money-moving POST needs an ``Idempotency-Key``. (Refunds by staff are proposed and approved in
``miaodai.backoffice.api_approvals``.)"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from miaodai.core.fields import RowId, RowIdField
from miaodai.core.idempotency import IdempotencyDep
from miaodai.identity.http import CurrentBorrower
from miaodai.loans.repayment_math import PrepaymentMode
from miaodai.loans.repayment_service import Purpose
from miaodai.loans.views import Fen
from miaodai.payments import collections
from miaodai.payments.ports import PaymentPortsDep
from miaodai.payments.views import CollectionView, collection_views, loan_collection_views

router = APIRouter(tags=["repayments"])


class RepayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: Purpose = Field(default=Purpose.DUE, description="due: what is due (more is held for you); payoff: "
                             "settle the whole loan today; prepayment: early partial repayment")
    amount_fen: Fen | None = Field(default=None, description="Required except for payoff (then it must equal the "
                                   "quote, or be left out)")
    mode: PrepaymentMode | None = Field(default=None, description="Prepayments: shorter term or smaller installments")
    payment_method_id: RowIdField | None = Field(default=None, description="The card or wallet; the default if absent")


@router.post("/v1/loans/{loan_id}/repayments", status_code=202,
             summary="Repay now from a card or wallet (Idempotency-Key): the debit is sent to the bank at once "
                     "and its result follows at GET .../repayments")
def repay(loan_id: RowId, ports: PaymentPortsDep, auth: CurrentBorrower, idem: IdempotencyDep,
          body: RepayBody = RepayBody()) -> CollectionView:
    def repaid() -> CollectionView:
        order = collections.request_repayment(
            ports, auth.borrower_id, loan_id, key=idem.key, purpose=body.purpose, amount_fen=body.amount_fen,
            mode=body.mode, method_id=body.payment_method_id)
        return collection_views(ports, auth.borrower_id, [order])[0]

    return idem.run(f"borrower:{auth.borrower_id}", status_code=202, handler=repaid)  # type: ignore[return-value]


@router.get("/v1/loans/{loan_id}/repayments",
            summary="Debits and refunds of my loan, newest first, step by step with times")
def loan_collections(loan_id: RowId, ports: PaymentPortsDep, auth: CurrentBorrower) -> list[CollectionView]:
    return loan_collection_views(ports, auth.borrower_id, loan_id)


# Refunds by staff are maker-checker now: miaodai.backoffice.api_approvals proposes them.
