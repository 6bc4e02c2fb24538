"""Which ruleset and which models decide right now, parsed once and reused.

The database says what is active (the ruleset with status ``active``; the models in state ``champion``
and ``challenger``); a fresh install with none falls back to the packaged defaults in ``data/``
(the default ruleset, and the default scorecard trained on synthetic applicants — see docs/model.md).
Each request asks the database for the active versions' hashes (``POLICY_COLUMNS``, which a
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
from miaodai.credit.scorecard import Scorecard
from miaodai.credit.scorers import scorer_from_dict
from miaodai.loans.overdue import DelinquencyPolicy


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

# What is active, as the digests of its documents in columns labelled policy_*: a statement of its own
# (``PolicyCache.active``), or extra columns on a row another statement reads anyway (the credit
# application's applicant row): no round trip. A digest names its document's content, so a document is
# read (by its digest) only the first time a process meets it.
POLICY_COLUMNS = (
    _newest(RulesetRow.sha256, RulesetRow.id, *_ACTIVE_RULESET).label("policy_ruleset_sha256"),
    _newest(ScoringModel.sha256, ScoringModel.id, *_CHAMPION).label("policy_champion_sha256"),
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
        """The active ruleset, champion and challenger: one round trip for their digests, parsed once per
        digest (an activation takes effect on the next application)."""
        return self.from_row(session, session.connection().execute(_ACTIVE).one())

    def from_row(self, session: Session, row: Any) -> ActivePolicy:
        """The policy named by a row carrying ``POLICY_COLUMNS``; reads a document only when its digest is new."""
        m = row._mapping
        ruleset_sha, champion_sha, challenger_sha = (
            m["policy_ruleset_sha256"], m["policy_champion_sha256"], m["policy_challenger_sha256"])
        self.latest = ActivePolicy(
            self._ruleset(session, ruleset_sha) if ruleset_sha is not None else default_ruleset(),
            self._model(session, champion_sha) if champion_sha is not None else default_scorecard(),
            self._model(session, challenger_sha) if challenger_sha is not None else None,
        )
        return self.latest

    # The loans domain's port for the delinquency policy (loans.ports.ActiveDelinquencyPolicy).
    def policy_columns(self) -> tuple[Any, ...]:
        return POLICY_COLUMNS

    def delinquency_of(self, session: Session, row: Any | None) -> tuple[DelinquencyPolicy, str]:
        ruleset = self.from_row(session, row).ruleset if row is not None else default_ruleset()
        return ruleset.delinquency, ruleset.version

    def _ruleset(self, session: Session, sha: str) -> Ruleset:
        found = self._rulesets.get(sha)
        if found is None:
            document = session.execute(
                select(RulesetRow.document).where(RulesetRow.sha256 == sha).limit(1)).scalar_one()
            found = Ruleset.from_document(json.loads(document))
            with self._lock:
                self._rulesets[sha] = found
        return found

    def _model(self, session: Session, sha: str) -> Scorecard:
        found = self._models.get(sha)
        if found is None:
            artifact = session.execute(
                select(ScoringModel.artifact).where(ScoringModel.sha256 == sha).limit(1)).scalar_one()
            found = load_model(json.loads(artifact))
            with self._lock:
                self._models[sha] = found
        return found
