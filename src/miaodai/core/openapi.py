"""What the published OpenAPI document says a client must send and what it gets back.

FastAPI's own document leaves out what this service's dependencies read by hand and what its error handlers
answer. :func:`install` replaces ``app.openapi`` with one that adds, per operation:

- ``security: bearer`` where a dependency marked with :func:`bearer_auth` reads the ``Authorization`` header
  (the borrower's and the staff's session tokens), with an HTTP bearer security scheme;
- the ``Idempotency-Key`` header (required) where the operation depends on :func:`~miaodai.core.idempotency.
  idempotency` — every money-moving request;
- a header parameter declared ``json_schema_extra={"x-required": True}`` documented as required (``X-Device-Id``
  on the login requests: the service refuses them without it, although FastAPI reads it as optional);
- one response per HTTP status of the problem codes the operation can answer, each an ``application/problem+json``
  :data:`PROBLEM` whose ``code`` lists those codes — in place of FastAPI's ``HTTPValidationError`` 422.

Which codes an operation can answer is derived, not listed by hand (:func:`codes_of_route`): the codes of the
HTTP edge that apply to it (a NUL or a wrong field anywhere: 422; a body: malformed JSON, too large; a path
parameter: 404), and every catalog :class:`~miaodai.core.errors.ErrorSpec` referenced in the call graph of its
endpoint and dependencies — the functions they call by name (``service.apply(...)``, ``_unauthenticated()``) and
the methods of the classes they construct, followed within the ``miaodai`` package, with the specs found in the
module-level tables they read (``DEVICE_KEY_PROBLEMS[...]``). A method called on an object passed in
(``container.channel.submit``) is not followed: ``tests/integration/test_openapi_contract.py`` holds the result
against the codes the routes actually answer in the API tests.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from miaodai.core.errors import Errors, ErrorSpec
from miaodai.core.http import PROBLEM_JSON
from miaodai.core.idempotency import HEADER as IDEMPOTENCY_HEADER
from miaodai.core.idempotency import KEY_PATTERN, idempotency

PROBLEM_REF = "#/components/schemas/Problem"
BEARER = "bearer"
REQUIRED_MARK = "x-required"

PROBLEM: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details with the service's stable code (docs/errors.md lists every code).",
    "required": ["type", "title", "status", "detail", "code", "message_zh", "message_en"],
    "properties": {
        "type": {"type": "string", "format": "uri", "examples": ["https://miaodai.dev/problems/validation-failed"]},
        "title": {"type": "string"},
        "status": {"type": "integer", "description": "The HTTP status, repeated"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable, machine-readable: branch on this"},
        "message_zh": {"type": "string", "description": "What happened, for the user, in zh-CN"},
        "message_en": {"type": "string", "description": "What happened, for the user, in English"},
        "action": {
            "type": "object", "description": "What the user can do about it, where they can",
            "required": ["zh", "en"],
            "properties": {"zh": {"type": "string"}, "en": {"type": "string"}},
        },
        "params": {
            "type": "object", "additionalProperties": True,
            "description": "Machine-readable parameters, e.g. fields (422), retry_after_seconds",
        },
        "request_id": {"type": "string", "description": "Quote it to support (also the X-Request-Id header)"},
    },
}

_BEARER_DEPENDENCIES: set[Callable[..., Any]] = set()
F = TypeVar("F", bound=Callable[..., Any])


def bearer_auth(dependency: F) -> F:
    """Marks a dependency that authenticates the request by its ``Authorization: Bearer`` token."""
    _BEARER_DEPENDENCIES.add(dependency)
    return dependency


def install(app: FastAPI) -> None:
    """``app.openapi`` builds FastAPI's document once, then completes it as the module docstring says."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(app, FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# -- the document --------------------------------------------------------------------------------------------------


def complete(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM
    components.setdefault("securitySchemes", {})[BEARER] = {
        "type": "http", "scheme": "bearer",
        "description": "The session token from POST /v1/auth/login (borrowers) or POST /v1/staff/login (staff)",
    }
    for route in iter_route_contexts(app.routes):  # routers included in the app, each route with its prefix
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in (route.methods or set()) - {"HEAD"}:
            operation = document["paths"].get(route.path_format, {}).get(method.lower())
            if operation is not None:
                _complete_operation(route, operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(unused, None)
    return document


def _complete_operation(route: RouteContext, operation: dict[str, Any]) -> None:
    calls = set(dependency_calls(route))
    if calls & _BEARER_DEPENDENCIES:
        operation["security"] = [{BEARER: []}]
    parameters = operation.setdefault("parameters", [])
    for parameter in parameters:
        if parameter.get("schema", {}).pop(REQUIRED_MARK, False):
            parameter["required"] = True
    if idempotency in calls and not any(p["name"] == IDEMPOTENCY_HEADER for p in parameters):
        parameters.append({
            "name": IDEMPOTENCY_HEADER, "in": "header", "required": True,
            "description": "A unique value (e.g. a UUID) per request; a retry sends the same value and gets the "
                           "first request's answer (docs/api.md)",
            "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": KEY_PATTERN.pattern},
        })
    if not parameters:
        del operation["parameters"]
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)
    by_status: dict[int, list[ErrorSpec]] = {}
    for spec in codes_of_route(route):
        by_status.setdefault(spec.status, []).append(spec)
    for status, specs in sorted(by_status.items()):
        codes = sorted({spec.code for spec in specs})
        responses[str(status)] = {
            "description": "; ".join(f"`{spec.code}`: {spec.title}" for spec in sorted(specs, key=lambda s: s.code)),
            "content": {PROBLEM_JSON: {"schema": {"allOf": [
                {"$ref": PROBLEM_REF},
                {"type": "object", "properties": {"code": {"type": "string", "enum": codes}}},
            ]}}},
        }


# -- which codes an operation can answer ---------------------------------------------------------------------------


def dependency_calls(route: RouteContext) -> Iterator[Callable[..., Any]]:
    """The endpoint and every dependency it declares, directly or through other dependencies."""
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        if dependant.call is not None:
            yield dependant.call
        pending.extend(dependant.dependencies)


def codes_of_route(route: RouteContext) -> set[ErrorSpec]:
    """Every problem the operation can answer with: the edge's, and those of its call graph (``route``: one of
    :func:`fastapi.routing.iter_route_contexts`, an included router's route as it is served)."""
    specs = {Errors.VALIDATION_FAILED}  # a NUL in any header, or in a query, is refused by the input guard
    if route.dependant.path_params or "{" in (route.path_format or ""):
        specs.add(Errors.NOT_FOUND)
    if route.body_field is not None:
        specs |= {Errors.MALFORMED_JSON, Errors.BODY_TOO_LARGE}
    seen: set[Any] = set()
    for call in dependency_calls(route):
        specs |= _specs_reached(call, seen)
    return specs


def _specs_reached(start: Any, seen: set[Any]) -> set[ErrorSpec]:
    found: set[ErrorSpec] = set()
    pending = [start]
    while pending:
        target = pending.pop()
        function = _function_of(target)
        if function is None or function in seen:
            continue
        seen.add(function)
        specs, callees = _references(function)
        found |= specs
        pending.extend(callees)
    return found


def _ours(thing: Any) -> bool:
    """Defined in this package (a function made at run time, by a library say, may have no module at all)."""
    return (getattr(thing, "__module__", None) or "").startswith("miaodai.")


def _function_of(target: Any) -> Any:
    target = inspect.unwrap(target) if callable(target) else target
    if inspect.ismethod(target):
        target = target.__func__
    if isinstance(target, (staticmethod, classmethod)):
        target = target.__func__
    if inspect.isfunction(target) and _ours(target):
        return target
    if not inspect.isfunction(target) and callable(target) and not inspect.isclass(target):
        call = vars(type(target)).get("__call__")  # a callable object (a FastAPI dependency class)
        if inspect.isfunction(call) and _ours(call):
            return call
    return None


@cache
def _references(function: Any) -> tuple[frozenset[ErrorSpec], tuple[Any, ...]]:
    """The specs a function names and the functions it may call (by name, or a constructed class's methods)."""
    tree = _definitions(function.__code__.co_filename).get(function.__code__.co_firstlineno)
    if tree is None:
        return frozenset(), ()
    scope = dict(function.__globals__)
    closure = inspect.getclosurevars(function)
    scope.update(closure.nonlocals)
    skipped = _annotations(tree)
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    specs: set[ErrorSpec] = set()
    callees: list[Any] = []
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, (ast.Name, ast.Attribute)):
            continue
        value = _resolve(node, scope)
        if value is _UNRESOLVED:
            continue
        if isinstance(value, ErrorSpec):
            specs.add(value)
        elif isinstance(value, (dict, list, tuple, set, frozenset)):
            specs |= _specs_in(value)
        elif inspect.isclass(value):
            if id(node) in called and _ours(value):
                callees.extend(v for k, v in vars(value).items() if not k.startswith("__") or k == "__init__")
        elif callable(value):
            callees.append(value)
    return frozenset(specs), tuple(callees)


_UNRESOLVED = object()


@cache
def _definitions(filename: str) -> dict[int, ast.AST]:
    """The functions of a source file by the line their code starts at (a decorated one's first decorator): one
    parse per module, not one per function."""
    try:
        tree = ast.parse(Path(filename).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    found: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[min([node.lineno] + [d.lineno for d in node.decorator_list])] = node
    return found


def _resolve(node: ast.expr, scope: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        return scope.get(node.id, _UNRESOLVED)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, scope)
        if base is _UNRESOLVED or not (inspect.ismodule(base) or inspect.isclass(base)):
            return _UNRESOLVED
        if inspect.ismodule(base) and not base.__name__.startswith("miaodai."):
            return _UNRESOLVED
        return getattr(base, node.attr, _UNRESOLVED)
    return _UNRESOLVED


def _specs_in(table: Any, depth: int = 2) -> set[ErrorSpec]:
    values = table.values() if isinstance(table, dict) else table
    found: set[ErrorSpec] = set()
    for value in values:
        if isinstance(value, ErrorSpec):
            found.add(value)
        elif depth > 1 and isinstance(value, (dict, list, tuple, set, frozenset)):
            found |= _specs_in(value, depth - 1)
    return found


def _annotations(tree: ast.AST) -> set[int]:
    """The nodes inside type annotations: naming a class there calls nothing."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            every = arguments.posonlyargs + arguments.args + arguments.kwonlyargs
            every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
            roots += [a.annotation for a in every if a.annotation is not None]
            if node.returns is not None:
                roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    return {id(inner) for root in roots for inner in ast.walk(root)}
