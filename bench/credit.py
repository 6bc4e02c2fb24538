"""Credit decisions: in-process (features + rules + score) and over HTTP on PostgreSQL.

* ``credit_decision_in_process``: the pure decision for synthetic applicants (their sandbox bureau
  reports built beforehand — outside calls excluded), with the default ruleset and champion model:
  p50/p99 in microseconds. Budget: p99 under 1 ms.
* ``credit_application_http``: ``POST /v1/credit/applications`` from ``BENCH_CREDIT_CONCURRENCY`` (32)
  clients against the service on PostgreSQL with zero-latency sandboxes, each application a different
  verified borrower (prepared over HTTP first), beside a bare FastAPI endpoint doing one INSERT on the
  same server in the same run. Target: a quarter of it, p99 under 100 ms.
* ``credit_application_http_paced``: the same requests arriving open-loop at half the capacity just
  measured. Closed-loop clients queue behind one another (p50 ≈ 32 / throughput), so the closed-loop
  p99 says how long the queue is, not how long a decision takes; this one says what a borrower
  waits at a realistic load.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import Client, run_load, run_paced, serve
from bench.identities import identity_for
from bench.onboarding import client_address, login, phone_for, service_env

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONCURRENCY = int(os.environ.get("BENCH_CREDIT_CONCURRENCY", "32"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
FORM = {"occupation": "employee", "education": "bachelor", "loan_purpose": "daily_consumption"}


def bench_in_process(n: int = 20_000) -> None:
    from datetime import date

    from miaodai.credit.bureau import synthetic_report
    from miaodai.credit.features import (
        ApplicationInput,
        Education,
        InternalHistory,
        LoanPurpose,
        Occupation,
        build_features,
    )
    from miaodai.credit.registry import ActivePolicy, default_ruleset, default_scorecard
    from miaodai.credit.rules import BureauStatus, Facts
    from miaodai.credit.service import decide
    from miaodai.demo import DEMO_PRODUCT

    policy = ActivePolicy(default_ruleset(), default_scorecard(), None)
    reports = [synthetic_report(identity_for(i)[1]) for i in range(n)]
    application = ApplicationInput(1_500_000, Occupation.EMPLOYEE, Education.BACHELOR, LoanPurpose.TRAVEL)
    internal = InternalHistory()
    today = date(2026, 11, 22)
    timings = []
    decisions: dict[str, int] = {}
    for report in reports:
        started = time.perf_counter_ns()
        features = build_features(application=application, age=35, report=report, phone_tenure_months=40,
                                   internal=internal)
        facts = Facts(identity_verified=True, missing_consents=(), blocked_on=(), bureau_status=BureauStatus.OK,
                      bureau_current_overdue_fen=report.current_overdue_fen, bureau_written_off=report.written_off,
                      bureau_fraud_list_hit=report.fraud_list_hit,
                      internet_consumer_credit_fen=report.internet_consumer_credit_fen,
                      monthly_repayment_fen=report.monthly_repayment_fen, application_date=today)
        verdict = decide(policy, features, facts, product=DEMO_PRODUCT, monthly_income_fen=1_500_000)
        timings.append((time.perf_counter_ns() - started) / 1000)
        decisions[verdict.decision.value] = decisions.get(verdict.decision.value, 0) + 1
    ordered = sorted(timings)
    print(json.dumps({
        "bench": "credit_decision_in_process", "decisions": n, "p50_us": round(statistics.median(ordered), 1),
        "p99_us": round(ordered[int(0.99 * n)], 1), "max_us": round(ordered[-1], 1), "budget_p99_us": 1000,
        "ratio_to_budget": round(ordered[int(0.99 * n)] / 1000, 3), "outcomes": decisions,
    }), flush=True)


async def _verified(client: Client, n: int) -> dict[str, str]:
    """A borrower logged in, with the four consents and a verified identity: their request headers."""
    device = f"bench-credit-device-{n:08d}"
    token = await login(client, phone_for(n, 35), device)
    headers = {"Authorization": f"Bearer {token}", "X-Device-Id": device, "X-Forwarded-For": client_address(n)}
    for kind in ("privacy_policy", "user_agreement", "credit_bureau_query", "carrier_data"):
        await client.post("/v1/consents", json={"kind": kind, "version": "1.0"}, headers=headers)
    name, id_number = identity_for(200_000 + n)
    await client.post("/v1/kyc/identity", json={"name": name, "id_number": id_number}, headers=headers)
    await client.post("/v1/kyc/face", json={"liveness_token": "sandbox-pass"}, headers=headers)
    return headers


def bench_http() -> None:
    from bench.onboarding import ceiling_env, pgbench_tps
    from miaodai.migrate import upgrade
    from miaodai.testing.pgserver import running_postgres

    workdir = Path(tempfile.mkdtemp(prefix="miaodai-bench-credit-"))
    try:
        with running_postgres(durable=True) as server:
            print(json.dumps({"bench": "pgbench_tpcb", "per_second": pgbench_tps(server)}), flush=True)
            with serve("bench.ceiling_app:app", ceiling_env(server), workers=WORKERS) as base:
                one_insert = run_load(base, lambda c, n: c.post("/insert"), concurrency=CONCURRENCY, seconds=SECONDS)
            print(json.dumps({"bench": "ceiling_fastapi_insert_commit", "concurrency": CONCURRENCY,
                              **one_insert.summary()}), flush=True)
            url = server.create_database("miaodai")
            upgrade(url)
            env = {**service_env(url, workdir), "MIAODAI_SANDBOX_LATENCY_SECONDS": "0"}
            _seed_product(env)
            with serve("miaodai.app:asgi", env, workers=WORKERS, factory=True) as base:
                prepared: dict[int, dict[str, str]] = {}

                async def prepare(client: Client, n: int) -> None:
                    prepared[n] = await _verified(client, n)

                wanted = int(os.environ.get("BENCH_CREDIT_APPLICANTS", "6000"))
                run_load(base, prepare, concurrency=16, seconds=600, max_ops=wanted, warmup_seconds=0)
                keys = sorted(prepared)

                async def apply(client: Client, n: int) -> None:
                    income = 800_000 + (n % 20) * 100_000
                    await client.post("/v1/credit/applications", json={**FORM, "monthly_income_fen": income},
                                      headers=prepared[keys[n]])

                closed_loop = len(keys) * 2 // 3  # the rest apply in the paced run
                result = run_load(base, apply, concurrency=CONCURRENCY, seconds=SECONDS, max_ops=closed_loop,
                                  warmup_seconds=0)
                ratio = round(result.rate / one_insert.rate, 3) if one_insert.rate else None
                print(json.dumps({"bench": "credit_application_http", "concurrency": CONCURRENCY,
                                  **result.summary(), "prepared_applicants": len(keys),
                                  "ceiling": "ceiling_fastapi_insert_commit",
                                  "ceiling_per_second": round(one_insert.rate, 1), "ratio": ratio,
                                  "target_ratio": 0.25, "target_p99_ms": 100}), flush=True)
                # 32 clients that each wait for their answer queue behind one another (latency = 32 /
                # throughput); users arrive on their own. Latency at half the measured capacity:
                rate = max(1.0, round(result.rate / 2))
                paced = run_paced(base, apply, rate=rate, seconds=SECONDS, first=result.completed + result.errors,
                                  max_ops=len(keys) - result.completed - result.errors)
                print(json.dumps({"bench": "credit_application_http_paced", "offered_per_second": rate,
                                  **paced.summary(), "target_p99_ms": 100}), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _seed_product(env: dict[str, str]) -> None:
    """The demo product (what applications default to), created the way an operator would."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "miaodai.cli", "demo", "seed"], env={**os.environ, **env}, check=True,
                   capture_output=True, timeout=120)


def main() -> None:
    bench_in_process()
    bench_http()
