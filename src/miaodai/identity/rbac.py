"""Staff roles and what each may do (pure: no I/O).

Deny by default: a permission is granted only when one of the caller's roles lists it
in :data:`ROLE_PERMISSIONS`. An unknown role grants nothing, an unknown permission is
never granted, and there are no wildcards, so a typo fails closed.

Segregation of duties is visible in the table: administrators manage staff accounts
but neither decide credit nor write loans off; auditors read everything that leaves a
trace but change nothing; revealing personal data is its own permission.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    RISK_REVIEWER = "risk_reviewer"
    RISK_MANAGER = "risk_manager"
    CUSTOMER_SERVICE = "customer_service"
    COLLECTIONS = "collections"
    FINANCE = "finance"
    AUDITOR = "auditor"


class Permission(StrEnum):
    AUDIT_READ = "audit.read"
    STAFF_READ = "staff.read"
    STAFF_MANAGE = "staff.manage"
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


P = Permission

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(
        {P.STAFF_READ, P.STAFF_MANAGE, P.AUDIT_READ, P.BORROWER_READ, P.LOAN_READ, P.REPORT_READ,
         P.PRODUCT_MANAGE}
    ),
    Role.RISK_REVIEWER: frozenset(
        {P.BORROWER_READ, P.REVIEW_READ, P.REVIEW_DECIDE, P.LOAN_READ, P.CREDIT_LINE_PROPOSE}
    ),
    Role.RISK_MANAGER: frozenset(
        {P.BORROWER_READ, P.REVIEW_READ, P.REVIEW_DECIDE, P.REVIEW_APPROVE_OVERRIDE, P.LOAN_READ,
         P.LOAN_WRITE_OFF, P.REPORT_READ, P.CREDIT_LINE_PROPOSE, P.CREDIT_LINE_APPROVE, P.CREDIT_POLICY_PROPOSE,
         P.CREDIT_POLICY_APPROVE}
    ),
    Role.CUSTOMER_SERVICE: frozenset(
        {P.BORROWER_READ, P.BORROWER_REVEAL_PII, P.LOAN_READ, P.COMPLAINT_HANDLE}
    ),
    Role.COLLECTIONS: frozenset({P.BORROWER_READ, P.BORROWER_REVEAL_PII, P.LOAN_READ, P.COLLECTIONS_WORK}),
    Role.FINANCE: frozenset({P.LOAN_READ, P.LEDGER_READ, P.PAYMENT_REFUND, P.REPORT_READ, P.RECON_RESOLVE}),
    Role.AUDITOR: frozenset(
        {P.AUDIT_READ, P.STAFF_READ, P.BORROWER_READ, P.LOAN_READ, P.LEDGER_READ, P.REPORT_READ}
    ),
}

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
