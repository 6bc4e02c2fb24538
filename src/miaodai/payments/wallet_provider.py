"""E-wallet withholding agreements (支付宝商户代扣协议 / 微信委托代扣) as a Protocol.

Binding a wallet is not typing a number: the borrower signs an agreement in the wallet's own app.
Alipay (``alipay.user.agreement.page.sign``) and WeChat Pay (委托代扣 ``entrustweb``) work the same
way, and this module names that shape so the payments layer is written once against it:

1. We ask the wallet for a signing request carrying *our* reference (Alipay's
   ``external_agreement_no``, WeChat's ``contract_code``); it gives back its own reference and the
   address the app opens (:meth:`WalletProvider.start_agreement`).
2. The borrower approves or declines in the wallet. Either way the wallet hands the app a result
   (an authorization code), which the app passes to us.
3. We exchange that code with the wallet, server to server (:meth:`WalletProvider.complete`): only
   the wallet's answer counts, never what the app claims. An approval yields the wallet account
   (Alipay's 2088… user id, WeChat's openid), the login as the wallet masks it, and the agreement
   number we collect under; anything else is a :class:`WalletRefused` with the reason.
4. Unbinding cancels the agreement at the wallet (解约: Alipay ``alipay.user.agreement.unsign``,
   WeChat ``papay/deletecontract``, :meth:`WalletProvider.cancel_agreement`); until the wallet
   confirms, it would still let us debit. Cancelling is idempotent at the wallet: an agreement
   already cancelled answers as cancelled, so a try whose answer was lost is simply sent again.

No I/O here: the sandbox lives in ``miaodai.sandbox.wallet``; a real adapter is one class.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from miaodai.payments.models import PaymentMethodKind

WALLET_KINDS = (PaymentMethodKind.ALIPAY, PaymentMethodKind.WECHAT_PAY)


class WalletRefusal(StrEnum):
    """Why a wallet did not give us an agreement. The values are stored as ``WalletBinding.code``."""

    AUTH_CODE_INVALID = "AUTH_CODE_INVALID"  # not a code the wallet issued for this request
    USER_DECLINED = "USER_DECLINED"  # the borrower tapped "cancel" in the wallet
    ACCOUNT_FROZEN = "ACCOUNT_FROZEN"  # the wallet account is frozen or held by the wallet's risk control
    AGREEMENT_EXISTS = "AGREEMENT_EXISTS"  # the account already has our agreement, for another of our users


class WalletRefused(Exception):
    """The wallet answered, and the answer is no."""

    def __init__(self, reason: WalletRefusal) -> None:
        super().__init__(f"wallet refused: {reason.value}")
        self.reason = reason


class WalletBusy(Exception):
    """The wallet could not do it now (系统繁忙): nothing changed, try again later."""

    def __init__(self, code: str) -> None:
        super().__init__(f"wallet busy: {code}")
        self.code = code


@dataclass(frozen=True)
class AgreementRequest:
    provider_ref: str  # the wallet's id for this signing request (at most 64 characters)
    authorize_url: str  # what the app opens: the wallet's signing page


@dataclass(frozen=True)
class WalletAccount:
    """A signed agreement. ``account_id`` is personal data: keep it only encrypted, never log it."""

    account_id: str  # Alipay user id (2088 + 12 digits) or WeChat openid
    masked_login: str  # the login as the wallet shows it to merchants, e.g. 138****8001
    agreement_no: str  # what collections are made under


class WalletProvider(Protocol):
    def start_agreement(self, kind: PaymentMethodKind, our_ref: str) -> AgreementRequest:
        """A signing request for our reference ``our_ref``; raises ProviderTimeout."""
        ...

    def complete(self, kind: PaymentMethodKind, provider_ref: str, auth_code: str) -> WalletAccount:
        """Exchange the app's authorization code for the signed agreement.

        Raises :class:`WalletRefused` when the wallet says no (including a code it did not issue for
        ``provider_ref``), and ProviderTimeout when it does not answer (the outcome is unknown: the
        same code may be exchanged again)."""
        ...

    def cancel_agreement(self, kind: PaymentMethodKind, agreement_no: str) -> None:
        """Cancel the withholding agreement ``agreement_no`` (解约). Returns once the wallet says it is
        cancelled — also when it already was. Raises :class:`WalletBusy` (a transient error: nothing
        changed) and ProviderTimeout (unknown: it may be cancelled); either way, ask again later."""
        ...
