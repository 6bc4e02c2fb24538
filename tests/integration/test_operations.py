"""Operational endpoints: health, readiness, metrics, and problem details for unknown routes."""

from __future__ import annotations


def test_health_and_readiness_report_the_database(client, backend):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == backend


def test_metrics_expose_request_counters(client):
    client.get("/healthz")
    body = client.get("/metrics").text
    assert 'miaodai_http_requests_total{method="GET",route="/healthz",status="200"}' in body


def test_unknown_route_is_a_problem_document(client):
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "NOT_FOUND"
    assert problem["message_zh"] and problem["message_en"]
    assert response.headers["x-request-id"] == problem["request_id"]


def test_openapi_document_is_served(client):
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"].startswith("Miaodai")
