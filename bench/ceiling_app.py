"""The ceilings our figures are divided by: bare FastAPI JSON, and FastAPI + one INSERT/COMMIT."""

from __future__ import annotations

import os

from fastapi import FastAPI
from sqlalchemy import BigInteger, Column, MetaData, String, Table, insert

from miaodai.core.db import Database

metadata = MetaData()
ceiling_rows = Table(
    "bench_ceiling_rows", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("note", String(32)),
)

app = FastAPI()
_db = Database(os.environ["MIAODAI_DATABASE_URL"]) if os.environ.get("MIAODAI_DATABASE_URL") else None


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/json")
def bare_json() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/insert")
def one_insert() -> dict[str, str]:
    assert _db is not None
    with _db.transaction() as session:
        session.execute(insert(ceiling_rows).values(note="x"))
    return {"status": "ok"}
