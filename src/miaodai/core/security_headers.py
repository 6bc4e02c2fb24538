"""Security headers on every answer, the API's and the pages' alike, whatever answered (a route, an error
handler, a 404, the body limit's 413).

A response keeps any of these it set itself — the pages set a stricter policy for their own scripts and
styles (``web/core.py``), the contract a policy of its own that lets only our pages frame it
(``web/draw.py``), ``/docs`` and ``/redoc`` one that lets Swagger UI and ReDoc run (``api_docs.py``) — and
gets the rest:

* ``X-Content-Type-Options: nosniff``: a JSON answer or an uploaded file is never run as a script or page;
* a frame policy: ``X-Frame-Options: DENY``, or ``SAMEORIGIN`` where the response's own CSP lets our pages
  frame it (``frame-ancestors 'self'``: the contract, read inside the draw page), for browsers that know
  only the older header;
* ``Content-Security-Policy``: nothing may load for an API answer (``default-src 'none'``); an HTML answer
  with no policy of its own — the contract as the API serves it — may use its own inline styles and
  nothing else, in a sandbox (no scripts, no forms), and is framed by no one;
* ``Referrer-Policy: no-referrer``;
* ``Cache-Control: no-store`` on everything but the static assets: almost every answer carries personal
  data (a borrower's loans, identity, contract) or a session's state, and a shared or back-button cache
  must not keep it; a route that is safe to cache says so with its own ``Cache-Control``;
* ``Strict-Transport-Security`` when the request came over HTTPS (directly, or through one of
  ``MIAODAI_TRUSTED_PROXIES`` saying so in ``X-Forwarded-Proto``) and always in production, where the
  service is only reached over HTTPS behind its TLS proxy even when that proxy is not listed as trusted.
  Browsers ignore the header on plain HTTP (RFC 6797 §8.1), so it never locks out the plain-HTTP
  development server; it is not sent there only so that a developer's ``https://localhost`` is not
  pinned to HTTPS for a year. ``MIAODAI_HSTS_MAX_AGE_SECONDS`` sets how long (0: not sent).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from miaodai.core.http import is_trusted_proxy
from miaodai.core.settings import Environment, Settings

API_POLICY = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCUMENT_POLICY = (b"default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
                   b"base-uri 'none'; form-action 'none'; sandbox")
# Static files (scripts, styles, images with no personal data) may be cached.
CACHEABLE_PREFIXES = ("/app/static/", "/docs/assets/")

_CSP, _XFO, _CACHE = b"content-security-policy", b"x-frame-options", b"cache-control"
_NOSNIFF, _REFERRER, _HSTS = b"x-content-type-options", b"referrer-policy", b"strict-transport-security"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hsts = self._hsts(scope)
        cacheable = scope["path"].startswith(CACHEABLE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _secured(list(message.get("headers") or ()), hsts, cacheable)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _hsts(self, scope: Scope) -> bytes | None:
        seconds = self.settings.hsts_max_age_seconds
        if seconds <= 0:
            return None
        if self.settings.env is Environment.PRODUCTION or scope.get("scheme") == "https" or _https_by_proxy(
                scope, self.settings):
            return f"max-age={seconds}; includeSubDomains".encode()
        return None


def _https_by_proxy(scope: Scope, settings: Settings) -> bool:
    """Whether one of our trusted proxies says it received the request over HTTPS (its own, right-most entry)."""
    peer = scope.get("client")
    if not settings.trusted_proxies or not peer or not is_trusted_proxy(peer[0], settings.trusted_proxies):
        return False
    proto = b""
    for name, value in scope.get("headers") or ():
        if name == b"x-forwarded-proto":
            proto = value
    return proto.rsplit(b",", 1)[-1].strip().lower() == b"https"


def _secured(headers: list[tuple[bytes, bytes]], hsts: bytes | None, cacheable: bool) -> list[tuple[bytes, bytes]]:
    present: dict[bytes, bytes] = {}
    html = False
    for name, value in headers:
        lowered = name.lower()
        present[lowered] = value
        if lowered == b"content-type":
            html = value.startswith(b"text/html")
    policy = present.get(_CSP)
    if policy is None:
        policy = DOCUMENT_POLICY if html else API_POLICY
        headers.append((_CSP, policy))
    if _XFO not in present:
        headers.append((_XFO, b"SAMEORIGIN" if b"frame-ancestors 'self'" in policy else b"DENY"))
    if _NOSNIFF not in present:
        headers.append((_NOSNIFF, b"nosniff"))
    if _REFERRER not in present:
        headers.append((_REFERRER, b"no-referrer"))
    if _CACHE not in present and not cacheable:
        headers.append((_CACHE, b"no-store"))
    if hsts is not None and _HSTS not in present:
        headers.append((_HSTS, hsts))
    return headers
