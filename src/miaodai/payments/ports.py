"""The payments domain's port: what its services are given (``miaodai.container.Container`` satisfies it)."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from miaodai.core.http import app_platform
from miaodai.loans.ports import LoanPorts
from miaodai.payments.card_verification import CardVerifier
from miaodai.payments.channel import PaymentChannel
from miaodai.payments.wallet_provider import WalletProvider


class PaymentPorts(LoanPorts, Protocol):
    """Loans' port (payments post repayments and settle payouts through loans' services), the payment channel,
    the e-wallets and the bank's four-element card verification."""

    @property
    def channel(self) -> PaymentChannel: ...

    @property
    def wallets(self) -> WalletProvider: ...

    @property
    def card_verifier(self) -> CardVerifier: ...


# The payments routers' dependency: the running service, seen through the payments port only.
PaymentPortsDep = Annotated[PaymentPorts, Depends(app_platform)]
