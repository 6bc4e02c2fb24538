"""The staff console (运营后台) at ``/console``: server-rendered desks for the lender's people, on the same
services as ``/v1/staff``. :mod:`miaodai.web.console.core` holds what every desk shares (the signed-in staff
member, the permission each route needs, the menu, CSRF, rendering); each desk is one module listed in
:data:`DESKS`, in the order of the menu.
"""

from __future__ import annotations

import importlib

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from miaodai.web import problem_pages
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

    problem_pages.install(app, core.PREFIX, lambda request, error: core.render(request, "console/problem.html",
                                                                               error=error))
