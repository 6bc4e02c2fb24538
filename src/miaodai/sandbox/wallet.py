"""A sandbox e-wallet (Alipay, WeChat Pay) that signs withholding agreements like the real ones.

It implements ``miaodai.payments.wallet_provider.WalletProvider``: a signing request gets a
reference and the address of a signing "page" (``/sandbox/wallets/{provider_ref}``, see
``sandbox/api_wallet.py``) where the borrower logs in with a phone number and approves or declines;
the page hands back an authorization code, which the service exchanges with :meth:`complete`.

Stateless, so every worker process answers alike: the reference carries a keyed MAC (the page can
tell a request it issued), and the authorization code is the decision and login sealed with
AES-GCM under a key derived from the shared secret, bound to the wallet and the reference (a code
issued for one request is worthless for another, and the login never travels in the clear).
Account ids are keyed hashes of the login, so the same login is the same wallet account for every
borrower who binds it, as with a real wallet.

Outcomes (docs/sandbox.md, "E-wallets"): the decision on the page, then the login —
``13900000041`` a frozen / risk-controlled account, ``13900000042`` an account that already has our
agreement under another of our users, ``13900000043`` an exchange that never answers; any other
mainland mobile number signs.

Cancelling an agreement (解约) needs memory, so the wallet keeps its own record of the agreements it
signed (``sandbox_wallet_agreements``, given a database): a cancelled one stays cancelled, and
:meth:`agreement_cancelled` tells the sandbox channel to refuse debits under it. How cancelling answers
is chosen by the login the agreement was signed with: ``13900000044`` the wallet is busy (``SYSTEM_ERROR``)
the first two times, ``13900000045`` the first call cancels but its answer never comes (a timeout);
any other login cancels at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from miaodai.core.clock import Clock
from miaodai.core.db import Database
from miaodai.core.masking import mask_phone
from miaodai.core.providers import SandboxParty
from miaodai.payments.models import PaymentMethodKind
from miaodai.payments.wallet_provider import (
    AgreementRequest,
    WalletAccount,
    WalletBusy,
    WalletRefusal,
    WalletRefused,
)
from miaodai.sandbox.models import SandboxWalletAgreement


class _Cancelling(StrEnum):
    AT_ONCE = "at_once"
    BUSY = "busy"
    TIMEOUT = "timeout"


class Decision(StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"


# Documented test logins (national mainland mobile numbers); any other number signs.
LOGIN_FROZEN = "13900000041"
LOGIN_AGREEMENT_EXISTS = "13900000042"
LOGIN_TIMEOUT = "13900000043"
LOGIN_CANCEL_BUSY = "13900000044"  # cancelling answers SYSTEM_ERROR twice, then cancels
LOGIN_CANCEL_TIMEOUT = "13900000045"  # the first cancel is done, but its answer is lost (a timeout)
CANCEL_BUSY_TIMES = 2
CODE_BUSY = "SYSTEM_ERROR"
# What a debit under a cancelled agreement answers, in each wallet's own words.
DEBIT_REFUSALS = {PaymentMethodKind.ALIPAY: ("AGREEMENT_STATUS_NOT_NORMAL", "代扣协议状态非正常（已解约）"),
                  PaymentMethodKind.WECHAT_PAY: ("CONTRACT_NOT_EXIST", "委托代扣协议不存在或已解约")}
_REFUSALS = {LOGIN_FROZEN: WalletRefusal.ACCOUNT_FROZEN, LOGIN_AGREEMENT_EXISTS: WalletRefusal.AGREEMENT_EXISTS}
_CANCELLING = {LOGIN_CANCEL_BUSY: _Cancelling.BUSY, LOGIN_CANCEL_TIMEOUT: _Cancelling.TIMEOUT}

_PREFIXES = {PaymentMethodKind.ALIPAY: "SBXALI", PaymentMethodKind.WECHAT_PAY: "SBXWX"}
_NAMES = {PaymentMethodKind.ALIPAY: "sandbox alipay", PaymentMethodKind.WECHAT_PAY: "sandbox wechat pay"}
_NONCE = 12  # AES-GCM nonce bytes
_REF_MAC = 12  # hex characters of the reference's MAC
_DECISION_TAGS = {Decision.APPROVE: "A", Decision.DECLINE: "D"}


class UnknownRequest(LookupError):
    """Not a signing request this wallet issued."""


@dataclass(frozen=True)
class SigningPage:
    provider_ref: str
    kind: PaymentMethodKind


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _national(login: str) -> str:
    return login.removeprefix("+86")


class SandboxWallet(SandboxParty):
    """Both sandbox wallets; ``kind`` says which one a request is for."""

    def __init__(self, secret: bytes, base_url: str, *, db: Database | None = None, clock: Clock | None = None,
                 **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self._db, self._clock = db, clock
        self._secret = secret
        self._base_url = base_url.rstrip("/")
        self._aead = AESGCM(self._derive("auth-code-key"))

    # -- the Protocol ----------------------------------------------------------------------------

    def start_agreement(self, kind: PaymentMethodKind, our_ref: str) -> AgreementRequest:
        self._answer_after_latency()
        body = _PREFIXES[kind] + secrets.token_hex(10)
        provider_ref = body + self._ref_mac(body)
        return AgreementRequest(provider_ref, f"{self._base_url}/sandbox/wallets/{provider_ref}")

    def complete(self, kind: PaymentMethodKind, provider_ref: str, auth_code: str) -> WalletAccount:
        decision, login = self._open_code(kind, provider_ref, auth_code)
        if login == LOGIN_TIMEOUT and decision is Decision.APPROVE:
            raise self._time_out(_NAMES[kind])
        self._answer_after_latency()
        if decision is Decision.DECLINE:
            raise WalletRefused(WalletRefusal.USER_DECLINED)
        refusal = _REFUSALS.get(login)
        if refusal is not None:
            raise WalletRefused(refusal)
        agreement_no = self._agreement_no(kind, provider_ref)
        self._remember(kind, agreement_no, _CANCELLING.get(login, _Cancelling.AT_ONCE))
        return WalletAccount(account_id=self.account_id(kind, login), masked_login=mask_phone(login),
                             agreement_no=agreement_no)

    def cancel_agreement(self, kind: PaymentMethodKind, agreement_no: str) -> None:
        if self._db is None:
            raise RuntimeError("the sandbox wallet needs a database to remember agreements")
        with self._db.transaction() as session:
            row = session.get(SandboxWalletAgreement, agreement_no, with_for_update=True)
            if row is None or row.kind != kind.value:  # not one this wallet signed: nothing to cancel
                self._answer_after_latency()
                return
            row.cancel_calls += 1
            calls, behaviour = row.cancel_calls, _Cancelling(row.behaviour)
            if behaviour is _Cancelling.BUSY and calls <= CANCEL_BUSY_TIMES:
                busy = True
            else:
                busy = False
                row.cancelled_at = row.cancelled_at or self._now()
        if busy:
            self._answer_after_latency()
            raise WalletBusy(CODE_BUSY)
        if behaviour is _Cancelling.TIMEOUT and calls == 1:
            raise self._time_out(_NAMES[kind])  # cancelled at the wallet, but the answer never comes
        self._answer_after_latency()

    def agreement_cancelled(self, agreement_no: str) -> bool:
        """Whether the agreement was cancelled at the wallet (then it can no longer be debited)."""
        if self._db is None:
            return False
        with self._db.autocommit() as session:
            row = session.get(SandboxWalletAgreement, agreement_no)
            return row is not None and row.cancelled_at is not None

    # -- the signing page ------------------------------------------------------------------------

    def page(self, provider_ref: str) -> SigningPage:
        """The request behind ``provider_ref``, or UnknownRequest if this wallet did not issue it."""
        body, mac = provider_ref[:-_REF_MAC], provider_ref[-_REF_MAC:]
        kind = next((k for k, prefix in _PREFIXES.items() if body.startswith(prefix)), None)
        if kind is None or not hmac.compare_digest(mac.encode(), self._ref_mac(body).encode()):
            raise UnknownRequest(provider_ref)
        return SigningPage(provider_ref, kind)

    def authorize(self, provider_ref: str, login: str, decision: Decision) -> str:
        """What the wallet hands the app after the borrower decided: the authorization code."""
        page = self.page(provider_ref)
        plaintext = (_DECISION_TAGS[decision] + _national(login)).encode()
        nonce = secrets.token_bytes(_NONCE)
        return _b64e(nonce + self._aead.encrypt(nonce, plaintext, self._bound_to(page.kind, provider_ref)))

    def account_id(self, kind: PaymentMethodKind, login: str) -> str:
        """The wallet account of ``login``: an Alipay user id (2088 + 12 digits) or a WeChat openid."""
        digest = self._digest(f"account:{kind.value}:{_national(login)}")
        if kind is PaymentMethodKind.ALIPAY:
            return f"2088{int.from_bytes(digest[:8], 'big') % 10**12:012d}"
        return "o" + _b64e(digest)[:27]

    # -- internals -------------------------------------------------------------------------------

    def _remember(self, kind: PaymentMethodKind, agreement_no: str, cancelling: _Cancelling) -> None:
        """Record a signed agreement (exchanging the same code again names the same one: kept once)."""
        if self._db is None:
            return
        with self._db.transaction() as session:
            if session.get(SandboxWalletAgreement, agreement_no) is None:
                session.add(SandboxWalletAgreement(agreement_no=agreement_no, kind=kind.value,
                                                   behaviour=cancelling.value, signed_at=self._now(), cancel_calls=0))

    def _now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    def _open_code(self, kind: PaymentMethodKind, provider_ref: str, auth_code: str) -> tuple[Decision, str]:
        try:
            raw = _b64d(auth_code)
            plaintext = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], self._bound_to(kind, provider_ref)).decode()
        except (binascii.Error, ValueError, InvalidTag):
            self._answer_after_latency()
            raise WalletRefused(WalletRefusal.AUTH_CODE_INVALID) from None
        tag, login = plaintext[:1], plaintext[1:]
        return next(d for d, t in _DECISION_TAGS.items() if t == tag), login

    def _agreement_no(self, kind: PaymentMethodKind, provider_ref: str) -> str:
        """One agreement per signing request: exchanging its code again names the same agreement."""
        number = int.from_bytes(self._digest(f"agreement:{provider_ref}")[:10], "big")
        if kind is PaymentMethodKind.ALIPAY:
            return f"2{number % 10**19:019d}"  # 20 digits, like Alipay's agreement_no
        return f"3{number % 10**17:017d}"  # 18 digits, like WeChat's contract_id

    @staticmethod
    def _bound_to(kind: PaymentMethodKind, provider_ref: str) -> bytes:
        return f"{kind.value}:{provider_ref}".encode()

    def _ref_mac(self, body: str) -> str:
        return self._digest(f"ref:{body}").hex()[:_REF_MAC]

    def _digest(self, message: str) -> bytes:
        return hmac.new(self._secret, message.encode(), hashlib.sha256).digest()

    def _derive(self, purpose: str) -> bytes:
        return self._digest(f"key:{purpose}")


__all__ = ["CANCEL_BUSY_TIMES", "DEBIT_REFUSALS", "LOGIN_AGREEMENT_EXISTS", "LOGIN_CANCEL_BUSY",
           "LOGIN_CANCEL_TIMEOUT", "LOGIN_FROZEN", "LOGIN_TIMEOUT", "Decision", "SandboxWallet", "SigningPage",
           "UnknownRequest"]
