"""Repayment collection through the sandbox channel, on both databases: repay now from a card (what is
due, a payoff, refusals before any money moves), auto-debit on the due date from the end-of-day
instructions (never more than is due, smaller tries after insufficient funds, partial success), and
refunds of held money as payouts — each posted once through the loan engine, the book sound after."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from miaodai.ledger.models import JournalEntry
from miaodai.loans.models import CollectionInstruction, Loan, LoanInstallment, Repayment
from miaodai.payments import collections, orders, settlement
from miaodai.payments.bins import sandbox_number
from miaodai.payments.models import PaymentOrder
from miaodai.sandbox.channel import ACCOUNT_INSUFFICIENT_FUNDS, ACCOUNT_LIMITED_BALANCE, LIMITED_BALANCE_FEN
from tests.helpers import assert_problem, login, staff_headers, step_up
from tests.loan_support import PHONE, active_loan, assert_book_sound, close_through, demo_borrower
from tests.payment_support import bind_card, bind_wallet, channel_time_passes


def _repay(client, borrower, loan_id, key, **body):
    return client.post(f"/v1/loans/{loan_id}/repayments", json=body,
                       headers={**borrower["headers"], "Idempotency-Key": key})


def _first_due(container, loan_id) -> LoanInstallment:
    with container.db.transaction() as session:
        return session.execute(select(LoanInstallment).where(LoanInstallment.loan_id == loan_id)
                               .order_by(LoanInstallment.period)).scalars().first()


def _use_card(client, borrower, number):
    method = bind_card(client, borrower, PHONE, number)
    assert client.post(f"/v1/payment-methods/{method['id']}/default", headers=borrower["headers"]).status_code == 200
    return method


def test_repay_now_collects_once_and_posts_once(client, container, clock):
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    first = _first_due(container, loan["id"])
    amount = first.principal_fen + first.interest_fen

    started = _repay(client, borrower, loan["id"], "repay-1", amount_fen=amount)
    assert started.status_code == 202, started.text
    view = started.json()
    assert (view["status"], view["amount_fen"], view["purpose"]) == ("processing", amount, "repayment")
    assert [e["event"] for e in view["events"]] == ["created", "sent", "answered"]
    # A retried tap gets the same answer; another tap while the debit is out is refused.
    again = _repay(client, borrower, loan["id"], "repay-1", amount_fen=amount)
    assert again.content == started.content and again.headers.get("Idempotent-Replayed") == "true"
    assert_problem(_repay(client, borrower, loan["id"], "repay-2", amount_fen=amount), 409,
                   "PAYMENT_REPAYMENT_IN_PROGRESS")

    assert channel_time_passes(client, container, clock) == 1
    shown = client.get(f"/v1/loans/{loan['id']}/repayments", headers=borrower["headers"]).json()
    assert [(o["order_no"], o["status"]) for o in shown] == [(view["order_no"], "succeeded")]
    with container.db.transaction() as session:
        posted = session.execute(select(Repayment).where(Repayment.loan_id == loan["id"])).scalars().all()
        assert [(r.amount_fen, r.idempotency_key) for r in posted] == [(amount, f"order:{view['order_no']}")]
        # Nothing has fallen due yet: the money is held and applied when the installment falls due.
        assert session.get(Loan, loan["id"]).overpayment_fen == amount
    # The channel's answer again (a query after the callback): nothing more is posted.
    with container.db.transaction() as session:
        order = session.execute(select(PaymentOrder).where(PaymentOrder.order_no == view["order_no"])).scalar_one()
    answer = container.channel.query(order.order_no)
    assert orders.apply_answer(container, answer, event="queried").outcome == "duplicate"
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Repayment)) == 1
    assert_book_sound(container)


def test_payoff_collects_the_quote_and_settles_the_loan(client, container, clock):
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    clock.advance(timedelta(days=10))
    quote = client.get(f"/v1/loans/{loan['id']}/payoff-quote", headers=borrower["headers"]).json()
    assert_problem(_repay(client, borrower, loan["id"], "p-0", purpose="payoff", amount_fen=quote["total_fen"] - 1),
                   409, "PAYMENT_PAYOFF_AMOUNT_CHANGED")
    started = _repay(client, borrower, loan["id"], "p-1", purpose="payoff")
    assert started.status_code == 202, started.text
    assert started.json()["amount_fen"] == quote["total_fen"]
    channel_time_passes(client, container, clock)
    assert client.get(f"/v1/loans/{loan['id']}", headers=borrower["headers"]).json()["status"] == "paid_off"
    assert_problem(_repay(client, borrower, loan["id"], "p-2", amount_fen=100), 409, "LOAN_NOT_REPAYABLE")
    assert_book_sound(container)


def test_refusals_come_before_any_money_moves(client, container, clock):
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    clock.advance(timedelta(days=5))  # five days of interest: 1 fen would not cover it as a prepayment
    quote = client.get(f"/v1/loans/{loan['id']}/payoff-quote", headers=borrower["headers"]).json()
    assert_problem(client.post(f"/v1/loans/{loan['id']}/repayments", json={"amount_fen": 100},
                               headers=borrower["headers"]), 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert_problem(_repay(client, borrower, loan["id"], "r-1"), 422, "PAYMENT_REPAYMENT_AMOUNT_REQUIRED")
    assert_problem(_repay(client, borrower, loan["id"], "r-2", amount_fen=quote["total_fen"] + 1), 422,
                   "PAYMENT_REPAYMENT_MORE_THAN_OWED")
    assert_problem(_repay(client, borrower, loan["id"], "r-3", amount_fen=100, payment_method_id=999999), 404,
                   "PAYMENT_METHOD_NOT_FOUND")
    assert_problem(_repay(client, borrower, loan["id"], "r-4", purpose="prepayment", amount_fen=1), 422,
                   "LOAN_PREPAYMENT_TOO_SMALL")
    assert_problem(_repay(client, borrower, 424242, "r-5", amount_fen=100), 404, "LOAN_NOT_FOUND")
    other = login(client, "13800000002")
    assert_problem(_repay(client, other, loan["id"], "r-6", amount_fen=100), 404, "LOAN_NOT_FOUND")
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(PaymentOrder)
                              .where(PaymentOrder.kind == "collection")) == 0


def test_a_failed_debit_takes_nothing_and_posts_nothing(client, container, clock):
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    _use_card(client, borrower, ACCOUNT_INSUFFICIENT_FUNDS)
    started = _repay(client, borrower, loan["id"], "f-1", amount_fen=10_000)
    assert started.status_code == 202, started.text
    channel_time_passes(client, container, clock)
    shown = client.get(f"/v1/loans/{loan['id']}/repayments", headers=borrower["headers"]).json()[0]
    assert (shown["status"], shown["failure_reason"]) == ("failed", "余额不足")
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Repayment)) == 0
    # Failed is final: the borrower may pay again at once.
    assert _repay(client, borrower, loan["id"], "f-2", amount_fen=10_000).status_code == 202
    assert_book_sound(container)


def _to_due_day(client, container, clock, loan_id) -> tuple[dict, LoanInstallment, CollectionInstruction]:
    """Close every day up to the first due date; the borrower logs in again (a month has passed)."""
    first = _first_due(container, loan_id)
    close_through(container, clock, first.due_date - timedelta(days=1))  # leaves the clock on the due date, 10:00
    with container.db.transaction() as session:
        instruction = session.execute(select(CollectionInstruction).where(
            CollectionInstruction.loan_id == loan_id, CollectionInstruction.business_date == first.due_date)
        ).scalar_one()
    return login(client, PHONE), first, instruction


def _instruction(container, instruction_id) -> CollectionInstruction:
    with container.db.transaction() as session:
        return session.get(CollectionInstruction, instruction_id)


def test_auto_debit_collects_what_is_due_on_the_due_date(client, container, clock):
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    borrower, first, instruction = _to_due_day(client, container, clock, loan["id"])
    assert instruction.amount_fen == first.principal_fen + first.interest_fen + first.fee_fen

    assert collections.run_auto_debit(container) == {"debits": 1, "settled_without_debit": 0, "waiting": 0}
    assert collections.run_auto_debit(container)["debits"] == 0  # the order is out: not debited twice
    channel_time_passes(client, container, clock)
    done = _instruction(container, instruction.id)
    assert (done.status, done.collected_fen, done.attempts) == ("done", instruction.amount_fen, 1)
    with container.db.transaction() as session:
        row = session.get(LoanInstallment, first.id)
        assert row.paid_off_on == first.due_date
        assert session.get(Loan, loan["id"]).status.value == "active"
    assert_book_sound(container)


def test_auto_debit_never_takes_what_was_repaid_already(client, container, clock):
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    borrower, first, instruction = _to_due_day(client, container, clock, loan["id"])
    part = 20_000
    assert _repay(client, borrower, loan["id"], "early", amount_fen=part).status_code == 202
    channel_time_passes(client, container, clock)

    collections.run_auto_debit(container)
    with container.db.transaction() as session:
        debit = session.execute(select(PaymentOrder).where(PaymentOrder.instruction_id == instruction.id)).scalar_one()
    assert debit.amount_fen == instruction.amount_fen - part
    channel_time_passes(client, container, clock)
    assert _instruction(container, instruction.id).status == "done"
    assert _first_due(container, loan["id"]).paid_off_on == first.due_date
    assert_book_sound(container)


def test_auto_debit_tries_smaller_amounts_after_insufficient_funds(client, container, clock):
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower, principal_fen=300_000)
    _use_card(client, borrower, ACCOUNT_LIMITED_BALANCE)  # 100 yuan on the card
    borrower, first, instruction = _to_due_day(client, container, clock, loan["id"])
    due = instruction.amount_fen
    assert due > 2 * LIMITED_BALANCE_FEN  # so the first two tries fail

    tried = []
    for _ in range(12):
        collections.run_auto_debit(container)
        channel_time_passes(client, container, clock)
        clock.advance(timedelta(hours=1))
    with container.db.transaction() as session:
        for order in session.execute(select(PaymentOrder).where(PaymentOrder.instruction_id == instruction.id)
                                     .order_by(PaymentOrder.id)).scalars():
            tried.append((order.amount_fen, order.status.value))
        collected = session.scalar(select(func.coalesce(func.sum(Repayment.amount_fen), 0)))
    assert tried[:3] == [(due, "failed"), (due // 2, "failed"), (due // 4, "succeeded")]
    assert len(tried) == settlement.MAX_ATTEMPTS and tried[3] == (due - due // 4, "failed")
    final = _instruction(container, instruction.id)
    assert (final.status, final.collected_fen, collected) == ("failed", due // 4, due // 4)
    assert container.channel.card_balance_fen(ACCOUNT_LIMITED_BALANCE) == LIMITED_BALANCE_FEN - due // 4
    assert_book_sound(container)


def hopeless_instructions(client, container, clock) -> list[int]:
    """A defaulter whose salary went to a card without auto-debit (the other methods removed), on the day their
    second installment falls due with the first unpaid: two pending instructions today, nothing to debit."""
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower, principal_fen=300_000)
    with container.db.transaction() as session:
        second = session.execute(select(LoanInstallment).where(
            LoanInstallment.loan_id == loan["id"], LoanInstallment.period == 2)).scalar_one()
    close_through(container, clock, second.due_date - timedelta(days=1))  # the first one unpaid: two due today
    borrower = login(client, PHONE)
    step_up(client, clock, borrower, PHONE)
    old = [m["id"] for m in client.get("/v1/payment-methods", headers=borrower["headers"]).json()]
    zheshang = _use_card(client, borrower, sandbox_number("621019", 19, "5"))  # the bank offers no auto-debit
    assert zheshang["auto_debit"] is False
    for method_id in old:
        assert client.delete(f"/v1/payment-methods/{method_id}", headers=borrower["headers"]).status_code == 200
    with container.db.transaction() as session:
        due = session.execute(select(CollectionInstruction.id).where(
            CollectionInstruction.loan_id == loan["id"], CollectionInstruction.business_date == second.due_date,
            CollectionInstruction.status == "pending")).scalars().all()
    assert len(due) == 2
    return list(due)


def test_instructions_with_no_method_to_debit_end_in_one_update(client, container, clock, monkeypatch):
    """Every morning an instruction per unpaid installment of a borrower with nothing to debit: all ended
    NO_AUTO_DEBIT_METHOD by one UPDATE, none by a transaction and a loan lock apiece."""
    due = hopeless_instructions(client, container, clock)

    one_by_one = []
    started = collections._start_attempt
    monkeypatch.setattr(collections, "_start_attempt",
                        lambda *args: one_by_one.append(args[1]) or started(*args))
    assert collections.run_auto_debit(container) == {"debits": 0, "settled_without_debit": 2, "waiting": 0}
    assert one_by_one == []
    assert {(_instruction(container, i).status, _instruction(container, i).last_code) for i in due} == {
        ("failed", "NO_AUTO_DEBIT_METHOD")}
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(PaymentOrder).where(
            PaymentOrder.purpose == "auto_debit")) == 0
    assert collections.run_auto_debit(container) == {"debits": 0, "settled_without_debit": 0, "waiting": 0}
    assert_book_sound(container)


def test_held_money_is_refunded_as_a_payout(client, container, clock, fast_staff_hasher):
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    held = 5_000  # paid before anything falls due: all of it is held for the borrower
    assert _repay(client, borrower, loan["id"], "early", amount_fen=held).status_code == 202
    channel_time_passes(client, container, clock)
    with container.db.transaction() as session:
        assert session.get(Loan, loan["id"]).overpayment_fen == held
    finance = staff_headers(client, container, clock, "finance", ("finance",))
    path = f"/v1/staff/loans/{loan['id']}/refunds"
    assert_problem(client.post(path, json={"amount_fen": held + 1, "reason": "overpaid"},
                               headers={**finance, "Idempotency-Key": "rf-0"}), 422, "PAYMENT_REFUND_MORE_THAN_HELD")
    proposed = client.post(path, json={"amount_fen": held, "reason": "overpaid"},
                           headers={**finance, "Idempotency-Key": "rf-1"})
    assert proposed.status_code == 202, proposed.text
    assert proposed.json()["state"] == "pending"  # maker-checker: a second staff member approves it
    with container.db.transaction() as session:
        assert session.get(Loan, loan["id"]).overpayment_fen == held
    checker = staff_headers(client, container, clock, "finance-2", ("finance",))
    refund = client.post(f"/v1/staff/approvals/{proposed.json()['id']}/approve", json={}, headers=checker)
    assert refund.status_code == 200, refund.text
    assert refund.json()["state"] == "approved" and refund.json()["result"]["amount_fen"] == held
    with container.db.transaction() as session:  # no longer held while the payout is out
        assert session.get(Loan, loan["id"]).overpayment_fen == 0
    assert_book_sound(container)
    channel_time_passes(client, container, clock)
    shown = client.get(f"/v1/loans/{loan['id']}/repayments", headers=borrower["headers"]).json()
    assert [(o["purpose"], o["status"]) for o in shown] == [("refund", "succeeded"), ("repayment", "succeeded")]
    with container.db.transaction() as session:
        assert session.get(Loan, loan["id"]).overpayment_fen == 0
        assert session.scalar(select(func.count()).select_from(JournalEntry)
                              .where(JournalEntry.kind == "refund_paid")) == 1
    assert_book_sound(container)


def test_repay_now_from_an_alipay_wallet(client, container, clock):
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    container.wallets.latency_seconds = 0  # the sandbox wallet answers at once
    wallet = bind_wallet(client, borrower, "13700137599")
    started = _repay(client, borrower, loan["id"], "w-1", amount_fen=12_345, payment_method_id=wallet["id"])
    assert started.status_code == 202, started.text
    assert (started.json()["method"]["kind"], started.json()["method"]["bank"]) == ("alipay", None)
    channel_time_passes(client, container, clock)
    shown = client.get(f"/v1/loans/{loan['id']}/repayments", headers=borrower["headers"]).json()[0]
    assert shown["status"] == "succeeded"
    with container.db.transaction() as session:
        assert session.get(Loan, loan["id"]).overpayment_fen == 12_345  # nothing due yet: held
    assert_book_sound(container)
