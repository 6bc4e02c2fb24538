"""``python -m bench [SUITE ...]``: run the named benchmark suites, or all of them with no argument.

Suites: ``onboarding`` (login and real-name verification over HTTP), ``loans`` (schedules and repayments),
``eod`` (the end-of-day batch over a book of ``BENCH_EOD_LOANS`` loans, default 1,000,000);
``credit`` (decisions in process and applications over HTTP); ``dashboards`` (the console's SQL aggregates on
a 1,000,000-loan book, SQLite and PostgreSQL); ``collections`` (repayments collected end to end:
API → sandbox channel → callback → ledger); ``schedules`` and ``repayments`` run one half of ``loans``,
``decisions`` and ``applications`` one half of ``credit``; ``audit`` (the audit viewer's searches, a full chain
verification and an export on a 1,000,000-entry log, SQLite and PostgreSQL); ``credit_cpu`` measures CPU per
application in process (not part of ``credit``). Each figure is one JSON line on stdout.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def _suites() -> dict[str, Callable[[], object]]:
    from bench import audit, collections, credit, dashboards, eod, loans, onboarding

    return {"onboarding": onboarding.main, "loans": loans.main, "eod": eod.main, "credit": credit.main,
            "collections": collections.main, "dashboards": dashboards.main, "audit": audit.main,
            "schedules": loans.bench_schedules, "repayments": loans.bench_repayments,
            "decisions": credit.bench_in_process, "applications": credit.bench_http,
            "credit_cpu": credit.bench_cpu}


ALL = ("onboarding", "loans", "credit", "collections", "eod", "dashboards", "audit")


def main(argv: list[str]) -> int:
    suites = _suites()
    chosen = argv or list(ALL)
    unknown = [name for name in chosen if name not in suites]
    if unknown:
        print(f"unknown suite(s): {', '.join(unknown)}; choose from {', '.join(suites)} (none: {' '.join(ALL)})",
              file=sys.stderr)
        return 2
    for name in chosen:
        suites[name]()
    return 0


if __name__ == "__main__":  # not when a spawned worker process imports it
    sys.exit(main(sys.argv[1:]))
