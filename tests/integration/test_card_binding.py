"""Binding bank cards over HTTP on both databases: the card check (Luhn, bank, debit only), four-element
verification with the bank's code from the sandbox inbox, every documented failure, storage that keeps
the number only encrypted, default and unbind rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from miaodai.core.audit import AuditEntry
from miaodai.payments import bins
from miaodai.payments.card_verification import (
    SANDBOX_CARD_ELEMENTS_MISMATCH,
    SANDBOX_CARD_FROZEN,
    SANDBOX_CARD_OK,
    SANDBOX_CARD_PHONE_MISMATCH,
    SANDBOX_CARD_TIMEOUT,
)
from miaodai.payments.models import CARD_NUMBER_FIELD, CardBinding, PaymentMethod
from tests.credit_support import applicant, quick_parties
from tests.helpers import assert_problem, latest_code, login
from tests.loan_support import PHONE as DEMO_PHONE
from tests.loan_support import active_loan, demo_borrower

PHONE = "13700137401"
ID_NUMBER = "110101199003070011"


def _number(*, card_type: str, payout: bool = True, auto_debit: bool | None = None) -> str:
    """A valid number from the BIN data with the given properties (not one of the special sandbox cards)."""
    for prefix, length, info in bins.ranges():
        if info.card_type.value == card_type and info.payout is payout and (
                auto_debit is None or info.auto_debit is auto_debit):
            return bins.sandbox_number(prefix, length, "777")
    raise AssertionError(f"no {card_type} range with payout={payout} auto_debit={auto_debit} in the BIN data")


@pytest.fixture
def who(client, container):
    quick_parties(container)
    return applicant(client, PHONE, ID_NUMBER)


def _start(client, who, number, **body):
    return client.post("/v1/payment-methods/cards", json={"card_number": number, **body}, headers=who["headers"])


def _bind(client, who, number, phone=PHONE):
    started = _start(client, who, number)
    assert started.status_code == 202, started.text
    binding = started.json()
    confirmed = client.post(f"/v1/payment-methods/cards/{binding['binding_id']}/confirm",
                            json={"code": latest_code(client, phone)}, headers=who["headers"])
    assert confirmed.status_code == 201, confirmed.text
    return confirmed.json()


def test_a_debit_card_is_bound_with_the_banks_code_and_kept_only_encrypted(client, container, who):
    spaced = " ".join(SANDBOX_CARD_OK[i:i + 4] for i in range(0, len(SANDBOX_CARD_OK), 4))
    started = _start(client, who, spaced)
    assert started.status_code == 202, started.text
    binding = started.json()
    assert binding["status"] == "pending" and binding["bank"]["code"] == "ICBC" and binding["card_type"] == "debit"
    assert binding["last4"] == SANDBOX_CARD_OK[-4:] and binding["code_sent_to"] == "137****7401"
    assert SANDBOX_CARD_OK not in started.text
    message = client.get(f"/sandbox/sms/{PHONE}").json()["messages"][0]
    assert message["text"].startswith("【中国工商银行】") and SANDBOX_CARD_OK[-4:] in message["text"]
    method = client.post(f"/v1/payment-methods/cards/{binding['binding_id']}/confirm",
                         json={"code": message["code"]}, headers=who["headers"]).json()
    assert method["kind"] == "bank_card" and method["is_default"] is True and method["auto_debit"] is True
    assert (method["bin"], method["last4"]) == (SANDBOX_CARD_OK[:6], SANDBOX_CARD_OK[-4:])
    listed = client.get("/v1/payment-methods", headers=who["headers"])
    assert [m["id"] for m in listed.json()] == [method["id"]] and SANDBOX_CARD_OK not in listed.text
    with container.db.transaction() as session:
        row = session.get(PaymentMethod, method["id"])
        assert SANDBOX_CARD_OK not in row.number_enc and SANDBOX_CARD_OK[6:-4] not in (row.fingerprint or "")
        assert container.vault.decrypt(row.number_enc, CARD_NUMBER_FIELD) == SANDBOX_CARD_OK
        actions = session.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert actions[-2:] == ["payment.card_binding.started", "payment.method.bound"]
    # The same card again: already bound.
    assert_problem(_start(client, who, SANDBOX_CARD_OK), 409, "PAYMENT_CARD_ALREADY_BOUND")


@pytest.mark.parametrize(("number", "status", "code"), [
    ("6222021234567890124", 422, "PAYMENT_CARD_NUMBER_INVALID"),  # check digit wrong
    ("62220212345abc", 422, "PAYMENT_CARD_NUMBER_INVALID"),
    ("9999991234567890", 422, "PAYMENT_CARD_NUMBER_INVALID"),  # Luhn-invalid and no bank
    (SANDBOX_CARD_ELEMENTS_MISMATCH, 422, "PAYMENT_CARD_ELEMENTS_MISMATCH"),
    (SANDBOX_CARD_PHONE_MISMATCH, 422, "PAYMENT_CARD_PHONE_MISMATCH"),
    (SANDBOX_CARD_FROZEN, 422, "PAYMENT_CARD_FROZEN"),
    (SANDBOX_CARD_TIMEOUT, 504, "PAYMENT_CARD_VERIFICATION_TIMEOUT"),
])
def test_each_refusal_has_its_code_and_binds_nothing(client, container, who, number, status, code):
    assert_problem(_start(client, who, number), status, code)
    with container.db.transaction() as session:
        assert session.execute(select(CardBinding)).first() is None
        assert session.execute(select(PaymentMethod)).first() is None


def test_credit_cards_and_unsupported_banks_are_told_the_alternatives(client, who):
    credit = assert_problem(_start(client, who, _number(card_type="credit")), 422, "PAYMENT_CARD_CREDIT_NOT_ALLOWED")
    assert "支付宝" in credit["action"]["zh"] and "Alipay" in credit["action"]["en"]
    assert "中国工商银行" in credit["action"]["zh"]  # the list of banks that work
    unsupported = assert_problem(_start(client, who, _number(card_type="debit", payout=False)), 422,
                                 "PAYMENT_CARD_BANK_UNSUPPORTED")
    assert "WeChat Pay" in unsupported["action"]["en"]
    assert_problem(_start(client, who, bins.sandbox_number("999999", 16)), 422, "PAYMENT_CARD_BANK_UNKNOWN")
    banks = client.get("/v1/banks").json()
    assert {"ICBC", "CCB", "ABC", "BOC", "CMB"} <= {b["code"] for b in banks}


def test_a_bank_without_auto_debit_binds_with_a_notice(client, who):
    method = _bind(client, who, _number(card_type="debit", auto_debit=False))
    assert method["auto_debit"] is False and "手动还款" in method["notice_zh"]


def test_wrong_codes_count_and_lock_the_binding(client, who):
    binding = _start(client, who, SANDBOX_CARD_OK).json()
    right = latest_code(client, PHONE)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    url = f"/v1/payment-methods/cards/{binding['binding_id']}/confirm"
    for left in (4, 3, 2, 1):
        body = assert_problem(client.post(url, json={"code": wrong}, headers=who["headers"]), 422,
                              "PAYMENT_BINDING_CODE_INVALID")
        assert body["params"]["attempts_left"] == left
    assert_problem(client.post(url, json={"code": wrong}, headers=who["headers"]), 409, "PAYMENT_BINDING_LOCKED")
    assert_problem(client.post(url, json={"code": right}, headers=who["headers"]), 409, "PAYMENT_BINDING_LOCKED")
    assert client.get("/v1/payment-methods", headers=who["headers"]).json() == []


def test_a_binding_expires_and_belongs_to_its_borrower(client, container, clock, who):
    binding = _start(client, who, SANDBOX_CARD_OK).json()
    code = latest_code(client, PHONE)
    url = f"/v1/payment-methods/cards/{binding['binding_id']}/confirm"
    other = applicant(client, "13700137402", "110101199003070038")
    assert_problem(client.post(url, json={"code": code}, headers=other["headers"]), 404, "PAYMENT_BINDING_NOT_FOUND")
    clock.advance(timedelta(minutes=5, seconds=1))
    assert_problem(client.post(url, json={"code": code}, headers=who["headers"]), 410, "PAYMENT_BINDING_EXPIRED")


def test_binding_needs_a_fresh_step_up_and_a_verified_identity(client, container, clock, who):
    clock.advance(timedelta(seconds=container.settings.step_up_ttl_seconds + 1))
    assert_problem(_start(client, who, SANDBOX_CARD_OK), 403, "STEP_UP_REQUIRED")
    stranger = login(client, "13700137403", device="device-stranger")
    assert_problem(_start(client, stranger, SANDBOX_CARD_OK), 403, "PAYMENT_IDENTITY_REQUIRED")


def test_default_moves_and_the_last_method_of_a_loan_cannot_be_unbound(client, container, clock):
    quick_parties(container)
    borrower = demo_borrower(client, container)
    [first] = client.get("/v1/payment-methods", headers=borrower["headers"]).json()  # the seed's card
    loan = active_loan(client, clock, borrower)
    refused = assert_problem(client.delete(f"/v1/payment-methods/{first['id']}", headers=borrower["headers"]), 409,
                             "PAYMENT_METHOD_IN_USE")
    assert str(loan["id"]) in refused["message_en"]
    second = _bind(client, borrower, SANDBOX_CARD_OK, phone=DEMO_PHONE)
    assert first["is_default"] is True and second["is_default"] is False
    made = client.post(f"/v1/payment-methods/{second['id']}/default", headers=borrower["headers"]).json()
    assert made["is_default"] is True
    listed = client.get("/v1/payment-methods", headers=borrower["headers"]).json()
    assert [(m["id"], m["is_default"]) for m in listed] == [(second["id"], True), (first["id"], False)]
    # Unbinding the default hands the flag to what remains.
    assert client.delete(f"/v1/payment-methods/{second['id']}", headers=borrower["headers"]).status_code == 200
    listed = client.get("/v1/payment-methods", headers=borrower["headers"]).json()
    assert [(m["id"], m["is_default"]) for m in listed] == [(first["id"], True)]
    assert_problem(client.delete(f"/v1/payment-methods/{second['id']}", headers=borrower["headers"]), 404,
                   "PAYMENT_METHOD_NOT_FOUND")


def test_a_reserved_phone_gets_its_days_bank_codes_from_every_borrower_who_names_it(client, container, who):
    victim = "13900139999"  # someone else's phone, named by borrowers who want it texted
    for _ in range(3):
        assert _start(client, who, SANDBOX_CARD_OK, reserved_phone=victim).status_code == 202
    other = applicant(client, "13700137404", "110101199003070046")
    for _ in range(2):
        assert _start(client, other, SANDBOX_CARD_OK, reserved_phone=victim).status_code == 202
    refused = assert_problem(_start(client, other, SANDBOX_CARD_OK, reserved_phone=victim), 429,
                             "PAYMENT_BINDING_PHONE_DAILY_LIMIT")
    # Until midnight in Beijing (16:00 UTC), and the bank was not asked a sixth time.
    assert refused["params"]["retry_at"] == "2026-11-22T16:00:00+00:00" and refused["params"]["limit"] == 5
    assert len(client.get(f"/sandbox/sms/{victim}").json()["messages"]) == 5
    # Each borrower's own phone is another phone: they still bind a card with it.
    assert _start(client, other, SANDBOX_CARD_OK).status_code == 202


def test_a_borrower_gets_their_days_bank_codes_whatever_phones_they_name(client, container, who):
    for i in range(10):
        assert _start(client, who, SANDBOX_CARD_OK, reserved_phone=f"1390013{i:04d}").status_code == 202
    refused = assert_problem(_start(client, who, SANDBOX_CARD_OK, reserved_phone="13900139000"), 429,
                             "PAYMENT_BINDING_CODES_DAILY_LIMIT")
    assert refused["params"]["limit"] == 10 and "2026-11-23 00:00:00" in refused["message_zh"] + refused["action"]["zh"]
    assert client.get("/sandbox/sms/13900139000").json()["messages"] == []
    with container.db.transaction() as session:
        assert len(session.execute(select(CardBinding)).all()) == 10
