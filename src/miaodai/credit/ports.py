"""The credit domain's port: what its services are given (``miaodai.container.Container`` satisfies it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import Depends

from miaodai.core.http import app_platform
from miaodai.credit.bureau import CreditBureau
from miaodai.credit.carrier_data import CarrierData
from miaodai.loans.ports import LoanPorts

if TYPE_CHECKING:
    from miaodai.credit.registry import PolicyCache


class CreditPorts(LoanPorts, Protocol):
    """Loans' port (a decision opens a line through loans' services), the credit bureau, the consented carrier
    data, and the active policy with its models (``PolicyCache``, which also serves loans' delinquency port)."""

    @property
    def bureau(self) -> CreditBureau: ...

    @property
    def carrier_data(self) -> CarrierData: ...

    @property
    def credit_policy(self) -> PolicyCache: ...


# The credit routers' dependency: the running service, seen through the credit port only.
CreditPortsDep = Annotated[CreditPorts, Depends(app_platform)]
