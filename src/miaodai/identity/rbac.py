"""Staff roles and what each may do.

The permissions are code (each route and use case names the one it needs); the roles are data: each is a set
of permissions with its name and duty in both languages, in ``identity/data/roles.toml``, read once here. A
permission the file names that the code does not know, or a role of :class:`Role` the file lacks (or one it
has that :class:`Role` lacks), stops the import: the service does not start with a typo in who may do what.

Deny by default: a permission is granted only when one of the caller's roles lists it in
:data:`ROLE_PERMISSIONS`. An unknown role grants nothing, an unknown permission is never granted, and there
are no wildcards. Segregation of duties is visible in the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources


class Role(StrEnum):
    ADMIN = "admin"
    RISK_REVIEWER = "risk_reviewer"
    RISK_MANAGER = "risk_manager"
    CUSTOMER_SERVICE = "customer_service"
    COLLECTIONS = "collections"
    FINANCE = "finance"
    COMPLIANCE = "compliance"
    AUDITOR = "auditor"


class Permission(StrEnum):
    AUDIT_READ = "audit.read"
    STAFF_READ = "staff.read"
    STAFF_MANAGE = "staff.manage"
    # The checker's side of a staff-account change (create, disable, reset, grant, revoke).
    STAFF_APPROVE = "staff.approve"
    BORROWER_READ = "borrower.read"
    BORROWER_REVEAL_PII = "borrower.reveal_pii"
    REVIEW_READ = "review.read"
    REVIEW_DECIDE = "review.decide"
    # The checker's side of maker-checker: approving another reviewer's override.
    REVIEW_APPROVE_OVERRIDE = "review.approve_override"
    LOAN_READ = "loan.read"
    LOAN_WRITE_OFF = "loan.write_off"
    COLLECTIONS_WORK = "collections.work"
    PAYMENT_REFUND = "payment.refund"
    LEDGER_READ = "ledger.read"
    COMPLAINT_HANDLE = "complaint.handle"
    REPORT_READ = "report.read"
    PRODUCT_MANAGE = "product.manage"
    # Maker-checker on manual credit lines: one proposes, a different staff member approves.
    CREDIT_LINE_PROPOSE = "credit_line.propose"
    CREDIT_LINE_APPROVE = "credit_line.approve"
    # Maker-checker on credit policy: proposing a ruleset or a model change, and approving another's.
    CREDIT_POLICY_PROPOSE = "credit_policy.propose"
    CREDIT_POLICY_APPROVE = "credit_policy.approve"
    # Closing a reconciliation exception (对账差异) with what was done about it.
    RECON_RESOLVE = "recon.resolve"
    # Maker-checker on servicing actions (waivers, line freezes and limits, account closure): propose, approve.
    SERVICING_PROPOSE = "servicing.propose"
    SERVICING_APPROVE = "servicing.approve"


@dataclass(frozen=True)
class RoleInfo:
    """A role as people read it: its name and duty by locale (``zh_CN``, ``en``), and its permissions."""

    role: Role
    name: dict[str, str]
    duty: dict[str, str]
    permissions: frozenset[Permission]


def _load_roles() -> dict[Role, RoleInfo]:
    document = tomllib.loads(resources.files("miaodai.identity").joinpath("data/roles.toml").read_text("utf-8"))
    table = document["roles"]
    if set(table) != {role.value for role in Role}:
        raise ValueError(f"roles.toml lists {sorted(table)}, the code knows {sorted(r.value for r in Role)}")
    known = {p.value for p in Permission}
    loaded: dict[Role, RoleInfo] = {}
    for key, entry in table.items():
        unknown = set(entry["permissions"]) - known
        if unknown:
            raise ValueError(f"roles.toml: role {key!r} lists unknown permissions {sorted(unknown)}")
        loaded[Role(key)] = RoleInfo(Role(key), dict(entry["name"]), dict(entry["duty"]),
                                     frozenset(Permission(p) for p in entry["permissions"]))
    return loaded


ROLES: dict[Role, RoleInfo] = _load_roles()
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {role: info.permissions for role, info in ROLES.items()}

KNOWN_ROLES = frozenset(role.value for role in Role)
KNOWN_PERMISSIONS = frozenset(permission.value for permission in Permission)


def is_known_role(role: str) -> bool:
    return role in KNOWN_ROLES


def is_known_permission(permission: str) -> bool:
    return permission in KNOWN_PERMISSIONS


def permissions_for(roles: Iterable[str]) -> frozenset[str]:
    """Every permission the roles grant together; unknown roles add nothing."""
    granted: set[str] = set()
    for role in roles:
        if is_known_role(role):
            granted.update(p.value for p in ROLE_PERMISSIONS[Role(role)])
    return frozenset(granted)


def is_allowed(roles: Iterable[str], permission: str) -> bool:
    """True only if a known role explicitly grants this known permission."""
    return is_known_permission(permission) and permission in permissions_for(roles)
