"""Property-based fuzzing of every documented operation (schemathesis over /openapi.json).

Whatever a client sends — right types, wrong types, missing or extra fields, odd strings —
the service answers without a 5xx, and every error is a problem document with a code.
Runs on both databases with a logged-in borrower, so authenticated operations are reached too (schemathesis
also sends NUL characters, which only PostgreSQL refuses to store).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from types import UnionType
from typing import Any, Union, get_args, get_origin
from urllib.parse import quote

import schemathesis
from fastapi import params
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, given, settings

from miaodai.core.http import PROBLEM_JSON
from miaodai.identity.rbac import Role
from tests.console_support import add_staff as add_console_staff
from tests.console_support import browser as console_browser
from tests.console_support import csrf as console_csrf
from tests.console_support import sign_in as console_sign_in
from tests.helpers import login, staff_headers

EXAMPLES_PER_OPERATION = 25
# Only so that a hung request fails the test instead of stalling the run; no answer is timed. Schemathesis
# otherwise gives each request 10 s, which one request outwaited on 2 cores shared by two pytest workers
# (its thread starved of CPU, not stuck): a timed assert in disguise.
HANG_GUARD_SECONDS = 600
# These end the fuzzing borrower's own session; they have scenario tests of their own.
SESSION_ENDING = {("POST", "/v1/auth/logout"), ("POST", "/v1/sessions/revoke-all"),
                  ("DELETE", "/v1/sessions/{session_id}")}


def test_no_operation_answers_with_a_server_error(client, fast_staff_hasher):
    # Cheap argon2 (fast_staff_hasher): each fuzzed staff login hashes and checks a password, 2 s of CPU on a
    # loaded machine, and the answer's status does not depend on the cost.
    headers = login(client, "13812345678")["headers"]
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the schema lost its operations"
    reached: Counter[str] = Counter()
    for operation in operations:
        if (operation.method.upper(), operation.path) in SESSION_ENDING:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def answers_without_server_error(case) -> None:
            response = case.call(headers=headers, timeout=HANG_GUARD_SECONDS)
            where = f"{case.method} {case.path}"
            assert response.status_code < 500, f"{where}: {response.text[:500]}"
            if response.status_code != 401:
                reached[where] += 1
            if response.status_code >= 400:
                problem = response.json()
                assert problem["code"] and problem["message_zh"] and problem["message_en"], (where, problem)

        answers_without_server_error()
    # The borrower's session stayed valid, so borrower operations got past authentication.
    for where in ("POST /v1/kyc/identity", "POST /v1/consents", "GET /v1/me", "POST /v1/auth/otp"):
        assert reached[where] > 0, f"{where} was never reached past authentication"


# -- every route, API and web: NUL characters and ids out of range ------------------------------------------------
#
# Bad input of these two kinds reached a 500 on PostgreSQL: a NUL is refused by its driver in any text it binds
# (a consent document's kind, the staff login's user name), and an id above 2^63-1 overflows its BIGINT. Every
# route of the app is asked, with every path, query, form and JSON field it declares: a NUL must answer 404 (in
# the path) or 422 VALIDATION_FAILED, and an integer id out of range 404 or 422 — on both databases.

NUL_TEXT = "x\x00y"
BAD_IDS = ("0", "-1", str(2**63), "99999999999999999999999")
# Routes that end the borrower's session whatever they are sent would leave the sweep unauthenticated.
SESSION_ENDERS = SESSION_ENDING | {("POST", "/app/logout"), ("POST", "/app/sessions/{session_id}/logout"),
                                   ("POST", "/console/logout"), ("POST", "/console/me/logout-everywhere"),
                                   ("POST", "/console/me/sessions/{session_id}/end")}
NOT_SWEPT = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/metrics"}
CSRF = "fuzz-csrf-token-0123456789"


@dataclass(frozen=True)
class Field_:
    name: str
    where: str  # path | query | form | json
    is_int: bool


def _is_int(annotation: Any) -> bool:
    return annotation is int or (get_origin(annotation) in (Union, UnionType) and int in get_args(annotation)
                                 and all(a in (int, type(None)) for a in get_args(annotation)))


def _declared(route: APIRoute) -> list[Field_]:
    """Every input the route declares (its own and its dependencies'), by where it is read."""
    found: list[Field_] = []
    for field in get_flat_params(route.dependant):
        where = type(field.field_info).__name__.lower()
        if where in ("path", "query"):
            found.append(Field_(field.alias, where, _is_int(field.field_info.annotation)))
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        pending.extend(dependant.dependencies)
        for field in dependant.body_params:
            if isinstance(field.field_info, params.Form):
                found.append(Field_(field.alias, "form", _is_int(field.field_info.annotation)))
    return found


def _example(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """A plain value of the JSON schema (the first enum member, the minimum, an empty list): the other fields of a
    body around the one being fuzzed, so that field is the reason for the answer."""
    if "$ref" in schema:
        return _example(components[schema["$ref"].rsplit("/", 1)[1]], components)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return _example(options[0], components) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        return {name: _example(sub, components) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return []
    if kind == "integer":
        return int(schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1))
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    if schema.get("format") == "date":
        return "2026-11-22"
    return "1"


def _json_body(document: dict[str, Any], path: str, method: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The example body of a documented JSON operation and its property schemas, or None."""
    operation = document["paths"].get(path, {}).get(method.lower(), {})
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return None
    components = document.get("components", {}).get("schemas", {})
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    body = _example(schema, components)
    return (body, schema.get("properties", {})) if isinstance(body, dict) else None


def _sweep_requests(route: APIRoute, method: str, document: dict[str, Any]):
    """(description, path, query, form, json, expected statuses) for each bad input the route can be sent."""
    fields = _declared(route)
    path_names = re.findall(r"{(\w+)(?::\w+)?}", route.path)
    int_path = {f.name for f in fields if f.where == "path" and f.is_int} | {
        name for name, kind in re.findall(r"{(\w+):(\w+)}", route.path) if kind == "int"}

    def url(**values: str) -> str:
        def one(match: re.Match[str]) -> str:
            return quote(values.get(match.group(1), "1"), safe="")
        return re.sub(r"{(\w+)(?::\w+)?}", one, route.path)

    form = {f.name: "1" for f in fields if f.where == "form"}
    json_body = _json_body(document, route.path, method)
    base_json = json_body[0] if json_body else None
    for name in path_names:
        yield f"NUL in path {name}", url(**{name: NUL_TEXT}), {}, form, base_json, {404}
        for bad in BAD_IDS:
            expected = {404, 422} if name in int_path else set(range(200, 500))
            yield f"{bad} in path {name}", url(**{name: bad}), {}, form, base_json, expected
    queries = [f for f in fields if f.where == "query"] + [Field_(name, "query", False) for name in ("lang", "next")]
    for field in queries:
        yield f"NUL in query {field.name}", url(), {field.name: NUL_TEXT}, form, base_json, {422}
        if field.is_int:  # an id must be refused; another number (a term) may be read as the page likes
            expected = {422} if field.name.endswith("_id") else set(range(200, 500))
            for bad in BAD_IDS:
                yield f"{bad} in query {field.name}", url(), {field.name: bad}, form, base_json, expected
    for field in (f for f in fields if f.where == "form"):
        yield f"NUL in form {field.name}", url(), {}, {**form, field.name: NUL_TEXT}, None, {422}
        if field.is_int:
            expected = {422} if field.name.endswith("_id") else set(range(200, 500))
            for bad in BAD_IDS:
                yield f"{bad} in form {field.name}", url(), {}, {**form, field.name: bad}, None, expected
    if json_body:
        body, properties = json_body
        for name, schema in properties.items():
            yield f"NUL in JSON {name}", url(), {}, {}, {**body, name: NUL_TEXT}, {422}
            if name.endswith("_id") or "integer" in json.dumps(schema):
                for bad in BAD_IDS[:1] + BAD_IDS[2:]:
                    yield f"{bad} in JSON {name}", url(), {}, {}, {**body, name: int(bad)}, {422}


def test_no_route_answers_nul_or_an_id_out_of_range_with_a_server_error(client, container, clock, fast_staff_hasher):
    borrower = login(client, "13812345670")
    staff = staff_headers(client, container, clock, "fuzz.staff", tuple(role.value for role in Role))
    document = client.get("/openapi.json").json()
    web_cookies = f"md_session={borrower['token']}; md_csrf={CSRF}"
    # The form token the pages hand out for this session and nonce (however it is derived from them).
    page = client.get("/app/me", headers={"Cookie": web_cookies})  # 我的: its logout form carries one
    form_token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    # The staff console, signed in as one member holding every role: its pages are swept like the app's.
    console_staff = add_console_staff(container, "fuzz.console", tuple(role.value for role in Role))
    console = console_browser(client)
    clock.advance(timedelta(seconds=31))
    assert console_sign_in(console, clock, "fuzz.console", console_staff.totp_secret).status_code == 303
    console_cookies = "; ".join(f"{name}={value}" for name, value in console.cookies.items())
    console_token = console_csrf(console.get("/console"))
    routes = [ctx for ctx in iter_route_contexts(client.app.routes)
              if isinstance(ctx.original_route, APIRoute) and ctx.path not in NOT_SWEPT]
    assert len(routes) > 100, "the sweep lost its routes"
    failures: list[str] = []
    sent: Counter[str] = Counter()
    for ctx in routes:
        route: APIRoute = ctx.original_route  # type: ignore[assignment]
        for method in sorted(route.methods - {"HEAD"}):
            if (method, route.path) in SESSION_ENDERS:
                continue
            for n, (what, path, query, form, body, expected) in enumerate(_sweep_requests(route, method, document)):
                headers = dict(staff if path.startswith("/v1/staff") else borrower["headers"])
                headers["Idempotency-Key"] = f"fuzz-{sent.total()}-{n}"
                if path.startswith("/app"):
                    headers = {"Cookie": web_cookies, "X-Device-Id": borrower["headers"]["X-Device-Id"]}
                    if method != "GET":
                        form = {**form, "csrf_token": form_token}
                elif path.startswith("/console"):
                    headers = {"Cookie": console_cookies}
                    if method != "GET":
                        form = {**form, "csrf_token": console_token}
                if method == "GET":
                    response = client.request(method, path, params=query, headers=headers, follow_redirects=False)
                elif form and body is None:
                    response = client.request(method, path, params=query, data=form, headers=headers,
                                              follow_redirects=False)
                else:
                    response = client.request(method, path, params=query, json=body, headers=headers,
                                              follow_redirects=False)
                sent[method] += 1
                where = f"{method} {route.path} ({what}): {response.status_code}"
                if response.status_code not in expected:
                    failures.append(f"{where} {response.text[:200]}")
                elif (response.status_code >= 400 and response.headers["content-type"].startswith(PROBLEM_JSON)
                      and not response.json().get("code")):
                    failures.append(f"{where}: a problem without a code")
    assert not failures, f"{len(failures)} of {sent.total()} requests:\n" + "\n".join(failures[:60])
    assert sent["GET"] > 100 and sent["POST"] > 300, sent


# -- wrong JSON types: money and other numbers are strict --------------------------------------------------------

WRONG_TYPES = {"integer": ("100000", 100000.0, True), "boolean": (1, "true")}


def _json_kind(schema: dict[str, Any], components: dict[str, Any]) -> str | None:
    if "$ref" in schema:
        return _json_kind(components[schema["$ref"].rsplit("/", 1)[1]], components)
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    return options[0].get("type") if len(options) == 1 else None


def _documented_json_operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = _json_body(document, path, method)
            if body is not None:
                yield path, method.upper(), operation, body


def test_integers_and_booleans_in_json_bodies_are_strict(client, container, clock, fast_staff_hasher):
    """"100000", 100000.0 and true are not 100000 fen (true was read as 1 fen); 1 and "true" are not true."""
    borrower = login(client, "13812345671")
    staff = staff_headers(client, container, clock, "strict.staff", tuple(role.value for role in Role))
    document = client.get("/openapi.json").json()
    components = document["components"]["schemas"]
    checked: list[str] = []
    failures: list[str] = []
    for path, method, _operation, (example, properties) in _documented_json_operations(document):
        url = re.sub(r"{\w+}", "1", path)
        headers = {**(staff if path.startswith("/v1/staff") else borrower["headers"]), "Idempotency-Key": "strict-1"}
        for name, schema in properties.items():
            for wrong in WRONG_TYPES.get(_json_kind(schema, components) or "", ()):
                response = client.request(method, url, json={**example, name: wrong}, headers=headers)
                checked.append(f"{method} {path} {name}")
                problem = response.json() if response.status_code == 422 else {}
                if name not in problem.get("params", {}).get("fields", "").split(", "):
                    failures.append(f"{method} {path} {name}={wrong!r}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)
    assert any("principal_fen" in c for c in checked) and any("approve" in c for c in checked), checked


def test_an_optional_body_may_be_left_out(client, container, clock, fast_staff_hasher):
    """An operation whose body has no required field takes no body at all, or an empty one (Content-Length 0)."""
    borrower = login(client, "13812345672")
    staff = staff_headers(client, container, clock, "optional.staff", tuple(role.value for role in Role))
    document = client.get("/openapi.json").json()
    components = document["components"]["schemas"]
    optional = []
    for path, method, operation, _body in _documented_json_operations(document):
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        while "$ref" in schema:
            schema = components[schema["$ref"].rsplit("/", 1)[1]]
        if schema.get("properties") and not schema.get("required"):  # a model, not a free-form document
            optional.append((path, method, operation))
    assert {(p, m) for p, m, _ in optional} >= {("/v1/auth/step-up/otp", "POST"),
                                                ("/v1/loans/{loan_id}/repayments", "POST")}
    for path, method, operation in optional:
        assert not operation["requestBody"].get("required"), f"{method} {path} documents its body as required"
        headers = {**(staff if path.startswith("/v1/staff") else borrower["headers"])}
        for n, extra in enumerate(({}, {"Content-Type": "application/json", "Content-Length": "0"})):
            clock.advance(timedelta(seconds=61))  # past the step-up code's resend cooldown
            response = client.request(method, re.sub(r"{\w+}", "1", path), content=b"",
                                      headers={**headers, **extra, "Idempotency-Key": f"empty-{n}"})
            assert response.status_code != 422, f"{method} {path} {extra}: {response.text}"
            assert response.status_code < 500, f"{method} {path} {extra}: {response.text}"
