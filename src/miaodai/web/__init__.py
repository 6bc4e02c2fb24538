"""The borrower's mobile web app (H5) at ``/app``: server-rendered pages on the API's own app.

:func:`install` mounts every page module's router, the static files, the two exceptions pages raise (sign in
first; a form without its CSRF token), and the app's own page for any other refusal no page caught (a mistyped
address among them). Page modules are small and one per part of the journey (``public``, ``login``, …); what
they share is :mod:`miaodai.web.core`.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from miaodai.web import core, problem_pages, stepup

PAGE_MODULES = ("public", "login", "stepup", "verify", "consents", "credit", "methods", "draw", "payout", "loans",
                "account")


def install(app: FastAPI) -> None:
    import importlib

    for name in PAGE_MODULES:
        app.include_router(importlib.import_module(f"miaodai.web.{name}").router)
    app.mount(f"{core.PREFIX}/static", StaticFiles(packages=[("miaodai.web", "static")]), name="web-static")

    @app.exception_handler(core.LoginRequired)
    async def login_first(request: Request, exc: core.LoginRequired) -> Response:
        return core.redirect(request, core.login_url(exc.next_path))

    @app.exception_handler(stepup.StepUpNeeded)
    async def step_up_first(request: Request, exc: stepup.StepUpNeeded) -> Response:
        return core.redirect(request, stepup.step_up_url(exc.next_path))

    @app.exception_handler(core.CsrfRejected)
    async def csrf_rejected(request: Request, _exc: core.CsrfRejected) -> Response:
        return core.render(request, "expired.html", status=403)

    # a mistyped address, or a refusal no page caught, is the app's own page in the app's words, not JSON
    problem_pages.install(app, core.PREFIX, lambda request, error: core.render(request, "problem.html", error=error))

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(core.PREFIX, status_code=307)
