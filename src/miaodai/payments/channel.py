"""A payment channel (支付通道) as a Protocol: payouts to a card (代付) and collections from one (代扣).

Real channels (UnionPay, Alipay, WeChat Pay, Baofoo and the like) all work the same way, and this
module names that shape so the payments layer is written once against it:

* We send an order carrying *our* unique order number. The channel answers at once, usually
  ``processing``; the result comes later in a signed asynchronous callback to our notify URL, which
  we must acknowledge with an exact body (the channel retries until we do).
* The order number is the idempotency key: sending it again never makes a second payment, the channel
  answers with the order it already has (``ORDER_EXISTS``). The same number with a different amount,
  kind or account is refused (``ORDER_CONFLICT``) and nothing changes.
* A timeout (``ProviderTimeout``) means the outcome is unknown: the order may or may not have been
  received. Only a query (or a later callback) tells; a query that answers ``not_found`` is the one
  case where sending the order again (with the same number) is known to be safe.
* ``unknown`` and a ``failed`` answer carrying an indefinite code such as ``SYSTEMERROR`` are not
  failures: channels say that about orders they later pay. :meth:`ChannelAnswer.is_definite_failure`
  is the one place that rule lives.

No I/O here: the sandbox lives in ``miaodai.sandbox.channel``; a real adapter is one class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol


class OrderKind(StrEnum):
    PAYOUT = "payout"  # 代付: we pay money to the borrower's card (a disbursement)
    COLLECTION = "collection"  # 代扣: we debit the borrower's card (a repayment)


class ChannelStatus(StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # The channel answered but the outcome is not known (e.g. SYSTEMERROR): never treat it as failed.
    UNKNOWN = "unknown"
    # A query for an order the channel never received: safe to send it, with the same order number.
    NOT_FOUND = "not_found"

    @property
    def is_final(self) -> bool:
        return self in (ChannelStatus.SUCCEEDED, ChannelStatus.FAILED)


# Answer codes every adapter maps its channel's own codes onto.
CODE_ACCEPTED = "ACCEPTED"  # a new order, now processing
CODE_PROCESSING = "PROCESSING"  # a query or callback about an order not finished yet
CODE_SUCCESS = "SUCCESS"
CODE_ORDER_EXISTS = "ORDER_EXISTS"  # a resubmission: status and amount describe the order already there
CODE_ORDER_CONFLICT = "ORDER_CONFLICT"  # same order number, different amount/kind/account: refused
CODE_ORDER_NOT_FOUND = "ORDER_NOT_EXIST"
CODE_SYSTEM_ERROR = "SYSTEMERROR"
CODE_PARAM_ERROR = "PARAM_ERROR"  # the request itself was malformed; nothing was recorded

# Codes that say "we do not know" even when a channel labels the answer "failed" (WeChat Pay's
# SYSTEMERROR, a bank's 处理中/超时 returned as a failure): the order may still be paid.
INDEFINITE_CODES = frozenset({CODE_SYSTEM_ERROR, "BANK_TIMEOUT", "FREQUENCY_LIMITED"})


@dataclass(frozen=True)
class ChannelOrder:
    """One payout or collection as sent to the channel; amounts in fen."""

    order_no: str  # ours, unique: the channel's duplicate-order protection keys on it
    kind: OrderKind
    amount_fen: int
    account_no: str  # card number or wallet account
    account_name: str
    bank_code: str | None
    notify_url: str
    # What account_no is (payments.models.PaymentMethodKind): a card, or an Alipay / WeChat Pay account,
    # which real channels pay through other APIs (a transfer to a wallet user, not a bank payout).
    account_kind: str = "bank_card"
    # E-wallets: the withholding agreement a collection is made under (Alipay agreement_no, WeChat contract_id).
    agreement_no: str | None = None


@dataclass(frozen=True)
class ChannelAnswer:
    """What the channel said about one order number, from a submit, a query or a callback.

    ``code`` ``ORDER_CONFLICT`` means this *request* was refused; ``status`` and ``amount_fen`` then
    still describe the order the channel already holds under that number (so a caller never reads
    "failed" for an order that may have been paid). ``notify_id`` is set only on callbacks: the
    channel's notification id, the same on every redelivery of one notification.
    """

    order_no: str
    status: ChannelStatus
    channel_txn_id: str | None
    code: str
    message: str
    amount_fen: int | None
    finished_at: datetime | None
    notify_id: str | None = None

    @property
    def is_definite_failure(self) -> bool:
        """Failed, and the channel means it: no money moved and none will under this order number."""
        return (self.status is ChannelStatus.FAILED and self.code not in INDEFINITE_CODES
                and self.code != CODE_ORDER_CONFLICT)

    @property
    def is_outcome_unknown(self) -> bool:
        """Nothing final can be concluded: query again later (never fail the order on this)."""
        return self.status is ChannelStatus.UNKNOWN or (
            self.status is ChannelStatus.FAILED and self.code in INDEFINITE_CODES)


class CallbackRejected(Exception):
    """A callback we must not believe: bad or missing signature, stale timestamp, malformed body.

    The receiver answers it with an error status (not the ack body), so a genuine channel retries.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PaymentChannel(Protocol):
    name: str
    ack_body: bytes  # what we must reply (with HTTP 200) to a callback we accepted

    def submit(self, order: ChannelOrder) -> ChannelAnswer:
        """Send an order. Raises ProviderTimeout: outcome unknown (the order may or may not have arrived)."""
        ...

    def query(self, order_no: str) -> ChannelAnswer:
        """The channel's current truth about an order number (``not_found`` if never received).

        Raises ProviderTimeout."""
        ...

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> ChannelAnswer:
        """Verify the signature BEFORE parsing, then read the body; raises CallbackRejected."""
        ...

    def reconciliation_file(self, day: date) -> str:
        """The channel's daily statement (对账单) for a business day: CSV text, header row first."""
        ...
