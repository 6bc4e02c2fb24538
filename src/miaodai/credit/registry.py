"""Which ruleset and which models decide right now, parsed once and reused.

The database says what is active (the ruleset with status ``active``; the models in state ``champion``
and ``challenger``); a fresh install with none falls back to the packaged defaults in ``data/``
(the default ruleset, and the default scorecard trained on synthetic applicants — see docs/model.md).
Each request asks the database for the active versions' hashes (two small indexed reads) and parses a
document only when its hash is new to this process, so activating a ruleset or promoting a model takes
effect on the next application without a restart.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources

from sqlalchemy import literal, select, union_all
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


# Read on every application: built once.
_ACTIVE = union_all(
    select(literal("ruleset"), RulesetRow.id, RulesetRow.sha256).where(RulesetRow.status == RulesetStatus.ACTIVE),
    select(ScoringModel.state, ScoringModel.id, ScoringModel.sha256)
    .where(ScoringModel.state.in_((ModelState.CHAMPION, ModelState.CHALLENGER))),
)


class PolicyCache:
    """Parsed rulesets and models by SHA-256, shared by every request of a process."""

    def __init__(self) -> None:
        self._rulesets: dict[str, Ruleset] = {}
        self._models: dict[str, Scorecard] = {}
        self._lock = threading.Lock()

    def active(self, session: Session) -> ActivePolicy:
        """The active ruleset, champion and challenger: one round trip for their ids and digests, parsed
        once per digest (an activation takes effect on the next application)."""
        rows = session.connection().execute(_ACTIVE).all()
        ruleset = default_ruleset()
        champion: Scorecard | None = None
        challenger: Scorecard | None = None
        for kind, row_id, sha in rows:
            if kind == "ruleset":
                ruleset = self._ruleset(session, row_id, sha)
            elif kind == ModelState.CHAMPION:
                champion = self._model(session, row_id, sha)
            else:
                challenger = self._model(session, row_id, sha)
        return ActivePolicy(ruleset, champion or default_scorecard(), challenger)

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
