"""``miaodai payments``: move payment orders along from the command line (the service's background
worker does the same every second)."""

from __future__ import annotations

import json

import typer

payments_app = typer.Typer(help="Payment orders at the channel: send what is stored, ask about what is pending.",
                           no_args_is_help=True)


@payments_app.command("recover")
def recover_command() -> None:
    """One pass: send stored orders, query pending ones that are due, start due auto-debits, cancel
    unbound wallets' agreements at the wallet, deliver due sandbox callbacks."""
    from miaodai.container import build_container
    from miaodai.core.settings import get_settings
    from miaodai.payments.worker import one_pass

    container = build_container(get_settings())
    try:
        typer.echo(json.dumps(one_pass(container)))
    finally:
        container.db.dispose()


@payments_app.command("auto-debit")
def auto_debit_command() -> None:
    """Start today's auto-debits that are due (the end-of-day batch left them as instructions); the
    results arrive by callback or the next recover pass."""
    from miaodai.container import build_container
    from miaodai.core.settings import get_settings
    from miaodai.payments.collections import run_auto_debit

    container = build_container(get_settings())
    try:
        typer.echo(json.dumps(run_auto_debit(container)))
    finally:
        container.db.dispose()
