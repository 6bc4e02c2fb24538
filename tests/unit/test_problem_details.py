"""The HTTP edge turns every kind of bad input into a problem document, never a 500."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict

from miaodai.core.errors import DomainError, ErrorSpec
from miaodai.core.http import BodyLimitMiddleware, RequestContextMiddleware, install_error_handlers

QUOTA = ErrorSpec(
    "QUOTA_REACHED", 429, "Too many", "请在 {minutes} 分钟后重试。", "Retry in {minutes} minutes.",
    "稍后再试。", "Wait and retry.",
)


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount_fen: int
    note: str


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit=1024)
    app.add_middleware(RequestContextMiddleware)

    @app.post("/echo")
    def echo(payload: Payload) -> dict[str, int]:
        return {"amount_fen": payload.amount_fen}

    @app.get("/quota")
    def quota() -> None:
        raise DomainError(QUOTA, params={"minutes": 5}, headers={"Retry-After": "300"})

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("bug")

    return TestClient(app, raise_server_exceptions=False)


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"].startswith("https://") and body["title"] and body["detail"]
    assert body["message_zh"] and body["message_en"]
    return body


def test_malformed_json_is_400(client):
    body = _problem(client.post("/echo", content=b'{"amount_fen": 1,', headers={"content-type": "application/json"}),
                    400, "MALFORMED_JSON")
    assert body["action"]["en"]


def test_wrong_types_and_unknown_fields_are_422_naming_the_fields(client):
    body = _problem(client.post("/echo", json={"amount_fen": "lots", "note": "x", "admin": True}),
                    422, "VALIDATION_FAILED")
    assert "amount_fen" in body["params"]["fields"] and "admin" in body["params"]["fields"]
    assert "amount_fen" in body["message_en"]


def test_missing_body_is_422(client):
    _problem(client.post("/echo"), 422, "VALIDATION_FAILED")


def test_oversized_body_is_413_by_header_and_by_stream(client):
    _problem(client.post("/echo", content=b"x" * 2048, headers={"content-type": "application/json"}),
             413, "BODY_TOO_LARGE")

    def chunks():
        for _ in range(4):
            yield b"x" * 512

    _problem(client.post("/echo", content=chunks(), headers={"content-type": "application/json"}),
             413, "BODY_TOO_LARGE")


def test_domain_error_carries_params_headers_and_action(client):
    response = client.get("/quota")
    body = _problem(response, 429, "QUOTA_REACHED")
    assert response.headers["retry-after"] == "300"
    assert body["message_zh"] == "请在 5 分钟后重试。" and body["message_en"] == "Retry in 5 minutes."
    assert body["action"] == {"zh": "稍后再试。", "en": "Wait and retry."}
    assert body["params"] == {"minutes": 5}


def test_unexpected_exception_is_a_problem_with_request_id(client):
    response = client.get("/boom")
    body = _problem(response, 500, "INTERNAL_ERROR")
    assert body["request_id"] == response.headers["x-request-id"]
    assert "bug" not in response.text


def test_wrong_method_is_405(client):
    _problem(client.get("/echo"), 405, "METHOD_NOT_ALLOWED")
