"""Which ruleset and which models decide right now, parsed once and reused.

The database says what is active (the ruleset with status ``active``; the models in state ``champion``
and ``challenger``); a fresh install with none falls back to the packaged defaults in ``data/``
(the default ruleset, and the default scorecard trained on synthetic applicants — see docs/model.md).
Each request asks the database for the active versions' ids and hashes (``POLICY_COLUMNS``, which a
credit application reads on its applicant's row) and parses a document only when its hash is new to this
process, so activating a ruleset or promoting a model takes effect on the next application without a restart.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from miaodai.credit.models import ModelState, RulesetStatus, ScoringModel
from miaodai.credit.models import Ruleset as RulesetRow
from miaodai.credit.rules import Ruleset
from miaodai.credit.scorecard import Scorecard, scorer_from_dict


def _packaged(name: str) -> dict:
    return json.loads(resources.files("miaodai.credit").joinpath(f"data/{name}").read_text("utf-8"))


@cache
def default_ruleset() -> Ruleset:
    return Ruleset.from_document(_packaged("default_ruleset.json"))


@cache
def default_scorecard() -> Scorecard:
    return Scorecard.from_dict(_packaged("default_scorecard.json"))


def load_model(artifact: dict) -> Scorecard:
    """A model artifact as a scorer: a points table, or a LightGBM challenger (which needs the model extra)."""
    return scorer_from_dict(artifact)


@dataclass(frozen=True)
class ActivePolicy:
    ruleset: Ruleset
    champion: Scorecard
    challenger: Scorecard | None


def _newest(column: Any, row_id: Any, *where: Any) -> Any:
    """``column`` of the newest row matching ``where``, as a scalar subquery (NULL when none matches)."""
    return select(column).where(*where).order_by(row_id.desc()).limit(1).scalar_subquery()


_ACTIVE_RULESET = (RulesetRow.status == RulesetStatus.ACTIVE,)
_CHAMPION = (ScoringModel.state == ModelState.CHAMPION,)
_CHALLENGER = (ScoringModel.state == ModelState.CHALLENGER,)

# What is active, as columns labelled policy_*: a statement of its own (``PolicyCache.active``), or extra
# columns on a row another statement reads anyway (the credit application's applicant row): no round trip.
POLICY_COLUMNS = (
    _newest(RulesetRow.id, RulesetRow.id, *_ACTIVE_RULESET).label("policy_ruleset_id"),
    _newest(RulesetRow.sha256, RulesetRow.id, *_ACTIVE_RULESET).label("policy_ruleset_sha256"),
    _newest(ScoringModel.id, ScoringModel.id, *_CHAMPION).label("policy_champion_id"),
    _newest(ScoringModel.sha256, ScoringModel.id, *_CHAMPION).label("policy_champion_sha256"),
    _newest(ScoringModel.id, ScoringModel.id, *_CHALLENGER).label("policy_challenger_id"),
    _newest(ScoringModel.sha256, ScoringModel.id, *_CHALLENGER).label("policy_challenger_sha256"),
)
_ACTIVE = select(*POLICY_COLUMNS)


class PolicyCache:
    """Parsed rulesets and models by SHA-256, shared by every request of a process."""

    def __init__(self) -> None:
        self._rulesets: dict[str, Ruleset] = {}
        self._models: dict[str, Scorecard] = {}
        self._lock = threading.Lock()
        self.latest: ActivePolicy | None = None  # what the last call found active (None before the first)

    def active(self, session: Session) -> ActivePolicy:
        """The active ruleset, champion and challenger: one round trip for their ids and digests, parsed
        once per digest (an activation takes effect on the next application)."""
        return self.from_row(session, session.connection().execute(_ACTIVE).one())

    def from_row(self, session: Session, row: Any) -> ActivePolicy:
        """The policy named by a row carrying ``POLICY_COLUMNS``; reads a document only when its digest is new."""
        m = row._mapping
        ruleset, champion, challenger = default_ruleset(), default_scorecard(), None
        if m["policy_ruleset_id"] is not None:
            ruleset = self._ruleset(session, m["policy_ruleset_id"], m["policy_ruleset_sha256"])
        if m["policy_champion_id"] is not None:
            champion = self._model(session, m["policy_champion_id"], m["policy_champion_sha256"])
        if m["policy_challenger_id"] is not None:
            challenger = self._model(session, m["policy_challenger_id"], m["policy_challenger_sha256"])
        self.latest = ActivePolicy(ruleset, champion, challenger)
        return self.latest

    def _ruleset(self, session: Session, row_id: int, sha: str) -> Ruleset:
        found = self._rulesets.get(sha)
        if found is None:
            document = session.execute(select(RulesetRow.document).where(RulesetRow.id == row_id)).scalar_one()
            found = Ruleset.from_document(json.loads(document))
            with self._lock:
                self._rulesets[sha] = found
        return found

    def _model(self, session: Session, row_id: int, sha: str) -> Scorecard:
        found = self._models.get(sha)
        if found is None:
            artifact = session.execute(select(ScoringModel.artifact).where(ScoringModel.id == row_id)).scalar_one()
            found = load_model(json.loads(artifact))
            with self._lock:
                self._models[sha] = found
        return found
