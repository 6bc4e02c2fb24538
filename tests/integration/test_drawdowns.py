"""A drawdown from request to an active loan: quote, reserve, contract, sign with step-up, payout paid or failed.

After every step the ledger's trial balance is zero and the line's available amount is what the loans say.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import delete, select

from miaodai.core.audit import AuditEntry, seal_pending
from miaodai.core.clock import BUSINESS_TZ, business_date
from miaodai.core.idempotency_models import IdempotencyRecord
from miaodai.demo import DEMO_BORROWERS, seed_demo
from miaodai.ledger.service import check_book, loan_balances, trial_balance
from miaodai.loans import contract_service
from miaodai.loans.models import CreditLine, LoanContract
from miaodai.loans.schedule import add_months
from miaodai.sandbox.channel import ACCOUNT_CARD_FROZEN, ACCOUNT_NAME_MISMATCH
from tests.cli_support import run_cli
from tests.helpers import assert_problem, latest_code, login, sandbox_inbox, sign_body, step_up
from tests.payment_support import bind_card, channel_time_passes

PHONE = DEMO_BORROWERS[0].phone  # a 20,000-yuan line at the demo product


@pytest.fixture
def borrower(client, container):
    seed_demo(container)
    return login(client, PHONE)  # the demo borrower has a line and a card the sandbox channel pays


def line_of(client, borrower):
    lines = client.get("/v1/credit-lines", headers=borrower["headers"]).json()
    assert len(lines) == 1
    return lines[0]


def draw(client, borrower, key="dd-1", **body):
    payload = {"line_id": line_of(client, borrower)["id"], "principal_fen": 1_000_000, "method": "equal_installment",
               "term_months": 12, **body}
    return client.post("/v1/loans", json=payload, headers={**borrower["headers"], "Idempotency-Key": key})


def sign(client, clock, borrower, loan_id):
    document = client.get(f"/v1/loans/{loan_id}/contract", headers=borrower["headers"])
    assert document.status_code == 200, document.text
    body = sign_body(client, clock, borrower, PHONE, loan_id, document.headers["X-Content-SHA256"])
    return client.post(f"/v1/loans/{loan_id}/sign", json=body,
                       headers={**borrower["headers"], "Idempotency-Key": f"sign-{loan_id}"})


def book_is_balanced(container):
    with container.db.transaction() as session:
        assert trial_balance(session).balanced
        assert check_book(session) == []


def test_a_drawdown_quotes_reserves_and_drafts_the_contract(client, container, borrower):
    before = line_of(client, borrower)["available_fen"]
    response = draw(client, borrower)
    assert response.status_code == 201, response.text
    loan = response.json()
    assert loan["status"] == "requested"
    # The line's price (15.48%) with the product's 0.1%/month fee, quoted to the fen and disclosed as an APR.
    assert loan["annual_rate"] == "0.1548" and loan["monthly_fee_rate"] == "0.001"
    assert sum(i["principal_fen"] for i in loan["installments"]) == 1_000_000
    assert loan["total_fee_fen"] == 12 * 1_000 and float(loan["apr"]) > 0.1548
    assert loan["contract"]["sha256"] and loan["contract"]["signed_at"] is None
    assert line_of(client, borrower)["available_fen"] == before - 1_000_000
    book_is_balanced(container)  # nothing has moved yet


def test_the_same_key_answers_with_the_same_loan_and_another_body_is_refused(client, container, borrower):
    first = draw(client, borrower)
    again = draw(client, borrower)
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert line_of(client, borrower)["available_fen"] == 2_000_000 - 1_000_000
    assert_problem(draw(client, borrower, principal_fen=500_000), 422, "IDEMPOTENCY_KEY_REUSED")
    # Past the key's retention the drawdown still knows its key: the same loan, never a second reservation.
    with container.db.transaction() as session:
        session.execute(delete(IdempotencyRecord))
    late = draw(client, borrower)
    assert late.status_code == 201 and late.json()["id"] == first.json()["id"]
    assert line_of(client, borrower)["available_fen"] == 2_000_000 - 1_000_000
    with container.db.transaction() as session:
        session.execute(delete(IdempotencyRecord))
    assert_problem(draw(client, borrower, principal_fen=500_000), 422, "LOAN_REQUEST_KEY_REUSED")
    missing = client.post("/v1/loans", json={"line_id": 1, "principal_fen": 100_000, "term_months": 3},
                          headers=borrower["headers"])
    assert_problem(missing, 400, "IDEMPOTENCY_KEY_REQUIRED")


def test_a_drawdown_beyond_the_available_amount_is_refused(client, borrower):
    assert draw(client, borrower, key="a", principal_fen=1_500_000).status_code == 201
    refused = assert_problem(draw(client, borrower, key="b", principal_fen=600_000), 409, "LOAN_LINE_INSUFFICIENT")
    assert refused["params"]["available_fen"] == 500_000


def test_signing_needs_a_code_sent_for_this_contract_and_the_text_that_was_read(client, clock, container, borrower):
    loan_id = draw(client, borrower).json()["id"]
    keyed = {**borrower["headers"], "Idempotency-Key": "sign-1"}
    document = client.get(f"/v1/loans/{loan_id}/contract", headers=borrower["headers"])
    assert "等额本息" in document.text and "10,000.00" in document.text
    sha = document.headers["X-Content-SHA256"]
    # Moments after logging in (the login's code is as fresh as a step-up gets), signing still asks for a code.
    no_code = client.post(f"/v1/loans/{loan_id}/sign", json={"contract_sha256": sha}, headers=keyed)
    assert "sign-code" in assert_problem(no_code, 403, "CONTRACT_SIGN_CODE_REQUIRED")["action"]["en"]
    login_code = latest_code(client, PHONE)  # the code the borrower logged in with does not sign either
    reused_login = client.post(f"/v1/loans/{loan_id}/sign", json={"contract_sha256": sha, "code": login_code},
                               headers=keyed)
    assert_problem(reused_login, 400, "OTP_NOT_REQUESTED")
    unread = client.post(f"/v1/loans/{loan_id}/sign-code", json={"contract_sha256": "0" * 64},
                         headers=borrower["headers"])
    assert_problem(unread, 409, "CONTRACT_CHANGED")  # a code is only sent for the text as it stands
    body = sign_body(client, clock, borrower, PHONE, loan_id, sha)
    assert "签署借款合同" in sandbox_inbox(client, PHONE)[0]["text"]  # the SMS says what the code signs
    stale = client.post(f"/v1/loans/{loan_id}/sign", json={**body, "contract_sha256": "0" * 64}, headers=keyed)
    assert_problem(stale, 409, "CONTRACT_CHANGED")  # a refusal keeps no key: the same one may try again
    unkeyed = client.post(f"/v1/loans/{loan_id}/sign", json=body, headers=borrower["headers"])
    assert_problem(unkeyed, 400, "IDEMPOTENCY_KEY_REQUIRED")
    signed = client.post(f"/v1/loans/{loan_id}/sign", json=body, headers=keyed)
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "disbursing" and signed.json()["contract"]["signed_at"]
    # The borrower's phone lost the answer and tapped again: the first answer, and still one payout order.
    again = client.post(f"/v1/loans/{loan_id}/sign", json=body, headers=keyed)
    assert again.status_code == 200 and again.content == signed.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(client.get(f"/v1/loans/{loan_id}/payouts", headers=borrower["headers"]).json()) == 1
    # The record says what happened: the code, where and when it went, and the text it was bound to.
    statement = signed.json()["contract"]["signed_with"]
    assert statement.startswith("sms_code sent to 138****8001 at ") and sha in statement
    with container.db.transaction() as session:
        contract = session.execute(select(LoanContract).where(LoanContract.loan_id == loan_id)).scalar_one()
        entry = session.get(AuditEntry, contract.audit_entry_id)
        assert entry.action == "contract.sign" and contract.sha256 in entry.body and contract.signature in entry.body
        confirmation = json.loads(entry.body)["details"]["confirmation"]
        assert confirmation["method"] == "sms_code" and confirmation["phone_masked"] == "138****8001"
        assert confirmation["bound_to_sha256"] == sha and confirmation["statement"] == statement
        # The ordered payout is receivable principal against money in transit.
        balances = loan_balances(session, loan_id)
        assert balances["principal_receivable"] == 1_000_000 and balances["payout_in_transit"] == -1_000_000
    book_is_balanced(container)


def test_a_signing_code_signs_its_own_contract_once(client, clock, container, borrower):
    first = draw(client, borrower, key="one", principal_fen=500_000).json()["id"]
    second = draw(client, borrower, key="two", principal_fen=500_000).json()["id"]
    sha = {i: client.get(f"/v1/loans/{i}/contract", headers=borrower["headers"]).headers["X-Content-SHA256"]
           for i in (first, second)}
    for_first = sign_body(client, clock, borrower, PHONE, first, sha[first])
    # The first contract's code, sent with the second contract's hash: not a code for that text.
    crossed = client.post(f"/v1/loans/{second}/sign", json={"contract_sha256": sha[second], "code": for_first["code"]},
                          headers={**borrower["headers"], "Idempotency-Key": "cross"})
    assert_problem(crossed, 400, "OTP_WRONG_CODE")
    assert client.get(f"/v1/loans/{second}", headers=borrower["headers"]).json()["status"] == "requested"
    ok = client.post(f"/v1/loans/{first}/sign", json=for_first, headers={**borrower["headers"], "Idempotency-Key": "a"})
    assert ok.status_code == 200, ok.text
    # Used once: the same code cannot sign again, not even the second contract (a new code is needed).
    reused = client.post(f"/v1/loans/{second}/sign", json={"contract_sha256": sha[second], "code": for_first["code"]},
                         headers={**borrower["headers"], "Idempotency-Key": "b"})
    assert_problem(reused, 400, "OTP_ALREADY_USED")
    # A step-up code (fresh, confirmed) does not sign either.
    step_up(client, clock, borrower, PHONE)
    stepped = client.post(f"/v1/loans/{second}/sign", json={"contract_sha256": sha[second],
                                                           "code": latest_code(client, PHONE)},
                          headers={**borrower["headers"], "Idempotency-Key": "c"})
    assert_problem(stepped, 400, "OTP_ALREADY_USED")  # the newest signing code is the first one, used
    body = sign_body(client, clock, borrower, PHONE, second, sha[second])
    signed = client.post(f"/v1/loans/{second}/sign", json=body, headers={**borrower["headers"], "Idempotency-Key": "d"})
    assert signed.status_code == 200, signed.text


def test_wrong_signing_codes_are_counted_and_lock_the_number(client, clock, container, borrower):
    loan_id = draw(client, borrower).json()["id"]
    sha = client.get(f"/v1/loans/{loan_id}/contract", headers=borrower["headers"]).headers["X-Content-SHA256"]
    body = sign_body(client, clock, borrower, PHONE, loan_id, sha)
    wrong = "000000" if body["code"] != "000000" else "111111"
    answers = [client.post(f"/v1/loans/{loan_id}/sign", json={**body, "code": wrong},
                           headers={**borrower["headers"], "Idempotency-Key": f"w{n}"})
               for n in range(container.settings.otp_max_wrong_guesses)]
    assert [a.json()["code"] for a in answers[:-1]] == ["OTP_WRONG_CODE"] * (len(answers) - 1)
    assert answers[-1].json()["code"] == "OTP_TOO_MANY_WRONG_GUESSES"  # the guesses were kept, not rolled back
    late = client.post(f"/v1/loans/{loan_id}/sign", json=body, headers={**borrower["headers"], "Idempotency-Key": "r"})
    assert late.status_code in (400, 429) and late.json()["code"] in ("OTP_ALREADY_USED", "LOGIN_LOCKED")
    assert client.get(f"/v1/loans/{loan_id}", headers=borrower["headers"]).json()["status"] == "requested"


def test_a_contract_drafted_yesterday_is_redrawn_before_it_can_be_signed(client, clock, borrower):
    loan = draw(client, borrower).json()
    clock.advance(timedelta(days=1))
    borrower = login(client, PHONE)
    document = client.get(f"/v1/loans/{loan['id']}/contract", headers=borrower["headers"])
    assert document.headers["X-Content-SHA256"] != loan["contract"]["sha256"]
    again = client.get(f"/v1/loans/{loan['id']}", headers=borrower["headers"]).json()
    assert again["start_date"] > loan["start_date"]
    assert sign(client, clock, borrower, loan["id"]).status_code == 200


def test_a_paid_payout_activates_the_loan_from_the_payout_date(client, clock, container, borrower):
    loan_id = draw(client, borrower).json()["id"]
    # Signed a second before midnight, Beijing time (the step-up takes 61 s): paid the next day.
    signed_on = business_date(clock.now())
    midnight = datetime.combine(signed_on + timedelta(days=1), time(0), BUSINESS_TZ)
    clock.advance(midnight - timedelta(seconds=62) - clock.now())
    assert sign(client, clock, borrower, loan_id).json()["status"] == "disbursing"
    assert channel_time_passes(client, container, clock, seconds=3) == 1
    paid_on = business_date(clock.now())
    assert paid_on == signed_on + timedelta(days=1)
    loan = client.get(f"/v1/loans/{loan_id}", headers=borrower["headers"]).json()
    assert loan["status"] == "active" and loan["start_date"] == paid_on.isoformat()
    assert loan["installments"][0]["due_date"] == add_months(paid_on, 1).isoformat()
    assert [i["status"] for i in loan["installments"]] == ["pending"] * 12
    with container.db.transaction() as session:
        balances = {account: fen for account, fen in loan_balances(session, loan_id).items() if fen}
        assert balances == {"principal_receivable": 1_000_000, "cash": -1_000_000}
    book_is_balanced(container)


def test_a_failed_payout_voids_the_entries_and_the_borrower_may_retry_or_cancel(client, clock, container, borrower):
    name_mismatch = bind_card(client, borrower, PHONE, ACCOUNT_NAME_MISMATCH)
    client.post(f"/v1/payment-methods/{name_mismatch['id']}/default", headers=borrower["headers"])
    loan_id = draw(client, borrower).json()["id"]
    assert sign(client, clock, borrower, loan_id).json()["status"] == "disbursing"
    assert_problem(client.post(f"/v1/loans/{loan_id}/cancel", headers=borrower["headers"]), 409,
                   "LOAN_ILLEGAL_TRANSITION")  # the bank may be paying right now
    channel_time_passes(client, container, clock)  # 户名不符: the bank refuses it
    assert client.get(f"/v1/loans/{loan_id}", headers=borrower["headers"]).json()["status"] == "signed"
    with container.db.transaction() as session:
        assert all(v == 0 for v in loan_balances(session, loan_id).values())
    # Another card: refused at once this time (frozen), and the borrower gives up.
    frozen = bind_card(client, borrower, PHONE, ACCOUNT_CARD_FROZEN)
    client.post(f"/v1/payment-methods/{frozen['id']}/default", headers=borrower["headers"])
    step_up(client, clock, borrower, PHONE)
    retried = client.post(f"/v1/loans/{loan_id}/payout-retry",
                          headers={**borrower["headers"], "Idempotency-Key": "retry-1"})
    assert retried.status_code == 200 and retried.json()["payout_attempts"] == 2
    assert retried.json()["status"] == "signed"
    payouts = client.get(f"/v1/loans/{loan_id}/payouts", headers=borrower["headers"]).json()
    assert [(p["attempt"], p["status"], p["card"]["last4"]) for p in payouts] == [
        (1, "failed", ACCOUNT_NAME_MISMATCH[-4:]), (2, "failed", ACCOUNT_CARD_FROZEN[-4:])]
    cancelled = client.post(f"/v1/loans/{loan_id}/cancel", headers=borrower["headers"])
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert line_of(client, borrower)["available_fen"] == 2_000_000
    book_is_balanced(container)


def test_contract_verify_checks_text_signature_and_audit_chain(client, clock, container, settings, borrower):
    loan_id = draw(client, borrower).json()["id"]
    assert sign(client, clock, borrower, loan_id).status_code == 200
    seal_pending(container.db, container.clock)
    with container.db.transaction() as session:
        contract = contract_service.contract_of(session, loan_id)
        contract_no = contract.contract_no
        assert contract_service.verify(session, container, contract, container.signer).ok
    result = run_cli(settings, "contract", "verify", contract_no)
    assert result.exit_code == 0, result.output
    # After the signing key is rotated, the contract signed under the old key still verifies.
    rotated = run_cli(settings, "contract", "rotate-key")
    assert rotated.exit_code == 0 and contract.key_id in rotated.output, rotated.output
    assert run_cli(settings, "contract", "verify", contract_no).exit_code == 0
    # Somebody edits the stored text: the hash no longer matches and verify says so.
    with container.db.transaction() as session:
        contract = contract_service.contract_of(session, loan_id)
        html = container.vault.decrypt(contract.document_enc, "loan_contract.document")
        contract.document_enc = container.vault.encrypt(html.replace("10,000.00", "1,000.00"),
                                                        "loan_contract.document")
    result = run_cli(settings, "contract", "verify", contract_no)
    assert result.exit_code == 1 and "altered" in result.output
    assert_problem(client.get(f"/v1/loans/{loan_id}/contract", headers=borrower["headers"]), 500,
                   "CONTRACT_HASH_MISMATCH")


def test_the_line_is_never_overdrawn_and_the_cancelled_amount_comes_back(client, container, borrower):
    loan_id = draw(client, borrower, principal_fen=2_000_000).json()["id"]
    assert_problem(draw(client, borrower, key="second", principal_fen=50_000), 409, "LOAN_LINE_INSUFFICIENT")
    assert client.post(f"/v1/loans/{loan_id}/cancel", headers=borrower["headers"]).json()["status"] == "cancelled"
    with container.db.transaction() as session:
        line = session.execute(select(CreditLine)).scalars().first()
        assert line.available_fen <= line.limit_fen
    assert line_of(client, borrower)["available_fen"] == 2_000_000
