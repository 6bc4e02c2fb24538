"""Products and quotes over HTTP and the CLI: the calculator agrees with the schedule module to the fen."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from miaodai.loans.quotes import quote_json
from miaodai.loans.schedule import LoanTerms, RepaymentMethod, build_schedule
from tests.cli_support import run_cli
from tests.helpers import assert_problem, staff_headers

PRODUCT = {
    "code": "FLEX-12", "name_zh": "灵活贷", "name_en": "Flex loan", "min_amount_fen": 50000, "max_amount_fen": 5000000,
    "methods": ["equal_installment", "equal_principal", "bullet"], "terms_months": [3, 6, 12],
    "bullet_max_days": 60, "min_annual_rate": "0.08", "max_annual_rate": "0.18", "monthly_fee_rate": "0.002",
}


@pytest.fixture
def admin(client, container, clock, fast_staff_hasher):
    return staff_headers(client, container, clock, "product.admin", ("admin",))


@pytest.mark.parametrize("method", ["equal_installment", "equal_principal", "interest_first"])
def test_the_quote_api_answers_what_the_schedule_module_computes(client, method):
    body = {"principal_fen": 1_000_000, "term_months": 12, "annual_rate": "0.18", "method": method,
            "monthly_fee_rate": "0.001", "start_date": "2026-01-31"}
    response = client.post("/v1/quotes", json=body)
    assert response.status_code == 200, response.text
    expected = build_schedule(LoanTerms(1_000_000, Decimal("0.18"), RepaymentMethod(method), date(2026, 1, 31),
                                        term_months=12, monthly_fee_rate=Decimal("0.001")))
    assert response.json() == quote_json(expected)
    assert response.json()["installments"][0]["due_date"] == "2026-02-28"


def test_a_bullet_quote_and_the_default_start_date_is_today_in_beijing(client):
    response = client.post("/v1/quotes", json={"principal_fen": 100000, "term_days": 30, "annual_rate": "0.18",
                                               "method": "bullet"})
    assert response.status_code == 200, response.text
    assert response.json()["installments"] == [{"period": 1, "due_date": "2026-12-22", "principal_fen": 100000,
                                                "interest_fen": 1500, "fee_fen": 0, "total_fen": 101500}]
    assert response.json()["apr"] == "0.180000"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"principal_fen": 100000, "term_months": 12, "annual_rate": "0.18", "monthly_fee_rate": "0.003"},
         422, "LOAN_APR_ABOVE_CAP"),
        ({"principal_fen": 100000, "term_months": 12}, 422, "LOAN_TERMS_INVALID"),
        ({"principal_fen": 100000, "term_days": 30, "annual_rate": "0.18"}, 422, "LOAN_TERMS_INVALID"),
        ({"principal_fen": 100000, "method": "bullet", "term_months": 3, "annual_rate": "0.1"}, 422,
         "LOAN_TERMS_INVALID"),
        ({"principal_fen": -5, "term_months": 12, "annual_rate": "0.18"}, 422, "VALIDATION_FAILED"),
        ({"principal_fen": 100000, "term_months": 12, "annual_rate": "1.5"}, 422, "VALIDATION_FAILED"),
        ({"principal_fen": 100000, "term_months": 12, "annual_rate": "0.1", "method": "balloon"}, 422,
         "VALIDATION_FAILED"),
        ({"principal_fen": 100000, "term_months": 12, "annual_rate": "0.1", "product_code": "NOPE"}, 404,
         "LOAN_PRODUCT_NOT_FOUND"),
    ],
)
def test_bad_quotes_are_clear_problems(client, body, status, code):
    problem = assert_problem(client.post("/v1/quotes", json=body), status, code)
    assert problem["message_zh"] and problem["message_en"]


def test_the_issue_example_with_a_fee_is_refused_naming_its_apr(client):
    problem = assert_problem(client.post("/v1/quotes", json={
        "principal_fen": 1_000_000, "term_months": 12, "annual_rate": "0.18", "monthly_fee_rate": "0.003"}),
        422, "LOAN_APR_ABOVE_CAP")
    assert problem["params"]["apr"] == "0.242489" and "24.2489%" in problem["message_zh"]


def test_staff_create_a_product_and_quotes_under_it_follow_its_rules(client, admin):
    created = client.post("/v1/staff/products", json=PRODUCT, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["cost_cap"] == "0.24" and created.json()["penalty_rate_multiplier"] == "1.5"
    assert [p["code"] for p in client.get("/v1/products").json()] == ["FLEX-12"]
    quoted = client.post("/v1/quotes", json={"product_code": "FLEX-12", "principal_fen": 300000, "term_months": 6,
                                             "method": "equal_principal"})
    assert quoted.status_code == 200, quoted.text
    assert quoted.json()["installments"][0]["fee_fen"] == 600  # the product's 0.2 % a month on ¥3,000
    for body, code in [
        ({"principal_fen": 10_000_000, "term_months": 6}, "LOAN_AMOUNT_OUT_OF_RANGE"),
        ({"principal_fen": 300000, "term_months": 9}, "LOAN_TERM_NOT_OFFERED"),
        ({"principal_fen": 300000, "term_months": 6, "method": "interest_first"}, "LOAN_METHOD_NOT_OFFERED"),
        ({"principal_fen": 300000, "term_days": 61, "method": "bullet"}, "LOAN_TERM_NOT_OFFERED"),
        ({"principal_fen": 300000, "term_months": 6, "annual_rate": "0.20"}, "LOAN_RATE_OUT_OF_RANGE"),
        ({"principal_fen": 300000, "term_months": 6, "monthly_fee_rate": "0"}, "LOAN_TERMS_INVALID"),
    ]:
        assert_problem(client.post("/v1/quotes", json={"product_code": "FLEX-12", **body}), 422, code)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"monthly_fee_rate": "0.01"}, "LOAN_PRODUCT_ABOVE_CAP"),  # 18 % + 1 %/month is far above 24 %
        ({"max_annual_rate": "0.23", "bullet_max_days": 60}, "LOAN_PRODUCT_ABOVE_CAP"),
        ({"min_amount_fen": 6000000}, "LOAN_PRODUCT_INVALID"),
        ({"bullet_max_days": None}, "LOAN_PRODUCT_INVALID"),
        ({"terms_months": []}, "LOAN_PRODUCT_INVALID"),
        ({"allocation_order": ["fee", "interest", "principal"]}, "LOAN_PRODUCT_INVALID"),
        ({"cost_cap": "0.5"}, "LOAN_PRODUCT_INVALID"),
        ({"penalty_rate_multiplier": "2"}, "VALIDATION_FAILED"),
    ],
)
def test_a_product_that_could_break_the_cap_or_is_malformed_is_refused(client, admin, change, code):
    response = client.post("/v1/staff/products", json={**PRODUCT, **change}, headers=admin)
    assert_problem(response, 422, code)
    assert client.get("/v1/products").json() == []


def test_creating_products_needs_the_permission_and_codes_are_unique(client, container, clock, admin):
    auditor = staff_headers(client, container, clock, "read.only", ("auditor",))
    assert_problem(client.post("/v1/staff/products", json=PRODUCT, headers=auditor), 403, "STAFF_PERMISSION_DENIED")
    assert_problem(client.post("/v1/staff/products", json=PRODUCT), 401, "STAFF_UNAUTHENTICATED")
    assert client.post("/v1/staff/products", json=PRODUCT, headers=admin).status_code == 201
    assert_problem(client.post("/v1/staff/products", json=PRODUCT, headers=admin), 409, "LOAN_PRODUCT_EXISTS")


def test_the_quote_command_prints_the_same_json_and_a_table(settings):
    args = ["quote", "--principal", "10000.00", "--term", "12", "--annual-rate", "0.18", "--method",
            "equal_installment", "--monthly-fee-rate", "0.001", "--start-date", "2026-01-15"]
    result = run_cli(settings, *args, "--json")
    assert result.exit_code == 0, result.output
    expected = build_schedule(LoanTerms(1_000_000, Decimal("0.18"), RepaymentMethod.EQUAL_INSTALLMENT,
                                        date(2026, 1, 15), term_months=12, monthly_fee_rate=Decimal("0.001")))
    assert json.loads(result.stdout) == quote_json(expected)
    table = run_cli(settings, *args)
    assert table.exit_code == 0 and "926.80" in table.stdout and "2027-01-15" in table.stdout  # 916.80 + ¥10 fee
    assert "APR" in table.stdout and "20." in table.stdout
    refused = run_cli(settings, *args[:-2], "--monthly-fee-rate", "0.003", "--json")
    assert refused.exit_code == 1 and "LOAN_APR_ABOVE_CAP" in refused.stderr
    bullet = run_cli(settings, "quote", "--principal", "1000", "--term-days", "30", "--annual-rate", "0.18",
                     "--method", "bullet", "--start-date", "2026-01-15", "--json")
    assert json.loads(bullet.stdout)["installments"][0]["interest_fen"] == 1500
    bad = run_cli(settings, "quote", "--principal", "12.345", "--term", "3", "--annual-rate", "0.1")
    assert bad.exit_code == 2 and "--principal" in bad.stderr
