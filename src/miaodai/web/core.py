"""What every page of the borrower's app shares: its language, cookies, CSRF check, the signed-in
borrower, and rendering a template (or a domain error) in the page's language.

The app is server-rendered on the API's own FastAPI app and calls the same domain services; it is a
second *face*, not a second implementation. Security, in one place:

* **Session**: the same borrower session the API issues, its token in the ``md_session`` cookie —
  HttpOnly (no script reads it), Secure (``MIAODAI_WEB_SECURE_COOKIES``; browsers treat 127.0.0.1 and
  localhost as secure, so tests and the quick start work over plain HTTP there), SameSite=Lax, path /app.
* **Device**: a random id in the long-lived ``md_device`` cookie stands for the phone (the API's
  ``X-Device-Id``), so login limits and "your devices" work the same.
* **CSRF**: every form carries ``csrf_token``, an HMAC (keyed by ``MIAODAI_SESSION_PEPPER``) of the
  ``md_csrf`` cookie's random value and the session cookie: bound to this browser's session, so a token
  obtained in another session — or a cookie planted beside it — does not verify, and a token from before
  logging in does not work after. A POST (any method but GET, HEAD, OPTIONS) is refused before any handler
  runs when the token does not verify, or when its ``Origin`` — or, without one, its ``Referer`` — is not
  this app's own (the request's host, or ``MIAODAI_PUBLIC_BASE_URL``'s); ``Origin: null`` is refused. A
  request with neither header is not a browser's cross-site form post (browsers send ``Origin`` on every
  one): the token alone decides. SameSite=Lax cookies on top.
* **Headers**: a strict Content-Security-Policy (only our own scripts and styles), no caching of pages,
  no framing, no referrer beyond our origin (and, on every answer, core/security_headers.py's).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.routing import Match

from miaodai.container import Container
from miaodai.core.errors import DomainError
from miaodai.identity.sessions import AuthContext, authenticate
from miaodai.web import i18n, page_words

PREFIX = "/app"


def get_container(request: Request) -> Container:
    """The composition root of the running service: the pages are an entry point, like ``app`` and ``cli``."""
    return request.app.state.container
SESSION_COOKIE = "md_session"
DEVICE_COOKIE = "md_device"
CSRF_COOKIE = "md_csrf"
LANG_COOKIE = "md_lang"
CSRF_FIELD = "csrf_token"
YEAR = 365 * 24 * 3600

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


# -- language ----------------------------------------------------------------------------------------


def locale_of(request: Request) -> str:
    """``?lang=zh|en`` (the switch on every page), else the cookie, else zh-CN."""
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return i18n.LANGS.get(chosen or "", i18n.DEFAULT_LOCALE)


def short_lang(locale: str) -> str:
    return next(short for short, full in i18n.LANGS.items() if full == locale)


@cache
def environment(locale: str) -> Environment:
    env = Environment(loader=PackageLoader("miaodai.web", "templates"), autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(yuan=i18n.yuan, yuan_plain=i18n.yuan_plain, percent=i18n.percent,
                       day=lambda value: i18n.day(value, locale), moment=lambda value: i18n.moment(value, locale),
                       month=lambda value: i18n.month(value, locale), weekday=lambda value: i18n.weekday(value, locale))
    return env


def gettext(request: Request, message: str, **params: Any) -> str:
    """A message of Python code (a flash, a page title) in the request's language."""
    text = i18n.translations(locale_of(request)).gettext(message)
    return text % params if params else text


# -- cookies -----------------------------------------------------------------------------------------


def _secure(request: Request) -> bool:
    return get_container(request).settings.web_secure_cookies


def set_cookie(response: Any, request: Request, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PREFIX, httponly=True, secure=_secure(request),
                        samesite="lax")


def device_key(request: Request) -> str:
    """The phone's id: from its cookie, or a new one (set on the response by :func:`finish`)."""
    key = request.cookies.get(DEVICE_COOKIE) or getattr(request.state, "new_device_key", None)
    if key is None:
        key = request.state.new_device_key = secrets.token_hex(16)
    return key


def _csrf_nonce(request: Request) -> str:
    """The ``md_csrf`` cookie's random value, or a new one (set on the response by :func:`finish`)."""
    nonce = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if nonce is None:
        nonce = request.state.new_csrf = secrets.token_urlsafe(32)
    return nonce


def _csrf_token(request: Request) -> str:
    """What this page's forms carry: bound to the browser's nonce and to its session (none before login)."""
    return csrf_token_for(get_container(request).settings.session_pepper, _csrf_nonce(request),
                          request.cookies.get(SESSION_COOKIE, ""))


def csrf_token_for(pepper: str, nonce: str, session_token: str) -> str:
    key = hmac.new(pepper.encode(), b"miaodai web csrf", hashlib.sha256).digest()
    return hmac.new(key, f"{nonce}\x00{session_token}".encode(), hashlib.sha256).hexdigest()


def finish(request: Request, response: Any) -> Any:
    """Set the cookies this request created and the security headers on any page or redirect."""
    if getattr(request.state, "new_csrf", None) and not request.cookies.get(CSRF_COOKIE):
        set_cookie(response, request, CSRF_COOKIE, request.state.new_csrf)
    if getattr(request.state, "new_device_key", None) and not request.cookies.get(DEVICE_COOKIE):
        set_cookie(response, request, DEVICE_COOKIE, request.state.new_device_key, max_age=10 * YEAR)
    chosen = request.query_params.get("lang")
    if chosen in i18n.LANGS and request.cookies.get(LANG_COOKIE) != chosen:
        set_cookie(response, request, LANG_COOKIE, chosen, max_age=YEAR)
    response.headers.update(SECURITY_HEADERS)
    return response


# -- CSRF -------------------------------------------------------------------------------------------


class CsrfRejected(Exception):
    """A form post without the page's token: from another site, or from a page too old to trust."""


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


async def form_token_verifies(request: Request, nonce: str | None, expected: Callable[[str], str]) -> bool:
    """Whether a form post came from our own pages (``Origin``/``Referer``) with the token ``expected(nonce)`` —
    the check of the borrower's app and of the staff console, each with its own nonce cookie and session."""
    if not from_our_pages(request):
        return False
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not nonce:
        return False
    return hmac.compare_digest(sent.encode(), expected(nonce).encode())


async def csrf_protect(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    pepper, session_token = get_container(request).settings.session_pepper, request.cookies.get(SESSION_COOKIE, "")
    if not await form_token_verifies(request, request.cookies.get(CSRF_COOKIE),
                                     lambda nonce: csrf_token_for(pepper, nonce, session_token)):
        raise CsrfRejected


_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def _origin_host(url: str) -> str | None:
    """``host[:port]`` of an origin or address, without its scheme's default port; None if it has none."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc or "@" in parts.netloc:
        return None
    return parts.netloc.lower().removesuffix(_DEFAULT_PORTS[parts.scheme])


def from_our_pages(request: Request) -> bool:
    """Whether the post's ``Origin`` (else ``Referer``) is this app: the host it was sent to, or its public
    address (behind a proxy that rewrites ``Host``)."""
    claimed = request.headers.get("origin")
    if claimed is None:
        claimed = request.headers.get("referer")
        if claimed is None:
            return True  # not a browser's cross-site form post: the token alone decides
    host = _origin_host(claimed)  # "null" (a sandboxed frame, a redirect from elsewhere) has none
    if host is None:
        return False
    own = {request.headers.get("host", "").lower(), _origin_host(get_container(request).settings.public_base_url)}
    return host in {h.removesuffix(":443").removesuffix(":80") for h in own if h}


# -- the signed-in borrower ----------------------------------------------------------------------------


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def signed_in(request: Request) -> AuthContext | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    container: Container = get_container(request)
    with container.db.autocommit() as session:
        return authenticate(session, token, pepper=container.settings.session_pepper, now=container.clock.now())


def require_borrower(request: Request) -> AuthContext:
    auth = signed_in(request)
    if auth is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return auth


WebBorrower = Annotated[AuthContext, Depends(require_borrower)]
MaybeBorrower = Annotated[AuthContext | None, Depends(signed_in)]
WebContainer = Annotated[Container, Depends(get_container)]


def login_url(next_path: str | None = None) -> str:
    return f"{PREFIX}/login" + (f"?{urlencode({'next': next_path})}" if next_path else "")


def safe_next(value: str | None) -> str:
    """Only a path of our own app: never an open redirect to another site."""
    if value and value.startswith(PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX


def page_address(request: Request) -> str:
    """The app page the borrower is looking at: the address of a GET; for a form's answer, the page that had
    the form (the same-site Referer, else the form's own address). A form's address may answer POST only, and
    so may a Referer when the form sat on an earlier form's answer: then the nearest address above it that
    answers GET (``/app/verify/identity`` → ``/app/verify``; ``/app/login/code`` → ``/app/login``)."""
    if request.method == "GET":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc in ("", request.url.netloc) and safe_next(referer.path) == referer.path:
        path, query = referer.path, referer.query
    else:
        path, query = request.url.path, ""
    while path.startswith(PREFIX + "/"):
        if _answers_get(request, path):
            return path + (f"?{query}" if query else "")
        path, query = path.rsplit("/", 1)[0], ""
    return PREFIX


def _answers_get(request: Request, path: str) -> bool:
    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    return any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes)


# -- rendering -----------------------------------------------------------------------------------------


def page_of(request: Request) -> str | None:
    """The page module answering the request (``miaodai.web.loans``): whose words a refusal is shown in."""
    endpoint = request.scope.get("endpoint")
    return getattr(endpoint, "__module__", None)


def problem(request: Request, error: DomainError) -> dict[str, str | None]:
    """A domain error as the page shows it: the message and what to do in the page's language, in the app's
    words where the catalog's speak to API clients (:mod:`miaodai.web.page_words`)."""
    message, action = page_words.shown(error, page_of(request), locale_of(request))
    return {"code": error.code, "message": message, "action": action}


def render(request: Request, template: str, *, status: int = 200, error: DomainError | None = None,
           **context: Any) -> HTMLResponse:
    locale = locale_of(request)
    other = "en" if locale == "zh_CN" else "zh"
    address = urlsplit(page_address(request))  # a form's answer switches language on the page that had the form
    query = {k: v for k, v in parse_qsl(address.query) if k != "lang"}
    html = environment(locale).get_template(template).render(
        request=request, lang=short_lang(locale), locale=locale, csrf_field=CSRF_FIELD,
        csrf_token=_csrf_token(request), switch_url=f"{address.path}?{urlencode({**query, 'lang': other})}",
        switch_label="English" if other == "en" else "中文", error=problem(request, error) if error else None,
        prefix=PREFIX, signed_in=context.pop("signed_in", None), **context)
    return finish(request, HTMLResponse(html, status_code=error.spec.status if error and status == 200 else status))


def redirect(request: Request, path: str) -> RedirectResponse:
    """303 See Other after a form post (the browser GETs the next page: no resubmission on reload)."""
    return finish(request, RedirectResponse(path, status_code=303))


def path_quote(text: str) -> str:
    return quote(text, safe="")


def now(request: Request) -> datetime:
    return get_container(request).clock.now()
