"""The console's permission matrix, generated from the route table: every /console route × every role is
allowed or 403 exactly as identity/rbac.py (roles.toml) says. A route added without a guard fails here."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.routing import APIRoute

from miaodai.identity import rbac
from miaodai.web.console.core import PREFIX, Guard, PublicPage
from tests.console_support import add_staff, browser, csrf, sign_in

PINNED_FIXTURES = ("backend",)
pytestmark = pytest.mark.usefixtures("fast_staff_hasher")


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the rule is the route's, not the database's


def _guards(dependant):
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, Guard | PublicPage):
            yield dependency.call
        yield from _guards(dependency)


def _flat(routes, prefix=""):
    """Every APIRoute with its full path (FastAPI 0.165 keeps an included router as one entry)."""
    for route in routes:
        if hasattr(route, "original_router"):
            yield from _flat(route.original_router.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            yield prefix + route.path, route


def console_routes(app):
    """(method, path, guard) of every console route; a route without exactly one guard is an error."""
    found = []
    for full_path, route in _flat(app.routes):
        if not full_path.startswith(PREFIX):
            continue
        guards = {id(g): g for g in _guards(route.dependant)}
        assert len(guards) == 1, f"{sorted(route.methods)} {full_path} has {len(guards)} guards: give it exactly one"
        for method in sorted(route.methods):
            found.append((method, full_path, next(iter(guards.values()))))
    return found


def test_every_console_route_declares_who_may_open_it(client):
    routes = console_routes(client.app)
    assert len(routes) >= 8
    public = {path for _, path, guard in routes if isinstance(guard, PublicPage)}
    assert public == {f"{PREFIX}/login", f"{PREFIX}/setup", f"{PREFIX}/logout"}


def test_a_route_without_a_guard_fails_the_matrix(client):
    from fastapi import APIRouter

    stray = APIRouter()

    @stray.get(f"{PREFIX}/stray")
    def _stray() -> str:
        return "open to all"

    client.app.include_router(stray)
    try:
        with pytest.raises(AssertionError, match="/console/stray has 0 guards"):
            console_routes(client.app)
    finally:
        client.app.router.routes.pop()
    console_routes(client.app)  # and without it, the table is whole again


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.mark.parametrize("role", sorted(r.value for r in rbac.Role))
def test_every_role_gets_exactly_what_roles_toml_grants(client, container, clock, role):
    staff = add_staff(container, f"matrix.{role.replace('_', '-')}", (role,))
    web = browser(client)

    def fresh_session():
        clock.advance(timedelta(seconds=31))  # a TOTP code is good once
        web.cookies.clear()
        assert sign_in(web, clock, staff.username, staff.totp_secret).status_code == 303

    fresh_session()
    checked = 0
    for method, path, guard in console_routes(client.app):
        if isinstance(guard, PublicPage):
            continue
        expected_forbidden = guard.permission is not None and not rbac.is_allowed([role], guard.permission)
        if method == "GET":
            answer = web.get(_concrete(path))
        else:
            token = csrf(web.get(PREFIX))
            answer = web.request(method, _concrete(path), data={"csrf_token": token})
        assert (answer.status_code == 403) == expected_forbidden, (role, method, path, guard, answer.status_code)
        # Never "sign in first" (the guard knew the session): a post may still end it and send to sign-in.
        assert answer.status_code not in (401, 500) and "next=" not in answer.headers.get("location", "")
        checked += 1
        if method != "GET":
            fresh_session()  # a post may have ended the session (sign out, end a session)
    assert checked == sum(not isinstance(g, PublicPage) for _, _, g in console_routes(client.app))
