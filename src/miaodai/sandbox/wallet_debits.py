"""The sandbox channel as it debits e-wallets: a collection under a withholding agreement that was
cancelled at the wallet (解约) is refused at once with the wallet's own code, as Alipay and WeChat Pay
refuse a deduction under a terminated agreement — nothing is recorded and no money moves.

Everything else is :class:`~miaodai.sandbox.channel.SandboxChannel` unchanged; the wallets' record of
their agreements is :class:`~miaodai.sandbox.wallet.SandboxWallet`'s.
"""

from __future__ import annotations

from typing import Any

from miaodai.payments.channel import ChannelAnswer, ChannelOrder, ChannelStatus, OrderKind
from miaodai.payments.models import PaymentMethodKind
from miaodai.payments.wallet_provider import WALLET_KINDS
from miaodai.sandbox.channel import SandboxChannel
from miaodai.sandbox.wallet import DEBIT_REFUSALS, SandboxWallet


class SandboxWalletChannel(SandboxChannel):
    def __init__(self, *args: Any, wallet: SandboxWallet | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wallet = wallet

    def submit(self, order: ChannelOrder) -> ChannelAnswer:
        kind = PaymentMethodKind(order.account_kind) if order.account_kind in set(WALLET_KINDS) else None
        if (kind is not None and self.wallet is not None and order.kind is OrderKind.COLLECTION and order.agreement_no
                and self.wallet.agreement_cancelled(order.agreement_no)):
            self._sleep(self.latency_seconds)
            code, message = DEBIT_REFUSALS[kind]
            return ChannelAnswer(order.order_no, ChannelStatus.FAILED, None, code, message, None, None)
        return super().submit(order)
