"""What every page of the staff console shares: the signed-in staff member, the permission each route needs,
the menu, cookies, CSRF and rendering.

The console is the lender's side of the same service: server-rendered pages at ``/console`` on the API's app,
calling the same services as ``/v1/staff``. Security, in one place:

* **Who**: the staff session token (password + TOTP at login; ``identity.staff_service``) in the ``md_staff``
  cookie — HttpOnly, Secure (``MIAODAI_WEB_SECURE_COOKIES``), SameSite=Strict, path ``/console``. A console
  session ends after 15 minutes without a page view (``MIAODAI_STAFF_IDLE_MINUTES``) and 12 hours after login
  whatever happens (``MIAODAI_STAFF_SESSION_TTL_HOURS``).
* **May they**: every route takes a :class:`Guard` — :func:`require` (one permission of identity/rbac.py),
  :data:`SIGNED_IN` (any staff member: their own account pages) or :data:`PUBLIC` (the login and first
  sign-in pages). A route without one is a bug that tests/browser and tests/integration/test_console_permissions.py
  catch: the permission matrix is generated from the route table. Denied is a 403 page; the menu shows only what
  the roles grant, but the server decides.
* **CSRF**: like the borrower's app (web/core.py): a token in every form, an HMAC of the ``md_console_csrf``
  cookie and the staff session, checked with the ``Origin``/``Referer`` before any handler runs.
* **Caching**: every page is ``no-store`` (a revealed field must not stay in the browser's cache).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from miaodai.container import Container
from miaodai.core.errors import DomainError
from miaodai.identity import rbac
from miaodai.identity.staff_service import Scope, StaffContext, authenticate
from miaodai.web import i18n, page_words
from miaodai.web.core import (
    CSRF_FIELD,
    LANG_COOKIE,
    SAFE_METHODS,
    SECURITY_HEADERS,
    YEAR,
    csrf_token_for,
    environment,
    form_token_verifies,
    get_container,
    locale_of,
    short_lang,
)

PREFIX = "/console"
STAFF_COOKIE = "md_staff"
SETUP_COOKIE = "md_staff_setup"
CSRF_COOKIE = "md_console_csrf"


def _(message: str) -> str:
    """Marks an English message id for the catalogs (extracted like the templates' ``_``)."""
    return message


# -- who may open a route ------------------------------------------------------------------------------


class LoginRequired(Exception):
    def __init__(self, next_path: str, *, idle: bool = False) -> None:
        super().__init__(next_path)
        self.next_path, self.idle = next_path, idle


class Forbidden(Exception):
    def __init__(self, permission: str) -> None:
        super().__init__(permission)
        self.permission = permission


class CsrfRejected(Exception):
    """A form post without the page's token: from another site, or from a page too old to trust."""


def signed_in(request: Request) -> StaffContext | None:
    """The staff member of the ``md_staff`` cookie's live console session (its last use brought up to date)."""
    if hasattr(request.state, "console_staff"):
        return request.state.console_staff
    token = request.cookies.get(STAFF_COOKIE)
    staff = None
    if token:
        container = get_container(request)
        with container.db.transaction() as session:
            staff = authenticate(session, token, pepper=container.settings.session_pepper, now=container.clock.now(),
                                 scope=Scope.CONSOLE, idle_minutes=container.settings.staff_idle_minutes)
    request.state.console_staff = staff
    return staff


class Guard:
    """A route's permission, as a FastAPI dependency: the signed-in staff member if their roles grant it.

    ``permission`` None: any signed-in staff member. The permission matrix test reads ``permission`` off every
    console route's guard, so a route's rule is declared once, here, and tested for every role."""

    public = False

    def __init__(self, permission: str | None) -> None:
        if permission is not None and not rbac.is_known_permission(permission):
            raise ValueError(f"unknown permission {permission!r}; add it to identity/rbac.py first")
        self.permission = permission

    def __call__(self, request: Request) -> StaffContext:
        staff = signed_in(request)
        if staff is None:
            raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""),
                                idle=bool(request.cookies.get(STAFF_COOKIE)))
        if self.permission is not None and not rbac.is_allowed(staff.roles, self.permission):
            raise Forbidden(self.permission)
        return staff

    def __repr__(self) -> str:
        return f"Guard({self.permission!r})"


class PublicPage:
    """The guard of the pages one opens before signing in (login, first sign-in): lets everyone through."""

    public = True
    permission = None

    def __call__(self) -> None:
        return None


_GUARDS: dict[str, Guard] = {}


def require(permission: str) -> Guard:
    """The guard of a route that needs ``permission`` (one instance per permission)."""
    if permission not in _GUARDS:
        _GUARDS[permission] = Guard(permission)
    return _GUARDS[permission]


SIGNED_IN = Guard(None)
PUBLIC = PublicPage()


# -- the menu ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MenuItem:
    path: str
    label: str  # an English message id
    permission: str | tuple[str, ...] | None  # None: every staff member; a tuple: any of them


# Every desk of the console, in the order of the menu; a desk's page module adds its item with `menu_item`.
MENU: list[MenuItem] = []


def menu_item(path: str, label: str, permission: str | tuple[str, ...] | None) -> None:
    if all(item.path != path for item in MENU):
        MENU.append(MenuItem(path, label, permission))


def _grants(staff: StaffContext, permission: str | tuple[str, ...] | None) -> bool:
    if permission is None:
        return True
    wanted = (permission,) if isinstance(permission, str) else permission
    return any(rbac.is_allowed(staff.roles, p) for p in wanted)


def menu_for(staff: StaffContext) -> list[MenuItem]:
    return [item for item in MENU if _grants(staff, item.permission)]


# -- cookies and CSRF ----------------------------------------------------------------------------------


def set_cookie(response: Any, request: Request, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PREFIX, httponly=True,
                        secure=get_container(request).settings.web_secure_cookies, samesite="strict")


def _csrf_nonce(request: Request) -> str:
    nonce = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_console_csrf", None)
    if nonce is None:
        nonce = request.state.new_console_csrf = secrets.token_urlsafe(32)
    return nonce


def _session_binding(request: Request) -> str:
    return request.cookies.get(STAFF_COOKIE) or request.cookies.get(SETUP_COOKIE) or ""


def csrf_token(request: Request) -> str:
    return csrf_token_for(get_container(request).settings.session_pepper, "console\x00" + _csrf_nonce(request),
                          _session_binding(request))


async def csrf_protect(request: Request) -> None:
    if request.method in SAFE_METHODS:
        return
    pepper, binding = get_container(request).settings.session_pepper, _session_binding(request)
    if not await form_token_verifies(request, request.cookies.get(CSRF_COOKIE),
                                     lambda nonce: csrf_token_for(pepper, "console\x00" + nonce, binding)):
        raise CsrfRejected


def finish(request: Request, response: Any) -> Any:
    if getattr(request.state, "new_console_csrf", None) and not request.cookies.get(CSRF_COOKIE):
        set_cookie(response, request, CSRF_COOKIE, request.state.new_console_csrf)
    chosen = request.query_params.get("lang")
    if chosen in i18n.LANGS and request.cookies.get(LANG_COOKIE) != chosen:
        set_cookie(response, request, LANG_COOKIE, chosen, max_age=YEAR)
    response.headers.update(SECURITY_HEADERS)
    return response


# -- rendering -----------------------------------------------------------------------------------------


def gettext(request: Request, message: str, **params: Any) -> str:
    text = i18n.translations(locale_of(request)).gettext(message)
    return text % params if params else text


def problem(request: Request, error: DomainError) -> dict[str, str | None]:
    message, action = page_words.shown(error, None, locale_of(request))
    return {"code": error.code, "message": message, "action": action}


def render(request: Request, template: str, *, status: int = 200, error: DomainError | None = None,
           **context: Any) -> HTMLResponse:
    locale = locale_of(request)
    other = "en" if locale == "zh_CN" else "zh"
    address = urlsplit(request.url.path + (f"?{request.url.query}" if request.url.query else "")
                       if request.method == "GET" else request.headers.get("referer", PREFIX))
    path = address.path if address.path.startswith(PREFIX) else PREFIX
    query = {k: v for k, v in parse_qsl(address.query) if k != "lang"}
    staff = context.pop("staff", None) or getattr(request.state, "console_staff", None)
    html = environment(locale).get_template(template).render(
        request=request, lang=short_lang(locale), locale=locale, csrf_field=CSRF_FIELD,
        csrf_token=csrf_token(request), switch_url=f"{path}?{urlencode({**query, 'lang': other})}",
        switch_label="English" if other == "en" else "中文", error=problem(request, error) if error else None,
        prefix=PREFIX, staff=staff, menu=menu_for(staff) if staff else [],
        may=lambda permission: staff is not None and rbac.is_allowed(staff.roles, permission),
        role_names=[rbac.ROLES[rbac.Role(r)].name[locale] for r in sorted(staff.roles) if rbac.is_known_role(r)]
        if staff else [], **context)
    return finish(request, HTMLResponse(html, status_code=error.spec.status if error and status == 200 else status))


def redirect(request: Request, path: str) -> RedirectResponse:
    return finish(request, RedirectResponse(path, status_code=303))


def safe_next(value: str | None) -> str:
    """Only a console path: never an open redirect."""
    if value and value.startswith(PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return PREFIX


def login_url(next_path: str | None = None, *, idle: bool = False) -> str:
    params = {**({"next": next_path} if next_path else {}), **({"idle": "1"} if idle else {})}
    return f"{PREFIX}/login" + (f"?{urlencode(params)}" if params else "")


def container_of(request: Request) -> Container:
    return get_container(request)
