"""No NUL character gets past the HTTP edge, in any path, query, header, cookie, JSON or form field.

A NUL (U+0000) is never meaningful in anything this service reads — phone numbers, names, codes, ids,
document kinds — and PostgreSQL cannot store one in a text column (``A string literal cannot contain NUL
(0x00) characters``), so without this check a NUL in, say, the staff login's user name or a consent
document's kind reached the database and answered 500 (SQLite stored it). One check here covers every
route, API and web, present and future, instead of a rule on each of hundreds of fields.

The answer is a problem document: 404 ``NOT_FOUND`` for a NUL in the path (no resource has such an
address), 422 ``VALIDATION_FAILED`` naming the field for anything else.

Cost: the body is already buffered whole by :class:`~miaodai.core.http.BodyLimitMiddleware`, which sits
outside this one; a request without a NUL pays a few substring searches (``%00``, ``\\u0000``, ``\\x00``)
and is parsed only when one is found, so an escaped backslash before ``u0000`` is not taken for a NUL.
"""

from __future__ import annotations

import json
from http.cookies import _unquote  # type: ignore[attr-defined]  # the decoding Starlette's cookie parser applies
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from miaodai.core.errors import DomainError, Errors
from miaodai.core.http import problem_response

NUL = "\x00"


class NulGuardMiddleware:
    """Answers 404/422 for a request carrying a NUL anywhere the application would read it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if NUL in scope.get("path", "") or b"%00" in scope.get("raw_path", b""):
            await _refuse(scope, receive, send, DomainError(Errors.NOT_FOUND))
            return
        fields = _in_query(scope.get("query_string", b"")) + _in_headers(scope.get("headers") or [])
        messages: list[Message] = []
        if not fields:
            body, messages, complete = await _read_body(receive)
            if complete:
                fields = _in_body(_content_type(scope), body)
        if fields:
            await _refuse(scope, receive, send, _validation_failed(fields))
            return
        await self.app(scope, _replay(messages, receive) if messages else receive, send)


def _validation_failed(fields: list[str]) -> DomainError:
    names = ", ".join(dict.fromkeys(fields))
    return DomainError(Errors.VALIDATION_FAILED, params={"fields": names},
                       detail=f"{names}: a NUL character (U+0000) is not allowed")


async def _refuse(scope: Scope, receive: Receive, send: Send, error: DomainError) -> None:
    request_id = (scope.get("state") or {}).get("request_id")
    await problem_response(error, request_id)(scope, receive, send)


async def _read_body(receive: Receive) -> tuple[bytes, list[Message], bool]:
    """The whole body (already bounded by the body limit) and the messages to replay to the app."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return b"", messages, False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), messages, True


def _replay(messages: list[Message], then: Receive) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0) if pending else await then()

    return receive


def _in_query(query: bytes) -> list[str]:
    """The names of the urlencoded fields (a query string or a form body) that hold a NUL."""
    if b"%00" not in query and b"\x00" not in query:
        return []
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace")
    return [_printable(name) for name, value in pairs if NUL in name or NUL in value] or ["query"]


def _in_headers(headers: list[tuple[bytes, bytes]]) -> list[str]:
    found = []
    for name, value in headers:
        if b"\x00" in value:
            found.append(name.decode("latin-1"))
        elif name == b"cookie" and b"\\" in value:  # a quoted cookie value may spell a NUL as \000
            for part in value.decode("latin-1").split(";"):
                key, _, raw = part.strip().partition("=")
                if NUL in _unquote(raw.strip()):
                    found.append(_printable(key))
    return found


def _content_type(scope: Scope) -> str:
    for name, value in scope.get("headers") or []:
        if name == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower()
    return ""


def _in_body(content_type: str, body: bytes) -> list[str]:
    if not body:
        return []
    if content_type == "application/x-www-form-urlencoded":
        return _in_query(body)
    if content_type.startswith("multipart/"):
        return ["body"] if b"\x00" in body else []  # no route takes a file, so no part may hold a NUL
    if b"\\u0000" not in body and b"\x00" not in body:
        return []
    try:
        document = json.loads(body)
    except ValueError:
        return []  # not JSON: the route answers MALFORMED_JSON (or ignores a body it does not read)
    return _in_json(document, "")


def _in_json(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [where or "body"] if NUL in value else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{_printable(key)}" if where else _printable(key)
            found += [name] if NUL in key else _in_json(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _in_json(item, f"{where}.{index}" if where else str(index))
    return found


def _printable(name: str) -> str:
    return name.replace(NUL, "\\0")[:64]
