"""The HTTP edge of the kernel: problem details, body limits, request ids, metrics and the client's address."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from miaodai.core.errors import DomainError, Errors, ErrorSpec
from miaodai.core.ports import Platform

log = structlog.get_logger("miaodai.http")

PROBLEM_JSON = "application/problem+json"

HTTP_REQUESTS = Counter("miaodai_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "miaodai_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
DOMAIN_ERRORS = Counter("miaodai_domain_errors_total", "Problems returned to clients", ["code"])


async def app_platform(request: Request) -> Any:
    """The running service's wiring (``app.state.container``). A router annotates it with its domain's port
    (``Annotated[LoanPorts, Depends(app_platform)]``), so it sees only what that port names. ``async``: a
    dependency that does no I/O would otherwise cost a threadpool hand-off per request."""
    return request.app.state.container


PlatformDep = Annotated[Platform, Depends(app_platform)]


def client_ip(request: Request) -> str:
    """The client's address: X-Forwarded-For is believed only from MIAODAI_TRUSTED_PROXIES (:func:`client_address`)."""
    platform: Platform = request.app.state.container
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))  # several headers are one list
    return client_address(request.client.host if request.client else None, forwarded,
                          platform.settings.trusted_proxies)


async def _client_ip(request: Request) -> str:
    return client_ip(request)


ClientIp = Annotated[str, Depends(_client_ip)]


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted_proxies: Iterable[IPv4Network | IPv6Network]) -> str:
    """The client's address: the TCP peer, unless the peer is one of our ``trusted_proxies``.

    Each proxy appends the address it received the request from to ``X-Forwarded-For``, so the entries on
    the right were written by our proxies and the leftmost by whoever sent the request — anything at all.
    Walking from the peer leftwards, the first address that is not a trusted proxy is the client; an entry
    that is not an IP address stops the walk (what lies left of it cannot be believed either). With no
    trusted proxies (the default) no header is believed.
    """
    networks = tuple(trusted_proxies)
    address = peer or "unknown"
    if not networks or not forwarded_for or not is_trusted_proxy(address, networks):
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop = _bare(hop.strip())
        try:
            ip_address(hop)
        except ValueError:
            return address  # garbage: the last believable address is the proxy that passed it on
        address = hop
        if not is_trusted_proxy(hop, networks):
            return hop
    return address  # every hop is one of ours: the leftmost is as close to the client as we know


def _bare(hop: str) -> str:
    """An address without the port or brackets some proxies add (``[2001:db8::1]:443``, ``10.0.0.1:80``)."""
    if hop.startswith("["):
        return hop[1:hop.find("]")] if "]" in hop else hop
    if hop.count(":") == 1:
        return hop.split(":", 1)[0]
    return hop


def is_trusted_proxy(address: str, networks: Iterable[IPv4Network | IPv6Network]) -> bool:
    """Whether ``address`` is in one of ``networks`` (False for anything that is not an IP address)."""
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:10.0.0.1 from a dual-stack socket is 10.0.0.1
    return any(ip in network or (mapped is not None and mapped in network) for network in networks)


def problem_response(error: DomainError, request_id: str | None = None) -> JSONResponse:
    body = error.problem()
    if request_id:
        body["request_id"] = request_id
    DOMAIN_ERRORS.labels(error.code).inc()
    return JSONResponse(body, status_code=error.spec.status, media_type=PROBLEM_JSON, headers=error.headers)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem_response(DomainError(Errors.MALFORMED_JSON), _request_id(request))
    fields = sorted({_field_path(tuple(e.get("loc", ()))) for e in errors})
    detail = "; ".join(f"{_field_path(tuple(e.get('loc', ())))}: {e.get('msg')}" for e in errors)
    err = DomainError(Errors.VALIDATION_FAILED, params={"fields": ", ".join(fields)}, detail=detail)
    return problem_response(err, _request_id(request))


async def _on_domain_error(request: Request, exc: DomainError) -> JSONResponse:
    log.info("domain_error", code=exc.code, path=request.url.path)
    return problem_response(exc, _request_id(request))


_STATUS_SPECS: dict[int, ErrorSpec] = {
    400: Errors.BAD_REQUEST, 401: Errors.UNAUTHENTICATED, 403: Errors.FORBIDDEN, 404: Errors.NOT_FOUND,
    405: Errors.METHOD_NOT_ALLOWED, 413: Errors.BODY_TOO_LARGE, 415: Errors.UNSUPPORTED_MEDIA_TYPE,
    503: Errors.SERVICE_UNAVAILABLE,
}


async def _on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    spec = _STATUS_SPECS.get(exc.status_code)
    if spec is None:
        spec = ErrorSpec(
            "HTTP_ERROR", exc.status_code, "Request not processed",
            f"请求未能处理（HTTP {exc.status_code}）。", f"The request was not processed (HTTP {exc.status_code}).",
        )
    return problem_response(DomainError(spec), _request_id(request))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_exception", path=request.url.path, exc_info=exc)
    return problem_response(DomainError(Errors.INTERNAL), _request_id(request))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, _on_domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected)


class BodyLimitMiddleware:
    """Refuses bodies over ``limit`` bytes with 413, by Content-Length or while reading the stream.

    The body is read here (it is small by construction) and replayed to the app, so an
    oversized chunked upload is answered with a clear 413 instead of a parse error.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._reject(scope, receive, send)
            return
        chunks: list[bytes] = []
        received, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.limit:
                await self._reject(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body_message: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body_message], then=receive), send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(DomainError(Errors.BODY_TOO_LARGE, params={"limit": self.limit}))
        await response(scope, receive, send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()  # e.g. http.disconnect after the response
        return {"type": "http.disconnect"}

    return receive


class RequestContextMiddleware:
    """Gives each request an id (echoed as X-Request-Id), logs it and records metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 8 <= len(incoming) <= 64 and incoming.isprintable() else secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        status: dict[str, int | bool] = {"code": 500, "started": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # A bug, not bad input: answer with a problem document that carries the request id.
            log.error("unhandled_exception", path=scope.get("path"), exc_info=exc)
            if status.get("started"):
                raise
            response = problem_response(DomainError(Errors.INTERNAL), request_id)
            await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(scope["method"], template, str(status["code"])).inc()
            HTTP_LATENCY.labels(scope["method"], template).observe(elapsed)
            if logging.getLogger("miaodai.access").isEnabledFor(logging.INFO):
                structlog.get_logger("miaodai.access").info(
                    "request", method=scope["method"], route=template, status=status["code"],
                    ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")
