"""``miaodai customers``: upkeep of the staff's customer search (backoffice.search)."""

from __future__ import annotations

import json

import typer

from miaodai.identity.models import KYC_NAME_FIELD
from miaodai.identity.read_models import missing_name_index, name_index, set_name_index

customers_app = typer.Typer(help="The staff's customer search (客户查询).", no_args_is_help=True)


@customers_app.command("backfill-index")
def backfill_index(batch: int = typer.Option(500, min=1, max=10_000, help="Identities per transaction.")) -> None:
    """Give identities verified before migration 0016 the blind index of their name, so staff find them by name.

    Decrypts each such name once, in memory, to compute its keyed HMAC (the migration cannot: it runs without
    the keyring); nothing is printed or logged but the count. Safe to run again or alongside the service: only
    rows still without an index are written. Prints one JSON line: {"indexed": N}."""
    from miaodai.container import build_container
    from miaodai.core.settings import get_settings

    container = build_container(get_settings())
    vault, done, after = container.vault, 0, 0
    while True:
        with container.db.transaction() as session:
            rows = missing_name_index(session, after_id=after, limit=batch)
            for identity_id, name_enc in rows:
                set_name_index(session, identity_id, name_index(vault, vault.decrypt(name_enc, KYC_NAME_FIELD)))
        done += len(rows)
        if len(rows) < batch:
            break
        after = rows[-1][0]
    container.db.dispose()
    typer.echo(json.dumps({"indexed": done}))
