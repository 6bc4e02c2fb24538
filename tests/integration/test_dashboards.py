"""The dashboards' SQL aggregates on both databases: a small book with known outcomes, exact figures.

Rows the aggregates read are written here as the services would leave them (a helper per table, every
value chosen by the test), except where the service's own writing is what is checked: the month-end
snapshot is written by the end-of-day batch's own code, a whole loan life runs through the API and the
batch across two month ends, and credit applications are decided by the real decision service.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from alembic import command
from sqlalchemy import insert, select

from miaodai.core.charts import Filters
from miaodai.credit import dashboards as credit
from miaodai.credit.models import ApplicationStatus, CreditApplication, Decision
from miaodai.demo import seed_demo
from miaodai.loans import portfolio
from miaodai.loans.eod import _Batch
from miaodai.loans.models import CreditLine, Loan, LoanMonthEnd, LoanMonthEndRoll, LoanProduct, Repayment
from miaodai.loans.states import LoanStatus
from miaodai.migrate import alembic_config
from miaodai.payments import dashboards as money
from miaodai.payments.models import (
    ChannelCallback,
    OrderStatus,
    PaymentMethod,
    PaymentOrder,
    ReconException,
    ReconExceptionStatus,
    ReconRun,
)
from tests.credit_support import applicant, apply, quick_parties
from tests.loan_support import active_loan, close_through, demo_borrower


def _ids(container: Any) -> dict[str, int]:
    seed_demo(container)
    with container.db.transaction() as session:
        line = session.execute(select(CreditLine).order_by(CreditLine.id)).scalars().first()
        return {"borrower": line.borrower_id, "line": line.id, "product": session.scalar(select(LoanProduct.id)),
                "method": session.scalar(select(PaymentMethod.id))}


def _loans(container: Any, ids: dict[str, int], rows: list[dict[str, Any]]) -> list[int]:
    """Loans as the engine leaves them; each row gives status, start_date, principal_outstanding_fen,
    days_past_due (and closed_at)."""
    now = container.clock.now()
    made = []
    with container.db.transaction() as session:
        for n, row in enumerate(rows):
            values = {
                "loan_no": f"T{n:04d}", "borrower_id": ids["borrower"], "credit_line_id": ids["line"],
                "product_id": ids["product"], "principal_fen": 1_000_000, "method": "equal_installment",
                "term_months": 12, "annual_rate": "0.1548", "monthly_fee_rate": "0.001", "day_count": "ACT/360",
                "penalty_annual_rate": "0.2322", "late_fee_fen": 2000, "grace_days": 3, "cost_cap": "0.24",
                "allocation_order": "penalty,fee,interest,principal", "apr": "0.177", "total_interest_fen": 0,
                "total_fee_fen": 0, "overpayment_fen": 0, "accrued_interest_fen": 0, "payout_attempts": 1,
                "request_key": f"t-{n}", "requested_at": now, "version": 1, **row,
                "status": LoanStatus(row["status"])}
            made.append(session.execute(insert(Loan).values(values).returning(Loan.id)).scalar_one())
    return made


def _set_dpd(container: Any, days: dict[int, int]) -> None:
    with container.db.transaction() as session:
        for loan_id, dpd in days.items():
            loan = session.get_one(Loan, loan_id)
            loan.days_past_due = dpd
            loan.status = LoanStatus.OVERDUE if dpd else LoanStatus.ACTIVE


# -- portfolio -----------------------------------------------------------------------------------------


def test_month_end_snapshots_vintages_roll_rates_and_the_book(container: Any) -> None:
    ids = _ids(container)
    sep, oct_ = date(2026, 9, 15), date(2026, 10, 3)
    a, b, c, d, e, f = _loans(container, ids, [
        {"status": "active", "start_date": sep, "principal_outstanding_fen": 800_000, "days_past_due": 0},
        {"status": "active", "start_date": sep, "principal_outstanding_fen": 700_000, "days_past_due": 0},
        {"status": "active", "start_date": sep, "principal_outstanding_fen": 600_000, "days_past_due": 0},
        {"status": "active", "start_date": oct_, "principal_outstanding_fen": 900_000, "days_past_due": 0},
        {"status": "active", "start_date": oct_, "principal_outstanding_fen": 500_000, "days_past_due": 0},
        {"status": "active", "start_date": oct_, "principal_outstanding_fen": 400_000, "days_past_due": 0},
    ])
    # 2026-09-30: a, b, c current. (d, e, f start in October: on the book from then.)
    _set_dpd(container, {})
    with container.db.transaction() as session:  # d–f not yet disbursed at the end of September
        for loan_id in (d, e, f):
            session.get_one(Loan, loan_id).status = LoanStatus.SIGNED
    assert _Batch(container, date(2026, 9, 30), 2, None).month_end_snapshot() == 3
    with container.db.transaction() as session:
        for loan_id in (d, e, f):
            session.get_one(Loan, loan_id).status = LoanStatus.ACTIVE
    # 2026-10-31: a M1 (12 days), b M2 (45), c current, d–f current.
    _set_dpd(container, {a: 12, b: 45})
    assert _Batch(container, date(2026, 10, 31), 4, None).month_end_snapshot() == 6
    # Running a month end again adds nothing.
    assert _Batch(container, date(2026, 10, 31), 4, None).month_end_snapshot() == 0
    # 2026-11-30: a M2 (42), b M3 (75), c paid off (left the book), d M1 (30), e current, f M3+ (91).
    _set_dpd(container, {a: 42, b: 75, d: 30, f: 91})
    with container.db.transaction() as session:
        session.get_one(Loan, c).status = LoanStatus.PAID_OFF
    assert _Batch(container, date(2026, 11, 30), 4, None).month_end_snapshot() == 5

    with container.db.transaction() as session:
        rows = {(r.as_of, r.loan_id): r for r in session.scalars(select(LoanMonthEnd))}
        rolls = session.scalars(select(LoanMonthEndRoll)).all()
    nov = date(2026, 11, 30)
    assert [(rows[nov, x].vintage, rows[nov, x].months_on_book, rows[nov, x].bucket, rows[nov, x].prev_bucket)
            for x in (a, b, d, e, f)] == [
        (202609, 2, "M2", "M1"), (202609, 2, "M3", "M2"), (202610, 1, "M1", "current"),
        (202610, 1, "current", "current"), (202610, 1, "M3+", "current")]
    assert rows[date(2026, 10, 31), d].prev_bucket is None and rows[date(2026, 10, 31), d].months_on_book == 0
    assert rows[date(2026, 9, 30), a].months_on_book == 0 and rows[date(2026, 9, 30), a].vintage == 202609
    assert sum(r.loans for r in rolls if r.as_of == nov) == 5
    assert sum(r.principal_outstanding_fen for r in rolls if r.as_of == nov) == 3_300_000

    filters = Filters(date(2026, 9, 1), nov, ids["product"])
    with container.db.autocommit() as session:
        roll = portfolio.roll_rates(session, filters)
        vintages = portfolio.vintage_curves(session, filters)
        book = portfolio.book_by_bucket(session, filters)
    flows = {(m, s, t): n for m, s, t, n in roll.rows if n}
    assert flows == {
        (date(2026, 10, 31), "current", "current"): 1, (date(2026, 10, 31), "current", "M1"): 1,
        (date(2026, 10, 31), "current", "M2"): 1,
        (nov, "current", "current"): 1, (nov, "current", "M1"): 1, (nov, "current", "M3+"): 1,
        (nov, "current", "closed"): 1, (nov, "M1", "M2"): 1, (nov, "M2", "M3"): 1,
    }
    # September's roll has no month end before it in the book: no rows for it.
    assert {m for m, *_ in roll.rows} == {date(2026, 10, 31), nov}
    # Vintages: September (3 loans) bad from MOB 2 — b at 45 days at MOB 1 already; a at 42 at MOB 2.
    curve = {(v, mob): (loans, bad, share) for v, mob, loans, bad, share in vintages.rows}
    assert curve == {
        ("2026-09", 0): (3, 0, 0.0), ("2026-09", 1): (3, 1, 0.3333), ("2026-09", 2): (3, 2, 0.6667),
        ("2026-10", 0): (3, 0, 0.0), ("2026-10", 1): (3, 2, 0.6667),
    }
    assert book.rows == [("current", 1, 500_000, round(500_000 / 3_300_000, 4)),
                         ("M1", 1, 900_000, round(900_000 / 3_300_000, 4)),
                         ("M2", 1, 800_000, round(800_000 / 3_300_000, 4)),
                         ("M3", 1, 700_000, round(700_000 / 3_300_000, 4)),
                         ("M3+", 1, 400_000, round(400_000 / 3_300_000, 4))]
    # The charts carry what the rows say.
    book_option = portfolio.book_chart(book, portfolio.labels_for("en"))
    assert book_option["series"][0]["data"] == [5000.0, 9000.0, 8000.0, 7000.0, 4000.0]
    assert book_option["series"][1]["data"] == [1, 1, 1, 1, 1]
    assert book_option["xAxis"]["data"] == ["Current", "M1", "M2", "M3", "M3+"]
    vintage_option = portfolio.vintage_chart(vintages)
    assert [(s["name"], s["data"]) for s in vintage_option["series"]] == [
        ("2026-09", [0.0, 33.33, 66.67]), ("2026-10", [0.0, 66.67, None])]
    heat = portfolio.roll_chart(roll, portfolio.labels_for("zh_CN"))
    cells = {(x, y): v for x, y, v in heat["series"][0]["data"]}
    # From current, over both months: 2 stayed, 2 to M1, 1 to M2, 1 to M3+, 1 closed (of 7).
    assert [cells[(x, 0)] for x in range(6)] == [28.6, 28.6, 14.3, 0.0, 14.3, 14.3]
    assert heat["xAxis"]["data"][-1] == "结清/核销"
    # A product with nothing: empty, not an error.
    with container.db.autocommit() as session:
        assert portfolio.roll_rates(session, Filters(date(2026, 9, 1), nov, 999_999)).rows == []
    csv_text = book.to_csv(portfolio.labels_for("en"))
    assert csv_text.splitlines()[0] == "Bucket,Loans,Principal outstanding (fen),Share"
    assert csv_text.splitlines()[5].startswith("M3+,1,400000,")


def test_early_repayments_and_write_offs_by_month(container: Any) -> None:
    ids = _ids(container)
    closed = datetime(2026, 10, 31, 16, 30, tzinfo=UTC)  # 2026-11-01 00:30 in Beijing: November's
    a, _, _ = _loans(container, ids, [
        {"status": "paid_off", "start_date": date(2026, 8, 1), "principal_outstanding_fen": 0, "days_past_due": 0},
        {"status": "written_off", "start_date": date(2026, 5, 1), "principal_outstanding_fen": 654_321,
         "days_past_due": 95, "closed_at": closed},
        {"status": "written_off", "start_date": date(2026, 5, 1), "principal_outstanding_fen": 111_111,
         "days_past_due": 120, "closed_at": datetime(2026, 10, 20, 2, 0, tzinfo=UTC)},
    ])
    now = container.clock.now()

    def repayment(loan_id: int, key: str, kind: str, fen: int, day: date, reverses: int | None = None) -> int:
        with container.db.transaction() as session:
            return session.execute(insert(Repayment).values(
                loan_id=loan_id, idempotency_key=key, kind=kind, amount_fen=fen, channel="sandbox", received_on=day,
                posted_at=now, allocation="{}", reverses_id=reverses).returning(Repayment.id)).scalar_one()

    repayment(a, "r1", "prepayment", 200_000, date(2026, 10, 5))
    repayment(a, "r2", "payoff", 812_345, date(2026, 11, 2))
    repayment(a, "r3", "due", 90_000, date(2026, 11, 3))  # not early
    reversed_one = repayment(a, "r4", "prepayment", 50_000, date(2026, 11, 4))
    repayment(a, "r5", "reversal", -50_000, date(2026, 11, 5), reverses=reversed_one)
    with container.db.autocommit() as session:
        table = portfolio.early_and_write_offs(session, Filters(date(2026, 10, 1), date(2026, 11, 30)))
    assert table.rows == [("2026-10", 1, 200_000, 1, 111_111), ("2026-11", 1, 812_345, 1, 654_321)]
    option = portfolio.early_and_write_offs_chart(table)
    assert option["series"][0]["data"] == [2000.0, 8123.45] and option["series"][1]["data"] == [1111.11, 6543.21]


def test_a_loan_life_reaches_the_snapshots_through_the_batch(client: Any, container: Any, clock: Any) -> None:
    """Drawn through the API on 2026-11-22, first installment due 2026-12-22 and never paid: the batch's own
    month ends find it current at 2026-11-30 and in M1 (10 days past due) at 2026-12-31."""
    borrower = demo_borrower(client, container)
    loan = active_loan(client, clock, borrower)
    reports = close_through(container, clock, date(2026, 12, 31))
    by_day = {r.business_date: r for r in reports}
    assert by_day[date(2026, 11, 30)].steps["status"]["month_end_loans"] == 1
    assert "month_end_loans" not in by_day[date(2026, 12, 1)].steps["status"]
    with container.db.transaction() as session:
        rows = session.scalars(select(LoanMonthEnd).order_by(LoanMonthEnd.as_of)).all()
    assert [(r.as_of, r.loan_id, r.vintage, r.months_on_book, r.days_past_due, r.bucket, r.prev_bucket)
            for r in rows] == [
        (date(2026, 11, 30), loan["id"], 202611, 0, 0, "current", None),
        (date(2026, 12, 31), loan["id"], 202611, 1, 10, "M1", "current")]
    with container.db.autocommit() as session:
        roll = portfolio.roll_rates(session, Filters(date(2026, 12, 1), date(2026, 12, 31)))
    assert [(s, t, n) for _, s, t, n in roll.rows if n] == [("current", "M1", 1)]


# -- origination ---------------------------------------------------------------------------------------


def _applications(container: Any, ids: dict[str, int], rows: list[tuple[date, str, int, str | None, float]],
                  model_id: str = "m-test") -> None:
    now = container.clock.now()
    status = {"approved": ApplicationStatus.APPROVED, "declined": ApplicationStatus.DECLINED,
              "review": ApplicationStatus.IN_REVIEW}
    with container.db.transaction() as session:
        for day, decision, ms, reason, score in rows:
            session.execute(insert(CreditApplication).values(
                borrower_id=ids["borrower"], product_id=ids["product"], created_at=now, application_date=day,
                decision=Decision(decision), ruleset_version="t", ruleset_sha256="x", model_id=model_id,
                model_sha256="x",
                score=score, bureau_status="ok", findings="[]", reasons="[]", score_reasons="[]", snapshot_enc="x",
                timings="{}", status=status[decision], decision_ms=ms, reason_code=reason))


def test_origination_figures(container: Any) -> None:
    ids = _ids(container)
    d1, d2 = date(2026, 11, 20), date(2026, 11, 21)
    # Day 1: 4 approved, 3 declined (2 × DTI, 1 × inquiries), 1 review; decision times 10..80 ms.
    rows = [(d1, "approved", 10, None, 500.0), (d1, "approved", 20, None, 520.0), (d1, "approved", 30, None, 610.0),
            (d1, "approved", 40, None, 640.0), (d1, "declined", 50, "CREDIT_DTI_TOO_HIGH", 450.0),
            (d1, "declined", 60, "CREDIT_DTI_TOO_HIGH", 470.0),
            (d1, "declined", 70, "CREDIT_TOO_MANY_INQUIRIES", 480.0),
            (d1, "review", 80, None, 590.0)]
    # Day 2: 1 declined, 1287 ms (kept as 1200: two significant figures, rounded down).
    rows += [(d2, "declined", 1287, "CREDIT_DTI_TOO_HIGH", 700.0)]
    _applications(container, ids, rows)
    filters = Filters(d1, date(2026, 11, 22), ids["product"])
    model = SimpleNamespace(model_id="m-test", document={"training": {"score_distribution": [
        {"upper": 550, "share": 0.5}, {"upper": None, "share": 0.5}]}})
    with container.db.autocommit() as session:
        daily = credit.applications_by_day(session, filters)
        reasons = credit.decline_reasons(session, filters)
        timing = credit.decision_time(session, filters)
        scores = credit.score_distribution(session, filters, model)  # type: ignore[arg-type]
    assert daily.rows == [(d1, 8, 4, 3, 1, 0.5), (d2, 1, 0, 1, 0, 0.0), (date(2026, 11, 22), 0, 0, 0, 0, None)]
    assert reasons.rows == [(d1, "CREDIT_DTI_TOO_HIGH", 2), (d1, "CREDIT_TOO_MANY_INQUIRIES", 1),
                            (d2, "CREDIT_DTI_TOO_HIGH", 1)]
    # Nearest rank of 8 values: p50 is the 4th (40 ms), p99 the 8th (80 ms).
    assert timing.rows == [(d1, 8, 40, 80), (d2, 1, 1200, 1200), (date(2026, 11, 22), 0, None, None)]
    # Scores below 550: 5 of 9; at or above: 4. PSI by hand against 0.5 / 0.5, each count + ½:
    # actual shares 5.5/10 and 4.5/10.
    expected = 0.05 * math.log(0.55 / 0.5) + (-0.05) * math.log(0.45 / 0.5)
    assert scores.table.rows == [(1, 550, 0.5, 5, round(5 / 9, 4)), (2, None, 0.5, 4, round(4 / 9, 4))]
    assert scores.psi == round(expected, 4) == 0.01 and scores.verdict == "stable"
    # A model the applications were not scored by has no scores in the range.
    other = SimpleNamespace(model_id="other", document=model.document)
    with container.db.autocommit() as session:
        assert credit.score_distribution(session, filters, other).psi is None  # type: ignore[arg-type]

    labels = credit.labels_for("en")
    option = credit.applications_chart(daily, labels)
    assert [(s["name"], s["data"]) for s in option["series"]] == [
        ("Approved", [4, 0, 0]), ("Declined", [3, 1, 0]), ("Review", [1, 0, 0]),
        ("Approval rate", [50.0, 0.0, None])]
    assert option["series"][3]["yAxisIndex"] == 1 and option["series"][0]["stack"] == "total"
    reasons_option = credit.decline_reasons_chart(reasons, filters.days(), labels)
    assert [(s["name"], s["data"]) for s in reasons_option["series"]] == [
        ("CREDIT_DTI_TOO_HIGH", [2, 1, 0]), ("CREDIT_TOO_MANY_INQUIRIES", [1, 0, 0])]
    assert credit.decision_time_chart(timing, labels)["series"][1]["data"] == [80, 1200, None]
    score_option = credit.score_chart(scores, credit.labels_for("zh_CN"))
    assert score_option["title"]["text"] == "评分分布与 PSI · PSI 0.0100 (stable)"
    assert score_option["series"][1]["data"] == [55.56, 44.44]
    assert daily.to_csv(labels).splitlines()[1:3] == ["2026-11-20,8,4,3,1,0.5", "2026-11-21,1,0,1,0,0.0"]


def test_the_decision_service_stores_decision_time_and_the_decline_reason(client: Any, container: Any) -> None:
    quick_parties(container)
    seed_demo(container)
    declined = apply(client, applicant(client, "13900000301", "11010119900308902X"))
    approved = apply(client, applicant(client, "13900000302", "110101199003089089"))
    assert declined.json()["decision"] == "declined" and approved.json()["decision"] == "approved"
    with container.db.transaction() as session:
        rows = session.scalars(select(CreditApplication).order_by(CreditApplication.id)).all()
    assert [(r.decision.value, r.reason_code) for r in rows] == [
        ("declined", "CREDIT_TOO_MANY_INQUIRIES"), ("approved", None)]
    assert [r.decision_ms for r in rows] == [round(json.loads(r.timings)["total_ms"]) for r in rows]


# -- money movement ------------------------------------------------------------------------------------


def test_money_movement_figures(container: Any, clock: Any) -> None:
    ids = _ids(container)
    [loan] = _loans(container, ids, [{"status": "active", "start_date": date(2026, 11, 20),
                                      "principal_outstanding_fen": 1_000_000, "days_past_due": 0}])
    now = clock.now()  # 2026-11-22 10:00 in Beijing
    made = iter(range(1000))

    def order(kind: str, status: str, fen: int, age: timedelta, *, checks: int = 0, code: str | None = None,
              finished: datetime | None = None) -> str:
        n = next(made)
        with container.db.transaction() as session:
            session.execute(insert(PaymentOrder).values(
                order_no=f"O{n}", business_key=f"k{n}", kind=kind, purpose="disbursement", channel="sandbox",
                borrower_id=ids["borrower"], loan_id=loan, product_id=ids["product"],
                payment_method_id=ids["method"], amount_fen=fen,
                status=OrderStatus(status), code=code, created_at=now - age, finished_at=finished, checks=checks))
        return f"O{n}"

    paid = order("payout", "succeeded", 100_000, timedelta(hours=3), finished=now - timedelta(hours=3))
    order("payout", "failed", 20_000, timedelta(hours=2), finished=now - timedelta(hours=2))
    order("payout", "created", 30_000, timedelta(seconds=20))
    order("payout", "processing", 40_000, timedelta(minutes=5))  # sent, first answer pending: in flight
    order("payout", "processing", 50_000, timedelta(minutes=30), code="SYSTEMERROR")  # unknown
    order("collection", "processing", 60_000, timedelta(hours=30), checks=3)  # unknown, asked 3 times
    first = order("collection", "succeeded", 70_000, timedelta(hours=1), finished=now - timedelta(minutes=50))
    second = order("collection", "succeeded", 80_000, timedelta(hours=1), finished=now - timedelta(minutes=40))
    order("collection", "succeeded", 90_000, timedelta(days=5))  # made before the range: left out
    with container.db.transaction() as session:
        for order_no, finished, lag, outcome in (
                (paid, now - timedelta(hours=3), timedelta(milliseconds=420), "applied"),
                (first, now - timedelta(minutes=50), timedelta(seconds=2, milliseconds=345), "applied"),
                (second, now - timedelta(minutes=40), timedelta(seconds=40), "applied"),
                (second, now - timedelta(minutes=40), timedelta(seconds=90), "duplicate")):
            session.add(ChannelCallback(channel="sandbox", received_at=finished + lag, verified=True,
                                        order_no=order_no, outcome=outcome, body_sha256="x"))
        run = ReconRun(channel="sandbox", business_date=date(2026, 11, 21), file_sha256="x", started_at=now,
                       actor="t", counts="{}")
        session.add(run)
        session.flush()
        for n, (kind, status, ours, theirs, age) in enumerate((
                ("amount_mismatch", "open", 10_000, 9_000, timedelta(hours=5)),
                ("amount_mismatch", "open", 20_000, 19_000, timedelta(hours=2)),
                ("missing_ours", "open", None, 5_000, timedelta(hours=1)),
                ("missing_ours", "resolved", None, 7_000, timedelta(hours=9)))):
            session.add(ReconException(run_id=run.id, channel="sandbox", business_date=date(2026, 11, 21),
                                       order_no=f"X{n}", kind=kind, our_amount_fen=ours, channel_amount_fen=theirs,
                                       evidence="{}", status=ReconExceptionStatus(status),
                                       created_at=now - age))
    filters = Filters(date(2026, 11, 20), date(2026, 11, 22), ids["product"])
    with container.db.autocommit() as session:
        orders = money.orders_by_state(session, filters, now=now)
        lag = money.callback_lag(session, filters)
        recon = money.recon_open(session, filters, now=now)
        assert money.orders_by_state(session, Filters(date(2026, 11, 20), date(2026, 11, 22), 999_999),
                                     now=now).rows == []
    assert orders.rows == [
        ("payout", "in_flight", "under_1m", 1, 30_000), ("payout", "in_flight", "1m_10m", 1, 40_000),
        ("payout", "unknown", "10m_1h", 1, 50_000), ("payout", "succeeded", "final", 1, 100_000),
        ("payout", "failed", "final", 1, 20_000),
        ("collection", "unknown", "over_24h", 1, 60_000), ("collection", "succeeded", "final", 2, 150_000)]
    # Lags 420 ms, 2,345 ms, 40 s (the duplicate is not counted): p50 the 2nd, p99 the 3rd (to 10 ms).
    assert (lag.callbacks, lag.p50_ms, lag.p99_ms) == (3, 2340, 40_000)
    assert lag.table.rows == [("under_1s", 1), ("1s_5s", 1), ("5s_30s", 0), ("30s_5m", 1), ("over_5m", 0)]
    assert recon.rows == [("sandbox", "amount_mismatch", 2, 30_000, 28_000, 5.0),
                          ("sandbox", "missing_ours", 1, 0, 5_000, 1.0)]
    labels = money.labels_for("en")
    option = money.orders_chart(orders, labels)
    assert option["xAxis"]["data"] == ["Payouts", "Collections"]
    assert [(s["name"], s["data"]) for s in option["series"]] == [
        ("In flight", [2, 0]), ("Unknown", [1, 1]), ("Succeeded", [1, 2]), ("Failed", [1, 0])]
    ages = money.open_orders_chart(orders, labels)
    assert [(s["name"], s["data"]) for s in ages["series"]] == [
        ("Payouts", [1, 1, 1, 0, 0]), ("Collections", [0, 0, 0, 0, 1])]
    assert money.callback_lag_chart(lag, labels)["series"][0]["data"] == [1, 1, 0, 1, 0]
    assert money.recon_chart(recon, labels)["series"] == [
        {"name": "Amount mismatch", "type": "bar", "data": [2], "stack": "total", "emphasis": {"focus": "series"}},
        {"name": "Missing on our side", "type": "bar", "data": [1], "stack": "total",
         "emphasis": {"focus": "series"}}]
    assert orders.to_csv().splitlines()[1] == "payout,in_flight,under_1m,1,30000"


def test_an_order_carries_its_loans_product_and_the_migration_fills_the_ones_before(
        client: Any, container: Any, clock: Any, database_url: str) -> None:
    """The money-movement figures filter by the order's own product_id (no join to loans): the service writes
    it with every order, and migration 0020 fills it for orders stored before it."""
    loan = active_loan(client, clock, demo_borrower(client, container))
    with container.db.transaction() as session:
        product = session.get_one(Loan, loan["id"]).product_id
        made = session.execute(select(PaymentOrder.product_id).where(PaymentOrder.loan_id == loan["id"])).all()
    assert made == [(product,)]  # the payout, made by the service
    day = clock.now().date()
    with container.db.autocommit() as session:
        counted = money.orders_by_state(session, Filters(day - timedelta(days=1), day + timedelta(days=1), product),
                                        now=clock.now())
    assert [(kind, state, n) for kind, state, _, n, _ in counted.rows] == [("payout", "succeeded", 1)]
    container.db.dispose()
    config = alembic_config(database_url)
    command.downgrade(config, "0019")
    command.upgrade(config, "head")
    with container.db.transaction() as session:
        filled = session.execute(select(PaymentOrder.product_id).where(PaymentOrder.loan_id == loan["id"])).all()
    assert filled == [(product,)]
