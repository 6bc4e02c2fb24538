"""``miaodai eod``: run the end-of-day batch for a date, send its reminders, and show past runs."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

eod_app = typer.Typer(help="End-of-day batch (日终批处理): accrual, due, overdue, penalties, reminders.",
                      no_args_is_help=True)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not a date: {text!r} (YYYY-MM-DD)", param_hint="--date") from None


@eod_app.command("run")
def eod_run(
    day: str = typer.Option(..., "--date", help="The business date to close, YYYY-MM-DD (the day after the last run)."),
    chunk: int = typer.Option(50_000, min=1, help="Loans per transaction."),
    send: bool = typer.Option(True, "--send/--no-send", help="Hand the queued reminders to the SMS provider."),
    as_json: bool = typer.Option(False, "--json", help="Print the run's figures as JSON."),
) -> None:
    """Close a business date. Running a date again changes nothing; a crashed run resumes where it stopped."""
    from miaodai.container import build_container
    from miaodai.core.errors import DomainError
    from miaodai.core.idempotency import purge_expired
    from miaodai.core.settings import get_settings
    from miaodai.identity import counters
    from miaodai.loans.eod import STEPS, run_eod, send_reminders

    business_date = _date(day)
    container = build_container(get_settings())
    columns = (TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, disable=as_json) as bar:
        tasks = {step: bar.add_task(step, total=None) for step in STEPS}

        def progress(step: str, done: int, total: int) -> None:
            bar.update(tasks[step], completed=done, total=max(total, 1) if total else 1)

        try:
            report = run_eod(container, business_date, chunk=chunk, progress=progress)
        except DomainError as error:
            err_console.print(f"[red]{error.code}[/]: {error.message_zh}\n{error.message_en}", highlight=False)
            raise typer.Exit(1) from None
    sent = send_reminders(container, business_date + timedelta(days=1)) if send else None
    # Housekeeping: Idempotency-Keys past their retention (settings.idempotency_ttl_hours, at least 24 h).
    purged = purge_expired(container.db, container.clock.now())
    # ... and the abuse caps' counters whose window ended two days ago (identity/counters.py).
    with container.db.transaction() as session:
        counters_purged = counters.purge_expired(session, container.clock.now())
    figures = {"business_date": business_date.isoformat(), "already_done": report.already_done,
               "resumed_after": report.resumed_after or None, "steps": report.steps,
               "reminders_sent": sent.sent if sent else 0, "reminders_failed": sent.failed if sent else 0,
               "idempotency_keys_purged": purged, "rate_counters_purged": counters_purged}
    if as_json:
        typer.echo(json.dumps(figures, ensure_ascii=False, indent=2))
        return
    if report.already_done:
        console.print(f"{business_date} was closed already; nothing changed.")
    else:
        table = Table(title=f"日终 end of day {business_date}")
        table.add_column("step")
        table.add_column("figures")
        for step, counts in report.steps.items():
            table.add_row(step, ", ".join(f"{k} {v}" for k, v in counts.items()))
        console.print(table)
    if sent:
        console.print(f"reminders sent {sent.sent}, refused by the carrier {sent.failed}")
    console.print(f"expired Idempotency-Keys purged: {purged}")


@eod_app.command("status")
def eod_status(limit: int = typer.Option(10, min=1, help="How many recent runs to show.")) -> None:
    """The latest runs and the book by delinquency bucket (current, M1, M2, M3, M3+)."""
    from sqlalchemy import select

    from miaodai.core.db import Database
    from miaodai.core.settings import get_settings
    from miaodai.loans.eod import book_summary
    from miaodai.loans.models import EodRun

    db = Database(get_settings().database_url)
    try:
        with db.transaction() as session:
            runs = session.scalars(select(EodRun).order_by(EodRun.business_date.desc()).limit(limit)).all()
            table = Table(title="日终运行 end-of-day runs")
            for column in ("date", "status", "last step", "started (Beijing)", "finished"):
                table.add_column(column)
            for run in runs:
                table.add_row(run.business_date.isoformat(), run.status, run.step, _beijing(run.started_at),
                              _beijing(run.finished_at) if run.finished_at else "")
            summary = book_summary(session)
    finally:
        db.dispose()
    console.print(table)
    console.print("在贷 on the book: " + ", ".join(f"{bucket} {n}" for bucket, n in summary.items()))



def _beijing(moment: datetime) -> str:
    from miaodai.core.clock import BUSINESS_TZ

    return moment.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M:%S")
