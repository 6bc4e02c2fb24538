"""Security headers on every answer (core/security_headers.py): the API's, the pages', the contract's, the
errors', with the pages' and the contract's own policies kept."""

from __future__ import annotations

from datetime import timedelta
from ipaddress import ip_network

import pytest
from fastapi.testclient import TestClient

from miaodai.core.settings import Environment
from tests.integration.test_web_login import log_in
from tests.loan_support import PHONE, demo_borrower

PINNED_FIXTURES = ("backend",)
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


@pytest.fixture
def backend() -> str:
    return "sqlite"  # headers do not depend on the database


def _baseline(response, *, frame: str = "DENY", cached: bool = False) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == frame
    assert headers["referrer-policy"] in ("no-referrer", "same-origin")
    assert "content-security-policy" in headers
    assert (headers.get("cache-control") == "no-store") is not cached


def test_api_answers_with_personal_data_are_not_stored_sniffed_or_framed(client, container):
    borrower = demo_borrower(client, container)
    for path in ("/v1/me", "/v1/credit-lines", "/v1/credit/applications", "/v1/payment-methods"):
        answer = client.get(path, headers=borrower["headers"])
        assert answer.status_code == 200, (path, answer.text)
        _baseline(answer)
        assert answer.headers["content-security-policy"] == API_POLICY
    assert "strict-transport-security" not in answer.headers  # plain HTTP, not production


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/v1/credit/applications", 401),  # no token
    ("GET", "/v1/nowhere", 404),
    ("POST", "/v1/quotes", 422),
    ("GET", "/healthz", 200),
])
def test_errors_and_operational_answers_carry_them_too(client, method, path, status):
    answer = client.request(method, path, json={} if method == "POST" else None)
    assert answer.status_code == status
    _baseline(answer)


def test_the_body_limits_413_answered_before_any_route_carries_them(client, container):
    answer = client.post("/v1/quotes", content=b"x" * (container.settings.max_body_bytes + 1),
                         headers={"content-type": "application/json"})
    assert answer.status_code == 413
    _baseline(answer)


def _drafted_loan(client, borrower) -> int:
    line_id = client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["id"]
    drawn = client.post("/v1/loans", json={"line_id": line_id, "principal_fen": 1_000_000,
                                           "method": "equal_installment", "term_months": 12},
                        headers={**borrower["headers"], "Idempotency-Key": "headers-1"})
    assert drawn.status_code in (200, 201), drawn.text
    return drawn.json()["id"]


def test_the_contract_as_the_api_serves_it_gets_a_document_policy(client, container):
    borrower = demo_borrower(client, container)
    document = client.get(f"/v1/loans/{_drafted_loan(client, borrower)}/contract", headers=borrower["headers"])
    assert document.status_code == 200 and document.headers["content-type"].startswith("text/html")
    _baseline(document)
    policy = document.headers["content-security-policy"]
    # Its own inline styles and nothing else; no script runs in it, no one frames it.
    assert "style-src 'unsafe-inline'" in policy and "sandbox" in policy and "frame-ancestors 'none'" in policy
    assert "script-src" not in policy and "default-src 'none'" in policy


def test_the_contract_framed_by_the_reading_page_may_be_framed_by_our_pages_only(client, container, clock):
    borrower = demo_borrower(client, container)
    loan_id = _drafted_loan(client, borrower)
    clock.advance(timedelta(seconds=61))  # past the login code's resend cooldown
    web = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    log_in(web, PHONE)
    reading = web.get(f"/app/loans/{loan_id}/contract")
    assert reading.status_code == 200 and f"/app/loans/{loan_id}/contract/document" in reading.text
    _baseline(reading)  # the page itself is framed by no one
    framed = web.get(f"/app/loans/{loan_id}/contract/document")
    assert framed.status_code == 200
    _baseline(framed, frame="SAMEORIGIN")
    assert "frame-ancestors 'self'" in framed.headers["content-security-policy"]


def test_pages_keep_their_own_policy_and_get_a_frame_policy(client):
    web = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    page = web.get("/app/login")
    _baseline(page)
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "same-origin"


def test_static_assets_may_be_cached(client):
    script = client.get("/app/static/app.js")
    assert script.status_code == 200
    _baseline(script, cached=True)


def test_the_api_docs_keep_the_policy_that_lets_swagger_ui_run(client):
    docs = client.get("/docs")
    assert docs.status_code == 200
    _baseline(docs)
    assert docs.headers["content-security-policy"] == "img-src 'self' data:; connect-src 'self' blob:"


def test_hsts_over_https_only_and_always_in_production(client, container):
    assert "strict-transport-security" not in client.get("/healthz").headers
    https = TestClient(client.app, base_url="https://testserver")
    assert https.get("/healthz").headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    container.settings.env = Environment.PRODUCTION  # behind a TLS proxy that is not listed as trusted
    assert "strict-transport-security" in client.get("/healthz").headers
    container.settings.hsts_max_age_seconds = 0
    assert "strict-transport-security" not in https.get("/healthz").headers


def test_hsts_when_a_trusted_proxy_says_the_request_came_over_https(client, container):
    container.settings.trusted_proxies = (ip_network("10.0.0.0/8"),)
    behind = TestClient(client.app, client=("10.0.0.2", 50000))
    assert "strict-transport-security" in behind.get("/healthz", headers={"x-forwarded-proto": "https"}).headers
    assert "strict-transport-security" not in behind.get("/healthz", headers={"x-forwarded-proto": "http"}).headers
    # Anyone else saying so is not believed.
    direct = TestClient(client.app, client=("203.0.113.9", 50000))
    assert "strict-transport-security" not in direct.get("/healthz", headers={"x-forwarded-proto": "https"}).headers
