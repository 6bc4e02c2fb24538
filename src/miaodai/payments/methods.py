"""Binding bank cards (绑卡) and managing payment methods: default, list, unbind.

Binding is two requests. ``start_card_binding`` checks the number (Luhn, BIN → bank, debit only,
supported bank), then has the bank verify the four elements and send its code to the card's reserved
phone; ``confirm_card_binding`` checks that code and creates the payment method. No database
connection is held while the bank answers. The card number is kept only encrypted; a keyed
fingerprint finds the same card on other borrowers (recorded in the audit entry as a count, for the
fraud checks), and only BIN + last four digits are ever shown.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from miaodai.core.errors import DomainError
from miaodai.core.ports import Platform
from miaodai.core.providers import ProviderTimeout
from miaodai.identity.login_errors import retry_later
from miaodai.identity.login_service import parse_phone
from miaodai.identity.models import (
    KYC_ID_NUMBER_FIELD,
    KYC_NAME_FIELD,
    PHONE_FIELD,
    PHONE_INDEX,
    Borrower,
    KycIdentity,
    KycStatus,
)
from miaodai.identity.sessions import AuthContext
from miaodai.loans.models import Loan
from miaodai.loans.states import LoanStatus
from miaodai.payments import agreement_cancellations, bins
from miaodai.payments.card_verification import StartCap, VerificationOutcome, count_start
from miaodai.payments.errors import PaymentErrors
from miaodai.payments.models import (
    CARD_INDEX,
    CARD_NUMBER_FIELD,
    RESERVED_PHONE_FIELD,
    BindingStatus,
    CardBinding,
    PaymentMethod,
    PaymentMethodKind,
    PaymentMethodStatus,
)
from miaodai.payments.ports import PaymentPorts

MAX_METHODS = 10
BINDING_TTL = timedelta(minutes=5)  # as long as the bank's code is valid
MAX_CODE_ATTEMPTS = 5
# Loans whose repayments (or payout) need a method on file.
_NEEDS_A_METHOD = (LoanStatus.SIGNED, LoanStatus.DISBURSING, LoanStatus.ACTIVE, LoanStatus.OVERDUE)

_VERIFICATION_ERRORS = {
    VerificationOutcome.ELEMENTS_MISMATCH: PaymentErrors.CARD_ELEMENTS_MISMATCH,
    VerificationOutcome.PHONE_MISMATCH: PaymentErrors.CARD_PHONE_MISMATCH,
    VerificationOutcome.CARD_FROZEN: PaymentErrors.CARD_FROZEN,
}


def _banks_param() -> str:
    return "、".join(bank.name_zh for bank in bins.supported_banks())


def checked_card(number: str) -> bins.CardCheck:
    """The card, or the borrower's error: invalid number, unknown bank, unsupported bank, credit card."""
    check = bins.check_card(number)
    problem = check.problem
    if problem is None:
        return check
    if problem in (bins.CardProblem.NOT_A_NUMBER, bins.CardProblem.CHECK_DIGIT):
        raise DomainError(PaymentErrors.CARD_NUMBER_INVALID)
    params: dict[str, object] = {"banks": _banks_param()}
    if check.info is not None:
        params |= {"bank_code": check.info.bank_code, "bank_name_zh": check.info.bank_name_zh,
                   "bank_name_en": check.info.bank_name_en}
    spec = {bins.CardProblem.UNKNOWN_BANK: PaymentErrors.CARD_BANK_UNKNOWN,
            bins.CardProblem.BANK_NOT_SUPPORTED: PaymentErrors.CARD_BANK_UNSUPPORTED,
            bins.CardProblem.CREDIT_CARD: PaymentErrors.CARD_CREDIT_NOT_ALLOWED}[problem]
    raise DomainError(spec, params=params)


def start_card_binding(ports: PaymentPorts, auth: AuthContext, card_number: str,
                       reserved_phone: str | None) -> CardBinding:
    check = checked_card(card_number)
    info = check.info
    assert info is not None
    vault = ports.vault
    fingerprint = vault.blind_index(check.number, CARD_INDEX)
    now = ports.clock.now()
    with ports.db.autocommit() as session:
        who = session.execute(
            select(Borrower.kyc_status, Borrower.phone_enc, KycIdentity.name_enc, KycIdentity.id_number_enc)
            .join(KycIdentity, KycIdentity.borrower_id == Borrower.id).where(Borrower.id == auth.borrower_id)
        ).first()
        if who is None or who.kyc_status is not KycStatus.VERIFIED:
            raise DomainError(PaymentErrors.IDENTITY_REQUIRED)
        active = session.execute(
            select(PaymentMethod.fingerprint, PaymentMethod.last4)
            .where(PaymentMethod.borrower_id == auth.borrower_id, PaymentMethod.status == PaymentMethodStatus.ACTIVE)
        ).all()
    if any(existing == fingerprint for existing, _ in active):
        raise DomainError(PaymentErrors.CARD_ALREADY_BOUND, params={"last4": check.number[-4:]})
    if len(active) >= MAX_METHODS:
        raise DomainError(PaymentErrors.TOO_MANY_METHODS, params={"max": MAX_METHODS})
    phone = parse_phone(reserved_phone) if reserved_phone else vault.decrypt(who.phone_enc, PHONE_FIELD)
    with ports.db.transaction() as session:  # a refusal raised here rolls its count back
        refused = count_start(session, borrower_id=auth.borrower_id,
                              reserved_phone_bidx=vault.blind_index(phone, PHONE_INDEX), now=now,
                              per_borrower=ports.settings.card_binding_codes_per_borrower_per_day,
                              per_phone=ports.settings.card_binding_codes_per_phone_per_day)
        if refused is not None:
            spec = {StartCap.BORROWER: PaymentErrors.BINDING_CODES_DAILY_LIMIT,
                    StartCap.RESERVED_PHONE: PaymentErrors.BINDING_PHONE_DAILY_LIMIT}[refused.cap]
            raise retry_later(spec, now=now, retry_at=refused.until, limit=refused.limit)
    try:
        started = ports.card_verifier.start(
            name=vault.decrypt(who.name_enc, KYC_NAME_FIELD), id_number=vault.decrypt(who.id_number_enc,
                                                                                      KYC_ID_NUMBER_FIELD),
            card_number=check.number, reserved_phone_e164=phone, bank_name_zh=info.bank_name_zh)
    except ProviderTimeout:
        raise DomainError(PaymentErrors.CARD_VERIFICATION_TIMEOUT) from None
    if started.outcome is not VerificationOutcome.CODE_SENT:
        raise DomainError(_VERIFICATION_ERRORS[started.outcome], params={"last4": check.number[-4:]})
    assert started.provider_ref is not None
    with ports.db.transaction() as session:
        binding = CardBinding(
            token="bind_" + secrets.token_urlsafe(18), borrower_id=auth.borrower_id, status=BindingStatus.PENDING,
            number_enc=vault.encrypt(check.number, CARD_NUMBER_FIELD), fingerprint=fingerprint,
            bank_code=info.bank_code, card_type=info.card_type.value, brand=info.brand, bin=info.bin,
            last4=check.number[-4:], reserved_phone_enc=vault.encrypt(phone, RESERVED_PHONE_FIELD),
            auto_debit=info.auto_debit, provider_ref=started.provider_ref, attempts=0, created_at=now,
            expires_at=now + BINDING_TTL,
        )
        session.add(binding)
        session.flush()
        ports.audit.record(session, actor=auth.actor, action="payment.card_binding.started",
                           subject=f"card_binding:{binding.id}",
                           details={"bank": info.bank_code, "bin": info.bin, "last4": binding.last4})
    return binding


def lock_borrower(session: Session, borrower_id: int) -> None:
    """One change to a borrower's methods at a time: the default flag and the duplicate check stay consistent."""
    session.execute(select(Borrower.id).where(Borrower.id == borrower_id).with_for_update())


def _own_binding(session: Session, borrower_id: int, token: str, *, lock: bool = False) -> CardBinding:
    stmt = select(CardBinding).where(CardBinding.token == token, CardBinding.borrower_id == borrower_id)
    found = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if found is None:
        raise DomainError(PaymentErrors.BINDING_NOT_FOUND)
    return found


def _check_open(binding: CardBinding, now: datetime) -> None:
    if binding.status is BindingStatus.FAILED:
        raise DomainError(PaymentErrors.BINDING_LOCKED)
    if binding.status is not BindingStatus.PENDING:
        raise DomainError(PaymentErrors.BINDING_DONE, params={"status": binding.status.value})
    if now >= binding.expires_at:
        raise DomainError(PaymentErrors.BINDING_EXPIRED)


def confirm_card_binding(ports: PaymentPorts, auth: AuthContext, token: str, code: str) -> PaymentMethod:
    now = ports.clock.now()
    with ports.db.autocommit() as session:
        binding = _own_binding(session, auth.borrower_id, token)
    _check_open(binding, now)
    try:
        matches = ports.card_verifier.confirm(binding.provider_ref, code)
    except ProviderTimeout:
        raise DomainError(PaymentErrors.CARD_VERIFICATION_TIMEOUT) from None
    with ports.db.transaction() as session:
        binding = _own_binding(session, auth.borrower_id, token, lock=True)
        _check_open(binding, now)  # a concurrent confirmation may have finished it meanwhile
        if not matches:
            binding.attempts += 1
            if binding.attempts >= MAX_CODE_ATTEMPTS:
                binding.status, binding.completed_at = BindingStatus.FAILED, now
            refusal = DomainError(PaymentErrors.BINDING_CODE_INVALID if binding.status is BindingStatus.PENDING
                                  else PaymentErrors.BINDING_LOCKED,
                                  params={"attempts_left": MAX_CODE_ATTEMPTS - binding.attempts})
        else:
            refusal = None
            method = _add_card(session, ports, auth, binding, now=now)
    if refusal is not None:
        raise refusal  # after the attempt was counted and committed
    return method


def _add_card(session: Session, ports: Platform, auth: AuthContext, binding: CardBinding, *,
              now: datetime) -> PaymentMethod:
    lock_borrower(session, auth.borrower_id)
    active = session.execute(
        select(PaymentMethod).where(PaymentMethod.borrower_id == auth.borrower_id,
                                    PaymentMethod.status == PaymentMethodStatus.ACTIVE)).scalars().all()
    if any(m.fingerprint == binding.fingerprint for m in active):
        raise DomainError(PaymentErrors.CARD_ALREADY_BOUND, params={"last4": binding.last4})
    method = _card_method(auth.borrower_id, binding.bank_code, binding.card_type, binding.brand, binding.bin,
                          binding.last4, binding.number_enc, binding.fingerprint, binding.reserved_phone_enc,
                          binding.auto_debit, is_default=not any(m.is_default for m in active), now=now)
    session.add(method)
    session.flush()
    binding.status, binding.completed_at, binding.payment_method_id = BindingStatus.BOUND, now, method.id
    shared_with = session.execute(
        select(func.count(func.distinct(PaymentMethod.borrower_id)))
        .where(PaymentMethod.fingerprint == binding.fingerprint, PaymentMethod.borrower_id != auth.borrower_id)
    ).scalar_one()
    ports.audit.record(session, actor=auth.actor, action="payment.method.bound",
                       subject=f"payment_method:{method.id}",
                       details={"kind": method.kind.value, "bank": method.bank_code, "bin": method.bin,
                                "last4": method.last4, "auto_debit": method.auto_debit,
                                "card_on_other_borrowers": shared_with})
    return method


def _card_method(borrower_id: int, bank_code: str, card_type: str, brand: str, bin_: str, last4: str,
                 number_enc: str, fingerprint: str, reserved_phone_enc: str, auto_debit: bool, *, is_default: bool,
                 now: datetime) -> PaymentMethod:
    return PaymentMethod(
        borrower_id=borrower_id, kind=PaymentMethodKind.BANK_CARD, status=PaymentMethodStatus.ACTIVE,
        token="pm_" + secrets.token_urlsafe(18), bank_code=bank_code, card_type=card_type, brand=brand, bin=bin_,
        last4=last4, number_enc=number_enc, fingerprint=fingerprint, reserved_phone_enc=reserved_phone_enc,
        auto_debit=auto_debit, is_default=is_default, bin_data_version=bins.data_version(), bound_at=now,
    )


def record_demo_card(session: Session, ports: Platform, borrower_id: int, number: str, phone: str, *,
                     now: datetime, actor: str) -> PaymentMethod:
    """A card for demo data, as if bound already (the seed has no phone to receive the bank's code)."""
    check = checked_card(number)
    info = check.info
    assert info is not None
    vault = ports.vault
    method = _card_method(borrower_id, info.bank_code, info.card_type.value, info.brand, info.bin, check.number[-4:],
                          vault.encrypt(check.number, CARD_NUMBER_FIELD), vault.blind_index(check.number, CARD_INDEX),
                          vault.encrypt(phone, RESERVED_PHONE_FIELD), info.auto_debit, is_default=True, now=now)
    session.add(method)
    session.flush()
    ports.audit.record(session, actor=actor, action="payment.method.bound", subject=f"payment_method:{method.id}",
                       details={"kind": method.kind.value, "bank": method.bank_code, "bin": method.bin,
                                "last4": method.last4, "source": "demo_seed"})
    return method


def borrower_methods(ports: Platform, borrower_id: int) -> list[PaymentMethod]:
    with ports.db.autocommit() as session:
        return list(session.execute(
            select(PaymentMethod).where(PaymentMethod.borrower_id == borrower_id,
                                        PaymentMethod.status == PaymentMethodStatus.ACTIVE)
            .order_by(PaymentMethod.is_default.desc(), PaymentMethod.id)).scalars())


def _own_method(session: Session, borrower_id: int, method_id: int) -> PaymentMethod:
    method = session.get(PaymentMethod, method_id)
    if method is None or method.borrower_id != borrower_id or method.status is not PaymentMethodStatus.ACTIVE:
        raise DomainError(PaymentErrors.METHOD_NOT_FOUND)
    return method


def set_default(ports: Platform, auth: AuthContext, method_id: int) -> PaymentMethod:
    with ports.db.transaction() as session:
        lock_borrower(session, auth.borrower_id)
        method = _own_method(session, auth.borrower_id, method_id)
        session.execute(update(PaymentMethod).where(PaymentMethod.borrower_id == auth.borrower_id,
                                                    PaymentMethod.id != method.id).values(is_default=False)
                        .execution_options(synchronize_session=False))
        method.is_default = True
        ports.audit.record(session, actor=auth.actor, action="payment.method.default",
                           subject=f"payment_method:{method.id}")
    return method


def unbind(ports: Platform, auth: AuthContext, method_id: int) -> PaymentMethod:
    """Unbind, unless it is the only method left while a loan still needs one (bind another first).
    An e-wallet's withholding agreement is then cancelled at the wallet by the payments worker
    (:mod:`payments.agreement_cancellations`)."""
    now = ports.clock.now()
    with ports.db.transaction() as session:
        lock_borrower(session, auth.borrower_id)
        method = _own_method(session, auth.borrower_id, method_id)
        others = session.execute(
            select(PaymentMethod).where(PaymentMethod.borrower_id == auth.borrower_id, PaymentMethod.id != method.id,
                                        PaymentMethod.status == PaymentMethodStatus.ACTIVE)
            .order_by(PaymentMethod.id)).scalars().all()
        if not others:
            loans = session.execute(
                select(Loan.id).where(Loan.borrower_id == auth.borrower_id, Loan.status.in_(_NEEDS_A_METHOD))
                .order_by(Loan.id)).scalars().all()
            if loans:
                raise DomainError(PaymentErrors.METHOD_IN_USE, params={"loan_ids": ", ".join(map(str, loans))})
        method.status, method.unbound_at = PaymentMethodStatus.UNBOUND, now
        # A wallet's agreement is cancelled at the wallet too: stored here, sent once this commits.
        agreement_cancellations.queue(session, method, now=now)
        if method.is_default:
            method.is_default = False
            if others:
                others[0].is_default = True  # the oldest remaining one takes over
        ports.audit.record(session, actor=auth.actor, action="payment.method.unbound",
                           subject=f"payment_method:{method.id}")
    return method
