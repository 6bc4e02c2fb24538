"""Named crash points (failpoints) for the crash-safety tests: the process kills itself with SIGKILL
when it reaches an armed point, exactly as if the machine had lost power there.

Off unless the environment arms them, so production never stops here: ``MIAODAI_FAILPOINTS`` is a
comma-separated list of ``name`` or ``name=N`` (die on the N-th time the point is reached, 1 if not
given), read once when this module is imported. The points live in the code that moves money
(:mod:`miaodai.payments.orders`, :mod:`miaodai.payments.settlement`); ``tests/integration/test_payment_crashes.py``
arms them in a child process, kills it there, then restarts and recovers. Like FoundationDB's and TiKV's
fail points, by hand: no maintained Python library does this.
"""

from __future__ import annotations

import os
import signal
import threading

ENVIRONMENT = "MIAODAI_FAILPOINTS"


def _parse(spec: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, hit = item.partition("=")
        armed[name.strip()] = int(hit) if hit else 1
    return armed


_armed = _parse(os.environ.get(ENVIRONMENT, ""))
_hits: dict[str, int] = {}
_lock = threading.Lock()


def failpoint(name: str) -> None:
    """Die here (SIGKILL, no cleanup, no flushing) if this point is armed and its hit count is reached."""
    if not _armed or name not in _armed:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] == _armed[name]:
            os.kill(os.getpid(), signal.SIGKILL)
