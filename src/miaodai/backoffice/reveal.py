"""Revealing a borrower's personal data to a staff member (查看完整信息), and the borrower's view of who looked.

Everything staff see is masked by default (:mod:`miaodai.backoffice.customer360`). Seeing a field in full —
the full name, the ID number, the phone number, a bank card's digits beyond BIN + last 4 — is :func:`reveal`:

* only with ``borrower.reveal_pii`` (``identity/data/roles.toml``: customer service, collections, compliance);
* with a reason: one of a short list of kinds (:class:`ReasonKind`: what the compliance desk counts and filters
  by) and a free-text explanation of at least :data:`MIN_REASON_CHARS` characters (the ticket, the call, the
  case: what makes the kind checkable). A list alone invites always picking its first entry; free text alone
  cannot be counted. The text passes through the log scrubber before it is stored, so a phone or ID number
  typed into it is masked;
* rate-limited per staff member: :data:`REVEALS_PER_HOUR` in the clock hour and :data:`REVEALS_PER_DAY` in the
  Beijing day, on the atomic counters (``identity.counters``, kinds ``reveal.staff.h`` / ``reveal.staff.d``),
  so the caps hold under concurrency; a refused reveal writes its own audit entry
  (``borrower.pii_reveal_refused``) and counts for nothing;
* audited in the same transaction as the read: ``borrower.pii_revealed`` with the staff member, their roles,
  the borrower (subject ``borrower:<id>``), the field, the reason — never the value.

The borrower reads the same entries (:func:`data_access`, ``GET /v1/me/data-access``), and so will the
compliance desk. The value goes back once, in an answer marked ``Cache-Control: no-store``, and is never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select

from miaodai.backoffice.customer_errors import CustomerErrors
from miaodai.core.audit import AuditEntry
from miaodai.core.errors import DomainError
from miaodai.core.logging import scrub
from miaodai.core.ports import Platform
from miaodai.identity import counters, rbac
from miaodai.identity.read_models import borrower_rows, sealed_field
from miaodai.identity.staff_audit import entry_details
from miaodai.identity.staff_errors import StaffErrors
from miaodai.identity.staff_service import StaffContext
from miaodai.payments.read_models import sealed_card_number

REVEALED = "borrower.pii_revealed"
REFUSED = "borrower.pii_reveal_refused"
MIN_REASON_CHARS = 10
MAX_REASON_CHARS = 500
REVEALS_PER_HOUR = 20
REVEALS_PER_DAY = 60


class RevealField(StrEnum):
    FULL_NAME = "full_name"
    ID_NUMBER = "id_number"
    PHONE = "phone"
    CARD_NUMBER = "card_number"  # needs the card (payment method id)


class ReasonKind(StrEnum):
    CUSTOMER_REQUEST = "customer_request"  # the borrower called or wrote and must be identified
    COMPLAINT = "complaint"
    COLLECTIONS = "collections"  # contacting an overdue borrower
    FRAUD_CHECK = "fraud_check"  # identity theft, a suspicious card or device
    LEGAL_REQUEST = "legal_request"  # a court, the police or a regulator asked
    COMPLIANCE_REVIEW = "compliance_review"


FIELD_WORDS: dict[RevealField, tuple[str, str]] = {
    RevealField.FULL_NAME: ("完整姓名", "full name"),
    RevealField.ID_NUMBER: ("身份证号", "ID number"),
    RevealField.PHONE: ("手机号", "phone number"),
    RevealField.CARD_NUMBER: ("银行卡号", "card number"),
}
REASON_WORDS: dict[ReasonKind, tuple[str, str]] = {
    ReasonKind.CUSTOMER_REQUEST: ("客户来电或来函核实身份", "Confirming the customer's identity on their request"),
    ReasonKind.COMPLAINT: ("处理投诉", "Handling a complaint"),
    ReasonKind.COLLECTIONS: ("逾期催收联系", "Contacting an overdue borrower"),
    ReasonKind.FRAUD_CHECK: ("欺诈核查", "Fraud check"),
    ReasonKind.LEGAL_REQUEST: ("司法或监管机关协查", "Request from a court, the police or a regulator"),
    ReasonKind.COMPLIANCE_REVIEW: ("合规检查", "Compliance review"),
}


@dataclass(frozen=True)
class RevealReason:
    kind: ReasonKind
    text: str


@dataclass(frozen=True)
class Revealed:
    borrower_id: int
    field: RevealField
    value: str
    payment_method_id: int | None
    audit_entry_id: int
    revealed_at: datetime


def _checked_reason(reason: RevealReason) -> RevealReason:
    text = " ".join(reason.text.split())
    if len(text) < MIN_REASON_CHARS:
        raise DomainError(CustomerErrors.REVEAL_REASON_REQUIRED, params={"min_chars": MIN_REASON_CHARS})
    return RevealReason(reason.kind, scrub(text[:MAX_REASON_CHARS]))


def _limit_error(span: counters.Span, cap: int, resets_at: datetime) -> DomainError:
    zh, en = ("小时", "hour") if span is counters.Span.HOUR else ("天", "day")
    return DomainError(CustomerErrors.REVEAL_LIMIT, params={
        "_window_zh": zh, "_window_en": en, "cap": cap, "resets_at": resets_at.isoformat()})


def reveal(ports: Platform, staff: StaffContext, borrower_id: int, field: RevealField, reason: RevealReason,
           *, payment_method_id: int | None = None) -> Revealed:
    """The field in full, once, with its audit entry written in the same transaction (see the module's rules).

    Refusals: ``FORBIDDEN`` without ``borrower.reveal_pii``; ``REVEAL_REASON_REQUIRED``; ``REVEAL_LIMIT`` over a
    cap (audited, after the commit); ``CUSTOMER_NOT_FOUND``; ``REVEAL_VALUE_ABSENT`` when the borrower has no such
    value (not verified yet, or the card is not theirs)."""
    permission = rbac.Permission.BORROWER_REVEAL_PII.value
    if not rbac.is_allowed(staff.roles, permission):
        raise DomainError(StaffErrors.FORBIDDEN, params={"permission": permission})
    reason = _checked_reason(reason)
    details: dict[str, object] = {"field": field.value, "reason_kind": reason.kind.value, "reason": reason.text,
                                  "roles": sorted(staff.roles)}
    if field is RevealField.CARD_NUMBER:
        details["payment_method_id"] = payment_method_id
    subject = f"borrower:{borrower_id}"
    refusal: DomainError | None = None
    with ports.db.transaction() as session:
        now = ports.clock.now()
        if not borrower_rows(session, [borrower_id]):
            raise DomainError(CustomerErrors.NOT_FOUND, params={"borrower_id": borrower_id})
        key = str(staff.staff_id)
        counts = counters.bump(session, [counters.Bump(counters.Kind.REVEAL_STAFF_HOUR, key),
                                         counters.Bump(counters.Kind.REVEAL_STAFF_DAY, key)], now)
        hour, day = counts[counters.Kind.REVEAL_STAFF_HOUR], counts[counters.Kind.REVEAL_STAFF_DAY]
        if hour.over(REVEALS_PER_HOUR):
            refusal = _limit_error(counters.Span.HOUR, REVEALS_PER_HOUR, hour.resets_at)
        elif day.over(REVEALS_PER_DAY):
            refusal = _limit_error(counters.Span.DAY, REVEALS_PER_DAY, day.resets_at)
        if refusal is not None:  # on record for the compliance desk, and not counted: the bump is taken back
            counters.bump(session, [counters.Bump(counters.Kind.REVEAL_STAFF_HOUR, key, -1),
                                    counters.Bump(counters.Kind.REVEAL_STAFF_DAY, key, -1)], now)
            ports.audit.record(session, actor=staff.actor, action=REFUSED, subject=subject,
                               details={**details, "refusal": refusal.code})
        else:
            sealed = (sealed_card_number(session, borrower_id, payment_method_id or 0)
                      if field is RevealField.CARD_NUMBER else sealed_field(session, borrower_id, field.value))
            if sealed is None:
                zh, en = FIELD_WORDS[field]
                raise DomainError(CustomerErrors.REVEAL_VALUE_ABSENT, params={"field": field.value, "field_zh": zh,
                                                                              "field_en": en})
            value = ports.vault.decrypt(*sealed)
            entry = ports.audit.record(session, actor=staff.actor, action=REVEALED, subject=subject, details=details)
            session.flush()
    if refusal is not None:
        raise refusal
    return Revealed(borrower_id, field, value, payment_method_id if field is RevealField.CARD_NUMBER else None,
                    entry.id, entry.occurred_at)


# -- who looked at my data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataAccess:
    """One reveal of a borrower's personal data, as the borrower (and the compliance desk) reads it."""

    at: datetime
    staff_id: int | None
    roles: list[str]
    field: str
    field_zh: str
    field_en: str
    reason_kind: str
    reason_kind_zh: str
    reason_kind_en: str
    reason: str


def data_access(ports: Platform, borrower_id: int, *, limit: int = 200) -> list[DataAccess]:
    """Every reveal of the borrower's personal data, newest first (at most ``limit``)."""
    stmt = (select(AuditEntry).where(AuditEntry.subject == f"borrower:{borrower_id}", AuditEntry.action == REVEALED)
            .order_by(AuditEntry.id.desc()).limit(limit))
    with ports.db.transaction() as session:
        entries = list(session.scalars(stmt))
    found = []
    for entry in entries:
        details = entry_details(entry) or {}
        field, kind = str(details.get("field", "")), str(details.get("reason_kind", ""))
        field_words = FIELD_WORDS.get(RevealField(field)) if field in RevealField._value2member_map_ else None
        kind_words = REASON_WORDS.get(ReasonKind(kind)) if kind in ReasonKind._value2member_map_ else None
        actor = entry.actor.removeprefix("staff:")
        found.append(DataAccess(
            at=entry.occurred_at, staff_id=int(actor) if actor.isdigit() else None,
            roles=[str(r) for r in details.get("roles", [])], field=field,
            field_zh=field_words[0] if field_words else field, field_en=field_words[1] if field_words else field,
            reason_kind=kind, reason_kind_zh=kind_words[0] if kind_words else kind,
            reason_kind_en=kind_words[1] if kind_words else kind, reason=str(details.get("reason", "")),
        ))
    return found
