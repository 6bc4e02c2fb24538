"""FastAPI dependencies shared by the domain routers (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from miaodai.container import Container
from miaodai.core.errors import DomainError, Errors
from miaodai.core.fields import ROW_ID_MAX, RowId, RowIdField  # noqa: F401  (the routers import them from here)
from miaodai.core.http import client_address
from miaodai.core.openapi import bearer_auth
from miaodai.identity.sessions import AuthContext, authenticate


def get_container(request: Request) -> Container:
    return request.app.state.container


# A dependency that does no I/O is declared ``async def``: FastAPI runs a plain ``def`` dependency in the
# threadpool, a hand-off per request that costs more CPU than the dependency itself.
async def _container(request: Request) -> Container:
    return get_container(request)


ContainerDep = Annotated[Container, Depends(_container)]


def client_ip(request: Request) -> str:
    """The client's address: X-Forwarded-For is believed only from MIAODAI_TRUSTED_PROXIES (core/http.py)."""
    container: Container = request.app.state.container
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))  # several headers are one list
    return client_address(request.client.host if request.client else None, forwarded,
                          container.settings.trusted_proxies)


async def _client_ip(request: Request) -> str:
    return client_ip(request)


ClientIp = Annotated[str, Depends(_client_ip)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _unauthenticated() -> DomainError:
    return DomainError(Errors.UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})


def borrower_of(container: Container, token: str) -> AuthContext:
    """The borrower a bearer token belongs to, or 401: a read, and now and then one UPDATE of last_seen_at."""
    with container.db.autocommit() as session:
        context = authenticate(session, token, pepper=container.settings.session_pepper, now=container.clock.now())
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


def current_borrower(token: BearerToken, container: ContainerDep) -> AuthContext:
    return borrower_of(container, token)


CurrentBorrower = Annotated[AuthContext, Depends(current_borrower)]
