"""Step-up: sensitive endpoints (bind a card, draw money, change phone) need a fresh code.

Put ``RecentStepUp`` on such an endpoint instead of ``CurrentBorrower``::

    @router.post("/v1/cards")
    def bind_card(auth: RecentStepUp, ...): ...

It refuses with ``STEP_UP_REQUIRED`` (403) unless the calling session confirmed a
code within ``step_up_ttl_seconds``: by logging in, or through POST /v1/auth/step-up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends

from miaodai.core.errors import DomainError
from miaodai.core.http import PlatformDep
from miaodai.identity.http import CurrentBorrower
from miaodai.identity.login_errors import LoginErrors
from miaodai.identity.sessions import AuthContext


def step_up_is_fresh(step_up_at: datetime | None, *, now: datetime, ttl: timedelta) -> bool:
    return step_up_at is not None and now - step_up_at <= ttl


def require_recent_step_up(auth: CurrentBorrower, platform: PlatformDep) -> AuthContext:
    ttl_seconds = platform.settings.step_up_ttl_seconds
    if not step_up_is_fresh(auth.step_up_at, now=platform.clock.now(), ttl=timedelta(seconds=ttl_seconds)):
        params: dict[str, object] = {"step_up_ttl_seconds": ttl_seconds}
        if auth.step_up_at is not None:
            params["step_up_at"] = auth.step_up_at.isoformat()
        raise DomainError(LoginErrors.STEP_UP_REQUIRED, params=params)
    return auth


RecentStepUp = Annotated[AuthContext, Depends(require_recent_step_up)]
