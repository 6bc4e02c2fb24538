"""Getting a loan to a given state through the API, for tests of what happens after."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from miaodai.core.clock import business_date
from miaodai.demo import DEMO_BORROWERS, seed_demo
from miaodai.ledger.service import check_book, trial_balance
from miaodai.loans.accounting import mismatched_loans
from miaodai.loans.eod import EodReport, run_eod
from miaodai.loans.models import EodRun
from tests.helpers import login, sign_body
from tests.payment_support import bind_card, channel_time_passes

PHONE = DEMO_BORROWERS[0].phone  # a 20,000-yuan line at 15.48% on the demo product


def demo_borrower(client: TestClient, container: Any) -> dict[str, Any]:
    seed_demo(container)
    return login(client, PHONE)


def active_loan(client: TestClient, clock: Any, borrower: dict[str, Any], *, key: str = "loan-1",
                principal_fen: int = 1_000_000, method: str = "equal_installment", phone: str = PHONE,
                **term: int) -> dict[str, Any]:
    """Draw, read and sign the contract (with a code sent for it), and let the sandbox channel pay it out to the
    borrower's card (bound first if they have none) and call back. ``phone``: the borrower's (the demo one's)."""
    if not client.get("/v1/payment-methods", headers=borrower["headers"]).json():
        bind_card(client, borrower, phone)
    line_id = client.get("/v1/credit-lines", headers=borrower["headers"]).json()[0]["id"]
    body = {"line_id": line_id, "principal_fen": principal_fen, "method": method, **(term or {"term_months": 12})}
    drawn = client.post("/v1/loans", json=body, headers={**borrower["headers"], "Idempotency-Key": key})
    assert drawn.status_code in (200, 201), drawn.text
    loan_id = drawn.json()["id"]
    document = client.get(f"/v1/loans/{loan_id}/contract", headers=borrower["headers"])
    body = sign_body(client, clock, borrower, phone, loan_id, document.headers["X-Content-SHA256"])
    signed = client.post(f"/v1/loans/{loan_id}/sign", json=body,
                         headers={**borrower["headers"], "Idempotency-Key": f"sign-{loan_id}"})
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "disbursing", signed.text
    assert channel_time_passes(client, container_of(client), clock) >= 1
    loan = client.get(f"/v1/loans/{loan_id}", headers=borrower["headers"]).json()
    assert loan["status"] == "active", loan
    return loan


def container_of(client: TestClient) -> Any:
    return client.app.state.container


def repay(client: TestClient, loan_id: int, amount_fen: int, key: str, **extra: str) -> Any:
    return client.post(f"/sandbox/loans/{loan_id}/repayments", json={"amount_fen": amount_fen, **extra},
                       headers={"Idempotency-Key": key})


def assert_book_sound(container: Any) -> None:
    """Trial balance zero, every entry well-formed, every loan's sub-ledger equal to its installments."""
    with container.db.transaction() as session:
        assert trial_balance(session).balanced
        assert check_book(session) == []
        assert list(mismatched_loans(session)) == []


def close_through(container: Any, clock: Any, last: date) -> list[EodReport]:
    """Run every date from the day after the last run (or today, the loan's start) through ``last``, the
    clock following (it ends on the morning after ``last``), and check the book after each. Returns the
    batch's report of each date run, in order."""
    with container.db.transaction() as session:
        ran = session.scalar(select(func.max(EodRun.business_date)))
    day = ran + timedelta(days=1) if ran else business_date(clock.now())
    reports = []
    while day <= last:
        if business_date(clock.now()) <= day:
            clock.advance(timedelta(days=(day - business_date(clock.now())).days + 1))
        reports.append(run_eod(container, day))
        assert_book_sound(container)
        day += timedelta(days=1)
    return reports


def signing_code(container: Any, borrower_id: int, loan_id: int, sha256: str, *, code: str = "246810") -> str:
    """For service-level tests that sign many loans at one instant (no resend cooldown, no hourly cap in the
    way): a signing code for this contract and hash, stored as the send path stores it (keyed hash bound to
    the contract, delivered). The signing then redeems it exactly as it redeems a code sent by SMS. Tests of
    signing itself ask for codes through the API (tests.helpers.sign_body)."""
    from miaodai.identity import otp
    from miaodai.identity.login_service import _bound, _code_key
    from miaodai.identity.models import Borrower, DeliveryStatus, OtpChallenge, OtpChannel, OtpPurpose
    from miaodai.loans import contract_service

    now = container.clock.now()
    with container.db.transaction() as session:
        borrower = session.get_one(Borrower, borrower_id)
        contract = contract_service.contract_of(session, loan_id)
        assert contract.sha256 == sha256, "sign the text that was read"
        purpose = _bound(OtpPurpose.CONTRACT_SIGN, contract_service.binding_of(contract))
        session.add(OtpChallenge(
            phone_bidx=borrower.phone_bidx, purpose=OtpPurpose.CONTRACT_SIGN, channel=OtpChannel.SMS,
            code_hash=otp.hash_code(_code_key(container), phone_bidx=borrower.phone_bidx, purpose=purpose, code=code),
            created_at=now, expires_at=now + timedelta(seconds=container.settings.otp_ttl_seconds), wrong_guesses=0,
            delivery=DeliveryStatus.SENT, ip_bidx="test", device_key_bidx="test"))
    return code
