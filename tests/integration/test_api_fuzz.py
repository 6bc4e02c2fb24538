"""Property-based fuzzing of every documented operation (schemathesis over /openapi.json).

Whatever a client sends — right types, wrong types, missing or extra fields, odd strings —
the service answers without a 5xx, and every error is a problem document with a code.
Runs on SQLite with a logged-in borrower, so authenticated operations are reached too.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.helpers import login

PINNED_FIXTURES = ("backend",)
EXAMPLES_PER_OPERATION = 25
# These end the fuzzing borrower's own session; they have scenario tests of their own.
SESSION_ENDING = {("POST", "/v1/auth/logout"), ("POST", "/v1/sessions/revoke-all"),
                  ("DELETE", "/v1/sessions/{session_id}")}


@pytest.fixture
def backend() -> str:
    return "sqlite"


def test_no_operation_answers_with_a_server_error(client):
    headers = login(client, "13812345678")["headers"]
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the schema lost its operations"
    reached: Counter[str] = Counter()
    for operation in operations:
        if (operation.method.upper(), operation.path) in SESSION_ENDING:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def answers_without_server_error(case) -> None:
            response = case.call(headers=headers)
            where = f"{case.method} {case.path}"
            assert response.status_code < 500, f"{where}: {response.text[:500]}"
            if response.status_code != 401:
                reached[where] += 1
            if response.status_code >= 400:
                problem = response.json()
                assert problem["code"] and problem["message_zh"] and problem["message_en"], (where, problem)

        answers_without_server_error()
    # The borrower's session stayed valid, so borrower operations got past authentication.
    for where in ("POST /v1/kyc/identity", "POST /v1/consents", "GET /v1/me", "POST /v1/auth/otp"):
        assert reached[where] > 0, f"{where} was never reached past authentication"
