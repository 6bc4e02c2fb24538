"""Sandbox-only endpoints: read what the sandbox carrier "delivered".

Mounted by ``app.py`` only when ``MIAODAI_SANDBOX`` is true; with the sandbox off these
routes do not exist (404), so a production install cannot leak codes through them.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from miaodai.core.masking import mask_phone
from miaodai.deps import ContainerDep
from miaodai.identity.login_service import parse_phone
from miaodai.identity.sms import read_sandbox_inbox

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
def sandbox_sms_inbox(phone: str, container: ContainerDep) -> SandboxInboxResponse:
    phone_e164 = parse_phone(phone)
    messages = read_sandbox_inbox(container.db, container.vault, phone_e164=phone_e164, now=container.clock.now())
    return SandboxInboxResponse(
        phone_masked=mask_phone(phone_e164),
        messages=[SandboxMessageResponse(**vars(message)) for message in messages],
    )
