"""``miaodai recon``: reconcile a payment channel's daily statement (对账单) against our orders."""

from __future__ import annotations

import json
from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

recon_app = typer.Typer(help="Reconciliation 对账: a payment channel's daily statement against our orders.",
                        no_args_is_help=True)

# What each count means, in the order the summary shows them.
MEANINGS = {
    "matched": "the statement and our order agree",
    "resolved": "ours was processing; settled now from the statement or the channel's answer",
    "pending": "still processing at the channel; a later day's statement lists it",
    "missing_ours": "EXCEPTION: money moved under an order number we never sent",
    "missing_channel": "EXCEPTION: our order succeeded that day; the statement does not list it",
    "amount_mismatch": "EXCEPTION: the statement's amount or direction differs from ours",
    "status_mismatch": "EXCEPTION: both final, and they disagree",
}


@recon_app.command("run")
def recon_run(
    channel: str = typer.Option(..., "--channel", help="The payment channel's name, e.g. sandbox."),
    day: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"],
                                 help="The business day (Beijing time), YYYY-MM-DD: usually yesterday."),
) -> None:
    """Match the channel's statement for a day against our orders, settle orders whose outcome we did not
    know, and queue every disagreement for staff. The same statement again changes nothing. The last line
    printed is JSON. Exit code 0: no open exceptions for the channel and day; 1: open exceptions wait for
    staff (GET /v1/staff/recon/exceptions); 2: it could not run (bad option, unknown channel, statement
    unavailable or malformed) and nothing was recorded."""
    from miaodai.container import build_container
    from miaodai.core.errors import DomainError
    from miaodai.core.settings import get_settings
    from miaodai.payments import recon

    container = build_container(get_settings())
    try:
        result = recon.run(container, channel, day.date(), actor="system:cli")
    except DomainError as error:
        err_console.print(f"[red]{error.code}[/]: {error.message_zh}\n{error.message_en}", highlight=False)
        raise typer.Exit(2) from None
    finally:
        container.db.dispose()
    run = result.run
    table = Table(title=f"对账 reconciliation · {run.channel} · {run.business_date}")
    for column in ("", "orders", "meaning"):
        table.add_column(column)
    for key, meaning in MEANINGS.items():
        table.add_row(key, str(result.counts.get(key, 0)), meaning)
    console.print(table)
    if result.already_recorded:
        console.print(f"this statement was reconciled before (run {run.id}): nothing changed")
    console.print(f"open exceptions for {run.channel} on {run.business_date}: {result.open_exceptions}",
                  highlight=False)
    typer.echo(json.dumps({
        "run_id": run.id, "channel": run.channel, "business_date": run.business_date.isoformat(),
        "file_sha256": run.file_sha256, "already_recorded": result.already_recorded, "counts": result.counts,
        "new_exceptions": result.new_exceptions, "open_exceptions": result.open_exceptions,
    }, sort_keys=True))
    raise typer.Exit(1 if result.open_exceptions else 0)
