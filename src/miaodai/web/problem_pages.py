"""Refusals on a page-serving prefix answered as pages, not as the API's problem details.

A mistyped address, a form missing a field, or a domain error a route did not catch is, under ``/app`` or
``/console``, that face's own page with the problem's message and what to do, in the page's language; everywhere
else the API's handlers answer as before. :func:`install` wraps the handlers registered at the time it is called,
so each face installs its own prefix in turn and the rest falls through to what was there.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from miaodai.core.errors import DomainError, Errors

Page = Callable[[Request, DomainError], Response]
Handler = Callable[[Request, Exception], Response | Awaitable[Response]]


async def _answer(handler: Handler, request: Request, exc: Exception) -> Response:
    """The earlier handler's answer to ``exc`` (FastAPI's are coroutines; Starlette allows plain functions too)."""
    answer = handler(request, exc)
    return await answer if inspect.isawaitable(answer) else answer


def install(app: FastAPI, prefix: str, page: Page) -> None:
    """Under ``prefix`` (the path itself or below it), answer validation errors, 404/405 and domain errors with
    ``page(request, error)``; elsewhere hand them to the handlers already installed."""
    earlier: dict[type[Exception], Handler] = {
        cls: app.exception_handlers[cls] for cls in (RequestValidationError, StarletteHTTPException, DomainError)}

    def here(request: Request) -> bool:
        return request.url.path == prefix or request.url.path.startswith(prefix + "/")

    async def validation(request: Request, exc: RequestValidationError) -> Response:
        if not here(request):
            return await _answer(earlier[RequestValidationError], request, exc)
        if all(e.get("loc", ("",))[0] == "path" for e in exc.errors()):
            return page(request, DomainError(Errors.NOT_FOUND))  # /app/loans/abc names no page
        fields = sorted({str(e.get("loc", ("",))[-1]) for e in exc.errors()})
        return page(request, DomainError(Errors.VALIDATION_FAILED, params={"fields": ", ".join(fields)}))

    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not here(request) or exc.status_code not in (404, 405):
            return await _answer(earlier[StarletteHTTPException], request, exc)
        return page(request, DomainError(Errors.NOT_FOUND if exc.status_code == 404 else Errors.METHOD_NOT_ALLOWED))

    async def domain_error(request: Request, exc: DomainError) -> Response:
        if not here(request):
            return await _answer(earlier[DomainError], request, exc)
        return page(request, exc)

    app.add_exception_handler(RequestValidationError, validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, domain_error)  # type: ignore[arg-type]
