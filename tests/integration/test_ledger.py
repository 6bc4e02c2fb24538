"""The ledger on both databases: posting, idempotent replays, reversals, balances, the trial balance,
the database's own refusal of unbalanced or altered entries, races on one key, and the CLI."""

from __future__ import annotations

import random
import threading
import time
from datetime import date

import pytest
from alembic import command
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from miaodai.core.db import UTCDateTime
from miaodai.core.errors import DomainError
from miaodai.ledger import service
from miaodai.ledger.accounts import Account
from miaodai.ledger.models import JournalEntry, JournalLeg
from miaodai.ledger.service import (
    Leg,
    account_balances,
    check_book,
    loan_balances,
    loan_entries,
    loan_subledger,
    post,
    reverse,
    trial_balance,
)
from miaodai.migrate import alembic_config
from tests.cli_support import run_cli

DAY = date(2026, 11, 22)
LOAN = 7
CHANNEL = "sandbox"


def drawdown(amount_fen: int = 1_000_000) -> list[Leg]:
    return [Leg(Account.PRINCIPAL_RECEIVABLE, amount_fen), Leg(Account.PAYOUT_IN_TRANSIT, -amount_fen)]


def posting(container, key: str, legs: list[Leg], *, kind: str = "drawdown", loan_id: int | None = LOAN):
    with container.db.transaction() as session:
        return post(session, kind=kind, idempotency_key=key, business_date=DAY, legs=legs,
                    now=container.clock.now(), loan_id=loan_id)


def reversing(container, entry_id: int, key: str):
    with container.db.transaction() as session:
        return reverse(session, entry_id=entry_id, idempotency_key=key, business_date=DAY, now=container.clock.now())


def count_entries(container) -> int:
    with container.db.transaction() as session:
        return session.scalar(select(func.count()).select_from(JournalEntry))


def error_code(call) -> str:
    with pytest.raises(DomainError) as raised:
        call()
    return raised.value.code


# ------------------------------------------------------------------------------------ posting & replay


def test_a_drawdown_posts_once_and_its_replay_returns_the_same_entry(container):
    first = posting(container, "drawdown:loan:7", drawdown())
    assert first.created
    assert first.entry.kind == "drawdown" and first.entry.loan_id == LOAN
    assert sorted(leg.amount_fen for leg in first.entry.legs) == [-1_000_000, 1_000_000]
    assert {leg.loan_id for leg in first.entry.legs} == {LOAN}  # the legs take the entry's loan

    replay = posting(container, "drawdown:loan:7", list(reversed(drawdown())))  # order does not matter
    assert not replay.created and replay.entry.id == first.entry.id
    assert count_entries(container) == 1


def test_a_key_reused_for_different_legs_is_refused_and_changes_nothing(container):
    posting(container, "drawdown:loan:7", drawdown(1_000_000))
    assert error_code(lambda: posting(container, "drawdown:loan:7", drawdown(999_999))) == (
        "LEDGER_IDEMPOTENCY_KEY_REUSED"
    )
    assert error_code(lambda: posting(container, "drawdown:loan:7", drawdown(), kind="repayment")) == (
        "LEDGER_IDEMPOTENCY_KEY_REUSED"
    )
    assert error_code(lambda: posting(container, "drawdown:loan:7", drawdown(), loan_id=8)) == (
        "LEDGER_IDEMPOTENCY_KEY_REUSED"
    )
    assert count_entries(container) == 1


def test_invalid_legs_never_reach_the_database(container):
    assert error_code(lambda: posting(container, "bad", [Leg(Account.CASH, 5), Leg(Account.SUSPENSE, -5)])) == (
        "LEDGER_CHANNEL_REQUIRED"
    )
    assert error_code(lambda: posting(container, "bad", drawdown()[:1])) == "LEDGER_TOO_FEW_LEGS"
    assert count_entries(container) == 0


def test_a_posting_joins_the_callers_transaction(container):
    with pytest.raises(RuntimeError), container.db.transaction() as session:
        post(session, kind="drawdown", idempotency_key="d", business_date=DAY, legs=drawdown(),
             now=container.clock.now(), loan_id=LOAN)
        raise RuntimeError("the payout failed after the posting")
    assert count_entries(container) == 0


def test_a_loan_from_drawdown_to_repayment_keeps_its_sub_ledger_to_the_fen(container):
    """10,000 yuan drawn, paid out through the sandbox channel, first installment due and repaid with
    20 yuan too much."""
    posting(container, "drawdown:7", drawdown(1_000_000))
    posting(container, "payout:7", [Leg(Account.PAYOUT_IN_TRANSIT, 1_000_000),
                                    Leg(Account.CASH, -1_000_000, channel=CHANNEL)], kind="payout_settled")
    posting(container, "due:7:1", [
        Leg(Account.INTEREST_RECEIVABLE, 15_000), Leg(Account.INTEREST_INCOME, -15_000),
        Leg(Account.FEE_RECEIVABLE, 3_000), Leg(Account.FEE_INCOME, -3_000),
    ], kind="installment_due")
    posting(container, "repay:7:1", [
        Leg(Account.CASH, 873_800, channel=CHANNEL),
        Leg(Account.INTEREST_RECEIVABLE, -15_000), Leg(Account.FEE_RECEIVABLE, -3_000),
        Leg(Account.PRINCIPAL_RECEIVABLE, -853_800), Leg(Account.OVERPAYMENT_LIABILITY, -2_000),
    ], kind="repayment")
    with container.db.transaction() as session:
        balances = loan_balances(session, LOAN)
        sub = loan_subledger(session, LOAN)
        book = account_balances(session)
        history = [entry.kind for entry in loan_entries(session, LOAN)]
    assert balances[Account.PRINCIPAL_RECEIVABLE] == 146_200
    assert balances[Account.INTEREST_RECEIVABLE] == 0 and balances[Account.INTEREST_INCOME] == -15_000
    assert (sub.principal_fen, sub.interest_fen, sub.fee_fen, sub.penalty_fen, sub.overpayment_fen) == (
        146_200, 0, 0, 0, 2_000
    )
    assert book[(Account.CASH, CHANNEL)] == -126_200
    assert sum(book.values()) == 0
    assert history == ["drawdown", "payout_settled", "installment_due", "repayment"]


# ---------------------------------------------------------------------------------------------- reversals


def test_a_reversal_negates_the_entry_and_cannot_be_repeated(container):
    original = posting(container, "repay:7:1", [Leg(Account.CASH, 50_000, channel=CHANNEL),
                                                Leg(Account.PRINCIPAL_RECEIVABLE, -50_000)], kind="repayment")
    undone = reversing(container, original.entry.id, "bounce:7:1")
    assert undone.created and undone.entry.kind == "reversal"
    assert undone.entry.reverses_entry_id == original.entry.id and undone.entry.loan_id == LOAN
    assert sorted((leg.account, leg.amount_fen, leg.channel) for leg in undone.entry.legs) == [
        ("cash", -50_000, CHANNEL), ("principal_receivable", 50_000, None),
    ]
    with container.db.transaction() as session:
        assert set(loan_balances(session, LOAN).values()) == {0}

    assert not reversing(container, original.entry.id, "bounce:7:1").created  # a replay
    with pytest.raises(DomainError) as twice:
        reversing(container, original.entry.id, "bounce:7:1:again")
    assert twice.value.code == "LEDGER_ALREADY_REVERSED"
    assert twice.value.params == {"entry_id": original.entry.id, "reversal_id": undone.entry.id}
    assert error_code(lambda: reversing(container, undone.entry.id, "undo-the-undo")) == (
        "LEDGER_REVERSAL_NOT_REVERSIBLE"
    )
    assert error_code(lambda: reversing(container, 999_999, "nothing")) == "LEDGER_ENTRY_NOT_FOUND"
    assert error_code(lambda: reversing(container, original.entry.id, "repay:7:1")) == (
        "LEDGER_IDEMPOTENCY_KEY_REUSED"  # the key of an ordinary posting
    )
    assert count_entries(container) == 2


def test_the_trial_balance_stays_balanced_after_many_postings(container):
    rng = random.Random(20261122)
    accounts = list(Account)
    with container.db.transaction() as session:
        posted = []
        for number in range(300):
            amounts = [rng.randint(1, 10**9) * rng.choice((1, -1)) for _ in range(rng.randint(1, 5))]
            amounts += [-sum(amounts)] if sum(amounts) else [1, -1]
            legs = []
            for amount in amounts:
                account = rng.choice(accounts)
                legs.append(Leg(account, amount, loan_id=rng.randint(1, 20),
                                channel=rng.choice(("sandbox", "icbc")) if account is Account.CASH else None))
            posted.append(post(session, kind="test", idempotency_key=f"k{number}", business_date=DAY, legs=legs,
                               now=container.clock.now()).entry.id)
        for entry_id in rng.sample(posted, 30):
            reverse(session, entry_id=entry_id, idempotency_key=f"r{entry_id}", business_date=DAY,
                    now=container.clock.now())
    with container.db.transaction() as session:
        balance = trial_balance(session)
        findings = check_book(session)
        book = account_balances(session)
    assert balance.entries == 330 and balance.balanced and balance.total_debit_fen > 0
    assert sum(row.balance_fen for row in balance.rows) == 0 == sum(book.values())
    assert findings == []


# ------------------------------------------------------------------------------ the database's own rules


INSERT_LEG = text(
    "INSERT INTO journal_legs (entry_id, account, channel, loan_id, amount_fen) "
    "VALUES (:entry_id, :account, :channel, NULL, :amount_fen)"
)
INSERT_ENTRY = text(
    "INSERT INTO journal_entries (id, kind, idempotency_key, business_date, posted_at, loan_id, reverses_entry_id, "
    "memo) VALUES (:id, 'raw', :key, :business_date, :posted_at, NULL, :reverses, '')"
).bindparams(bindparam("posted_at", type_=UTCDateTime()))


def raw_legs(conn, entry_id: int, *legs: tuple[str, int]) -> None:
    for account, amount in legs:
        conn.execute(INSERT_LEG, {"entry_id": entry_id, "account": account, "amount_fen": amount,
                                  "channel": CHANNEL if account == "cash" else None})


def raw_header(conn, container, entry_id: int, *, reverses: int | None = None) -> None:
    conn.execute(INSERT_ENTRY, {"id": entry_id, "key": f"raw:{entry_id}", "business_date": DAY,
                                "posted_at": container.clock.now(), "reverses": reverses})


def raw_entry(container, entry_id: int, *legs: tuple[str, int], reverses: int | None = None) -> None:
    """Write an entry by raw SQL in its own transaction, bypassing the service."""
    with container.db.engine.begin() as conn:
        raw_legs(conn, entry_id, *legs)
        raw_header(conn, container, entry_id, reverses=reverses)


def test_the_database_accepts_a_balanced_entry_written_by_raw_sql(container):
    raw_entry(container, 100, ("cash", 700), ("suspense", -700))
    with container.db.transaction() as session:
        assert check_book(session) == []
        assert trial_balance(session).total_debit_fen == 700


@pytest.mark.parametrize(
    "legs",
    [
        (("principal_receivable", 1_000_000), ("payout_in_transit", -999_999)),  # off by a fen
        (("suspense", 500),),  # one leg
        (),  # a header alone
    ],
    ids=["unbalanced", "one-leg", "no-legs"],
)
def test_the_database_refuses_an_unbalanced_entry_written_by_raw_sql(container, legs):
    # SQLite refuses at the header's INSERT, PostgreSQL at COMMIT (its check is a deferred trigger).
    with pytest.raises(IntegrityError, match="at least two legs summing to zero"):
        raw_entry(container, 100, *legs)
    assert count_entries(container) == 0


def test_the_database_refuses_legs_left_without_an_entry_at_commit(container):
    with pytest.raises(IntegrityError), container.db.engine.begin() as conn:
        raw_legs(conn, 100, ("suspense", 500), ("suspense", -500))
        # Accepted for now (the header may follow); the deferred foreign key fails the COMMIT.
        assert conn.execute(text("SELECT count(*) FROM journal_legs")).scalar_one() == 2
    with container.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(JournalLeg)) == 0


def test_a_posted_entry_cannot_gain_legs_even_balanced_ones(container):
    entry_id = posting(container, "drawdown:7", drawdown()).entry.id
    with pytest.raises(IntegrityError, match="already posted"), container.db.engine.begin() as conn:
        raw_legs(conn, entry_id, ("suspense", 100), ("suspense", -100))
    # Header first, then its legs in the same transaction, is refused too: the header seals the entry.
    with pytest.raises(IntegrityError), container.db.engine.begin() as conn:
        raw_header(conn, container, 200)
        raw_legs(conn, 200, ("suspense", 100), ("suspense", -100))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_legs SET amount_fen = amount_fen * 2",
        "UPDATE journal_legs SET account = 'suspense' WHERE account = 'payout_in_transit'",
        "DELETE FROM journal_legs",
        "UPDATE journal_entries SET memo = 'edited'",
        "UPDATE journal_entries SET business_date = '2020-01-01'",
        "DELETE FROM journal_entries",
    ],
)
def test_posted_entries_and_legs_cannot_be_updated_or_deleted(container, statement):
    posting(container, "drawdown:7", drawdown())
    with pytest.raises(IntegrityError, match="append-only"), container.db.engine.begin() as conn:
        conn.execute(text(statement))
    with container.db.transaction() as session:
        assert loan_balances(session, LOAN) == {Account.PRINCIPAL_RECEIVABLE: 1_000_000,
                                                Account.PAYOUT_IN_TRANSIT: -1_000_000}


def test_an_entry_loaded_through_the_orm_cannot_be_edited_either(container):
    entry_id = posting(container, "drawdown:7", drawdown()).entry.id
    with pytest.raises(IntegrityError, match="append-only"), container.db.transaction() as session:
        session.get(JournalEntry, entry_id).memo = "quietly edited"


def test_emptying_the_tables_is_refused(container, backend):
    posting(container, "drawdown:7", drawdown())
    # PostgreSQL's TRUNCATE skips row triggers, so it has its own; SQLite empties tables with DELETE.
    statement = "TRUNCATE journal_legs, journal_entries" if backend == "postgresql" else "DELETE FROM journal_legs"
    with pytest.raises(IntegrityError, match="append-only"), container.db.engine.begin() as conn:
        conn.execute(text(statement))
    assert count_entries(container) == 1


# --------------------------------------------------------------------------------------- the book check


def _drop_balance_triggers(container, backend) -> None:
    """Simulate a book damaged behind the database's back (a doctored restore): drop the guards."""
    names = ["journal_entries_balanced", "journal_legs_sealed"]
    if backend == "postgresql":
        names.append("journal_legs_balanced")
    with container.db.engine.begin() as conn:
        for name in names:
            table = "journal_legs" if name.startswith("journal_legs") else "journal_entries"
            conn.execute(text(f"DROP TRIGGER {name}" + (f" ON {table}" if backend == "postgresql" else "")))


def test_the_book_check_names_every_kind_of_damage(container, backend):
    repayment = posting(container, "repay:7", [Leg(Account.CASH, 900, channel=CHANNEL),
                                               Leg(Account.PRINCIPAL_RECEIVABLE, -900)]).entry.id
    # Balanced, so the database lets them in, but not the negation of what they claim to reverse.
    raw_entry(container, 50, ("cash", -800), ("principal_receivable", 800), reverses=repayment)
    raw_entry(container, 51, ("cash", 800), ("principal_receivable", -800), reverses=50)  # a reversal reversed
    _drop_balance_triggers(container, backend)
    raw_entry(container, 60, ("suspense", 300), ("loans_to_friends", -200))
    raw_entry(container, 61, ("suspense", 300))
    with container.db.transaction() as session:
        findings = {(finding.code, finding.entry_id) for finding in check_book(session)}
    assert findings == {
        ("reversal_mismatch", 50),
        ("bad_reversal_link", 51),
        ("unbalanced", 60),
        ("unknown_account", 60),
        ("too_few_legs", 61),
        ("unbalanced", 61),
    }


def test_a_leg_written_without_its_entry_is_refused_or_reported(container, backend):
    if backend == "postgresql":
        # The foreign key cannot be switched off per connection there; the rule is the same.
        with pytest.raises(IntegrityError), container.db.engine.begin() as conn:
            raw_legs(conn, 70, ("suspense", 5))
        return
    import sqlite3

    raw = sqlite3.connect(container.db.url.split("///", 1)[1])  # foreign keys off, as the sqlite3 shell
    raw.execute("INSERT INTO journal_legs (entry_id, account, amount_fen) VALUES (70, 'suspense', 5)")
    raw.commit()
    raw.close()
    with container.db.transaction() as session:
        assert [(f.code, f.entry_id) for f in check_book(session)] == [("legs_without_entry", 70)]


# ------------------------------------------------------------------------------------------------ races


def _wait_until_blocked(container, backend) -> None:
    """Give the second writer time to reach its lock: on PostgreSQL, until the server shows it waiting."""
    if backend != "postgresql":
        time.sleep(0.3)  # SQLite: it waits at BEGIN IMMEDIATE for the first writer's lock
        return
    deadline = time.monotonic() + 10
    with container.db.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )).scalar_one()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the second writer never blocked")


def _in_thread(target) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = target()
        except Exception as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_two_transactions_posting_one_key_leave_one_entry(container, backend, monkeypatch):
    lookups: list[str] = []
    real_lookup = service._entry_by_key
    monkeypatch.setattr(service, "_entry_by_key", lambda s, key: lookups.append(key) or real_lookup(s, key))

    first = Session(container.db.engine)
    first.begin()
    won_id = post(first, kind="drawdown", idempotency_key="drawdown:7", business_date=DAY, legs=drawdown(),
                  now=container.clock.now(), loan_id=LOAN).entry.id

    def second_writer():
        with container.db.transaction() as session:
            result = post(session, kind="drawdown", idempotency_key="drawdown:7", business_date=DAY,
                          legs=drawdown(), now=container.clock.now(), loan_id=LOAN)
            # Its transaction is still usable after losing the race (only the savepoint rolled back).
            post(session, kind="fee", idempotency_key="fee:7", business_date=DAY, now=container.clock.now(),
                 legs=[Leg(Account.FEE_RECEIVABLE, 100), Leg(Account.FEE_INCOME, -100)], loan_id=LOAN)
            return result.created, result.entry.id

    thread, outcome = _in_thread(second_writer)
    _wait_until_blocked(container, backend)
    first.commit()
    first.close()
    thread.join(30)
    assert outcome == {"result": (False, won_id)}
    assert count_entries(container) == 2
    if backend == "postgresql":
        # Lookup before inserting, and again after the unique violation: the savepoint path ran.
        assert lookups.count("drawdown:7") == 3  # the first writer's one, then the second's two


def test_two_transactions_reversing_one_entry_reverse_it_once(container, backend):
    entry_id = posting(container, "drawdown:7", drawdown()).entry.id
    first = Session(container.db.engine)
    first.begin()
    reverse(first, entry_id=entry_id, idempotency_key="cancel:a", business_date=DAY, now=container.clock.now())
    thread, outcome = _in_thread(lambda: reversing(container, entry_id, "cancel:b"))
    _wait_until_blocked(container, backend)
    first.commit()
    first.close()
    thread.join(30)
    assert isinstance(outcome.get("error"), DomainError)
    assert outcome["error"].code == "LEDGER_ALREADY_REVERSED"
    assert count_entries(container) == 2


def test_many_threads_posting_one_key_leave_one_entry(container):
    barrier = threading.Barrier(6)

    def writer():
        barrier.wait()
        return posting(container, "payout:7", [Leg(Account.PAYOUT_IN_TRANSIT, 5_000),
                                               Leg(Account.CASH, -5_000, channel=CHANNEL)]).entry.id

    runs = [_in_thread(writer) for _ in range(6)]
    for thread, _ in runs:
        thread.join(60)
    ids = {outcome.get("result", outcome.get("error")) for _, outcome in runs}
    assert len(ids) == 1 and isinstance(next(iter(ids)), int), ids
    assert count_entries(container) == 1


# --------------------------------------------------------------------------------------- CLI & migration


def test_trial_balance_and_check_commands(container, settings):
    posting(container, "drawdown:7", drawdown())
    posting(container, "payout:7", [Leg(Account.PAYOUT_IN_TRANSIT, 1_000_000),
                                    Leg(Account.CASH, -1_000_000, channel=CHANNEL)], kind="payout_settled")
    table = run_cli(settings, "ledger", "trial-balance")
    assert table.exit_code == 0, table.output
    assert "应收本金" in table.output and "10000.00" in table.output and "balanced" in table.output

    as_json = run_cli(settings, "ledger", "trial-balance", "--json")
    assert as_json.exit_code == 0, as_json.output
    import json

    report = json.loads(as_json.output)
    assert report["balanced"] and report["entries"] == 2
    assert report["total_debit_fen"] == report["total_credit_fen"] == 2_000_000
    assert {(row["account"], row["channel"], row["balance_fen"]) for row in report["rows"]} == {
        ("principal_receivable", None, 1_000_000), ("payout_in_transit", None, 0), ("cash", CHANNEL, -1_000_000),
    }

    sound = run_cli(settings, "ledger", "check")
    assert sound.exit_code == 0, sound.output
    assert "ledger sound: 2 entries, 4 legs" in sound.output


def test_check_command_fails_on_a_damaged_book(container, settings, backend):
    _drop_balance_triggers(container, backend)
    raw_entry(container, 80, ("suspense", 300), ("cash", -299))
    result = run_cli(settings, "ledger", "check")
    assert result.exit_code == 1
    assert "unbalanced" in result.output and "entry 80" in result.output
    assert run_cli(settings, "ledger", "trial-balance").exit_code == 1


def test_the_ledger_migration_rolls_back_and_forward(database_url):
    config = alembic_config(database_url)
    command.downgrade(config, "0002")
    command.upgrade(config, "head")
