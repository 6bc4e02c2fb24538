"""Sandbox-only endpoints: read what the sandbox carrier "delivered".

Mounted by ``app.py`` only when ``MIAODAI_SANDBOX`` is true; with the sandbox off these
routes do not exist (404), so a production install cannot leak codes through them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from miaodai.core.fields import RowId
from miaodai.core.http import PlatformDep
from miaodai.core.idempotency import IdempotencyDep
from miaodai.core.masking import mask_phone
from miaodai.identity.login_service import parse_phone
from miaodai.loans import repayment_service
from miaodai.loans.repayment_math import PrepaymentMode
from miaodai.sandbox.sms import read_sandbox_inbox

router = APIRouter(prefix="/sandbox", tags=["sandbox"])


class SandboxMessageResponse(BaseModel):
    channel: str
    text: str
    code: str | None
    sent_at: datetime
    visible_at: datetime


class SandboxInboxResponse(BaseModel):
    phone_masked: str
    messages: list[SandboxMessageResponse]


@router.get("/sms/{phone}", summary="Sandbox inbox: SMS and voice messages that have arrived, newest first")
def sandbox_sms_inbox(phone: str, platform: PlatformDep) -> SandboxInboxResponse:
    phone_e164 = parse_phone(phone)
    messages = read_sandbox_inbox(platform.db, platform.vault, phone_e164=phone_e164, now=platform.clock.now())
    return SandboxInboxResponse(
        phone_masked=mask_phone(phone_e164),
        messages=[SandboxMessageResponse(**vars(message)) for message in messages],
    )


class SandboxRepayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_fen: StrictInt = Field(gt=0, le=10**12)
    purpose: Literal["due", "payoff", "prepayment"] = "due"
    mode: Literal["shorter_term", "smaller_installment"] | None = None


@router.post("/loans/{loan_id}/repayments", summary="Stand in for money arriving outside any debit (a bank "
             "transfer), posted once (Idempotency-Key)")
def sandbox_repayment(loan_id: RowId, body: SandboxRepayment, platform: PlatformDep,
                      idem: IdempotencyDep) -> dict[str, object]:
    def posted() -> dict[str, object]:
        request = repayment_service.RepaymentRequest(
            loan_id=loan_id, amount_fen=body.amount_fen, idempotency_key=idem.key, channel="sandbox",
            received_at=platform.clock.now(), purpose=repayment_service.Purpose(body.purpose),
            mode=PrepaymentMode(body.mode) if body.mode else None,
        )
        result = repayment_service.post_repayment(platform, request, actor="sandbox:payment-channel")
        return {"repayment_id": result.repayment_id, "created": result.created,
                "journal_entry_id": result.journal_entry_id}

    return idem.run("sandbox", status_code=200, handler=posted)  # type: ignore[return-value]
