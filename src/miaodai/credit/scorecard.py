"""Scoring a scorecard (评分卡) in plain Python: a versioned JSON points table, no pandas, no pickle.

The artifact (``format: miaodai.scorecard/1``, written by ``miaodai model train``; docs/model.md has
the full schema): each variable has bins with points — numeric bins are right-open (``value < upper``;
the last bin's ``upper`` is null, +inf, as optbinning splits), categorical bins list their categories
(compared as strings) — plus ``missing_points`` for an absent, None or NaN value and, for categories,
``other_points`` for one not seen in training. The score is the sum of the variables' points (the
intercept is spread over the variables, as optbinning's Scorecard does). PD comes from the calibration
table (score → observed bad rate, interpolated linearly between points, clamped at the ends), the
grade from PD (the first grade whose ``max_pd`` is not exceeded).

Reason codes: the variables whose points fell furthest below the best points that variable can give
(over its bins, missing and other), top four, only real shortfalls — "what would raise my score" —
ordered by shortfall, then name.

Loading validates the whole document and says what is wrong (:class:`ScorecardFormatError`); scoring
is then a dictionary lookup or a bisection per variable: microseconds, safe to share between threads.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "miaodai.scorecard/1"
TOP_REASONS = 4
MAX_MODEL_ID_LENGTH = 64
# Where a value falls, for monitoring (feature_distributions): a bin's index, or one of these.
MISSING_BIN = "missing"
OTHER_BIN = "other"


class ScorecardFormatError(ValueError):
    """The artifact is not a valid points table; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Reason:
    variable: str
    points: float
    best_points: float
    shortfall: float


@dataclass(frozen=True, slots=True)
class ScoreResult:
    score: float
    pd: float
    grade: str
    points: dict[str, float]
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class Scaling:
    """Points to double the odds, and the score at which the good:bad odds are ``base_odds``."""

    pdo: float
    base_score: float
    base_odds: float

    def score_of_pd(self, pd: float) -> float:
        """The score a PD maps to on this scale (used by models that predict PD directly)."""
        pd = min(max(pd, 1e-9), 1 - 1e-9)
        return self.base_score + self.pdo / math.log(2) * (math.log((1 - pd) / pd) - math.log(self.base_odds))


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True, slots=True)
class _Variable:
    name: str
    numeric: bool
    uppers: tuple[float, ...]  # numeric: the finite upper edges, ascending
    bin_points: tuple[float, ...]  # numeric: one more than uppers (the last bin is open-ended)
    categories: Mapping[str, int]  # categorical: category -> bin index
    category_points: tuple[float, ...]  # categorical: points of each bin
    missing_points: float
    other_points: float
    best: float

    def bin_of(self, value: Any) -> int | str:
        if is_missing(value):
            return MISSING_BIN
        if self.numeric:
            try:
                number = float(value)
            except (TypeError, ValueError):
                return MISSING_BIN
            if math.isnan(number):
                return MISSING_BIN
            return bisect.bisect_right(self.uppers, number)
        return self.categories.get(str(value), OTHER_BIN)

    def points_for(self, value: Any) -> float:
        where = self.bin_of(value)
        if where == MISSING_BIN:
            return self.missing_points
        if where == OTHER_BIN:
            return self.other_points
        return (self.bin_points if self.numeric else self.category_points)[where]  # type: ignore[index]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScorecardFormatError(f"{where} must be a finite number, not {value!r}")
    return float(value)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScorecardFormatError(f"{where} must be an object, not {value!r:.60}")
    return value


def _list(value: Any, where: str, at_least: int = 1) -> list[Any]:
    if not isinstance(value, list) or len(value) < at_least:
        raise ScorecardFormatError(f"{where} must be a list of at least {at_least}")
    return value


def _numeric_variable(name: str, bins: list[Any], missing: float) -> _Variable:
    uppers: list[float] = []
    points: list[float] = []
    for i, raw in enumerate(bins):
        b = _mapping(raw, f"variable {name!r} bin {i}")
        points.append(_number(b.get("points"), f"variable {name!r} bin {i} points"))
        upper = b.get("upper")
        if upper is None:
            if i != len(bins) - 1:
                raise ScorecardFormatError(f"variable {name!r}: only the last bin may have upper null")
        else:
            uppers.append(_number(upper, f"variable {name!r} bin {i} upper"))
    if bins[-1].get("upper") is not None:
        raise ScorecardFormatError(f"variable {name!r}: the last bin must have upper null (+inf)")
    if any(a >= b for a, b in zip(uppers, uppers[1:], strict=False)):
        raise ScorecardFormatError(f"variable {name!r}: bin edges must increase")
    return _Variable(name, True, tuple(uppers), tuple(points), {}, (), missing, missing, max(*points, missing))


def _categorical_variable(name: str, spec: Mapping[str, Any], bins: list[Any], missing: float) -> _Variable:
    categories: dict[str, int] = {}
    points: list[float] = []
    for i, raw in enumerate(bins):
        b = _mapping(raw, f"variable {name!r} bin {i}")
        cats = b.get("categories")
        if not isinstance(cats, list) or not cats:
            raise ScorecardFormatError(f"variable {name!r} bin {i}: categories must be a non-empty list")
        points.append(_number(b.get("points"), f"variable {name!r} bin {i} points"))
        for category in cats:
            if str(category) in categories:
                raise ScorecardFormatError(f"variable {name!r}: category {category!r} is in two bins")
            categories[str(category)] = i
    other = _number(spec.get("other_points", missing), f"variable {name!r} other_points")
    return _Variable(name, False, (), (), categories, tuple(points), missing, other, max(*points, missing, other))


def _variable(raw: Any) -> _Variable:
    spec = _mapping(raw, "a variable")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ScorecardFormatError(f"a variable has no name: {spec!r:.80}")
    kind = spec.get("kind")
    if kind not in ("numeric", "categorical"):
        raise ScorecardFormatError(f"variable {name!r}: kind must be numeric or categorical, not {kind!r}")
    bins = _list(spec.get("bins"), f"variable {name!r}: bins")
    missing = _number(spec.get("missing_points"), f"variable {name!r} missing_points")
    if kind == "numeric":
        return _numeric_variable(name, bins, missing)
    return _categorical_variable(name, spec, bins, missing)


def parse_scaling(raw: Any) -> Scaling:
    spec = _mapping(raw, "scaling")
    values = {key: _number(spec.get(key), f"scaling {key}") for key in ("pdo", "base_score", "base_odds")}
    if values["pdo"] <= 0 or values["base_odds"] <= 0:
        raise ScorecardFormatError("scaling pdo and base_odds must be positive")
    return Scaling(**values)


class Calibration:
    """Score → PD (linear between the points, clamped at the ends) and PD → grade."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        points = [_mapping(p, "a calibration point") for p in _list(document.get("calibration"), "calibration", 2)]
        self.scores = tuple(_number(p.get("score"), "calibration score") for p in points)
        self.pds = tuple(_number(p.get("pd"), "calibration pd") for p in points)
        if any(a >= b for a, b in zip(self.scores, self.scores[1:], strict=False)):
            raise ScorecardFormatError("calibration scores must increase")
        if any(not 0 <= p <= 1 for p in self.pds):
            raise ScorecardFormatError("calibration pd must be within 0..1")
        if any(a < b for a, b in zip(self.pds, self.pds[1:], strict=False)):
            raise ScorecardFormatError("calibration pd must not increase with the score")
        grades = [_mapping(g, "a grade") for g in _list(document.get("grades"), "grades")]
        self.grades = tuple((g.get("grade"), _number(g.get("max_pd"), "grade max_pd")) for g in grades)
        names = [name for name, _ in self.grades]
        if any(not isinstance(name, str) or not name for name in names) or len(set(names)) != len(names):
            raise ScorecardFormatError("grades need distinct, non-empty names")
        if any(a[1] >= b[1] for a, b in zip(self.grades, self.grades[1:], strict=False)) or self.grades[-1][1] < 1:
            raise ScorecardFormatError("grades' max_pd must increase and the last must be 1.0")

    def pd_of(self, score: float) -> float:
        scores, pds = self.scores, self.pds
        if score <= scores[0]:
            return pds[0]
        if score >= scores[-1]:
            return pds[-1]
        i = bisect.bisect_right(scores, score)
        s0, s1, p0, p1 = scores[i - 1], scores[i], pds[i - 1], pds[i]
        return p0 + (p1 - p0) * (score - s0) / (s1 - s0)

    def grade_of(self, pd: float) -> str:
        for grade, max_pd in self.grades:
            if pd <= max_pd:
                return grade
        return self.grades[-1][0]


def model_id_of(document: Mapping[str, Any]) -> str:
    model_id = document.get("model_id")
    if not isinstance(model_id, str) or not 0 < len(model_id) <= MAX_MODEL_ID_LENGTH:
        raise ScorecardFormatError(f"model_id must be a string of 1-{MAX_MODEL_ID_LENGTH} characters")
    return model_id


def canonical_sha256(document: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON bytes (sorted keys, no spaces, UTF-8): the model's fingerprint."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Scorecard:
    """A loaded points table: build once (``from_dict``/``load``), score many times."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        if not isinstance(document, Mapping) or document.get("format") != FORMAT:
            raise ScorecardFormatError(f"format must be {FORMAT!r}")
        document = dict(document)
        self.model_id = model_id_of(document)
        self._variables = tuple(_variable(v) for v in _list(document.get("variables"), "variables"))
        names = [v.name for v in self._variables]
        if len(set(names)) != len(names):
            raise ScorecardFormatError("a variable appears twice")
        self._by_name = {v.name: v for v in self._variables}
        self._calibration = Calibration(document)
        self.scaling = parse_scaling(document["scaling"]) if "scaling" in document else None
        self.document = document
        self.sha256 = canonical_sha256(document)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Scorecard:
        return cls(document)

    @classmethod
    def load(cls, path: str | Path) -> Scorecard:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(v.name for v in self._variables)

    @property
    def grades(self) -> tuple[str, ...]:
        return tuple(g for g, _ in self._calibration.grades)

    def pd_of(self, score: float) -> float:
        return self._calibration.pd_of(score)

    def grade_of(self, pd: float) -> str:
        return self._calibration.grade_of(pd)

    def bin_of(self, variable: str, value: Any) -> int | str:
        """Which bin of ``variable`` a value falls in: its index in ``bins``, ``"missing"`` or ``"other"``."""
        return self._by_name[variable].bin_of(value)

    def score(self, features: Mapping[str, Any]) -> ScoreResult:
        points = {v.name: v.points_for(features.get(v.name)) for v in self._variables}
        total = round(sum(points.values()), 2)
        shortfalls = sorted(
            ((v.best - points[v.name], v.name, v.best) for v in self._variables if v.best - points[v.name] > 1e-9),
            key=lambda item: (-item[0], item[1]),
        )
        reasons = tuple(Reason(name, round(points[name], 4), round(best, 4), round(gap, 4))
                        for gap, name, best in shortfalls[:TOP_REASONS])
        pd = round(self.pd_of(total), 6)
        return ScoreResult(score=total, pd=pd, grade=self.grade_of(pd), points=points, reasons=reasons)
