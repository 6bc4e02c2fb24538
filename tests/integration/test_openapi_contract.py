"""The published OpenAPI document against the service's behaviour.

What a client must send is declared (the bearer scheme, ``Idempotency-Key`` on every money-moving operation,
``X-Device-Id`` where the service refuses a request without it), every error answer is a problem document with
its codes, and — the contract — every problem code an operation actually answered while the API test modules
ran is declared for that operation at that status (``tests/openapi_recorder.py`` records them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts

from miaodai.core.http import PROBLEM_JSON
from miaodai.core.idempotency import idempotency
from miaodai.core.openapi import PROBLEM_REF, dependency_calls

ROOT = Path(__file__).resolve().parents[2]
# API test modules whose answers are held against the document (138 tests, about 4 minutes): login, KYC, consents,
# credit, drawdowns and signing, payouts, idempotency, staff. MIAODAI_CONTRACT_MODULES replaces the list (e.g.
# every tests/integration/test_*.py before a release).
CONTRACT_MODULES = (
    "tests/integration/test_login.py", "tests/integration/test_kyc.py", "tests/integration/test_credit_applications.py",
    "tests/integration/test_drawdowns.py", "tests/integration/test_idempotency.py",
    "tests/integration/test_staff_login.py",
)


def _operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def _declared_codes(operation: dict[str, Any]) -> dict[int, set[str]]:
    declared: dict[int, set[str]] = {}
    for status, response in operation["responses"].items():
        if status[0] in "45":
            schema = response["content"][PROBLEM_JSON]["schema"]
            declared[int(status)] = set(schema["allOf"][1]["properties"]["code"]["enum"])
    return declared


def test_the_document_declares_what_clients_send_and_every_error_as_a_problem(client):
    document = client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["bearer"][
            "description"]}
    assert "HTTPValidationError" not in json.dumps(document)
    operations = {(path, method): operation for path, method, operation in _operations(document)}
    money_moving = {(ctx.path_format, method) for ctx in iter_route_contexts(client.app.routes)
                    if isinstance(ctx.original_route, APIRoute) and ctx.include_in_schema
                    and idempotency in set(dependency_calls(ctx)) for method in ctx.methods}
    assert {("/v1/loans", "POST"), ("/v1/loans/{loan_id}/repayments", "POST"),
            ("/v1/loans/{loan_id}/sign", "POST")} <= money_moving
    for (path, method), operation in operations.items():
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        key = headers.get("Idempotency-Key")
        if (path, method) in money_moving:
            assert key is not None and key["required"], f"{method} {path} lacks Idempotency-Key"
        else:
            assert key is None, f"{method} {path} does not take an Idempotency-Key"
        for status, response in operation["responses"].items():
            if status[0] in "45":
                assert response["content"][PROBLEM_JSON]["schema"]["allOf"][0] == {"$ref": PROBLEM_REF}
        assert "422" in operation["responses"], f"{method} {path}: a NUL in any header is a 422"
    for where in (("/v1/auth/otp", "POST"), ("/v1/auth/login", "POST")):
        device = next(p for p in operations[where]["parameters"] if p["name"] == "X-Device-Id")
        assert device["required"] and "DEVICE_ID_MISSING" in _declared_codes(operations[where])[400]
    assert operations[("/v1/me", "GET")]["security"] == [{"bearer": []}]
    assert operations[("/v1/staff/me", "GET")]["security"] == [{"bearer": []}]
    assert "STAFF_UNAUTHENTICATED" in _declared_codes(operations[("/v1/staff/me", "GET")])[401]
    assert "security" not in operations[("/v1/auth/login", "POST")]
    assert "security" not in operations[("/v1/consent-documents/{kind}/{version}", "GET")]
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) >= {"type", "title", "status", "detail", "code", "message_zh", "message_en"}
    assert set(problem["properties"]) >= {"action", "params", "request_id"}


def test_the_states_in_answers_are_enums(client):
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]

    def enum_of(model: str, field: str) -> list[str]:
        schema = schemas[model]["properties"][field]
        while "$ref" in schema or "allOf" in schema:
            schema = schemas[(schema.get("allOf") or [schema])[0]["$ref"].rsplit("/", 1)[1]]
        return schema["enum"]

    assert set(enum_of("ApplicationView", "status")) == {"approved", "declined", "in_review"}
    assert "frozen" in enum_of("LineView", "status")
    assert "overdue" in enum_of("LoanView", "status")
    assert set(enum_of("PayoutView", "status")) == {"created", "processing", "succeeded", "failed"}


def test_every_code_an_operation_answers_in_the_api_tests_is_declared_for_it(tmp_path):
    """The API test modules run (on MIAODAI_CONTRACT_BACKENDS, sqlite by default: the codes are the database's
    business only where a test says so) with every problem answered recorded by operation."""
    answers = tmp_path / "answers.jsonl"
    modules = os.environ.get("MIAODAI_CONTRACT_MODULES", " ".join(CONTRACT_MODULES)).split()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.openapi_recorder", "-p", "no:cacheprovider",
         "--backends", os.environ.get("MIAODAI_CONTRACT_BACKENDS", "sqlite"), *modules],
        cwd=ROOT, env={**os.environ, "MIAODAI_ANSWERS_FILE": str(answers)}, capture_output=True, text=True,
        timeout=1500,
    )
    records = [json.loads(line) for line in answers.read_text().splitlines()] if answers.exists() else []
    assert records, f"no answer recorded:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    document = json.loads(Path(f"{answers}.openapi.json").read_text())
    declared = {(path, method): _declared_codes(operation) for path, method, operation in _operations(document)}
    missing: dict[str, set[str]] = defaultdict(set)
    seen = set()
    for record in records:
        where = (record["route"], record["method"])
        if where not in declared:  # the web app's pages and the sandbox's are not in the document
            continue
        seen.add(where)
        if record["code"] not in declared[where].get(record["status"], set()):
            missing[f"{record['method']} {record['route']} {record['status']}"].add(record["code"])
    assert not missing, "answered but not declared:\n" + "\n".join(
        f"{where}: {sorted(codes)}" for where, codes in sorted(missing.items()))
    if "MIAODAI_CONTRACT_MODULES" not in os.environ:  # the modules reached the operations: the check was not empty
        assert len(records) > 150 and len(seen) > 15, (len(records), sorted(seen))
