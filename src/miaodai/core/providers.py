"""What stands in for an outside party that has no adapter configured.

With the sandbox off, every outside party needs a real adapter. Operator commands
(`audit verify`, `keys rotate`, ...) must still work without them, so the container
holds an :class:`Unconfigured` placeholder that fails loudly when used, and the HTTP
service refuses to start while any placeholder remains (see ``app.create_app``).
"""

from __future__ import annotations

from typing import Any


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
