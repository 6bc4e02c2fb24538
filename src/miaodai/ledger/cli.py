"""``miaodai ledger ...``: the trial balance and the book check, for operators and auditors.

Both read the book in one consistent snapshot (REPEATABLE READ on PostgreSQL; on SQLite the
transaction holds the write lock), so they can run while the service posts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from miaodai.core.db import Database
from miaodai.core.money import Money
from miaodai.core.settings import get_settings
from miaodai.ledger.service import Finding, TrialBalance, check_book, trial_balance

ledger_app = typer.Typer(
    help="The double-entry ledger: trial balance and book checks (debit positive, credit negative).",
    no_args_is_help=True,
)

console = Console()
err_console = Console(stderr=True)

# Checks of sub-ledgers kept by the domains above the ledger (the ledger knows a loan only by its id): each reads
# the book's snapshot and returns its findings. The entry point (miaodai.cli) adds them, so the ledger imports
# no domain that posts to it.
SubledgerCheck = Callable[[Session], Iterable[Finding]]
_subledger_checks: list[SubledgerCheck] = []


def add_subledger_check(check: SubledgerCheck) -> None:
    """Have ``miaodai ledger check`` run ``check`` too (once per check, whatever the calls)."""
    if check not in _subledger_checks:
        _subledger_checks.append(check)


@contextmanager
def _book_snapshot() -> Iterator[Session]:
    db = Database(get_settings().database_url)
    engine = db.engine
    if db.dialect == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    try:
        with Session(engine) as session, session.begin():
            yield session
    finally:
        db.dispose()


def _yuan(fen: int) -> str:
    return Money(fen).to_yuan()


def _table(balance: TrialBalance) -> Table:
    table = Table(title=f"Trial balance 试算平衡表 · {balance.entries} entries, {balance.legs} legs")
    table.add_column("account 科目")
    table.add_column("channel")
    table.add_column("debits 借方", justify="right")
    table.add_column("credits 贷方", justify="right")
    table.add_column("balance 余额", justify="right")
    for row in balance.rows:
        side = "Dr" if row.balance_fen > 0 else "Cr" if row.balance_fen < 0 else ""
        table.add_row(
            f"{row.account.name_zh} {row.account.value}", row.channel or "", _yuan(row.debit_fen),
            _yuan(row.credit_fen), f"{_yuan(abs(row.balance_fen))} {side}".strip(),
        )
    table.add_section()
    table.add_row("[bold]total 合计[/]", "", f"[bold]{_yuan(balance.total_debit_fen)}[/]",
                  f"[bold]{_yuan(balance.total_credit_fen)}[/]", "")
    return table


@ledger_app.command("trial-balance")
def trial_balance_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON (amounts in fen)."),
) -> None:
    """Debit and credit totals per account (cash per channel). Exit 0 when debits equal credits, 1 if not."""
    with _book_snapshot() as session:
        balance = trial_balance(session)
    if as_json:
        typer.echo(json.dumps(balance.as_json(), ensure_ascii=False, indent=2))
    else:
        console.print(_table(balance))
        if balance.balanced:
            console.print(f"[green]balanced[/]: debits = credits = {_yuan(balance.total_debit_fen)}")
    if not balance.balanced:
        err_console.print(f"[red]NOT balanced[/]: debits {_yuan(balance.total_debit_fen)} ≠ credits "
                          f"{_yuan(balance.total_credit_fen)}; run `miaodai ledger check` to find the entries")
        raise typer.Exit(1)


@ledger_app.command("check")
def check_command() -> None:
    """Prove the book: every entry has two or more legs summing to zero, every leg has its entry and a known
    account, reversal links hold, nothing is reversed twice, each reversal exactly negates its original, and
    every loan's sub-ledger equals what its installments say is owed. Exit 0 when sound; 1 with every finding."""
    with _book_snapshot() as session:
        findings: list[Finding] = check_book(session)
        for subledger_check in _subledger_checks:  # the loans' sub-ledgers (loans.accounting), added by miaodai.cli
            findings.extend(subledger_check(session))
        balance = trial_balance(session)
    if findings:
        for finding in findings:
            err_console.print(f"[red]{finding.code}[/]  {finding.message}", highlight=False)
        err_console.print(f"{len(findings)} finding(s) in {balance.entries} entries")
        raise typer.Exit(1)
    console.print(f"[green]ledger sound[/]: {balance.entries} entries, {balance.legs} legs, "
                  f"debits = credits = {_yuan(balance.total_debit_fen)}", highlight=False)
