"""The ``miaodai`` command. Every subcommand has ``--help``."""

from __future__ import annotations

import os
from datetime import timedelta

import typer
from rich.console import Console

from miaodai.commands.credit import credit_app, monitor_command, outcomes_command, rules_app
from miaodai.commands.customers import customers_app
from miaodai.commands.eod import eod_app
from miaodai.commands.loans import contract_app, loan_app, quote_command
from miaodai.commands.payments import payments_app
from miaodai.commands.recon import recon_app
from miaodai.core.settings import Settings, get_settings
from miaodai.credit.model_cli import model_app
from miaodai.ledger.cli import add_subledger_check, ledger_app
from miaodai.loans.accounting import subledger_findings

app = typer.Typer(help="Miaodai (秒贷) lending service.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
keys_app = typer.Typer(
    help="Data-encryption keys: init, status, rotate (online re-encryption), retire. "
    "The blind-index key is not rotated (every *_bidx lookup value would have to be recomputed at once).",
    no_args_is_help=True,
)
demo_app = typer.Typer(help="Demo data for a new install.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(demo_app, name="demo")
staff_app = typer.Typer(help="Staff accounts of the console.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")
sandbox_app = typer.Typer(help="Sandbox providers (only with MIAODAI_SANDBOX=true).", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
add_subledger_check(subledger_findings)  # `miaodai ledger check` proves each loan's sub-ledger too
app.add_typer(ledger_app, name="ledger")
app.add_typer(contract_app, name="contract")
app.add_typer(loan_app, name="loan")
app.add_typer(eod_app, name="eod")
app.add_typer(credit_app, name="credit")
app.add_typer(rules_app, name="rules")
app.add_typer(model_app, name="model")
app.add_typer(payments_app, name="payments")
app.add_typer(recon_app, name="recon")
app.add_typer(customers_app, name="customers")
model_app.command("monitor")(monitor_command)
model_app.command("outcomes")(outcomes_command)

console = Console()
err_console = Console(stderr=True)

app.command("quote")(quote_command)


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

    settings = _settings_served_at(host, port)
    configure_logging(settings.log_level, json=settings.log_json)
    console.print(f"[bold]Miaodai[/] listening on http://{host}:{port}  ·  API docs: http://{host}:{port}/docs")
    console.print(f"database: {settings.database_url.split('@')[-1]}  ·  sandbox providers: {settings.sandbox}"
                  f"  ·  payment callbacks to {settings.public_base_url}")
    uvicorn.run(
        "miaodai.app:asgi", factory=True, host=host, port=port, workers=workers,
        log_config=None, access_log=False, proxy_headers=settings.trust_forwarded_for,
    )


def _settings_served_at(host: str, port: int) -> Settings:
    """The settings, with the payment channels' callback address defaulting to where this server listens.

    Unless MIAODAI_PUBLIC_BASE_URL is set (environment or .env), the sandbox channel would otherwise post
    its callbacks to port 8000 whatever ``--port`` said. The address goes into the environment, which the
    app factory reads again in this process and every ``--workers`` process inherits.
    """
    settings = get_settings()
    if "public_base_url" in settings.model_fields_set:
        return settings
    reachable = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104 - not a bind
    if ":" in reachable:
        reachable = f"[{reachable}]"
    os.environ["MIAODAI_PUBLIC_BASE_URL"] = f"http://{reachable}:{port}"
    get_settings.cache_clear()
    return get_settings()


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


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]{message}[/]")
    return typer.Exit(1)


@keys_app.command("init")
def keys_init() -> None:
    """Create the keyring file (one data key and the blind-index key, mode 0600) if it is absent."""
    from miaodai.keys import init_keyring

    path = get_settings().keyring_file
    created, keyring = init_keyring(path)
    if created:
        console.print(f"created keyring {path} (active key {keyring.active_key_id}); back it up now, apart "
                      "from database backups: without it the encrypted data cannot be read")
    else:
        console.print(f"keyring {path} already exists (active key {keyring.active_key_id}); nothing changed")


@keys_app.command("status")
def keys_status() -> None:
    """Show the active key and how many stored values each key encrypts, per encrypted column."""
    from rich.table import Table

    from miaodai.core.crypto import KeyringError, load_keyring
    from miaodai.core.db import Database
    from miaodai.keys import UNKNOWN_KEY, key_usage, totals_by_key

    settings = get_settings()
    try:
        keyring = load_keyring(settings.keyring_file, create=False)
    except KeyringError as exc:
        raise _fail(str(exc)) from None
    key_ids = sorted(keyring.data_keys, key=lambda k: k != keyring.active_key_id)
    db = Database(settings.database_url)
    usage = key_usage(db, key_ids)
    db.dispose()
    table = Table(title=f"keyring {settings.keyring_file} · active key {keyring.active_key_id}")
    table.add_column("column")
    for kid in [*key_ids, UNKNOWN_KEY]:
        table.add_column(f"{kid} (active)" if kid == keyring.active_key_id else kid, justify="right")
    for label, per_key in usage.items():
        table.add_row(label, *(str(per_key[kid]) for kid in [*key_ids, UNKNOWN_KEY]))
    totals = totals_by_key(usage)
    table.add_row("[bold]total[/]", *(f"[bold]{totals[kid]}[/]" for kid in [*key_ids, UNKNOWN_KEY]))
    console.print(table)


@keys_app.command(
    "rotate",
    help="Add a new data key, make it active (the keyring file is replaced atomically; old keys stay so "
    "running servers keep decrypting), then re-encrypt every encrypted column in small transactions "
    "while the service runs. The blind-index key is NOT rotated: every *_bidx lookup value would have "
    "to be recomputed and switched at once, which needs a migration, not an online rotation.",
)
def keys_rotate(
    batch_size: int = typer.Option(200, min=1, max=10_000, help="Rows per transaction."),
    resume: bool = typer.Option(False, help="No new key: finish re-encrypting values not yet under the active key."),
) -> None:
    from miaodai.core.audit import AuditLog
    from miaodai.core.clock import SystemClock
    from miaodai.core.crypto import KeyringError, Vault, load_keyring
    from miaodai.core.db import Database
    from miaodai.keys import KeyManagementError, rewrap, rotate

    settings = get_settings()
    db, audit = Database(settings.database_url), AuditLog(SystemClock())

    def progress(label: str, done: int) -> None:
        console.print(f"  {label}: {done} re-encrypted", highlight=False)

    try:
        if resume:
            keyring = load_keyring(settings.keyring_file, create=False)
            vault = Vault(keyring, settings.keyring_file)
            report = rewrap(vault, db, audit, batch_size=batch_size, progress=progress)
        else:
            report = rotate(settings.keyring_file, db, audit, batch_size=batch_size, progress=progress)
    except (KeyringError, KeyManagementError) as exc:
        raise _fail(str(exc)) from None
    finally:
        db.dispose()
    console.print(f"active key {report.active_key_id}; re-encrypted {sum(report.rewrapped.values())} values")
    if report.unreadable:
        raise _fail(f"values that could not be decrypted (left unchanged): {report.unreadable}")
    console.print("back up the keyring file now; retire old keys with `miaodai keys retire KEY_ID`")


@keys_app.command("retire")
def keys_retire(key_id: str = typer.Argument(..., help="The key id to remove, e.g. k1a2b3c4d.")) -> None:
    """Remove a data key from the keyring; refused while it is active or any stored value uses it."""
    from miaodai.core.audit import AuditLog
    from miaodai.core.clock import SystemClock
    from miaodai.core.crypto import KeyringError
    from miaodai.core.db import Database
    from miaodai.keys import KeyManagementError, retire

    settings = get_settings()
    db = Database(settings.database_url)
    try:
        keyring = retire(settings.keyring_file, db, AuditLog(SystemClock()), key_id)
    except (KeyManagementError, KeyringError) as exc:
        raise _fail(str(exc)) from None
    finally:
        db.dispose()
    console.print(f"retired {key_id}; keys left: {', '.join(sorted(keyring.data_keys))}")


@staff_app.command("create")
def staff_create(
    username: str = typer.Argument(..., help="Login name: 3-64 lowercase letters, digits, '.', '_' or '-'."),
    role: list[str] = typer.Option(..., "--role", "-r", help="A role to grant (repeatable): admin, auditor, ..."),
    display_name: str = typer.Option("", help="Name shown in the console (defaults to the username)."),
) -> None:
    """Create a staff account; its generated password and TOTP secret are printed once, never stored."""
    from miaodai.cli_render import credentials_panel
    from miaodai.core.errors import DomainError
    from miaodai.identity.staff_service import add_staff

    container = _container()
    try:
        with container.db.transaction() as session:
            created = add_staff(session, container, username=username, display_name=display_name or username,
                                roles=role, actor="system:cli")
    except DomainError as exc:
        raise _fail(f"{exc.code}: {exc.message_en} {exc.problem().get('action', {}).get('en', '')}") from None
    finally:
        container.db.dispose()
    console.print(credentials_panel(created, f"Staff account {created.username}"))


@demo_app.command("seed")
def demo_seed(
    portfolio: bool = typer.Option(True, "--portfolio/--no-portfolio",
                                   help="Also replay a year of demo loans (minutes; prints its CPU seconds)."),
    database: str | None = typer.Option(None, help="A database URL instead of MIAODAI_DATABASE_URL."),
) -> None:
    """Create a demo loan product, one demo staff account per role (credentials printed once) and three
    onboarded borrowers, then a twelve-month demo portfolio made through the real services on a test clock.
    Safe to run again: a second run changes nothing and says so."""
    from miaodai.container import build_container
    from miaodai.demo import print_report, seed_demo
    from miaodai.demo_portfolio import print_portfolio, seed_portfolio

    settings = get_settings()
    if database is not None:
        settings = settings.model_copy(update={"database_url": database})
    container = build_container(settings)
    try:
        print_report(console, seed_demo(container, every_role=True))
        if portfolio:
            with console.status("replaying a year of demo loans (the end-of-day batch closes every date)…"):
                replayed = seed_portfolio(container)
            print_portfolio(console, replayed)
    finally:
        container.db.dispose()


@sandbox_app.command("sms")
def sandbox_sms(
    phone: str = typer.Argument(..., help="The mobile number, e.g. 13812345678 or +8613812345678."),
) -> None:
    """Print the sandbox SMS/voice inbox of a number: messages that have arrived, newest first."""
    from miaodai.core.clock import local_display
    from miaodai.core.errors import DomainError
    from miaodai.identity.login_service import parse_phone
    from miaodai.sandbox.sms import read_sandbox_inbox

    if not get_settings().sandbox:
        raise _fail("the sandbox is off (MIAODAI_SANDBOX=false): there is no sandbox inbox")
    try:
        phone_e164 = parse_phone(phone)
    except DomainError as exc:
        raise _fail(f"{exc.code}: {exc.message_en}") from None
    container = _container()
    try:
        messages = read_sandbox_inbox(container.db, container.vault, phone_e164=phone_e164, now=container.clock.now())
    finally:
        container.db.dispose()
    if not messages:
        console.print(f"no messages for {phone_e164}")
    else:
        console.print("arrived (Beijing time)  channel  text", style="bold")
    for message in messages:
        console.print(f"{local_display(message.visible_at)}  {message.channel:<5}  {message.text}",
                      markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    app()
