"""Staff roles and permissions: deny by default, segregation of duties."""

from __future__ import annotations

import pytest

from miaodai.identity import rbac
from miaodai.identity.rbac import Permission, Role


def test_every_role_has_an_entry_and_only_known_permissions():
    assert set(rbac.ROLE_PERMISSIONS) == set(Role)
    for permissions in rbac.ROLE_PERMISSIONS.values():
        assert permissions <= set(Permission)


def test_an_auditor_reads_the_audit_log_but_changes_nothing():
    assert rbac.is_allowed(["auditor"], "audit.read")
    for write in ("staff.manage", "review.decide", "loan.write_off", "payment.refund", "borrower.reveal_pii"):
        assert not rbac.is_allowed(["auditor"], write)


def test_an_admin_manages_staff_but_does_not_decide_credit_or_write_loans_off():
    assert rbac.is_allowed(["admin"], "staff.manage")
    assert not rbac.is_allowed(["admin"], "review.decide")
    assert not rbac.is_allowed(["admin"], "loan.write_off")


def test_only_a_risk_manager_approves_overrides_and_writes_loans_off():
    holders = {role for role, perms in rbac.ROLE_PERMISSIONS.items() if Permission.LOAN_WRITE_OFF in perms}
    assert holders == {Role.RISK_MANAGER}
    assert rbac.is_allowed(["risk_manager"], "review.approve_override")
    assert not rbac.is_allowed(["risk_reviewer"], "review.approve_override")


def test_roles_combine():
    combined = rbac.permissions_for(["finance", "customer_service"])
    assert {"payment.refund", "complaint.handle", "borrower.reveal_pii"} <= combined


@pytest.mark.parametrize("roles", [[], ["superuser"], ["ADMIN"], ["admin "], ["*"]])
def test_unknown_or_missing_roles_grant_nothing(roles):
    assert rbac.permissions_for(roles) == frozenset()
    assert not rbac.is_allowed(roles, "audit.read")


@pytest.mark.parametrize("permission", ["audit", "audit.*", "*", "", "audit.read ", "AUDIT.READ", "root"])
def test_unknown_permissions_are_never_granted(permission):
    every_role = [role.value for role in Role]
    assert not rbac.is_allowed(every_role, permission)


def test_require_permission_refuses_a_typo_when_the_router_is_defined():
    from miaodai.identity.staff_deps import require_permission

    with pytest.raises(ValueError, match="unknown permission"):
        require_permission("audit.raed")
    assert callable(require_permission("audit.read"))


def test_roles_are_data_with_a_name_and_duty_in_both_languages():
    for info in rbac.ROLES.values():
        assert set(info.name) == set(info.duty) == {"zh_CN", "en"}
        assert all(text.strip() for text in (*info.name.values(), *info.duty.values()))
    assert rbac.ROLES[Role.COMPLIANCE].name["en"] == "Compliance officer"


def test_a_roles_file_naming_an_unknown_permission_stops_the_import(monkeypatch):
    original = rbac.resources.files

    class Doctored:
        def __init__(self, real):
            self._real = real

        def joinpath(self, name):
            return self

        def read_text(self, encoding):
            text = self._real.joinpath("data/roles.toml").read_text(encoding)
            return text.replace('"staff.read", "staff.manage"', '"staff.read", "staff.manage", "staff.everything"')

    monkeypatch.setattr(rbac.resources, "files", lambda package: Doctored(original(package)))
    with pytest.raises(ValueError, match="staff.everything"):
        rbac._load_roles()


def test_the_compliance_officer_reads_and_reveals_but_moves_nothing():
    for read in ("audit.read", "borrower.reveal_pii", "report.read"):
        assert rbac.is_allowed(["compliance"], read)
    for write in ("staff.manage", "review.decide", "loan.write_off", "payment.refund", "servicing.propose",
                  "servicing.approve", "recon.resolve"):
        assert not rbac.is_allowed(["compliance"], write)
