"""One borrower's whole picture for staff (客户视图): identity and KYC, consents, devices and sessions, credit
applications and decisions, lines, loans with schedules, statements and contracts, payment methods, payout and
collection orders with their timelines, messages sent, and the borrower's audit trail — masked.

Each domain reads its own tables (``identity``, ``loans``, ``credit``, ``payments`` ``read_models``); this module
composes them in one transaction and shapes plain dataclasses a page renders as they are. Personal data is masked
here (``core.masking``): phone, name and ID number are decrypted only to be masked, a card shows BIN + last 4, a
birth date is not shown at all (it is in the ID number's masked digits). Seeing more is an audited reveal
(:mod:`miaodai.backoffice.reveal`). Free text people typed (a borrower's note, a refund note) passes through the
log scrubber first, in case it holds a phone or ID number.

The read issues a fixed number of statements however many loans, orders or entries there are (no N+1):
``tests/integration/test_customer360.py`` counts them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from miaodai.backoffice.customer_errors import CustomerErrors
from miaodai.backoffice.search import MaskedIdentity, masked_identity
from miaodai.core.audit import AuditEntry
from miaodai.core.clock import business_date
from miaodai.core.errors import DomainError
from miaodai.core.logging import scrub
from miaodai.core.ports import Platform
from miaodai.credit.read_models import ApplicationPicture, applications_picture
from miaodai.identity.models import BorrowerStatus, KycStatus
from miaodai.identity.read_models import (
    ConsentRow,
    DeviceRow,
    FlagRow,
    IdentityPicture,
    KycAttemptRow,
    SessionRow,
    identity_picture,
)
from miaodai.identity.staff_audit import entry_details
from miaodai.identity.staff_service import StaffContext
from miaodai.loans.read_models import LoanPicture, LoansPicture, loans_picture
from miaodai.payments import bins
from miaodai.payments.models import PaymentMethodKind
from miaodai.payments.read_models import PaymentsPicture, payments_picture

AUDIT_ENTRIES = 500  # the newest entries of the borrower's trail shown


def _rate(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value).normalize()


def _free_text(text: str | None) -> str | None:
    return None if text is None else scrub(text)


# -- identity ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentitySection:
    masked: MaskedIdentity
    kyc_status: KycStatus
    gender: str | None
    age: int | None
    region_code: str | None  # the ID number's first six digits, shown in its mask too
    carrier_verified_at: datetime | None
    face_verified_at: datetime | None
    checks: list[KycAttemptRow]  # kind (identity | face), outcome (passed, or the refusal's code), created_at
    flags: list[FlagRow]


# -- credit -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReasonEntry:
    code: str
    message_zh: str
    message_en: str


@dataclass(frozen=True)
class ReviewEntry:
    case_id: int
    kind: str
    status: str
    recommendation: str
    borrower_note: str | None
    outcome: str | None
    outcome_reason: str | None
    decided_by: int | None
    decided_at: datetime | None
    second_by: int | None
    second_at: datetime | None


@dataclass(frozen=True)
class ApplicationEntry:
    application_id: int
    created_at: datetime
    decision: str  # what the automated decision said
    status: str  # where it stands now (a reviewer may have changed it)
    ruleset_version: str
    model_id: str | None
    challenger_model_id: str | None
    score: Decimal | None
    pd: Decimal | None
    grade: str | None
    bureau_status: str
    reasons: list[ReasonEntry]  # what the borrower was told
    rules_fired: list[dict[str, Any]]  # every rule that fired, with its outcome (findings)
    offered_limit_fen: int | None
    offered_rate: Decimal | None
    reapply_on: date | None
    credit_line_id: int | None
    reviews: list[ReviewEntry]


# -- loans ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineEntry:
    line_id: int
    status: str
    limit_fen: int
    available_fen: int
    annual_rate: Decimal
    risk_grade: str
    expires_on: date
    source: str
    created_at: datetime


@dataclass(frozen=True)
class LineProposalEntry:
    proposal_id: int
    status: str
    limit_fen: int
    annual_rate: Decimal
    reason: str
    proposed_by: int
    proposed_at: datetime
    decided_by: int | None
    decided_at: datetime | None


@dataclass(frozen=True)
class InstallmentEntry:
    period: int
    due_date: date
    principal_fen: int
    interest_fen: int
    fee_fen: int
    penalty_fen: int
    due_fen: int
    paid_fen: int
    paid_off_on: date | None
    state: str  # paid | overdue | due | pending


@dataclass(frozen=True)
class ContractEntry:
    contract_no: str
    template_version: str
    sha256: str
    signed_at: datetime | None
    key_id: str | None


@dataclass(frozen=True)
class StatementEntry:
    entry_id: int
    business_date: date
    kind: str
    name_zh: str
    name_en: str
    cash_fen: int
    principal_fen: int  # the balances after the entry
    interest_fen: int
    fee_fen: int
    penalty_fen: int
    overpayment_fen: int


@dataclass(frozen=True)
class RepaymentEntry:
    repayment_id: int
    kind: str  # repayment | reversal
    amount_fen: int
    channel: str
    received_on: date
    posted_at: datetime


@dataclass(frozen=True)
class LoanEntry:
    loan_id: int
    loan_no: str
    status: str
    line_id: int
    principal_fen: int
    principal_outstanding_fen: int
    overpayment_fen: int
    method: str
    term_months: int | None
    term_days: int | None
    annual_rate: Decimal
    apr: Decimal
    days_past_due: int
    start_date: date
    requested_at: datetime
    signed_at: datetime | None
    disbursed_at: datetime | None
    closed_at: datetime | None
    installments: list[InstallmentEntry]
    contract: ContractEntry | None
    statement: list[StatementEntry]
    repayments: list[RepaymentEntry]


# -- payments ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodEntry:
    method_id: int
    kind: str
    status: str
    bank_name_zh: str | None
    bank_name_en: str | None
    card_type: str | None
    masked_number: str  # a card: BIN + **** + last 4; a wallet: **** + the login's last 4
    auto_debit: bool
    is_default: bool
    bound_at: datetime
    unbound_at: datetime | None


@dataclass(frozen=True)
class OrderEvent:
    at: datetime
    event: str
    status: str
    code: str | None
    detail: str | None


@dataclass(frozen=True)
class OrderEntry:
    order_no: str
    kind: str  # payout | collection
    purpose: str  # disbursement | repayment | auto_debit | refund
    status: str
    amount_fen: int
    loan_id: int | None
    method_id: int
    channel: str
    code: str | None
    message: str | None
    note: str | None
    created_at: datetime
    sent_at: datetime | None
    finished_at: datetime | None
    settled_at: datetime | None
    timeline: list[OrderEvent]


# -- messages and the audit trail -------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageEntry:
    """A message sent to the borrower's phone that we keep a record of: a one-time code (its purpose, never the
    code) or a repayment reminder."""

    at: datetime | None  # a reminder queued but not sent yet has none
    kind: str  # code.login | code.step_up | code.contract_sign | reminder.due_in_3 | reminder.overdue ...
    channel: str  # sms | voice
    status: str  # codes: pending | sent | failed, and "used" once redeemed; reminders: sent | queued
    loan_id: int | None
    amount_fen: int | None


@dataclass(frozen=True)
class AuditItem:
    entry_id: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any] | None
    sealed: bool


@dataclass(frozen=True)
class Customer360:
    borrower_id: int
    status: BorrowerStatus
    registered_at: datetime
    identity: IdentitySection
    consents: list[ConsentRow]  # every grant, newest first, revoked ones too: the history
    devices: list[DeviceRow]
    sessions: list[SessionRow]
    applications: list[ApplicationEntry]
    lines: list[LineEntry]
    line_proposals: list[LineProposalEntry]
    loans: list[LoanEntry]
    payment_methods: list[MethodEntry]
    orders: list[OrderEntry]
    messages: list[MessageEntry]
    audit_trail: list[AuditItem]
    revealable: list[str]  # the fields an audited reveal can show (backoffice.reveal.RevealField)


# -- composing --------------------------------------------------------------------------------------------


VIEWED = "customer.viewed"  # the audit action of opening a borrower's picture


def customer360(ports: Platform, borrower_id: int, *, viewer: StaffContext, via: str) -> Customer360:
    """The borrower's whole picture, masked (``CUSTOMER_NOT_FOUND`` when there is no such borrower). The caller
    checks ``borrower.read``.

    Opening it is audited in the same transaction, as searches and reveals are: ``customer.viewed`` by the
    viewer (``staff:<id>``) about ``borrower:<id>``, with the viewer's roles and ``via`` (``console`` or
    ``api``) — who, whose and when, never what was shown. The trail on the picture is read before this view's
    entry is written."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        identity = identity_picture(session, borrower_id, now=now)
        if identity is None:
            raise DomainError(CustomerErrors.NOT_FOUND, params={"borrower_id": borrower_id})
        credit = applications_picture(session, borrower_id)
        loans = loans_picture(session, borrower_id)
        payments = payments_picture(session, borrower_id)
        trail = _audit_trail(session, borrower_id, loans, credit, payments)
        ports.audit.record(session, actor=viewer.actor, action=VIEWED, subject=f"borrower:{borrower_id}",
                           details={"roles": sorted(viewer.roles), "via": via})
    today = business_date(now)
    row = identity.borrower
    return Customer360(
        borrower_id=row.borrower_id, status=row.status, registered_at=row.created_at,
        identity=_identity(ports, identity, today),
        consents=identity.consents, devices=identity.devices, sessions=identity.sessions,
        applications=[_application(a) for a in credit],
        lines=[LineEntry(li.id, li.status.value, li.limit_fen, li.available_fen, Decimal(li.annual_rate).normalize(),
                         li.risk_grade, li.expires_on, li.source, li.created_at) for li in loans.lines],
        line_proposals=[LineProposalEntry(p.id, p.status.value, p.limit_fen, Decimal(p.annual_rate).normalize(),
                                          scrub(p.reason), p.proposed_by, p.proposed_at, p.decided_by, p.decided_at)
                        for p in loans.proposals],
        loans=[_loan(picture, today) for picture in loans.loans],
        payment_methods=[_method(m) for m in payments.methods],
        orders=[_order(o.order, o.events) for o in payments.orders],
        messages=_messages(identity, loans),
        audit_trail=trail,
        revealable=_revealable(identity, payments),
    )


def _identity(ports: Platform, identity: IdentityPicture, today: date) -> IdentitySection:
    row = identity.borrower
    age = None
    if row.birth_date is not None:
        born = row.birth_date
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return IdentitySection(
        masked=masked_identity(ports.vault, row), kyc_status=row.kyc_status, gender=row.gender, age=age,
        region_code=row.region_code, carrier_verified_at=row.carrier_verified_at,
        face_verified_at=row.face_verified_at,
        checks=identity.kyc_attempts, flags=identity.flags,
    )


def _json_list(text: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _application(picture: ApplicationPicture) -> ApplicationEntry:
    a = picture.application
    return ApplicationEntry(
        application_id=a.id, created_at=a.created_at, decision=a.decision.value, status=a.status.value,
        ruleset_version=a.ruleset_version, model_id=a.model_id, challenger_model_id=a.challenger_model_id,
        score=_rate(a.score), pd=_rate(a.pd), grade=a.grade, bureau_status=a.bureau_status,
        reasons=[ReasonEntry(str(r.get("code", "")), str(r.get("message_zh", "")), str(r.get("message_en", "")))
                 for r in _json_list(a.reasons)],
        rules_fired=_json_list(a.findings), offered_limit_fen=a.offered_limit_fen, offered_rate=_rate(a.offered_rate),
        reapply_on=a.reapply_on, credit_line_id=a.credit_line_id,
        reviews=[ReviewEntry(c.id, c.kind.value, c.status.value, c.recommendation, _free_text(c.borrower_note),
                             c.outcome, _free_text(c.outcome_reason), c.decided_by, c.decided_at, c.second_by,
                             c.second_at) for c in picture.reviews],
    )


def _installment_state(due_fen: int, paid_fen: int, due_date: date, today: date) -> str:
    if paid_fen >= due_fen:
        return "paid"
    if due_date < today:
        return "overdue"
    return "due" if due_date == today else "pending"


def _loan(picture: LoanPicture, today: date) -> LoanEntry:
    loan, contract = picture.loan, picture.contract
    installments = []
    for i in picture.installments:
        due = i.principal_fen + i.interest_fen + i.fee_fen + i.penalty_fen
        paid = i.principal_paid_fen + i.interest_paid_fen + i.fee_paid_fen + i.penalty_paid_fen
        installments.append(InstallmentEntry(
            i.period, i.due_date, i.principal_fen, i.interest_fen, i.fee_fen, i.penalty_fen, due, paid,
            i.paid_off_on, _installment_state(due, paid, i.due_date, today)))
    return LoanEntry(
        loan_id=loan.id, loan_no=loan.loan_no, status=loan.status.value, line_id=loan.credit_line_id,
        principal_fen=loan.principal_fen, principal_outstanding_fen=loan.principal_outstanding_fen,
        overpayment_fen=loan.overpayment_fen, method=loan.method.value, term_months=loan.term_months,
        term_days=loan.term_days, annual_rate=Decimal(loan.annual_rate).normalize(),
        apr=Decimal(loan.apr).normalize(), days_past_due=loan.days_past_due, start_date=loan.start_date,
        requested_at=loan.requested_at, signed_at=loan.signed_at, disbursed_at=loan.disbursed_at,
        closed_at=loan.closed_at, installments=installments,
        contract=ContractEntry(contract.contract_no, contract.template_version, contract.sha256, contract.signed_at,
                               contract.key_id) if contract is not None else None,
        statement=[StatementEntry(s.entry_id, s.business_date, s.kind, s.name_zh, s.name_en, s.cash_fen,
                                  s.balance.principal_fen, s.balance.interest_fen, s.balance.fee_fen,
                                  s.balance.penalty_fen, s.balance.overpayment_fen) for s in picture.statement],
        repayments=[RepaymentEntry(r.id, r.kind, r.amount_fen, r.channel, r.received_on, r.posted_at)
                    for r in picture.repayments],
    )


def _method(m: Any) -> MethodEntry:
    bank = bins.bank(m.bank_code) if m.bank_code else None
    last4 = m.last4 or ""
    masked = f"{m.bin or ''}****{last4}" if m.kind is PaymentMethodKind.BANK_CARD else f"****{last4}"
    return MethodEntry(
        method_id=m.id, kind=m.kind.value, status=m.status.value,
        bank_name_zh=bank.name_zh if bank else None, bank_name_en=bank.name_en if bank else None,
        card_type=m.card_type, masked_number=masked, auto_debit=m.auto_debit, is_default=m.is_default,
        bound_at=m.bound_at, unbound_at=m.unbound_at,
    )


def _order(o: Any, events: list[Any]) -> OrderEntry:
    return OrderEntry(
        order_no=o.order_no, kind=o.kind, purpose=o.purpose, status=o.status.value, amount_fen=o.amount_fen,
        loan_id=o.loan_id, method_id=o.payment_method_id, channel=o.channel, code=o.code,
        message=_free_text(o.message), note=_free_text(o.note), created_at=o.created_at, sent_at=o.sent_at,
        finished_at=o.finished_at, settled_at=o.settled_at,
        timeline=[OrderEvent(e.at, e.event, e.status, e.code, _free_text(e.detail)) for e in events],
    )


def _messages(identity: IdentityPicture, loans: LoansPicture) -> list[MessageEntry]:
    found = [MessageEntry(c.created_at, f"code.{c.purpose.value}", c.channel.value,
                          "used" if c.consumed_at else c.delivery.value, None, None) for c in identity.codes_sent]
    for picture in loans.loans:
        found += [MessageEntry(r.sent_at, f"reminder.{r.kind}", "sms", "sent" if r.sent_at else "queued",
                               picture.loan.id, r.amount_fen) for r in picture.reminders]
    # Newest first; a reminder still queued (no time yet) on top.
    return sorted(found, key=lambda m: m.at.timestamp() if m.at else float("inf"), reverse=True)


def _audit_trail(session: Session, borrower_id: int, loans: LoansPicture, credit: list[ApplicationPicture],
                 payments: PaymentsPicture) -> list[AuditItem]:
    """The newest entries about the borrower: their own actions and those on them, their loans, applications,
    lines and payment methods (by the entries' subject)."""
    subjects = [f"borrower:{borrower_id}"]
    subjects += [f"loan:{p.loan.id}" for p in loans.loans]
    subjects += [f"credit_application:{a.application.id}" for a in credit]
    subjects += [f"credit_line:{line.id}" for line in loans.lines]
    subjects += [f"credit_line_proposal:{p.id}" for p in loans.proposals]
    subjects += [f"payment_method:{m.id}" for m in payments.methods]
    condition = or_(AuditEntry.subject.in_(subjects), AuditEntry.actor == f"borrower:{borrower_id}")
    entries = session.scalars(select(AuditEntry).where(condition).order_by(AuditEntry.id.desc()).limit(AUDIT_ENTRIES))
    return [AuditItem(e.id, e.occurred_at, e.actor, e.action, e.subject, entry_details(e), e.seq is not None)
            for e in entries]


def _revealable(identity: IdentityPicture, payments: PaymentsPicture) -> list[str]:
    fields = ["phone"]
    if identity.borrower.name_enc:
        fields += ["full_name", "id_number"]
    if any(m.kind is PaymentMethodKind.BANK_CARD and m.number_enc for m in payments.methods):
        fields.append("card_number")
    return fields
