"""Login and real-name verification request rates on PostgreSQL, beside the machine's ceilings.

Each figure is one JSON line:
  {"bench": "...", "per_second": ..., "ceiling": "...", "ceiling_per_second": ..., "ratio": ...}
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.harness import Client, LoadResult, run_load, serve
from miaodai.core.crypto import Keyring, save_keyring
from miaodai.migrate import upgrade
from miaodai.testing.pgserver import PostgresServer, running_postgres

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))


def emit(name: str, result: LoadResult, ceiling_name: str, ceiling: LoadResult, requests_per_op: int) -> None:
    """One flow's rate beside the ceiling: ``ratio`` compares flows, ``request_ratio`` HTTP requests."""
    requests = result.rate * requests_per_op
    line = {"bench": name, **result.summary(), "http_requests_per_op": requests_per_op,
            "http_requests_per_second": round(requests, 1), "ceiling": ceiling_name,
            "ceiling_per_second": round(ceiling.rate, 1),
            "ratio": round(result.rate / ceiling.rate, 3) if ceiling.rate else None,
            "request_ratio": round(requests / ceiling.rate, 3) if ceiling.rate else None}
    print(json.dumps(line), flush=True)


def pgbench_tps(server: PostgresServer, clients: int = 8) -> float:
    """TPC-B-like pgbench on the same server with ``clients`` connections: the database's own ceiling."""
    server.create_database("pgbench")
    binary = str(server.bindir / "pgbench")
    prefix = ["runuser", "-u", "postgres", "--"] if server.as_root else []
    common = ["-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres"]
    subprocess.run([*prefix, binary, "-i", "-q", "-s", "10", *common, "pgbench"], check=True,
                   capture_output=True, timeout=300)
    load = ["-c", str(clients), "-j", str(min(2, clients)), "-T", str(int(SECONDS))]
    out = subprocess.run([*prefix, binary, *load, *common, "pgbench"], check=True, capture_output=True, text=True,
                         timeout=300).stdout
    for line in out.splitlines():
        if line.startswith("tps"):
            return float(line.split("=")[1].split()[0])
    raise RuntimeError(f"no tps in pgbench output:\n{out}")


def ceiling_env(server: PostgresServer) -> dict[str, str]:
    """A database with the ceiling app's one table, as the ceiling app's environment."""
    from bench.ceiling_app import metadata
    from miaodai.core.db import make_engine

    url = server.create_database("ceiling")
    engine = make_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    return {"MIAODAI_DATABASE_URL": url}


def service_env(url: str, workdir: Path) -> dict[str, str]:
    keyring = workdir / "keyring.json"
    save_keyring(keyring, Keyring.generate())
    return {
        "MIAODAI_DATABASE_URL": url,
        "MIAODAI_KEYRING_FILE": str(keyring),
        "MIAODAI_SANDBOX": "true",
        "MIAODAI_LOG_LEVEL": "WARNING",
        # Each virtual borrower has its own client address (X-Forwarded-For, as behind a proxy on this
        # machine), so the per-IP caps and counts behave as with real traffic rather than one hot address.
        "MIAODAI_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
    }


def client_address(n: int) -> str:
    """A distinct documentation-range address per virtual borrower (only ever a header value)."""
    return f"198.18.{n // 250 % 250}.{n % 250 + 1}"


def phone_for(n: int, base: int) -> str:
    return f"1{base}{n:08d}"


async def login(client: Client, phone: str, device: str) -> str:
    """The whole login: ask for a code, read it from the sandbox inbox, log in (3 requests)."""
    headers = {"X-Device-Id": device, "X-Forwarded-For": client_address(int(device.rsplit("-", 1)[1]))}
    await client.post("/v1/auth/otp", json={"phone": phone, "channel": "sms"}, headers=headers)
    inbox = await client.get(f"/sandbox/sms/{phone}")
    code = inbox["messages"][0]["code"]  # type: ignore[index]
    session = await client.post("/v1/auth/login", json={"phone": phone, "code": code}, headers=headers)
    return session["token"]  # type: ignore[index]


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="miaodai-bench-"))
    try:
        with running_postgres(durable=True) as server:
            print(json.dumps({"bench": "pgbench_tpcb", "per_second": pgbench_tps(server)}), flush=True)
            with serve("bench.ceiling_app:app", ceiling_env(server), workers=WORKERS) as base:
                bare = run_load(base, lambda c, n: c.get("/json"), concurrency=CONCURRENCY, seconds=SECONDS)
                one_insert = run_load(base, lambda c, n: c.post("/insert"), concurrency=CONCURRENCY,
                                      seconds=SECONDS)
            print(json.dumps({"bench": "ceiling_fastapi_json", **bare.summary()}), flush=True)
            print(json.dumps({"bench": "ceiling_fastapi_insert_commit", **one_insert.summary()}), flush=True)

            url = server.create_database("miaodai")
            upgrade(url)
            with serve("miaodai.app:asgi", service_env(url, workdir), workers=WORKERS, factory=True) as base:
                logins = run_load(base, lambda c, n: login(c, phone_for(n, 36), f"bench-device-{n:08d}"),
                                  concurrency=CONCURRENCY, seconds=SECONDS, warmup_seconds=0)
                emit("login_otp_request_and_verify", logins, "ceiling_fastapi_insert_commit", one_insert, 3)
                verifications = run_load(base, lambda c, n: verify(c, n), concurrency=CONCURRENCY,
                                         seconds=SECONDS, warmup_seconds=0)
                emit("onboarding_login_consents_kyc", verifications, "ceiling_fastapi_insert_commit", one_insert, 9)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def verify(client: Client, n: int) -> None:
    """Log in, grant the four consents, submit name + ID (carrier check), pass face liveness."""
    from bench.identities import identity_for

    token = await login(client, phone_for(n, 37), f"bench-kyc-device-{n:08d}")
    headers = {"Authorization": f"Bearer {token}"}
    for kind in ("privacy_policy", "user_agreement", "credit_bureau_query", "carrier_data"):
        await client.post("/v1/consents", json={"kind": kind, "version": "1.0"}, headers=headers)
    name, id_number = identity_for(n)
    await client.post("/v1/kyc/identity", json={"name": name, "id_number": id_number}, headers=headers)
    await client.post("/v1/kyc/face", json={"liveness_token": "sandbox-pass"}, headers=headers)


if __name__ == "__main__":
    main()
