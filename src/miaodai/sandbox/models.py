"""The sandbox SMS/voice inbox: what the sandbox carrier "delivered" to each phone.

Stored like personal data (phone as blind index, text encrypted) so a sandbox
install keeps the same at-rest guarantees as a real one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from miaodai.core.db import Base, IdType, UTCDateTime

MESSAGE_TEXT_FIELD = "sandbox.message"  # associated data of text_enc (see keys.ENCRYPTED_COLUMNS)


class SandboxMessage(Base):
    __tablename__ = "sandbox_messages"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    phone_bidx: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8))
    text_enc: Mapped[str] = mapped_column(String(512))
    provider_message_id: Mapped[str] = mapped_column(String(40), unique=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A "late" test number's messages become visible only at this time.
    visible_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_sandbox_messages_phone_time", "phone_bidx", "visible_at"),)


class SandboxWalletAgreement(Base):
    """The sandbox wallets' own record of the withholding agreements they signed, so an agreement
    cancelled at the wallet (解约) stays cancelled and can no longer be debited."""

    __tablename__ = "sandbox_wallet_agreements"

    agreement_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    behaviour: Mapped[str] = mapped_column(String(24))  # how cancelling answers (docs/sandbox.md, test logins)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cancel_calls: Mapped[int] = mapped_column(Integer, default=0)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
