"""A pytest plugin that records every problem the app answers, by operation: ``-p tests.openapi_recorder`` with
``MIAODAI_ANSWERS_FILE`` set to the file to append to (one JSON object a line: method, route, status, code).

It also writes the app's OpenAPI document next to that file (``<file>.openapi.json``, once).
``tests/integration/test_openapi_contract.py`` runs API test modules with it and holds the document against
what they saw: every code an operation answered is declared for it. Loaded with ``-p``, it is imported
before the test modules, so every app they build (``miaodai.app.create_app``) records.
"""

from __future__ import annotations

import json
import os
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

import miaodai.app

PROBLEM_JSON = b"application/problem+json"


class AnswerRecorder:
    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app, self.path = app, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answer: dict[str, Any] = {"problem": False, "body": b""}

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["problem"] = any(k == b"content-type" and v.startswith(PROBLEM_JSON)
                                        for k, v in message.get("headers", []))
            elif message["type"] == "http.response.body" and answer["problem"]:
                answer["body"] += message.get("body", b"")
            await send(message)

        await self.app(scope, receive, recording)
        route = scope.get("route")
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
        if answer["problem"] and template:
            code = json.loads(answer["body"]).get("code")
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(json.dumps({"method": scope["method"], "route": template, "status": answer["status"],
                                      "code": code}) + "\n")


_create_app = miaodai.app.create_app


def _recording_create_app(*args: Any, **kwargs: Any) -> Any:
    app = _create_app(*args, **kwargs)
    path = os.environ["MIAODAI_ANSWERS_FILE"]
    document = f"{path}.openapi.json"  # the document these answers are held against, as the app publishes it
    if not os.path.exists(document):
        with open(document, "w", encoding="utf-8") as out:
            json.dump(app.openapi(), out)
    app.add_middleware(AnswerRecorder, path=path)
    return app


if os.environ.get("MIAODAI_ANSWERS_FILE"):
    miaodai.app.create_app = _recording_create_app  # type: ignore[assignment]
