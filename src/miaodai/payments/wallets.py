"""Binding e-wallets (支付宝 Alipay, 微信支付 WeChat Pay) as payout and repayment methods.

A wallet is bound by a withholding agreement (支付宝商户代扣协议 / 微信委托代扣) the borrower signs in
the wallet's app (see ``payments.wallet_provider``). Two requests, like a card:

* ``start_wallet_binding`` (verified identity and a fresh step-up, exactly as for a card) asks the
  wallet for a signing request under the binding's public id and hands back the address the app
  opens. Nothing about the wallet account is known yet.
* ``confirm_wallet_binding`` exchanges the authorization code the wallet gave the app — server to
  server, so the app cannot claim an approval the wallet did not give — and creates the payment
  method. Invalid codes count against ``MAX_CODE_ATTEMPTS``; a binding is good for ``BINDING_TTL``.
  A wallet timeout leaves the binding pending and costs no attempt (the same code may be tried
  again). A refusal (declined, frozen, signed under another of our users) ends the binding, and
  confirming it again answers the same refusal.

The wallet account id (Alipay 2088…, WeChat openid) is kept only encrypted, in ``number_enc`` under
the card-number field, so orders send it to the channel exactly like a card number. A keyed
fingerprint of (wallet, account) finds the same wallet bound by several borrowers (counted in the
audit entry, a fraud signal); only the last four characters of the masked login are shown.

The same wallet bound twice by one borrower is refused with ``PAYMENT_WALLET_ALREADY_BOUND`` rather
than answered as a success: the borrower only learns which account it was after approving in the
wallet, and telling them "already bound, nothing new" is the truthful answer (as for a card). The
binding ends ``failed`` with code ``ALREADY_BOUND`` and points at the method it duplicates.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from miaodai.core.errors import DomainError
from miaodai.core.ports import Platform
from miaodai.core.providers import ProviderTimeout
from miaodai.identity.models import Borrower, KycStatus
from miaodai.identity.sessions import AuthContext
from miaodai.payments.errors import PaymentErrors
from miaodai.payments.methods import MAX_CODE_ATTEMPTS, MAX_METHODS, lock_borrower
from miaodai.payments.models import (
    CARD_NUMBER_FIELD,
    BindingStatus,
    PaymentMethod,
    PaymentMethodKind,
    PaymentMethodStatus,
    WalletBinding,
)
from miaodai.payments.ports import PaymentPorts
from miaodai.payments.wallet_provider import WALLET_KINDS, WalletAccount, WalletRefusal, WalletRefused

# Signing happens in another app (switch, log in, read, approve): longer than typing an SMS code.
BINDING_TTL = timedelta(minutes=10)
WALLET_INDEX = "wallet"  # blind-index purpose of the wallet fingerprint
ALREADY_BOUND = "ALREADY_BOUND"  # WalletBinding.code: the borrower has this wallet already
TOO_MANY_CODES = "TOO_MANY_CODES"  # WalletBinding.code: locked after MAX_CODE_ATTEMPTS invalid codes

_NAMES = {PaymentMethodKind.ALIPAY: ("支付宝", "Alipay"), PaymentMethodKind.WECHAT_PAY: ("微信支付", "WeChat Pay")}
_REFUSAL_ERRORS = {
    WalletRefusal.USER_DECLINED: PaymentErrors.WALLET_DECLINED,
    WalletRefusal.ACCOUNT_FROZEN: PaymentErrors.WALLET_ACCOUNT_FROZEN,
    WalletRefusal.AGREEMENT_EXISTS: PaymentErrors.WALLET_AGREEMENT_EXISTS,
}


@dataclass(frozen=True)
class StartedBinding:
    binding: WalletBinding
    authorize_url: str  # the wallet's signing page; not stored (start again if it is lost)


def wallet_params(kind: PaymentMethodKind) -> dict[str, object]:
    """The wallet's names for error messages (per language, not exposed) and its code (exposed)."""
    zh, en = _NAMES[kind]
    return {"kind": kind.value, "_wallet_zh": zh, "_wallet_en": en}


def wallet_fingerprint(ports: Platform, kind: PaymentMethodKind, account_id: str) -> str:
    return ports.vault.blind_index(f"{kind.value}:{account_id}", WALLET_INDEX)


def start_wallet_binding(ports: PaymentPorts, auth: AuthContext, kind: PaymentMethodKind) -> StartedBinding:
    if kind not in WALLET_KINDS:
        raise ValueError(f"{kind} is not an e-wallet")
    with ports.db.autocommit() as session:
        status = session.execute(select(Borrower.kyc_status).where(Borrower.id == auth.borrower_id)).scalar()
        if status is not KycStatus.VERIFIED:
            raise DomainError(PaymentErrors.IDENTITY_REQUIRED)
        active = session.execute(
            select(func.count()).where(PaymentMethod.borrower_id == auth.borrower_id,
                                       PaymentMethod.status == PaymentMethodStatus.ACTIVE)).scalar_one()
    if active >= MAX_METHODS:
        raise DomainError(PaymentErrors.TOO_MANY_METHODS, params={"max": MAX_METHODS})
    token = "wbind_" + secrets.token_urlsafe(18)  # also our reference at the wallet
    try:
        request = ports.wallets.start_agreement(kind, token)
    except ProviderTimeout:
        raise DomainError(PaymentErrors.WALLET_TIMEOUT, params=wallet_params(kind)) from None
    now = ports.clock.now()
    with ports.db.transaction() as session:
        binding = WalletBinding(token=token, borrower_id=auth.borrower_id, kind=kind, status=BindingStatus.PENDING,
                                provider_ref=request.provider_ref, attempts=0, created_at=now,
                                expires_at=now + BINDING_TTL)
        session.add(binding)
        session.flush()
        ports.audit.record(session, actor=auth.actor, action="payment.wallet_binding.started",
                           subject=f"wallet_binding:{binding.id}", details={"kind": kind.value})
    return StartedBinding(binding, request.authorize_url)


def _own_open_binding(session: Session, borrower_id: int, token: str, now: datetime, *,
                      lock: bool = False) -> WalletBinding:
    """The borrower's binding if it can still be confirmed; otherwise the answer it already has."""
    stmt = select(WalletBinding).where(WalletBinding.token == token, WalletBinding.borrower_id == borrower_id)
    binding = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if binding is None:
        raise DomainError(PaymentErrors.WALLET_BINDING_NOT_FOUND)
    if binding.status is BindingStatus.FAILED:
        raise _ended(session, binding)
    if binding.status is not BindingStatus.PENDING:
        raise DomainError(PaymentErrors.WALLET_BINDING_DONE, params={"status": binding.status.value})
    if now >= binding.expires_at:
        raise DomainError(PaymentErrors.WALLET_BINDING_EXPIRED)
    return binding


def _ended(session: Session, binding: WalletBinding) -> DomainError:
    """Why a failed binding failed, as the problem its confirmation answered (asked again, the same)."""
    params = wallet_params(binding.kind)
    if binding.code == TOO_MANY_CODES:
        return DomainError(PaymentErrors.WALLET_BINDING_LOCKED)
    if binding.code == ALREADY_BOUND:
        duplicate = session.get(PaymentMethod, binding.payment_method_id)
        return DomainError(PaymentErrors.WALLET_ALREADY_BOUND, params={**params, "last4": duplicate.last4})
    return DomainError(_REFUSAL_ERRORS[WalletRefusal(binding.code)], params=params)


def confirm_wallet_binding(ports: PaymentPorts, auth: AuthContext, token: str, auth_code: str) -> PaymentMethod:
    now = ports.clock.now()
    with ports.db.autocommit() as session:
        binding = _own_open_binding(session, auth.borrower_id, token, now)
    kind, refusal, account = binding.kind, None, None
    try:  # no connection held while the wallet answers
        account = ports.wallets.complete(kind, binding.provider_ref, auth_code)
    except WalletRefused as exc:
        refusal = exc.reason
    except ProviderTimeout:
        raise DomainError(PaymentErrors.WALLET_TIMEOUT, params=wallet_params(kind)) from None
    with ports.db.transaction() as session:
        binding = _own_open_binding(session, auth.borrower_id, token, now, lock=True)  # a concurrent one may have won
        if refusal is WalletRefusal.AUTH_CODE_INVALID:
            answer: PaymentMethod | DomainError = _count_invalid_code(binding, now)
        elif refusal is not None:
            answer = _end(session, ports, auth, binding, refusal.value, now=now)
        else:
            assert account is not None
            answer = _add_wallet(session, ports, auth, binding, account, now=now)
    if isinstance(answer, DomainError):
        raise answer  # after the binding's new state was committed
    return answer


def _count_invalid_code(binding: WalletBinding, now: datetime) -> DomainError:
    binding.attempts += 1
    if binding.attempts >= MAX_CODE_ATTEMPTS:
        binding.status, binding.code, binding.completed_at = BindingStatus.FAILED, TOO_MANY_CODES, now
        return DomainError(PaymentErrors.WALLET_BINDING_LOCKED)
    return DomainError(PaymentErrors.WALLET_AUTH_CODE_INVALID,
                       params={**wallet_params(binding.kind), "attempts_left": MAX_CODE_ATTEMPTS - binding.attempts})


def _end(session: Session, ports: Platform, auth: AuthContext, binding: WalletBinding, code: str, *,
         now: datetime, duplicate_of: int | None = None) -> DomainError:
    """The binding fails for good with the wallet's (or our) reason, recorded for the fraud checks."""
    binding.status, binding.code, binding.completed_at = BindingStatus.FAILED, code, now
    binding.payment_method_id = duplicate_of
    ports.audit.record(session, actor=auth.actor, action="payment.wallet_binding.failed",
                       subject=f"wallet_binding:{binding.id}",
                       details={"kind": binding.kind.value, "reason": code})
    return _ended(session, binding)


def _add_wallet(session: Session, ports: Platform, auth: AuthContext, binding: WalletBinding,
                account: WalletAccount, *, now: datetime) -> PaymentMethod | DomainError:
    lock_borrower(session, auth.borrower_id)
    fingerprint = wallet_fingerprint(ports, binding.kind, account.account_id)
    active = session.execute(
        select(PaymentMethod).where(PaymentMethod.borrower_id == auth.borrower_id,
                                    PaymentMethod.status == PaymentMethodStatus.ACTIVE)).scalars().all()
    duplicate = next((m for m in active if m.fingerprint == fingerprint), None)
    if duplicate is not None:
        return _end(session, ports, auth, binding, ALREADY_BOUND, now=now, duplicate_of=duplicate.id)
    if len(active) >= MAX_METHODS:  # another binding finished meanwhile; this one stays pending
        raise DomainError(PaymentErrors.TOO_MANY_METHODS, params={"max": MAX_METHODS})
    method = PaymentMethod(
        borrower_id=auth.borrower_id, kind=binding.kind, status=PaymentMethodStatus.ACTIVE,
        token="pm_" + secrets.token_urlsafe(18), bank_code=None, card_type=None, brand=None, bin=None,
        last4=account.masked_login[-4:], number_enc=ports.vault.encrypt(account.account_id, CARD_NUMBER_FIELD),
        fingerprint=fingerprint, reserved_phone_enc=None, agreement_no=account.agreement_no, auto_debit=True,
        is_default=not any(m.is_default for m in active), bin_data_version=None, bound_at=now,
    )
    session.add(method)
    session.flush()
    binding.status, binding.completed_at, binding.payment_method_id = BindingStatus.BOUND, now, method.id
    shared_with = session.execute(
        select(func.count(func.distinct(PaymentMethod.borrower_id)))
        .where(PaymentMethod.fingerprint == fingerprint, PaymentMethod.borrower_id != auth.borrower_id)
    ).scalar_one()
    ports.audit.record(session, actor=auth.actor, action="payment.method.bound",
                       subject=f"payment_method:{method.id}",
                       details={"kind": method.kind.value, "last4": method.last4, "auto_debit": True,
                                "wallet_on_other_borrowers": shared_with})
    return method
