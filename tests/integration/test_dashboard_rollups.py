"""The dashboards' daily roll-ups: written by the end-of-day batch, read up to their last day, the base tables
live after it — and every figure the same as the one read from the base tables alone, on both databases.

A small book of applications, payment orders and callbacks over a week, two products (and orders of no
product), two models; the batch closes 2026-11-21 with the clock on the morning of the 25th, so the roll-ups
hold the 18th–21st and the 22nd–25th are the live tail (orders made before the mark and settled after it,
callbacks that arrive the day after their order finished, orders never settled).
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from miaodai.core.charts import Filters
from miaodai.core.clock import BUSINESS_TZ
from miaodai.core.rollups import RollupMark
from miaodai.credit import dashboards as credit
from miaodai.credit.models import ApplicationDay, ApplicationStatus, CreditApplication, Decision
from miaodai.demo import seed_demo
from miaodai.loans.eod import run_eod
from miaodai.loans.models import CreditLine, EodRun, LoanProduct
from miaodai.payments import dashboards as money
from miaodai.payments.models import (
    CallbackLagDay,
    ChannelCallback,
    OrderStatus,
    PaymentMethod,
    PaymentOrder,
    PaymentOrderDay,
)

FIRST, MARK, TODAY = date(2026, 11, 18), date(2026, 11, 21), date(2026, 11, 25)
NOW = datetime.combine(TODAY, time(10, 0), tzinfo=BUSINESS_TZ)
REASONS = ("CREDIT_DTI_TOO_HIGH", "CREDIT_SCORE_LOW", "CREDIT_TOO_MANY_INQUIRIES")
MODELS = {name: SimpleNamespace(model_id=name, document={"training": {"score_distribution": [
    {"upper": 520.5, "share": 0.3}, {"upper": 600, "share": 0.4}, {"upper": None, "share": 0.3}]}})
    for name in ("m-a", "m-b")}
RANGES = {"rolled": (FIRST, MARK), "tail": (MARK + timedelta(days=1), TODAY), "across": (date(2026, 11, 19), date(
    2026, 11, 24)), "before": (date(2026, 11, 1), date(2026, 11, 10)), "all": (date(2026, 11, 1), TODAY)}


def _at(day: date, hour: int, minute: int = 0, second: int = 0, ms: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second, ms * 1000), tzinfo=BUSINESS_TZ)


def _book(container: Any) -> dict[str, Any]:
    """The week's rows, as the services leave them (every value chosen here, from a fixed seed)."""
    seed_demo(container)
    rng = random.Random(19)
    with container.db.transaction() as session:
        line = session.execute(select(CreditLine).order_by(CreditLine.id)).scalars().first()
        first = session.execute(select(LoanProduct).order_by(LoanProduct.id)).scalars().first()
        values = {c.key: getattr(first, c.key) for c in LoanProduct.__table__.columns if c.key != "id"}
        second = session.execute(insert(LoanProduct).values({**values, "code": "ROLLUP2"})
                                 .returning(LoanProduct.id)).scalar_one()
        method = session.scalar(select(PaymentMethod.id))
        products = [first.id, second]
        days = [FIRST + timedelta(days=n) for n in range((TODAY - FIRST).days + 1)]
        for n in range(240):
            day = days[n % len(days)]
            decision = rng.choice(("approved", "approved", "declined", "review"))
            session.execute(insert(CreditApplication).values(
                borrower_id=line.borrower_id, product_id=products[n % 3 == 0], created_at=_at(day, 9),
                application_date=day, decision=Decision(decision), ruleset_version="t", ruleset_sha256="x",
                model_id=rng.choice(tuple(MODELS)), model_sha256="x", score=round(rng.uniform(450, 700), 2),
                bureau_status="ok", findings="[]", reasons="[]", score_reasons="[]", snapshot_enc="x", timings="{}",
                status={"approved": ApplicationStatus.APPROVED, "declined": ApplicationStatus.DECLINED,
                        "review": ApplicationStatus.IN_REVIEW}[decision],
                decision_ms=None if n % 17 == 0 else rng.choice((3, 37, 99, 120, 412, 987, 1287, 15_400)),
                reason_code=rng.choice(REASONS) if decision == "declined" else None))
        for n in range(160):
            made = _at(days[n % len(days)], rng.randrange(24), rng.randrange(60), rng.randrange(60))
            product = (products + [None])[n % 3]
            fate = rng.random()
            settled = None if fate < 0.15 else min(made + timedelta(minutes=rng.choice((1, 30, 600, 1500, 3000))),
                                                   NOW - timedelta(minutes=5))
            status = (OrderStatus.CREATED if fate < 0.05 else OrderStatus.PROCESSING if fate < 0.15
                      else OrderStatus.FAILED if fate < 0.25 else OrderStatus.SUCCEEDED)
            finished = None if settled is None else settled - timedelta(milliseconds=rng.randrange(0, 30_000))
            session.execute(insert(PaymentOrder).values(
                order_no=f"R{n}", business_key=f"rollup-{n}", kind=rng.choice(("payout", "collection")),
                purpose="disbursement", channel="sandbox", borrower_id=line.borrower_id, product_id=product,
                payment_method_id=method, amount_fen=rng.randrange(1, 500) * 1_000, status=status,
                code="SYSTEMERROR" if n % 7 == 0 and status is OrderStatus.PROCESSING else None,
                checks=n % 2, created_at=made, finished_at=finished, settled_at=settled))
            if finished is not None:  # its callback; sometimes the next day, sometimes ahead of its clock
                lag = timedelta(milliseconds=rng.choice((-40, 3, 420, 2_345, 40_000, 90_000_000)))
                session.add(ChannelCallback(channel="sandbox", received_at=min(finished + lag, NOW), verified=True,
                                            order_no=f"R{n}", outcome="applied", body_sha256="x"))
                if n % 5 == 0:
                    session.add(ChannelCallback(channel="sandbox", received_at=min(finished + lag * 2, NOW),
                                                verified=True, order_no=f"R{n}", outcome="duplicate",
                                                body_sha256="x"))
    return {"products": [None, *products]}


def _figures(session: Any, filters: Filters, *, rolled: bool) -> dict[str, Any]:
    scores = {name: credit.score_distribution(session, filters, model, rolled=rolled)  # type: ignore[arg-type]
              for name, model in MODELS.items()}
    lag = money.callback_lag(session, filters, rolled=rolled)
    return {
        "applications_by_day": credit.applications_by_day(session, filters, rolled=rolled).rows,
        "decline_reasons": credit.decline_reasons(session, filters, rolled=rolled).rows,
        "decision_time": credit.decision_time(session, filters, rolled=rolled).rows,
        "score_distribution": {name: (s.table.rows, s.psi) for name, s in scores.items()},
        "orders_by_state": money.orders_by_state(session, filters, now=NOW, rolled=rolled).rows,
        "callback_lag": (lag.table.rows, lag.p50_ms, lag.p99_ms, lag.callbacks),
    }


def _assert_same(container: Any, products: list[int | None]) -> None:
    with container.db.autocommit() as session:
        for (since, until) in RANGES.values():
            for product in products:
                filters = Filters(since, until, product)
                assert _figures(session, filters, rolled=True) == _figures(session, filters, rolled=False), filters


@pytest.fixture
def book(container: Any, clock: Any) -> dict[str, Any]:
    clock.set(NOW)
    made = _book(container)
    run_eod(container, MARK)  # the first close: its roll-up step rolls up every day from the first one
    return made


def test_the_batch_rolls_up_each_closed_day_and_every_figure_equals_the_base_tables(container, book) -> None:
    with container.db.transaction() as session:
        marks = {m.name: m.through for m in session.scalars(select(RollupMark))}
        run = session.get(EodRun, MARK)
        days = {table: sorted(set(session.scalars(select(column))))
                for table, column in ((ApplicationDay, ApplicationDay.application_date),
                                      (PaymentOrderDay, PaymentOrderDay.settled_on),
                                      (CallbackLagDay, CallbackLagDay.received_on))}
    assert marks == {"credit_applications": MARK, "payment_orders": MARK, "payment_callbacks": MARK}
    assert run.status == "completed"
    assert all(found and found[0] >= FIRST and found[-1] <= MARK for found in days.values())
    _assert_same(container, book["products"])
    # The tail really is live and current: an order made and settled after the mark counts at once.
    with container.db.autocommit() as session:
        before = money.orders_by_state(session, Filters(FIRST, TODAY), now=NOW).rows
    with container.db.transaction() as session:
        session.execute(update(PaymentOrder).where(PaymentOrder.status == OrderStatus.PROCESSING)
                        .values(status=OrderStatus.SUCCEEDED, finished_at=NOW, settled_at=NOW))
    with container.db.autocommit() as session:
        after = money.orders_by_state(session, Filters(FIRST, TODAY), now=NOW).rows
    assert after != before
    _assert_same(container, book["products"])


def test_the_figures_read_the_roll_up_up_to_its_mark_and_a_day_rolled_again_is_the_same(container, book) -> None:
    """A roll-up row changed by hand shows in the figures over rolled days only; rolling the day up again
    (delete, then insert) puts it right."""
    with container.db.transaction() as session:
        for table, column in ((ApplicationDay, ApplicationDay.applications), (PaymentOrderDay, PaymentOrderDay.orders),
                              (CallbackLagDay, CallbackLagDay.callbacks)):
            session.execute(update(table).values({column: column + 1000}))
    with container.db.autocommit() as session:
        for name, (since, until) in RANGES.items():
            filters = Filters(since, until)
            rolled, live = _figures(session, filters, rolled=True), _figures(session, filters, rolled=False)
            touched = {k for k in rolled if rolled[k] != live[k]}
            assert touched == ({"applications_by_day", "decline_reasons", "orders_by_state", "callback_lag"}
                               if name in ("rolled", "across", "all") else set()), name
    with container.db.transaction() as session:
        for day in (FIRST + timedelta(days=n) for n in range(4)):
            for rollup in container.daily_rollups:
                rollup.roll_day(session, day)
    _assert_same(container, book["products"])


def test_a_crash_in_the_roll_up_step_resumes_where_it_stopped(container, clock, monkeypatch) -> None:
    clock.set(NOW)
    made = _book(container)
    real = money.OrdersRollup.roll_day

    def crash_on_the_20th(self: Any, session: Any, day: date) -> int:
        if day == date(2026, 11, 20):
            raise RuntimeError("power cut")
        return real(self, session, day)

    monkeypatch.setattr(money.OrdersRollup, "roll_day", crash_on_the_20th)
    with pytest.raises(RuntimeError):
        run_eod(container, MARK)
    with container.db.transaction() as session:
        marks = {m.name: m.through for m in session.scalars(select(RollupMark))}
        assert (session.get(EodRun, MARK).step, marks) == ("instructions", {
            "credit_applications": MARK, "payment_orders": date(2026, 11, 19)})
    _assert_same(container, made["products"])  # a mark part-way is as good as any: the rest is live
    monkeypatch.undo()
    report = run_eod(container, MARK)
    assert report.resumed_after == "instructions"
    assert report.steps["rollups"] == {**report.steps["rollups"], "credit_applications_days": 0,
                                       "payment_orders_days": 2, "payment_callbacks_days": 4}
    _assert_same(container, made["products"])
