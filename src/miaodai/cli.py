"""The ``miaodai`` command. Every subcommand has ``--help``."""

from __future__ import annotations

from datetime import timedelta

import typer
from rich.console import Console

from miaodai.core.settings import get_settings

app = typer.Typer(help="Miaodai (秒贷) lending service.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")

console = Console()
err_console = Console(stderr=True)


def _container():  # noqa: ANN202 - imported lazily so `--help` stays fast
    from miaodai.container import build_container

    return build_container(get_settings())


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, help="Worker processes (PostgreSQL only; SQLite is one writer)."),
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from miaodai.core.logging import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.log_json)
    console.print(f"[bold]Miaodai[/] listening on http://{host}:{port}  ·  API docs: http://{host}:{port}/docs")
    console.print(f"database: {settings.database_url.split('@')[-1]}  ·  sandbox providers: {settings.sandbox}")
    uvicorn.run(
        "miaodai.app:asgi", factory=True, host=host, port=port, workers=workers,
        log_config=None, access_log=False, proxy_headers=settings.trust_forwarded_for,
    )


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply the migrations (SQLite or PostgreSQL, from MIAODAI_DATABASE_URL)."""
    from miaodai.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url, revision)
    console.print(f"database upgraded to {revision}")


@audit_app.command("seal")
def audit_seal() -> None:
    """Seal committed entries into the chain now (the server does this every half second)."""
    from miaodai.core.audit import seal_pending

    container = _container()
    count = seal_pending(container.db, container.clock)
    console.print(f"sealed {count} entries")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the whole chain. Exit 0 when intact; 1 naming the first bad entry; 2 if entries stay unsealed."""
    from miaodai.core.audit import verify_chain

    container = _container()
    bound = timedelta(seconds=container.settings.audit_unsealed_bound_seconds)
    report = verify_chain(container.db, container.clock, unsealed_bound=bound)
    if report.first_break is not None:
        err_console.print(f"[red]audit chain broken[/] at {report.first_break}")
        err_console.print(f"{report.sealed} entries verified before the break")
        raise typer.Exit(1)
    if report.stale_unsealed:
        err_console.print(
            f"[yellow]{len(report.stale_unsealed)} entries unsealed for longer than {bound.seconds}s[/]; "
            f"first: {report.stale_unsealed[0]} (is the sealer running? `miaodai audit seal`)"
        )
        raise typer.Exit(2)
    console.print(f"[green]audit chain intact[/]: {report.sealed} entries")


if __name__ == "__main__":
    app()
