"""Structured JSON logs with personal data scrubbed before anything is written.

Every record (ours, uvicorn's, SQLAlchemy's) passes through :func:`redact`: keys that
name personal data are replaced, and anything shaped like a mainland mobile number,
a resident ID number or a bank card number is masked wherever it appears in a value.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import structlog

SENSITIVE_KEYS = frozenset(
    {
        "phone", "mobile", "name", "real_name", "id_number", "id_card", "card_number", "code",
        "otp", "password", "token", "authorization", "cookie", "totp", "secret", "liveness_token",
    }
)
_PATTERNS = [
    # 18-digit resident ID numbers (last character may be X).
    (re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?![\dXx])"), r"\1********\2"),
    # Mainland mobile numbers with or without +86.
    (re.compile(r"(?<!\d)(?:\+?86)?(1[3-9]\d)\d{4}(\d{4})(?!\d)"), r"\1****\2"),
    # Card-like digit runs (13–19 digits) keep only the last four.
    (re.compile(r"(?<!\d)\d{9,15}(\d{4})(?!\d)"), r"****\1"),
]
REDACTED = "[redacted]"


def scrub(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if key.lower() in SENSITIVE_KEYS:
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value("", v) for v in value]
    return value


def redact(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    return {key: (scrub(value) if key == "event" and isinstance(value, str) else _redact_value(key, value))
            for key, value in event_dict.items()}


def configure_logging(level: str = "INFO", *, json: bool = True, stream: TextIO | None = None) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    renderer: Any = structlog.processors.JSONRenderer(ensure_ascii=False) if json else structlog.dev.ConsoleRenderer()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
