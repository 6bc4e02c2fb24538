"""Composition root: builds the FastAPI app, mounts each domain's router, wires providers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

import miaodai
from miaodai import api_docs
from miaodai.container import Container, build_container
from miaodai.core import openapi
from miaodai.core.audit import Sealer
from miaodai.core.http import BodyLimitMiddleware, RequestContextMiddleware, install_error_handlers
from miaodai.core.input_guard import NulGuardMiddleware
from miaodai.core.logging import configure_logging
from miaodai.core.providers import ProviderNotConfigured
from miaodai.core.security_headers import SecurityHeadersMiddleware
from miaodai.core.settings import Settings, get_settings

DESCRIPTION = """
Miaodai (秒贷) borrower and staff API.

Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`,
`message_zh`, `message_en` and, where you can do something about it, `action`.
See docs/api.md for a walk-through with curl and docs/sandbox.md for sandbox test values.
"""


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    settings = settings or (container.settings if container else get_settings())
    container = container or build_container(settings)
    missing = container.unconfigured_providers()
    if missing:
        raise ProviderNotConfigured("; ".join(p.message() for p in missing))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sealer = payments = None
        if settings.audit_sealer_enabled:
            sealer = Sealer(container.db, container.clock, settings.audit_seal_interval_seconds)
            sealer.start()
        if settings.payments_worker_enabled:
            from miaodai.payments.worker import PaymentsWorker

            payments = PaymentsWorker(container, settings.payments_worker_interval_seconds)
            payments.start()
        try:
            yield
        finally:
            if payments is not None:
                payments.stop()
            if sealer is not None:
                sealer.stop()

    app = FastAPI(title="Miaodai 秒贷 API", version=miaodai.__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # miaodai.api_docs serves both from the package
    app.state.container = container
    install_error_handlers(app)
    app.add_middleware(NulGuardMiddleware)  # inside the body limit, which hands it the whole body
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, settings=settings)  # outermost: on every answer, even a 500
    _mount_operational_routes(app, container)
    _mount_domain_routers(app, container)
    from miaodai import web  # the borrower's mobile web app at /app
    from miaodai.web import console  # the staff console at /console

    web.install(app)
    console.install(app)
    api_docs.install(app)
    openapi.install(app)  # what clients send and get back: bearer, Idempotency-Key, problem codes
    return app


def _mount_domain_routers(app: FastAPI, container: Container) -> None:
    """Each domain contributes its routers here (and sandbox-only routers when the sandbox is on).

    FastAPI tries routes one by one in the order they were included, so the order is the borrower's
    journey — sign in, verify, consent, apply, draw, pay — then the staff console and the sandbox:
    a borrower's request, most of the traffic, is matched before the staff routes are tried. (No two
    routers share a path and method, so the order changes no answer, only how soon it is found.)
    """
    from miaodai.backoffice.api_approvals import router as approvals_router
    from miaodai.backoffice.api_customers import borrower_router as data_access_router
    from miaodai.backoffice.api_customers import router as customers_router
    from miaodai.backoffice.api_staff_accounts import router as staff_accounts_router
    from miaodai.credit.api import router as credit_router
    from miaodai.credit.api_policy import router as policy_router
    from miaodai.credit.api_review import router as review_router
    from miaodai.identity.api_auth import router as auth_router
    from miaodai.identity.api_consents import router as consents_router
    from miaodai.identity.api_kyc import router as kyc_router
    from miaodai.identity.api_staff import router as staff_router
    from miaodai.loans.api_lines import router as lines_router
    from miaodai.loans.api_loans import router as loans_router
    from miaodai.loans.api_products import router as products_router
    from miaodai.payments.api import router as payments_router
    from miaodai.payments.api_collections import router as collections_router
    from miaodai.payments.api_recon import router as recon_router
    from miaodai.payments.api_wallets import router as wallets_router

    for router in (auth_router, kyc_router, consents_router, credit_router, products_router, lines_router,
                   loans_router, payments_router, wallets_router, collections_router,
                   data_access_router, staff_router, review_router, policy_router, recon_router, customers_router):
        app.include_router(router)
    app.include_router(approvals_router)  # the back office's maker-checker inbox and servicing actions (staff)
    app.include_router(staff_accounts_router)  # staff accounts, changed through the same inbox
    if container.settings.sandbox:
        # Sandbox-only: these routes must not exist at all when the sandbox is off.
        from miaodai.sandbox.api import router as sandbox_router
        from miaodai.sandbox.api_wallet import router as sandbox_wallet_router

        app.include_router(sandbox_router)
        app.include_router(sandbox_wallet_router)


def _mount_operational_routes(app: FastAPI, container: Container) -> None:
    @app.get("/healthz", tags=["operations"], summary="Liveness: the process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Readiness: the database answers")
    def readyz() -> JSONResponse:
        try:
            with container.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        return JSONResponse({"status": "ready", "database": container.db.dialect})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def asgi() -> FastAPI:
    """Factory for ``uvicorn --factory miaodai.app:asgi``."""
    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    return create_app(settings)
