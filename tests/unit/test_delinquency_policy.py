"""The credit policy's ``delinquency`` section: read from the versioned ruleset (defaults for documents written
before it existed, anything unknown refused when the ruleset is loaded), and what it makes of a borrower's
installments past due — overdue after grace by default, from the day after the due date when the policy says so."""

from __future__ import annotations

import copy
from datetime import date

import pytest

from miaodai.credit.registry import default_ruleset
from miaodai.credit.rules import Ruleset, RulesetError
from miaodai.loans.overdue import DelinquencyPolicy, LineWhileOverdue, OverdueFrom, OverdueLoan, Standing


def document(**delinquency) -> dict:
    doc = copy.deepcopy(dict(default_ruleset().document))
    doc["delinquency"] = delinquency
    return doc


def test_the_packaged_ruleset_freezes_the_line_after_grace():
    policy = default_ruleset().delinquency
    assert (policy.line_while_overdue, policy.overdue_from) == (LineWhileOverdue.FREEZE, OverdueFrom.AFTER_GRACE)
    assert default_ruleset().document["delinquency"] == {"line_while_overdue": "freeze", "overdue_from": "after_grace"}


def test_an_older_document_without_the_section_keeps_the_default():
    older = copy.deepcopy(dict(default_ruleset().document))
    del older["delinquency"]
    assert Ruleset.from_document(older).delinquency == DelinquencyPolicy()
    assert Ruleset.from_document(document(overdue_from="after_due_date")).delinquency.overdue_from \
        is OverdueFrom.AFTER_DUE_DATE


@pytest.mark.parametrize("section", [{"line_while_overdue": "keep"}, {"overdue_from": "after_30_days"},
                                     {"grace": 5}])
def test_an_unknown_setting_is_refused_when_the_ruleset_is_loaded(section):
    with pytest.raises(RulesetError, match="delinquency"):
        Ruleset.from_document(document(**section))
    with pytest.raises(RulesetError, match="delinquency"):
        Ruleset.from_document(copy.deepcopy(dict(default_ruleset().document)) | {"delinquency": "freeze"})


def standing(policy: DelinquencyPolicy, *late: tuple[int, int]) -> Standing:
    loans = tuple(OverdueLoan(n, days, grace, 10_000) for n, (days, grace) in enumerate(late, 1))
    return Standing(today=date(2027, 1, 10), policy=policy, ruleset_version="v", loans=loans)


def test_overdue_is_past_grace_by_default_and_past_the_due_date_when_the_policy_says_so():
    default, strict = DelinquencyPolicy(), DelinquencyPolicy(overdue_from=OverdueFrom.AFTER_DUE_DATE)
    assert not standing(default).past_due and not standing(default).line_frozen
    within = standing(default, (3, 3))  # the last day of 3 days of grace
    assert within.past_due and not within.overdue and not within.line_frozen
    past = standing(default, (3, 3), (4, 3))  # one loan past its grace
    assert past.overdue and past.line_frozen and past.days_past_due == 4 and past.owed_now_fen == 20_000
    assert standing(strict, (1, 3)).line_frozen  # the day after the due date


def test_the_drawdowns_standing_statement_is_one_cached_statement_on_postgresql():
    """The drawdown reads the standing on every request: it must fit psycopg's statement cache and expand no IN."""
    from psycopg import _queries
    from sqlalchemy.dialects.postgresql import psycopg as pg_dialect

    from miaodai.credit.registry import POLICY_COLUMNS
    from miaodai.loans.line_service import _standing_statement

    sql = str(_standing_statement(POLICY_COLUMNS).compile(dialect=pg_dialect.dialect()))
    assert len(sql.encode()) <= getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", 4096)
    # the whole, the policy row and its three digests, the loans with something due
    assert "POSTCOMPILE" not in sql and sql.count("SELECT") == 6
