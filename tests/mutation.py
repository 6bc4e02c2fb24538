"""Small helpers for tests that break a document on purpose, and sandboxes that would wait."""

from __future__ import annotations

import copy
from typing import Any

DELETE = object()  # as a ``value``: remove the key instead of setting it


def mutated(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``document`` with the dotted ``path`` ("ranges.0.bank") set to ``value`` (or deleted)."""
    copied = copy.deepcopy(document)
    *parents, last = path.split(".")
    node: Any = copied
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if last.isdigit() else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return copied


class RecordingSleep:
    """Stands in for ``time.sleep`` in a sandbox: records each wait instead of spending it."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
