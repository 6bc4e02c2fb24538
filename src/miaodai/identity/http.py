"""The borrower's bearer token as FastAPI dependencies, for every domain's routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from miaodai.core.errors import DomainError, Errors
from miaodai.core.http import PlatformDep, bearer_token
from miaodai.core.openapi import bearer_auth
from miaodai.core.ports import Platform
from miaodai.identity.sessions import AuthContext, authenticate


def _unauthenticated() -> DomainError:
    return DomainError(Errors.UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})


def borrower_of(platform: Platform, token: str) -> AuthContext:
    """The borrower a bearer token belongs to, or 401: a read, and now and then one UPDATE of last_seen_at."""
    with platform.db.autocommit() as session:
        context = authenticate(session, token, pepper=platform.settings.session_pepper, now=platform.clock.now())
    if context is None:
        raise _unauthenticated()
    return context


@bearer_auth  # the OpenAPI document's bearer scheme on every operation that depends on it
async def _bearer(request: Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise _unauthenticated()
    return token


# The request's bearer token, or 401 before its body is looked at. An endpoint that checks the token
# itself, in the same threadpool hand-off as its own work (``borrower_of``), takes this one.
BearerToken = Annotated[str, Depends(_bearer)]


def current_borrower(token: BearerToken, platform: PlatformDep) -> AuthContext:
    return borrower_of(platform, token)


CurrentBorrower = Annotated[AuthContext, Depends(current_borrower)]
