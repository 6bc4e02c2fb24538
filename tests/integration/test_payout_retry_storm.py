"""The retry storm (issue 5's proof), on both databases: a real server, many loans, real concurrency.

Ten loans of two borrowers, paid out to the sandbox channel's awkward test cards (duplicate and
out-of-order callbacks, "failed" SYSTEMERROR answers for orders later paid, timeouts with the order
recorded or lost, a callback that never comes, a definite failure by callback). The app runs under
uvicorn on a loopback port; each loan is signed by 50 simultaneous requests with one Idempotency-Key
(threads released together by a barrier) while the payments recovery races the signing handlers to
send the stored orders and the previous loans' callbacks arrive. Then the channel storms: every
callback (duplicates and stale ones included) is delivered to the real callback endpoint by two
competing deliverers while recovery queries the same orders, and every callback delivered so far is
replayed several times at once. The loans whose card failed are retried by another storm of 50
same-key ``payout-retry`` requests while their first attempts' "failed" answers arrive again. In the
end every loan has exactly one payout at the channel (its reconciliation file) and one in our ledger;
every entry balances and the audit chain holds.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import delete, func, select

from miaodai.app import create_app
from miaodai.core.audit import seal_pending, verify_chain
from miaodai.core.clock import business_date
from miaodai.core.idempotency_models import IdempotencyRecord
from miaodai.demo import DEMO_BORROWERS, seed_demo
from miaodai.ledger.models import JournalEntry
from miaodai.payments import orders
from miaodai.payments.models import ChannelCallback, OrderStatus, PaymentOrder
from miaodai.sandbox.channel import (
    ACCOUNT_DUPLICATE_CALLBACK,
    ACCOUNT_NAME_MISMATCH,
    ACCOUNT_NO_CALLBACK,
    ACCOUNT_OK,
    ACCOUNT_OUT_OF_ORDER_CALLBACKS,
    ACCOUNT_SYSTEM_ERROR_FAILED,
    ACCOUNT_TIMEOUT_LOST,
    ACCOUNT_TIMEOUT_RECORDED,
)
from miaodai.testing.pgserver import free_port
from tests.helpers import assert_problem, latest_code, login, step_up
from tests.loan_support import assert_book_sound
from tests.payment_support import bind_card

CALLERS = 50  # simultaneous requests with one key, per loan
REPLAYS = 4  # times each delivered callback is posted again, all at once
# Only so that a hang fails the test instead of stalling the run; nothing is timed. Every wait of the test (a
# request, a callback's post, the barrier, the server's start) gets this long. On 2 cores loaded by other
# processes a storm has taken 19 s where it takes 3 (SQLite's writers queue behind its one write lock, each as
# slow as the machine), and replayed callbacks outwaited the payments worker's 10 s poster: any shorter limit
# is a timed assert in disguise.
GUARD_SECONDS = 600
REPLAYED = "idempotent-replayed"
KEEP_ALIVE_SECONDS = 3600
# Each borrower's loans, one per round of signing storms: the card it is paid out to and its principal.
PLANS = (
    ((ACCOUNT_OK, 200_000), (ACCOUNT_DUPLICATE_CALLBACK, 210_000), (ACCOUNT_TIMEOUT_LOST, 220_000),
     (ACCOUNT_SYSTEM_ERROR_FAILED, 230_000), (ACCOUNT_NAME_MISMATCH, 240_000)),
    ((ACCOUNT_OUT_OF_ORDER_CALLBACKS, 300_000), (ACCOUNT_TIMEOUT_RECORDED, 310_000), (ACCOUNT_NO_CALLBACK, 320_000),
     (ACCOUNT_SYSTEM_ERROR_FAILED, 330_000), (ACCOUNT_NAME_MISMATCH, 340_000)),
)
FAILS_DEFINITELY = ACCOUNT_NAME_MISMATCH
# The first submission is lost in transit: recovery finds it "not found" and sends it again under the same
# number, so it is still being paid when the first channel storm ends, and paid by the second.
RESENT = ACCOUNT_TIMEOUT_LOST


@dataclass
class Borrower:
    phone: str
    who: dict[str, Any]
    cards: dict[str, int] = field(default_factory=dict)  # card number -> payment method id

    @property
    def id(self) -> int:
        return self.who["borrower_id"]

    @property
    def headers(self) -> dict[str, str]:
        return self.who["headers"]


@dataclass
class Loan:
    id: int
    borrower: Borrower
    card: str
    principal_fen: int
    contract_sha256: str
    code: str  # sent for this contract and its hash (POST /v1/loans/{id}/sign-code)

    @property
    def sign_key(self) -> str:
        return f"sign-storm-{self.id}"

    @property
    def retry_key(self) -> str:
        return f"retry-storm-{self.id}"


# --- a real server ----------------------------------------------------------------------------------------


@pytest.fixture
def settings(settings):
    """The conftest's settings, with callbacks addressed to this test's server and a short channel timeout
    (ACCOUNT_TIMEOUT_RECORDED really waits it out inside the first signing request), and room for each demo
    borrower to bind a card per channel outcome and sign a loan to each in one morning (six bank codes to one
    reserved phone; a login code and five signing codes within the hour, with no resend cooldown: the channel's
    timing, and its callbacks' 300 s signature tolerance, are the subject here, not the code rules)."""
    return settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{free_port()}",
                                       "provider_timeout_seconds": 1.0, "card_binding_codes_per_phone_per_day": 10,
                                       "otp_max_per_hour": 10, "otp_max_per_device_per_hour": 20,
                                       "otp_resend_cooldown_seconds": 0})


@pytest.fixture
def http(container, settings) -> Iterator[httpx.Client]:
    """The app under uvicorn in a thread of this process (sharing the test's container and clock), and an
    HTTP client to it that many threads use at once."""
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    # Idle keep-alive connections are kept for the whole test: uvicorn closing one (after 5 s by default)
    # as the client reuses it would fail a request with "Server disconnected", a race of the test's own.
    server = uvicorn.Server(uvicorn.Config(create_app(container=container), host="127.0.0.1", port=port,
                                           log_config=None, log_level=None, access_log=False,
                                           timeout_keep_alive=KEEP_ALIVE_SECONDS))
    thread = threading.Thread(target=server.run, name="storm-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + GUARD_SECONDS
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    limits = httpx.Limits(max_connections=4 * CALLERS, max_keepalive_connections=4 * CALLERS)
    try:
        with httpx.Client(base_url=settings.public_base_url, timeout=GUARD_SECONDS, limits=limits) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(GUARD_SECONDS)


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call in its own thread, released together; their results in order (an exception fails)."""
    start = threading.Barrier(len(calls))

    def one(call: Callable[[], Any]) -> Any:
        start.wait(GUARD_SECONDS)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


def recovering(container, passes: int = 3) -> Callable[[], Any]:
    """What the payments worker does meanwhile: send stored orders, query the due ones."""
    return lambda: [orders.recover(container) for _ in range(passes)]


# --- the borrowers and their loans ----------------------------------------------------------------------


def _borrowers(client, container) -> list[Borrower]:
    seed_demo(container)  # the two demo borrowers with credit lines
    borrowers = []
    for demo, plans in zip(DEMO_BORROWERS, PLANS, strict=False):
        borrower = Borrower(demo.phone, login(client, demo.phone, device=f"storm-{demo.phone[-4:]}"))
        for card in {ACCOUNT_OK, *(card for card, _ in plans)}:
            borrower.cards[card] = bind_card(client, borrower.who, demo.phone, card)["id"]
        borrowers.append(borrower)
    return borrowers


def _drawn(client, borrower: Borrower, card: str, principal_fen: int) -> Loan:
    line_id = client.get("/v1/credit-lines", headers=borrower.headers).json()[0]["id"]
    body = {"line_id": line_id, "principal_fen": principal_fen, "method": "equal_installment", "term_months": 6}
    drawn = client.post("/v1/loans", json=body, headers={**borrower.headers, "Idempotency-Key": f"draw-{card}"})
    assert drawn.status_code == 201, drawn.text
    loan_id = drawn.json()["id"]
    document = client.get(f"/v1/loans/{loan_id}/contract", headers=borrower.headers)
    sha = document.headers["X-Content-SHA256"]
    sent = client.post(f"/v1/loans/{loan_id}/sign-code", json={"contract_sha256": sha}, headers=borrower.headers)
    assert sent.status_code == 200, sent.text
    return Loan(loan_id, borrower, card, principal_fen, sha, latest_code(client, borrower.phone))


def _pay_to(client, borrower: Borrower, card: str) -> None:
    chosen = client.post(f"/v1/payment-methods/{borrower.cards[card]}/default", headers=borrower.headers)
    assert chosen.status_code == 200, chosen.text


# --- requests and what they must get -------------------------------------------------------------------


def sign(http: httpx.Client, loan: Loan, key: str | None, *, contract_sha256: str | None = None):
    headers = dict(loan.borrower.headers) | ({"Idempotency-Key": key} if key else {})
    return lambda: http.post(f"/v1/loans/{loan.id}/sign", headers=headers,
                             json={"contract_sha256": contract_sha256 or loan.contract_sha256, "code": loan.code})


def retry(http: httpx.Client, loan: Loan, key: str | None, *, content: bytes = b""):
    headers = dict(loan.borrower.headers) | ({"Idempotency-Key": key} if key else {})
    return lambda: http.post(f"/v1/loans/{loan.id}/payout-retry", headers=headers, content=content)


def stored_answer(container, borrower: Borrower, key: str) -> bytes:
    with container.db.transaction() as session:
        record = session.execute(select(IdempotencyRecord).where(
            IdempotencyRecord.scope == f"borrower:{borrower.id}", IdempotencyRecord.key == key)).scalar_one()
    assert record.status_code == 200, record.response_body
    return record.response_body.encode()


def assert_first_answer_or_in_flight(responses: list[httpx.Response], first: bytes) -> Counter:
    """Each of a storm's answers is the stored first answer byte for byte, or 409 in flight; exactly one
    of them ran the request. Returns how many of each status there were."""
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}, [(r.status_code, r.text) for r in responses if r.status_code != 200]
    assert sum(r.status_code == 200 and REPLAYED not in r.headers for r in responses) == 1
    for response in responses:
        if response.status_code == 200:
            assert response.content == first
        else:
            assert_problem(response, 409, "IDEMPOTENCY_REQUEST_IN_FLIGHT")
            assert int(response.headers["retry-after"]) >= 1
    return statuses


def assert_aftershocks(container, http, loan: Loan, path: str, key: str, first: bytes) -> None:
    """After a storm, at once: the same request again gets the first answer; the key with another body or
    on another path 422; no key 400; a new key is refused by the loan's state (no second payout)."""
    if path == "sign":
        same, other = sign(http, loan, key), sign(http, loan, key, contract_sha256="0" * 64)
        no_key, fresh, elsewhere = sign(http, loan, None), sign(http, loan, f"{key}-again"), retry(http, loan, key)
        refused = "CONTRACT_ALREADY_SIGNED"
    else:
        same, other = retry(http, loan, key), retry(http, loan, key, content=b'{"card":"another"}')
        no_key, fresh, elsewhere = retry(http, loan, None), retry(http, loan, f"{key}-again"), sign(http, loan, key)
        refused = "LOAN_ILLEGAL_TRANSITION"
    same_1, same_2, other_1, other_2, no_key_1, fresh_1, elsewhere_1 = at_once(
        [same, same, other, other, no_key, fresh, elsewhere])
    assert same_1.content == same_2.content == first and same_1.headers[REPLAYED] == "true"
    for reused in (other_1, other_2):
        assert_problem(reused, 422, "IDEMPOTENCY_KEY_REUSED")
    if path == "sign" and elsewhere_1.status_code == 403:
        # A payout retry asks for a fresh step-up before its key is looked at, and signing takes none: past the
        # five minutes after the login's code the retry path refuses for that (within them, for the key).
        assert_problem(elsewhere_1, 403, "STEP_UP_REQUIRED")
    else:
        assert_problem(elsewhere_1, 422, "IDEMPOTENCY_KEY_REUSED")
    assert_problem(no_key_1, 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert_problem(fresh_1, 409, refused)
    assert stored_answer(container, loan.borrower, key) == first


# --- the channel's storm ----------------------------------------------------------------------------------


class Callbacks:
    """The channel's callbacks as they reach the server over HTTP: each delivery is kept so that it can
    be posted again later (replays), and every post to the endpoint is counted. They are posted with the
    test's client (the guard's timeout), not the payments worker's poster, whose 10 s timeout is meant for
    a remote service and would time the loaded test machine."""

    def __init__(self, http: httpx.Client) -> None:
        self._http = http
        self.delivered: list[tuple[str, bytes, dict[str, str]]] = []
        self.answers: list[tuple[int, bytes]] = []  # the server's answers to the deliveries
        self.posts = 0
        self._lock = threading.Lock()

    def deliver(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """The channel's poster."""
        answer = self._post(url, body, headers)
        with self._lock:
            self.delivered.append((url, body, dict(headers)))
            self.answers.append(answer)
        return answer

    def replays(self, times: int = REPLAYS) -> list[Callable[[], tuple[int, bytes]]]:
        """Every callback delivered so far, ``times`` over (each a call for :func:`at_once`)."""
        return [lambda c=c: self._post(*c) for c in list(self.delivered) for _ in range(times)]

    def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        with self._lock:
            self.posts += 1
        response = self._http.post(url, content=body, headers=dict(headers))
        return response.status_code, response.content


def delivering(container, clock, callbacks: Callbacks) -> Callable[[], int]:
    """The channel posting the callbacks due now (two of these compete: each delivery is leased)."""
    now = clock.now()
    return lambda: container.channel.deliver_due(now, callbacks.deliver)


def assert_acknowledged(container, answers: list[tuple[int, bytes]]) -> None:
    assert answers and set(answers) == {(200, container.channel.ack_body)}, Counter(answers)


def channel_storm(container, clock, callbacks: Callbacks) -> None:
    """Let the channel finish every order and the recovery's checks come due; deliver the callbacks with
    two competing deliverers while recovery queries the same orders; then replay every callback delivered
    so far (earlier storms' too: late answers about earlier attempts) REPLAYS times at once, recovery
    racing again. A replay carries the signature of its first delivery, which the channel's 300 s
    tolerance still accepts: the test's clock moves about 200 s from the first callback to the last."""
    clock.advance(orders.CHECK_DELAYS[1] + timedelta(seconds=1))  # an order answered "processing" is queried then
    before = len(callbacks.delivered)
    at_once([delivering(container, clock, callbacks), delivering(container, clock, callbacks),
             recovering(container), recovering(container)])
    assert_acknowledged(container, callbacks.answers[before:])  # and so none is posted again
    assert_acknowledged(container, at_once([*callbacks.replays(), recovering(container)])[:-1])


# --- what must be true in the end ---------------------------------------------------------------------------


def payout_orders(container, loan: Loan) -> list[PaymentOrder]:
    with container.db.transaction() as session:
        return list(session.scalars(select(PaymentOrder).where(PaymentOrder.loan_id == loan.id)
                                    .order_by(PaymentOrder.attempt)))


def entries(container, loan: Loan, kind: str) -> int:
    with container.db.transaction() as session:
        return session.scalar(select(func.count()).where(JournalEntry.loan_id == loan.id, JournalEntry.kind == kind))


def voided(container, loan: Loan, attempt: int) -> bool:
    with container.db.transaction() as session:
        return session.scalar(select(func.count()).where(
            JournalEntry.idempotency_key == f"loan:{loan.id}:payout:{attempt}:voided")) == 1


def loan_status(http, loan: Loan) -> dict[str, Any]:
    return http.get(f"/v1/loans/{loan.id}", headers=loan.borrower.headers).json()


def channel_rows(container, clock) -> list[dict[str, str]]:
    statement = container.channel.reconciliation_file(business_date(clock.now()))
    return list(csv.DictReader(io.StringIO(statement)))


def assert_paid_once(container, clock, http, loans: list[Loan]) -> None:
    rows = {row["order_no"]: row for row in channel_rows(container, clock)}
    ours = {loan.id: payout_orders(container, loan) for loan in loans}
    assert set(rows) == {o.order_no for placed in ours.values() for o in placed}  # nothing more, nothing less
    for loan in loans:
        placed = ours[loan.id]
        expected = ([OrderStatus.FAILED, OrderStatus.SUCCEEDED] if loan.card == FAILS_DEFINITELY
                    else [OrderStatus.SUCCEEDED])
        assert [o.status for o in placed] == expected, loan
        assert [o.attempt for o in placed] == list(range(1, len(expected) + 1))
        for order in placed:
            row = rows[order.order_no]
            assert (row["kind"], int(row["amount_fen"]), row["status"]) == (
                "payout", loan.principal_fen, order.status.value)
            assert container.channel.query(order.order_no).status.value == order.status.value
        assert entries(container, loan, "payout_ordered") == len(expected)
        assert entries(container, loan, "payout_paid") == 1
        assert [voided(container, loan, n) for n in range(1, len(expected) + 1)] == [
            status is OrderStatus.FAILED for status in expected]
        shown = loan_status(http, loan)
        assert (shown["status"], shown["payout_attempts"]) == ("active", len(expected)), shown
    assert_book_sound(container)
    seal_pending(container.db, container.clock)
    report = verify_chain(container.db, container.clock, unsealed_bound=timedelta(seconds=10))
    assert report.intact and not report.stale_unsealed, report


def callback_outcomes(container) -> Counter:
    with container.db.transaction() as session:
        return Counter(session.scalars(select(ChannelCallback.outcome)))


# --- the storm ------------------------------------------------------------------------------------------


def signing_storms(client, container, clock, http, borrowers: list[Borrower], callbacks: Callbacks) -> list[Loan]:
    """Round by round, one loan of each borrower drawn and signed by CALLERS same-key requests each, all at
    once, while recovery races the signing handlers to send the stored orders and the channel delivers
    the previous round's callbacks. Returns the loans, each with one order the channel is paying."""
    loans: list[Loan] = []
    for round_plans in zip(*PLANS, strict=True):
        batch = []
        for borrower, (card, principal_fen) in zip(borrowers, round_plans, strict=True):
            _pay_to(client, borrower, card)
            batch.append(_drawn(client, borrower, card, principal_fen))
        clock.advance(timedelta(seconds=3))  # the previous round's orders are finished at the channel
        storms = at_once([sign(http, loan, loan.sign_key) for loan in batch for _ in range(CALLERS)]
                         + [recovering(container), delivering(container, clock, callbacks)])
        for n, loan in enumerate(batch):
            first = stored_answer(container, loan.borrower, loan.sign_key)
            assert_first_answer_or_in_flight(storms[n * CALLERS:(n + 1) * CALLERS], first)
            assert json.loads(first)["status"] == "disbursing" and json.loads(first)["payout_attempts"] == 1
            assert_aftershocks(container, http, loan, "sign", loan.sign_key, first)
        loans += batch
    assert [len(payout_orders(container, loan)) for loan in loans] == [1] * len(loans)
    return loans


def retry_storm(client, container, clock, http, failed: list[Loan], callbacks: Callbacks) -> None:
    """The loans whose payout failed, paid to a good card by CALLERS same-key retries each, all at once,
    while the first attempts' answers ("failed") arrive once more and recovery runs."""
    for loan in failed:
        assert voided(container, loan, 1)
        _pay_to(client, loan.borrower, ACCOUNT_OK)
        step_up(client, clock, loan.borrower.who, loan.borrower.phone)
    storms = at_once([retry(http, loan, loan.retry_key) for loan in failed for _ in range(CALLERS)]
                     + [recovering(container), *callbacks.replays(times=1)])
    assert_acknowledged(container, storms[len(failed) * CALLERS + 1:])
    for n, loan in enumerate(failed):
        first = stored_answer(container, loan.borrower, loan.retry_key)
        assert_first_answer_or_in_flight(storms[n * CALLERS:(n + 1) * CALLERS], first)
        assert json.loads(first)["status"] == "disbursing" and json.loads(first)["payout_attempts"] == 2
        assert_aftershocks(container, http, loan, "retry", loan.retry_key, first)
        assert len(payout_orders(container, loan)) == 2


def test_a_retry_storm_pays_each_loan_out_exactly_once(client, container, clock, http):
    container.channel  # opened once, before threads race to open it  # noqa: B018
    callbacks = Callbacks(http)
    loans = signing_storms(client, container, clock, http, _borrowers(client, container), callbacks)

    channel_storm(container, clock, callbacks)
    failed = [loan for loan in loans if loan.card == FAILS_DEFINITELY]
    assert len(failed) == 2
    for loan in loans:  # the failed ones are back to awaiting a new attempt (another card, or cancel)
        expected = "signed" if loan in failed else ("disbursing" if loan.card == RESENT else "active")
        assert loan_status(http, loan)["status"] == expected
        assert entries(container, loan, "payout_paid") == (1 if expected == "active" else 0)

    retry_storm(client, container, clock, http, failed, callbacks)
    channel_storm(container, clock, callbacks)

    assert_paid_once(container, clock, http, loans)
    assert container.channel.due_callbacks(clock.now() + timedelta(days=2)) == []  # all delivered, acknowledged
    outcomes = callback_outcomes(container)
    assert set(outcomes) <= {"applied", "duplicate", "stale"} and outcomes.total() == callbacks.posts, outcomes
    assert outcomes["applied"] <= len(loans) + len(failed)  # at most once per order (or a query settled it)


# --- a retry after a failure past the commit ---------------------------------------------------------------


def test_a_retry_after_the_send_failed_past_the_commit_gets_the_signed_loan(client, container, clock, monkeypatch,
                                                                              captured_logs):
    """Signing commits the loan and its stored order, then sends the order. If sending raises (the
    database connection drops, say), the order stays in recovery's reach and no money has moved twice;
    but the borrower's retry with the same key must get the signed loan, not an error. (Logs are captured
    as production writes them: the default console renderer takes seconds over the 500's traceback.)"""
    seed_demo(container)
    borrower = Borrower(DEMO_BORROWERS[0].phone, login(client, DEMO_BORROWERS[0].phone))
    borrower.cards[ACCOUNT_OK] = bind_card(client, borrower.who, borrower.phone, ACCOUNT_OK)["id"]
    _pay_to(client, borrower, ACCOUNT_OK)
    clock.advance(timedelta(seconds=61))  # past the login code's resend cooldown
    loan = _drawn(client, borrower, ACCOUNT_OK, 200_000)
    send, failures = orders.send_loan_payout, []

    def dropped_once(container_: Any, loan_id: int) -> Any:
        if not failures:
            failures.append(loan_id)
            raise ConnectionResetError("server closed the connection unexpectedly")
        return send(container_, loan_id)

    monkeypatch.setattr(orders, "send_loan_payout", dropped_once)
    headers = {**borrower.headers, "Idempotency-Key": loan.sign_key}
    body = {"contract_sha256": loan.contract_sha256, "code": loan.code}
    client.post(f"/v1/loans/{loan.id}/sign", json=body, headers=headers)
    retried = client.post(f"/v1/loans/{loan.id}/sign", json=body, headers=headers)

    assert failures == [loan.id]
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "disbursing"
    assert len(payout_orders(container, loan)) == 1
    # The process that signed died before storing its answer (the key layer then lets a retry take the
    # key over and run again): the signing finds the payout its key ordered and answers with the loan.
    with container.db.transaction() as session:
        session.execute(delete(IdempotencyRecord))
    again = client.post(f"/v1/loans/{loan.id}/sign", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["status"] in ("disbursing", "active"), again.text
    assert len(payout_orders(container, loan)) == 1
    other_key = client.post(f"/v1/loans/{loan.id}/sign", json=body,
                            headers={**borrower.headers, "Idempotency-Key": f"{loan.sign_key}-new"})
    assert other_key.status_code == 409 and other_key.json()["code"] == "CONTRACT_ALREADY_SIGNED"
