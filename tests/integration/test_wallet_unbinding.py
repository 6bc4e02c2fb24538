"""Unbinding an e-wallet cancels its withholding agreement at the wallet (解约), on both databases: the
unbind stores the cancellation in its own transaction, the payments worker sends it after the commit and
again with growing waits while the wallet is busy or silent, until the wallet confirms; an agreement
cancelled at the wallet can no longer be debited (the sandbox answers with the wallet's own code)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from miaodai.core.audit import AuditEntry
from miaodai.loans.models import Repayment
from miaodai.payments import agreement_cancellations, worker
from miaodai.payments.models import AgreementCancellation, PaymentMethod, PaymentMethodStatus, PaymentOrder
from miaodai.sandbox.wallet import CANCEL_BUSY_TIMES, LOGIN_CANCEL_BUSY, LOGIN_CANCEL_TIMEOUT
from tests.credit_support import applicant
from tests.integration.test_wallet_binding import waits as waits  # noqa: PLC0414 (the fixture, by its name)
from tests.loan_support import active_loan, demo_borrower
from tests.payment_support import bind_wallet

PHONE = "13700137502"
ID_NUMBER = "110101199003070011"
WALLET_LOGIN = "13700137598"


@pytest.fixture
def who(client, container, waits):
    return applicant(client, PHONE, ID_NUMBER)


def _cancellation(container, method_id: int) -> AgreementCancellation | None:
    with container.db.transaction() as session:
        return session.execute(select(AgreementCancellation).where(
            AgreementCancellation.payment_method_id == method_id)).scalar_one_or_none()


def _agreement_no(container, method_id: int) -> str:
    with container.db.transaction() as session:
        return session.get(PaymentMethod, method_id).agreement_no


def _unbind(client, who, method_id: int) -> None:
    response = client.delete(f"/v1/payment-methods/{method_id}", headers=who["headers"])
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("kind", "code"), [("alipay", "AGREEMENT_STATUS_NOT_NORMAL"),
                                            ("wechat_pay", "CONTRACT_NOT_EXIST")])
def test_an_unbound_wallets_agreement_is_cancelled_at_the_wallet_and_can_no_longer_be_debited(
        client, container, clock, waits, kind, code):
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)  # the seed's card stays bound for it
    wallet = bind_wallet(client, borrower, WALLET_LOGIN, kind)
    agreement_no = _agreement_no(container, wallet["id"])
    _unbind(client, borrower, wallet["id"])

    stored = _cancellation(container, wallet["id"])  # committed with the unbind, not sent yet
    assert (stored.status.value, stored.attempts, stored.agreement_no, stored.kind.value) == (
        "pending", 0, agreement_no, kind)
    assert not container.wallets.agreement_cancelled(agreement_no)
    assert agreement_cancellations.send_due(container) == {"agreements_cancelled": 1,
                                                           "agreement_cancellations_retrying": 0}
    done = _cancellation(container, wallet["id"])
    assert (done.status.value, done.attempts, done.confirmed_at is not None) == ("confirmed", 1, True)
    assert container.wallets.agreement_cancelled(agreement_no)
    assert agreement_cancellations.send_due(container)["agreements_cancelled"] == 0  # sent once
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "payment.agreement.cancelled")) == 1

    # Had our side missed the unbind, the wallet itself now refuses a debit under the agreement.
    with container.db.transaction() as session:
        session.get(PaymentMethod, wallet["id"]).status = PaymentMethodStatus.ACTIVE
    started = client.post(f"/v1/loans/{loan['id']}/repayments",
                          json={"amount_fen": 10_000, "payment_method_id": wallet["id"]},
                          headers={**borrower["headers"], "Idempotency-Key": f"after-cancel-{kind}"})
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "failed"
    with container.db.transaction() as session:
        order = session.execute(select(PaymentOrder).where(PaymentOrder.payment_method_id == wallet["id"],
                                                           PaymentOrder.kind == "collection")).scalar_one()
        assert (order.status.value, order.code) == ("failed", code)
        assert session.scalar(select(func.count()).select_from(Repayment)) == 0


def test_a_busy_wallet_is_asked_again_with_growing_waits_until_it_confirms(client, container, clock, who):
    wallet = bind_wallet(client, who, LOGIN_CANCEL_BUSY)
    agreement_no = _agreement_no(container, wallet["id"])
    _unbind(client, who, wallet["id"])

    counts = worker.one_pass(container)  # the worker's pass (and `miaodai payments recover`) sends it
    assert counts["agreement_cancellations_retrying"] == 1 and counts["agreements_cancelled"] == 0
    waited = []
    for attempt in range(1, CANCEL_BUSY_TIMES + 1):
        row = _cancellation(container, wallet["id"])
        assert (row.status.value, row.attempts, row.last_code) == ("pending", attempt, "SYSTEM_ERROR")
        wait = row.next_attempt_at - clock.now()
        waited.append(wait)
        assert agreement_cancellations.send_due(container)["agreement_cancellations_retrying"] == 0  # not yet due
        clock.advance(wait)
        agreement_cancellations.send_due(container)
    assert waited == [agreement_cancellations.RETRY_DELAYS[0], agreement_cancellations.RETRY_DELAYS[1]]
    done = _cancellation(container, wallet["id"])
    assert (done.status.value, done.attempts, done.last_code) == ("confirmed", CANCEL_BUSY_TIMES + 1, None)
    assert container.wallets.agreement_cancelled(agreement_no)


def test_a_cancel_whose_answer_is_lost_is_sent_again_and_then_confirmed(client, container, clock, who, waits):
    wallet = bind_wallet(client, who, LOGIN_CANCEL_TIMEOUT, "wechat_pay")
    agreement_no = _agreement_no(container, wallet["id"])
    _unbind(client, who, wallet["id"])

    assert agreement_cancellations.send_due(container)["agreement_cancellations_retrying"] == 1
    assert container.settings.provider_timeout_seconds in waits  # the wallet's silence, waited out
    row = _cancellation(container, wallet["id"])
    assert (row.status.value, row.last_code) == ("pending", "TIMEOUT")
    assert container.wallets.agreement_cancelled(agreement_no)  # it did cancel; we cannot know that yet
    clock.advance(agreement_cancellations.RETRY_DELAYS[0])
    assert agreement_cancellations.send_due(container)["agreements_cancelled"] == 1  # "already cancelled" is done
    assert _cancellation(container, wallet["id"]).attempts == 2


def test_unbinding_a_card_cancels_nothing_at_any_wallet(client, container, clock, waits):
    borrower = demo_borrower(client, container)
    [card] = client.get("/v1/payment-methods", headers=borrower["headers"]).json()
    _unbind(client, borrower, card["id"])
    assert _cancellation(container, card["id"]) is None
