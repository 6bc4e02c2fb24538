"""The registry of maker-checker servicing actions (miaodai.backoffice.actions), checked against the roles as
data: every servicing kind the API proposes is registered, can be proposed by one role and approved by a role,
and read-only or staff-only duties (auditor, compliance, administrator) neither propose nor approve money moves."""

from __future__ import annotations

from miaodai.backoffice.actions import ACTIONS, ActionKind
from miaodai.backoffice.api_approvals import _PARAMS
from miaodai.identity.rbac import ROLE_PERMISSIONS, Role

SERVICING = (ActionKind.REFUND, ActionKind.REPAYMENT_REVERSAL, ActionKind.WRITE_OFF, ActionKind.PENALTY_WAIVER,
             ActionKind.LINE_FREEZE, ActionKind.LINE_UNFREEZE, ActionKind.LINE_LIMIT, ActionKind.ACCOUNT_CLOSURE)


def roles_with(permission) -> set[Role]:
    return {role for role, granted in ROLE_PERMISSIONS.items() if permission in granted}


def test_every_kind_is_registered_under_its_own_name():
    assert set(ACTIONS) == set(ActionKind)
    assert all(action.kind is kind and action.name_zh and action.name_en for kind, action in ACTIONS.items())
    assert set(SERVICING) == set(_PARAMS)  # the preview route takes each servicing kind's parameters


def test_each_servicing_kind_has_a_maker_and_a_checker_and_no_read_only_role_is_either():
    for kind in SERVICING:
        action = ACTIONS[kind]
        assert roles_with(action.propose_permission), kind
        assert roles_with(action.approve_permission), kind
        for role in (Role.AUDITOR, Role.COMPLIANCE, Role.ADMIN):
            assert role not in roles_with(action.approve_permission) | roles_with(action.propose_permission), (
                kind, role)
