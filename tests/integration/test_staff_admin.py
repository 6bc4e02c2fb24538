"""Administering staff accounts (identity/staff_admin.py): the rules that hold whoever approves the change —
never on oneself, two administrators remain, a reset or a disable ends the account's sessions."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest

from miaodai.core.errors import DomainError
from miaodai.identity import staff_admin, staff_service
from miaodai.identity.staff_service import Scope
from tests.console_support import PASSWORD, add_staff

pytestmark = pytest.mark.usefixtures("fast_staff_hasher")


def _change(container, staff_id, change, actor="staff:999", role=None):
    with container.db.transaction() as session:
        return staff_admin.change_in(session, container, staff_id, change, actor=actor, role=role)


def _login(container, clock, username, secret, password=PASSWORD, scope=Scope.API):
    return staff_service.login(container, username=username, password=password,
                               totp_code=pyotp.TOTP(secret).at(clock.now()), scope=scope)


def test_a_created_account_must_set_itself_up_and_its_password_is_shown_once(container, clock):
    with container.db.transaction() as session:
        applied = staff_admin.create_in(session, container, username="New.Agent", display_name="New Agent",
                                        roles=["collections"], actor="staff:1")
    assert applied.username == "new.agent" and len(applied.one_time_password) >= 20
    first = staff_service.login(container, username="new.agent", password=applied.one_time_password, totp_code="",
                                scope=Scope.CONSOLE)
    assert first.setup_required
    rows = {row.username: row for row in staff_admin.directory(container)}
    assert rows["new.agent"].must_change_password and not rows["new.agent"].totp_enrolled


def test_nobody_changes_their_own_account(container):
    admin = add_staff(container, "adm.one", ("admin",))
    with pytest.raises(DomainError) as refused:
        _change(container, admin.staff_id, "grant_role", actor=f"staff:{admin.staff_id}", role="finance")
    assert refused.value.code == "STAFF_NOT_ON_ONESELF"
    with container.db.transaction() as session, pytest.raises(DomainError) as by_maker:
        staff_admin.change_in(session, container, admin.staff_id, "reset_totp", actor="staff:999",
                              makers=(f"staff:{admin.staff_id}",))
    assert by_maker.value.code == "STAFF_NOT_ON_ONESELF"


def test_two_administrators_always_remain(container):
    one, two, three = (add_staff(container, f"adm.{n}", ("admin",)) for n in ("a", "b", "c"))
    _change(container, three.staff_id, "disable")  # three → two: allowed
    for change, role in (("disable", None), ("revoke_role", "admin")):
        with pytest.raises(DomainError) as refused:
            _change(container, two.staff_id, change, role=role)
        assert refused.value.code == "STAFF_LAST_ADMINISTRATORS"
    _change(container, two.staff_id, "grant_role", role="auditor")  # other roles come and go freely
    _change(container, two.staff_id, "revoke_role", role="auditor")
    assert [r.active for r in staff_admin.directory(container)] == [True, True, False]
    assert one.staff_id


def test_a_reset_or_a_disable_ends_the_accounts_sessions(container, clock):
    agent = add_staff(container, "agent.one", ("collections",))
    token = _login(container, clock, "agent.one", agent.totp_secret).token

    def alive():
        with container.db.transaction() as session:
            return staff_service.authenticate(session, token, pepper=container.settings.session_pepper,
                                              now=clock.now()) is not None

    assert alive()
    applied = _change(container, agent.staff_id, "reset_password")
    assert not alive() and applied.one_time_password
    with pytest.raises(DomainError):  # the old password is gone
        _login(container, clock, "agent.one", agent.totp_secret)
    clock.advance(timedelta(seconds=31))  # a fresh code: each is good once
    console = staff_service.login(container, username="agent.one", password=applied.one_time_password,
                                  totp_code=pyotp.TOTP(agent.totp_secret).at(clock.now()), scope=Scope.CONSOLE)
    assert console.setup_required  # and the new one must be changed at once
    _change(container, agent.staff_id, "reset_totp")
    _change(container, agent.staff_id, "disable")
    with pytest.raises(DomainError) as disabled:
        _login(container, clock, "agent.one", agent.totp_secret, password=applied.one_time_password)
    assert disabled.value.code == "STAFF_ACCOUNT_INACTIVE"
    with pytest.raises(DomainError) as again:
        _change(container, agent.staff_id, "disable")
    assert again.value.code == "STAFF_CHANGE_CHANGES_NOTHING"
