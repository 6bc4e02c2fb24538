"""Binding e-wallets (Alipay, WeChat Pay) over HTTP on both databases: the withholding agreement signed on
the sandbox wallet's page, every documented outcome, the authorization code checked with the wallet
(attempts, expiry, codes of other bindings), the account kept only encrypted and never shown or logged,
the same wallet on two borrowers detected, list/default/unbind, and a loan paid out to a wallet."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from miaodai.core.audit import AuditEntry
from miaodai.payments.models import CARD_NUMBER_FIELD, PaymentMethod, PaymentMethodKind, PaymentOrder, WalletBinding
from miaodai.sandbox.wallet import LOGIN_AGREEMENT_EXISTS, LOGIN_FROZEN, LOGIN_TIMEOUT
from tests import payment_support
from tests.credit_support import applicant, quick_parties
from tests.helpers import assert_problem, login, sign_body
from tests.loan_support import PHONE as DEMO_PHONE
from tests.loan_support import active_loan, demo_borrower
from tests.payment_support import channel_time_passes, sign_in_wallet

PHONE = "13700137501"
ID_NUMBER = "110101199003070011"
WALLET_LOGIN = "13700137599"  # the wallet's login: not the borrower's phone, so finding it anywhere means a leak


@pytest.fixture
def waits(container) -> list[float]:
    """The sandbox wallet answers at once; a timeout is recorded, not waited out."""
    recorded = quick_parties(container)
    container.wallets.latency_seconds = 0
    container.wallets._sleep = recorded.append
    return recorded


@pytest.fixture
def who(client, container, waits):
    return applicant(client, PHONE, ID_NUMBER)


def _start(client, who, kind="alipay"):
    return client.post("/v1/payment-methods/wallets", json={"kind": kind}, headers=who["headers"])


def _started(client, who, kind="alipay") -> dict:
    started = _start(client, who, kind)
    assert started.status_code == 202, started.text
    return started.json()


def _confirm(client, who, binding_id: str, auth_code: str):
    return client.post(f"/v1/payment-methods/wallets/{binding_id}/confirm", json={"auth_code": auth_code},
                       headers=who["headers"])


def _sign(client, started: dict, login: str = WALLET_LOGIN, decision: str = "approve") -> str:
    return sign_in_wallet(client, started, login, decision)


def bind_wallet(client, who, login: str = WALLET_LOGIN, kind: str = "alipay") -> dict:
    return payment_support.bind_wallet(client, who, login, kind)


def _binding(container, binding_id: str) -> WalletBinding:
    with container.db.transaction() as session:
        return session.execute(select(WalletBinding).where(WalletBinding.token == binding_id)).scalar_one()


def _methods(container) -> list[PaymentMethod]:
    with container.db.transaction() as session:
        return session.execute(select(PaymentMethod).order_by(PaymentMethod.id)).scalars().all()


def _actions(container) -> list[str]:
    with container.db.transaction() as session:
        return session.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()


@pytest.mark.parametrize(("kind", "account_shape"), [
    ("alipay", lambda a: a.startswith("2088") and len(a) == 16 and a.isdigit()),
    ("wechat_pay", lambda a: a.startswith("o") and len(a) == 28),
])
def test_a_wallet_is_bound_by_signing_the_agreement_and_kept_only_encrypted(client, container, who, kind,
                                                                            account_shape):
    started = _start(client, who, kind)
    assert started.status_code == 202, started.text
    binding = started.json()
    assert binding["kind"] == kind and binding["status"] == "pending" and binding["binding_id"].startswith("wbind_")
    page = client.get(urlsplit(binding["authorize_url"]).path).json()
    assert page["wallet"] == kind and "代扣" in page["agreement_zh"] and LOGIN_FROZEN in page["test_logins"]
    auth_code = _sign(client, binding)
    confirmed = _confirm(client, who, binding["binding_id"], auth_code)
    assert confirmed.status_code == 201, confirmed.text
    method = confirmed.json()
    assert method["kind"] == kind and method["bank"] is None and method["bin"] is None
    assert method["last4"] == WALLET_LOGIN[-4:] and method["masked_login"] == "****" + WALLET_LOGIN[-4:]
    assert method["is_default"] is True and method["auto_debit"] is True and method["notice_en"] is None
    account_id = container.wallets.account_id(PaymentMethodKind(kind), WALLET_LOGIN)
    assert account_shape(account_id)
    listed = client.get("/v1/payment-methods", headers=who["headers"])
    assert [m["id"] for m in listed.json()] == [method["id"]]
    for shown in (started.text, confirmed.text, listed.text):
        assert account_id not in shown and WALLET_LOGIN not in shown
    [row] = _methods(container)
    assert row.kind is PaymentMethodKind(kind) and row.bank_code is None and row.reserved_phone_enc is None
    assert account_id not in row.number_enc and account_id not in row.fingerprint
    assert container.vault.decrypt(row.number_enc, CARD_NUMBER_FIELD) == account_id  # what the channel gets
    assert row.agreement_no and row.agreement_no.isdigit()
    bound = _binding(container, binding["binding_id"])
    assert (bound.status.value, bound.payment_method_id, bound.attempts) == ("bound", row.id, 0)
    assert _actions(container)[-2:] == ["payment.wallet_binding.started", "payment.method.bound"]
    # Confirming a finished binding again creates nothing.
    assert_problem(_confirm(client, who, binding["binding_id"], auth_code), 409, "PAYMENT_WALLET_BINDING_DONE")
    assert len(_methods(container)) == 1


@pytest.mark.parametrize(("login", "decision", "status", "code"), [
    (WALLET_LOGIN, "decline", 422, "PAYMENT_WALLET_DECLINED"),
    (LOGIN_FROZEN, "decline", 422, "PAYMENT_WALLET_DECLINED"),  # declined before the wallet looked at the account
    (LOGIN_FROZEN, "approve", 422, "PAYMENT_WALLET_ACCOUNT_FROZEN"),
    (LOGIN_AGREEMENT_EXISTS, "approve", 409, "PAYMENT_WALLET_AGREEMENT_EXISTS"),
])
def test_each_refusal_has_its_code_ends_the_binding_and_binds_nothing(client, container, who, login, decision,
                                                                       status, code):
    started = _started(client, who, "wechat_pay")
    auth_code = _sign(client, started, login, decision)
    problem = assert_problem(_confirm(client, who, started["binding_id"], auth_code), status, code)
    assert problem["params"]["kind"] == "wechat_pay" and "微信支付" in problem["message_zh"]
    assert "WeChat Pay" in problem["message_en"] and "_wallet_en" not in problem["params"]
    ended = _binding(container, started["binding_id"])
    assert ended.status.value == "failed" and ended.completed_at is not None and ended.payment_method_id is None
    # Asked again, the same answer (kept with the binding), and still nothing bound.
    assert_problem(_confirm(client, who, started["binding_id"], auth_code), status, code)
    assert _methods(container) == [] and client.get("/v1/payment-methods", headers=who["headers"]).json() == []
    assert _actions(container)[-1] == "payment.wallet_binding.failed"


def test_a_wallet_that_does_not_answer_leaves_the_binding_pending_without_using_an_attempt(client, container,
                                                                                           who, waits):
    started = _started(client, who)
    auth_code = _sign(client, started, LOGIN_TIMEOUT)
    url_id = started["binding_id"]
    for _ in range(MAX_TRIES := 6):  # more than the attempts a binding has: timeouts are not attempts
        problem = assert_problem(_confirm(client, who, url_id, auth_code), 504, "PAYMENT_WALLET_TIMEOUT")
    assert "Alipay" in problem["message_en"] and "same authorization code" in problem["action"]["en"]
    assert waits.count(container.settings.provider_timeout_seconds) == MAX_TRIES  # each one waited the full timeout
    pending = _binding(container, url_id)
    assert (pending.status.value, pending.attempts) == ("pending", 0)
    assert _methods(container) == []


def test_codes_of_other_bindings_and_made_up_codes_count_and_lock_the_binding(client, container, who):
    first, second = _started(client, who), _started(client, who)
    first_code = _sign(client, first)
    url = f"/v1/payment-methods/wallets/{second['binding_id']}/confirm"
    # A genuine code, but issued for another signing request; a made-up one; then a code of the other wallet.
    wechat = _started(client, who, "wechat_pay")
    for left, code in ((4, first_code), (3, "madeUpCode_0123456789"), (2, _sign(client, wechat))):
        problem = assert_problem(client.post(url, json={"auth_code": code}, headers=who["headers"]), 422,
                                 "PAYMENT_WALLET_AUTH_CODE_INVALID")
        assert problem["params"]["attempts_left"] == left
    assert_problem(client.post(url, json={"auth_code": "not a code!"}, headers=who["headers"]), 422,
                   "VALIDATION_FAILED")  # malformed: refused before the wallet is asked, no attempt used
    assert _binding(container, second["binding_id"]).attempts == 3
    second_code = _sign(client, second)
    for status, code in ((422, "PAYMENT_WALLET_AUTH_CODE_INVALID"), (409, "PAYMENT_WALLET_BINDING_LOCKED"),
                         (409, "PAYMENT_WALLET_BINDING_LOCKED")):
        assert_problem(client.post(url, json={"auth_code": first_code}, headers=who["headers"]), status, code)
    # Locked: even its own code no longer works. The first binding is unaffected and binds with its code once.
    assert_problem(client.post(url, json={"auth_code": second_code}, headers=who["headers"]), 409,
                   "PAYMENT_WALLET_BINDING_LOCKED")
    assert _confirm(client, who, first["binding_id"], first_code).status_code == 201
    assert_problem(_confirm(client, who, first["binding_id"], first_code), 409, "PAYMENT_WALLET_BINDING_DONE")
    assert len(_methods(container)) == 1


def test_a_binding_expires_and_belongs_to_its_borrower(client, container, clock, who):
    started = _started(client, who)
    auth_code = _sign(client, started)
    other = applicant(client, "13700137502", "110101199003070038")
    assert_problem(_confirm(client, other, started["binding_id"], auth_code), 404, "PAYMENT_WALLET_BINDING_NOT_FOUND")
    clock.advance(timedelta(minutes=10, seconds=1))
    assert_problem(_confirm(client, who, started["binding_id"], auth_code), 410, "PAYMENT_WALLET_BINDING_EXPIRED")
    assert _methods(container) == []


def test_the_signing_page_knows_only_requests_the_wallet_issued(client, who):
    path = urlsplit(_started(client, who)["authorize_url"]).path
    forged = path[:-1] + ("0" if path[-1] != "0" else "1")
    assert_problem(client.get(forged), 404, "NOT_FOUND")
    assert_problem(client.post(f"{forged}/authorize", json={"login": WALLET_LOGIN, "decision": "approve"}), 404,
                   "NOT_FOUND")
    assert_problem(client.post(f"{path}/authorize", json={"login": "10086", "decision": "approve"}), 422,
                   "PHONE_SHORT_NUMBER")


def test_binding_needs_a_fresh_step_up_and_a_verified_identity(client, container, clock, who):
    clock.advance(timedelta(seconds=container.settings.step_up_ttl_seconds + 1))
    assert_problem(_start(client, who), 403, "STEP_UP_REQUIRED")
    stranger = login(client, "13700137503", device="device-stranger")
    assert_problem(_start(client, stranger, "wechat_pay"), 403, "PAYMENT_IDENTITY_REQUIRED")
    assert_problem(_start(client, stranger, "paypal"), 422, "VALIDATION_FAILED")
    with container.db.transaction() as session:
        assert session.execute(select(WalletBinding)).first() is None


def test_the_same_wallet_twice_is_refused_and_on_two_borrowers_is_counted(client, container, who):
    first = bind_wallet(client, who)
    started = _started(client, who)
    problem = assert_problem(_confirm(client, who, started["binding_id"], _sign(client, started)), 409,
                             "PAYMENT_WALLET_ALREADY_BOUND")
    assert problem["params"]["last4"] == WALLET_LOGIN[-4:]
    ended = _binding(container, started["binding_id"])
    assert (ended.status.value, ended.code, ended.payment_method_id) == ("failed", "ALREADY_BOUND", first["id"])
    # The same login in the other wallet is another account; the same wallet on another borrower binds.
    assert bind_wallet(client, who, kind="wechat_pay")["kind"] == "wechat_pay"
    other = applicant(client, "13700137502", "110101199003070038")
    bind_wallet(client, other)
    methods = _methods(container)
    assert len(methods) == 3 and methods[0].fingerprint == methods[2].fingerprint != methods[1].fingerprint
    with container.db.transaction() as session:
        bound = session.execute(select(AuditEntry).where(AuditEntry.action == "payment.method.bound")
                                .order_by(AuditEntry.id)).scalars().all()
    assert [json.loads(e.body)["details"]["wallet_on_other_borrowers"] for e in bound] == [0, 0, 1]


def test_the_wallet_account_and_login_never_reach_the_logs(client, container, who, captured_logs):
    bind_wallet(client, who)
    started = _started(client, who, "wechat_pay")
    _confirm(client, who, started["binding_id"], _sign(client, started, LOGIN_FROZEN))
    listed = client.get("/v1/payment-methods", headers=who["headers"])
    logs = captured_logs.getvalue()
    assert '"domain_error"' in logs and '"status": 201' in logs  # the run was logged, refusal and binding
    [method] = _methods(container)
    secrets = (WALLET_LOGIN, LOGIN_FROZEN, container.wallets.account_id(PaymentMethodKind.ALIPAY, WALLET_LOGIN),
               container.wallets.account_id(PaymentMethodKind.WECHAT_PAY, LOGIN_FROZEN), method.agreement_no)
    for secret in secrets:
        assert secret not in logs and secret not in listed.text


def test_default_moves_and_a_wallet_that_is_a_loans_last_method_cannot_be_unbound(client, container, clock, waits):
    borrower = demo_borrower(client, container)
    [card] = client.get("/v1/payment-methods", headers=borrower["headers"]).json()  # the seed's card
    loan = active_loan(client, clock, borrower)  # ends with a fresh step-up
    wallet = bind_wallet(client, borrower)
    assert card["is_default"] is True and wallet["is_default"] is False
    made = client.post(f"/v1/payment-methods/{wallet['id']}/default", headers=borrower["headers"]).json()
    assert made["is_default"] is True and made["kind"] == "alipay"
    listed = client.get("/v1/payment-methods", headers=borrower["headers"]).json()
    assert [(m["id"], m["kind"], m["is_default"]) for m in listed] == [
        (wallet["id"], "alipay", True), (card["id"], "bank_card", False)]
    assert client.delete(f"/v1/payment-methods/{card['id']}", headers=borrower["headers"]).status_code == 200
    refused = assert_problem(client.delete(f"/v1/payment-methods/{wallet['id']}", headers=borrower["headers"]), 409,
                             "PAYMENT_METHOD_IN_USE")
    assert str(loan["id"]) in refused["message_en"]
    assert [m["id"] for m in client.get("/v1/payment-methods", headers=borrower["headers"]).json()] == [wallet["id"]]


def test_a_loan_is_paid_out_to_the_default_alipay_wallet(client, container, clock, waits):
    borrower = demo_borrower(client, container)
    wallet = bind_wallet(client, borrower)
    assert client.post(f"/v1/payment-methods/{wallet['id']}/default", headers=borrower["headers"]).status_code == 200
    submitted = []
    submit = container.channel.submit
    container.channel.submit = lambda order: submitted.append(order) or submit(order)
    line_id = client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["id"]
    body = {"line_id": line_id, "principal_fen": 1_000_000, "method": "equal_installment", "term_months": 12}
    drawn = client.post("/v1/loans", json=body, headers={**borrower["headers"], "Idempotency-Key": "w-1"})
    assert drawn.status_code == 201, drawn.text
    loan_id = drawn.json()["id"]
    document = client.get(f"/v1/loans/{loan_id}/contract", headers=borrower["headers"])
    body = sign_body(client, clock, borrower, DEMO_PHONE, loan_id, document.headers["X-Content-SHA256"])
    signed = client.post(f"/v1/loans/{loan_id}/sign", json=body,
                         headers={**borrower["headers"], "Idempotency-Key": f"sign-{loan_id}"})
    assert signed.status_code == 200 and signed.json()["status"] == "disbursing", signed.text
    # The channel got the Alipay user id itself, no bank, and accepted it like a good account.
    [order] = submitted
    assert order.account_no == container.wallets.account_id(PaymentMethodKind.ALIPAY, WALLET_LOGIN)
    assert order.bank_code is None and order.amount_fen == 1_000_000 and order.account_kind == "alipay"
    assert channel_time_passes(client, container, clock) == 1  # the callback
    assert client.get(f"/v1/loans/{loan_id}", headers=borrower["headers"]).json()["status"] == "active"
    [payout] = client.get(f"/v1/loans/{loan_id}/payouts", headers=borrower["headers"]).json()
    assert payout["status"] == "succeeded" and payout["events"][-1]["event"] == "callback"
    assert payout["card"]["id"] == wallet["id"] and payout["card"]["kind"] == "alipay"
    # Every step names Alipay, where the money went; none speaks of a bank or a card.
    assert payout["account_kind"] == "alipay" and payout["status_en"] == "Paid to your Alipay account"
    assert payout["status_zh"] == "已转入您的支付宝账户"
    steps = [(e["event"], e["text_zh"], e["text_en"]) for e in payout["events"]]
    assert ("sent", "已提交支付宝", "Submitted to Alipay") in steps
    assert ("callback", "收到支付宝结果通知", "Alipay sent its result") in steps
    for _, zh, en in steps:
        assert "银行" not in zh and "卡" not in zh and "bank" not in en.lower() and "card" not in en.lower()
    with container.db.transaction() as session:
        paid = session.execute(select(PaymentOrder).where(PaymentOrder.loan_id == loan_id)).scalar_one()
    assert paid.payment_method_id == wallet["id"] and paid.status.value == "succeeded"
