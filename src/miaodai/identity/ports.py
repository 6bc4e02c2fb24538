"""The identity domain's port: what its services are given (``miaodai.container.Container`` satisfies it)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Protocol

from fastapi import Depends

from miaodai.core.http import app_platform
from miaodai.core.ports import Platform
from miaodai.identity.kyc_providers import CarrierVerifier, FaceLiveness
from miaodai.identity.sms import SmsProvider


class IdentityPorts(Platform, Protocol):
    """The platform, the SMS gateway and the real-name verification vendors."""

    @property
    def sms(self) -> SmsProvider: ...

    @property
    def carrier(self) -> CarrierVerifier: ...

    @property
    def face(self) -> FaceLiveness: ...

    @property
    def session_ttl(self) -> timedelta: ...


# A router's view of the running service: only what the identity port names.
IdentityPortsDep = Annotated[IdentityPorts, Depends(app_platform)]
