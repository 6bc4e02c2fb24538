"""Property-based fuzzing of the maker-checker routes with a staff token of every role (schemathesis): whatever a
client sends, no 5xx, and every error is a problem document with a code. (test_api_fuzz.py fuzzes every route
with a borrower's token, which the staff routes answer 401.)"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from miaodai.demo import seed_demo
from miaodai.identity.rbac import Role
from tests.helpers import staff_headers

MINE = ("/v1/staff/approvals", "/v1/staff/loans/{loan_id}/", "/v1/staff/repayments/", "/v1/staff/credit-lines/",
        "/v1/staff/borrowers/{borrower_id}/closure")


def test_the_maker_checker_routes_answer_bad_input_without_a_server_error(client, container, clock,
                                                                          fast_staff_hasher):
    seed_demo(container)  # a line and borrowers for the generated ids to meet now and then
    headers = staff_headers(client, container, clock, "fuzz.checker", tuple(role.value for role in Role))
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if op.path.startswith(MINE)]
    assert len(operations) >= 12, [op.path for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answers_without_server_error(case) -> None:
            response = case.call(headers={**headers, "Idempotency-Key": "fuzz-key"})
            where = f"{case.method} {case.path}"
            assert response.status_code < 500, f"{where}: {response.text[:500]}"
            if response.status_code >= 400:
                problem = response.json()
                assert problem["code"] and problem["message_zh"] and problem["message_en"], (where, problem)

        answers_without_server_error()
