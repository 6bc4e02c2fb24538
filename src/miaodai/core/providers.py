"""Shared pieces of the outside parties: their failures, and what stands in for one with no adapter.

With the sandbox off, every outside party needs a real adapter. Operator commands
(`audit verify`, `keys rotate`, ...) must still work without them, so the container
holds an :class:`Unconfigured` placeholder that fails loudly when used, and the HTTP
service refuses to start while any placeholder remains (see ``app.create_app``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

# Real parties answer in tens to hundreds of ms; the sandboxes are quicker so that the
# demo stays snappy, but not instant, so that code never relies on a free call.
SANDBOX_LATENCY_SECONDS = 0.05


class ProviderTimeout(Exception):
    """The party did not answer within ``seconds``; whether it did the work is unknown."""

    def __init__(self, provider: str, seconds: float) -> None:
        super().__init__(f"{provider} did not answer within {seconds:g}s")
        self.provider = provider
        self.seconds = seconds


class ProviderError(Exception):
    """The party answered, with an error of its own (it is down, or refused the request)."""

    def __init__(self, provider: str, code: str) -> None:
        super().__init__(f"{provider} answered with error {code}")
        self.provider = provider
        self.code = code


class ProviderNotConfigured(RuntimeError):
    """The sandbox is off and no real adapter has been wired in for an outside party."""


class Unconfigured:
    def __init__(self, role: str, protocol: str) -> None:
        self.role, self.protocol = role, protocol

    def message(self) -> str:
        return (
            f"MIAODAI_SANDBOX is false but no real {self.role} adapter is configured: implement "
            f"{self.protocol} for your contracted vendor and pass it to build_container(), "
            "or set MIAODAI_SANDBOX=true to use the sandbox"
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ProviderNotConfigured(self.message())


def wait(seconds: float) -> None:
    """``time.sleep``, except that no wait is no call: ``sleep(0)`` still gives the processor away, which on a
    busy machine costs milliseconds (the demo year's ~1,400 sandbox answers without latency spent seconds)."""
    if seconds > 0:
        time.sleep(seconds)


class SandboxParty:
    """Base of the sandboxes: answers after a little latency, or times out after really waiting."""

    def __init__(
        self, *, timeout_seconds: float, latency_seconds: float = SANDBOX_LATENCY_SECONDS,
        sleep: Callable[[float], None] = wait,
    ) -> None:
        # ``sleep`` is injectable so tests can see the wait without spending it.
        self.timeout_seconds = timeout_seconds
        self.latency_seconds = latency_seconds
        self._sleep = sleep

    def _answer_after_latency(self) -> str:
        self._sleep(self.latency_seconds)
        return "sbx-" + secrets.token_hex(8)

    def _time_out(self, provider: str) -> ProviderTimeout:
        self._sleep(self.timeout_seconds)
        return ProviderTimeout(provider, self.timeout_seconds)
