"""The staff console (运营后台) at ``/console``: server-rendered desks for the lender's people, on the same
services as ``/v1/staff``. :mod:`miaodai.web.console.core` holds what every desk shares (the signed-in staff
member, the permission each route needs, the menu, CSRF, rendering); each desk is one module listed in
:data:`DESKS`, in the order of the menu.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from miaodai.core.errors import DomainError, Errors
from miaodai.web.console import core

# Each desk module has a `router`; importing it adds its menu item.
DESKS = ("home", "customers", "reviews", "recon", "audit", "approvals", "dashboards", "staff", "auth")


def install(app: FastAPI) -> None:
    for name in DESKS:
        app.include_router(importlib.import_module(f"miaodai.web.console.{name}").router)
    app.mount(f"{core.PREFIX}/static", StaticFiles(packages=[("miaodai.web", "static")]), name="console-static")

    @app.exception_handler(core.LoginRequired)
    async def login_first(request: Request, exc: core.LoginRequired) -> Response:
        response = core.redirect(request, core.login_url(exc.next_path, idle=exc.idle))
        if exc.idle:
            response.delete_cookie(core.STAFF_COOKIE, path=core.PREFIX)
        return response

    @app.exception_handler(core.Forbidden)
    async def forbidden(request: Request, exc: core.Forbidden) -> Response:
        return core.render(request, "console/forbidden.html", status=403, permission=exc.permission)

    @app.exception_handler(core.CsrfRejected)
    async def csrf_rejected(request: Request, _exc: core.CsrfRejected) -> Response:
        return core.render(request, "console/expired.html", status=403)

    _problems_as_pages(app)


async def _answer(handler: Callable[[Request, Exception], Response | Awaitable[Response]], request: Request,
                  exc: Exception) -> Response:
    """The API's own answer to ``exc`` (its handlers are coroutines; Starlette allows plain functions too)."""
    answer = handler(request, exc)
    return await answer if inspect.isawaitable(answer) else answer


def _problems_as_pages(app: FastAPI) -> None:
    """On a console page, a refusal the route did not catch (a form missing a field, an unknown id, a domain
    error) is a console page with the problem's message and what to do, in the page's language — the API's
    answers stay problem details."""
    api_handlers = {cls: app.exception_handlers[cls] for cls in (RequestValidationError, StarletteHTTPException,
                                                                  DomainError)}

    def on_console(request: Request) -> bool:
        return request.url.path == core.PREFIX or request.url.path.startswith(core.PREFIX + "/")

    async def validation(request: Request, exc: RequestValidationError) -> Response:
        if not on_console(request):
            return await _answer(api_handlers[RequestValidationError], request, exc)
        fields = sorted({str(e.get("loc", ("",))[-1]) for e in exc.errors()})
        error = DomainError(Errors.VALIDATION_FAILED, params={"fields": ", ".join(fields)})
        return core.render(request, "console/problem.html", error=error)

    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not on_console(request) or exc.status_code not in (404, 405):
            return await _answer(api_handlers[StarletteHTTPException], request, exc)
        error = DomainError(Errors.NOT_FOUND if exc.status_code == 404 else Errors.METHOD_NOT_ALLOWED)
        return core.render(request, "console/problem.html", error=error)

    async def domain_error(request: Request, exc: DomainError) -> Response:
        if not on_console(request):
            return await _answer(api_handlers[DomainError], request, exc)
        return core.render(request, "console/problem.html", error=exc)

    app.add_exception_handler(RequestValidationError, validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, domain_error)  # type: ignore[arg-type]
