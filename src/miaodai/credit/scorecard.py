"""Scoring a scorecard (评分卡) in plain Python: a versioned JSON points table, no pandas, no pickle.

The artifact (``format: miaodai.scorecard/1``, written by ``miaodai model train``; see docs/model.md):
each variable has bins with points — numeric bins are right-open (``value < upper``; the last bin's
``upper`` is null, +inf), categorical bins list their categories — plus ``missing_points`` for an
unknown value and, for categories, ``other_points`` for one not seen in training. The score is the sum
of the variables' points (the intercept is spread over the variables). PD comes from the calibration
table (score → observed bad rate, interpolated linearly, clamped at the ends), the grade from PD.

Reason codes: the variables whose points fell furthest below the best points that variable can give,
top four, only real shortfalls — "what would raise my score".
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
class _Variable:
    name: str
    numeric: bool
    uppers: tuple[float, ...]  # numeric: the finite upper edges, ascending
    bin_points: tuple[float, ...]  # numeric: one more than uppers (the last bin is open-ended)
    categories: Mapping[str, float]  # categorical: category -> points
    missing_points: float
    other_points: float
    best: float

    def points_for(self, value: Any) -> float:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return self.missing_points
        if self.numeric:
            try:
                number = float(value)
            except (TypeError, ValueError):
                return self.missing_points
            if math.isnan(number):
                return self.missing_points
            return self.bin_points[bisect.bisect_right(self.uppers, number)]
        return self.categories.get(str(value), self.other_points)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScorecardFormatError(f"{where} must be a finite number, not {value!r}")
    return float(value)


def _variable(spec: Mapping[str, Any]) -> _Variable:
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise ScorecardFormatError(f"a variable has no name: {spec!r:.80}")
    kind, bins = spec.get("kind"), spec.get("bins")
    if kind not in ("numeric", "categorical"):
        raise ScorecardFormatError(f"variable {name!r}: kind must be numeric or categorical")
    if not isinstance(bins, list) or not bins:
        raise ScorecardFormatError(f"variable {name!r}: bins must be a non-empty list")
    missing = _number(spec.get("missing_points"), f"variable {name!r} missing_points")
    if kind == "numeric":
        uppers, points = [], []
        for i, b in enumerate(bins):
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
        all_points = [*points, missing]
        return _Variable(name, True, tuple(uppers), tuple(points), {}, missing, missing, max(all_points))
    categories: dict[str, float] = {}
    for i, b in enumerate(bins):
        cats = b.get("categories")
        if not isinstance(cats, list) or not cats:
            raise ScorecardFormatError(f"variable {name!r} bin {i}: categories must be a non-empty list")
        value = _number(b.get("points"), f"variable {name!r} bin {i} points")
        for category in cats:
            if str(category) in categories:
                raise ScorecardFormatError(f"variable {name!r}: category {category!r} is in two bins")
            categories[str(category)] = value
    other = _number(spec.get("other_points", missing), f"variable {name!r} other_points")
    return _Variable(name, False, (), (), categories, missing, other, max([*categories.values(), missing, other]))


class Scorecard:
    """A loaded points table: build once (``from_dict``/``load``), score many times."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        if not isinstance(document, Mapping) or document.get("format") != FORMAT:
            raise ScorecardFormatError(f"format must be {FORMAT!r}")
        model_id = document.get("model_id")
        if not isinstance(model_id, str) or not 0 < len(model_id) <= 64:
            raise ScorecardFormatError("model_id must be a string of 1-64 characters")
        variables = document.get("variables")
        if not isinstance(variables, list) or not variables:
            raise ScorecardFormatError("variables must be a non-empty list")
        self._variables = tuple(_variable(v) for v in variables)
        names = [v.name for v in self._variables]
        if len(set(names)) != len(names):
            raise ScorecardFormatError("a variable appears twice")
        calibration = document.get("calibration")
        if not isinstance(calibration, list) or len(calibration) < 2:
            raise ScorecardFormatError("calibration needs at least two points")
        self._cal_scores = tuple(_number(p.get("score"), "calibration score") for p in calibration)
        self._cal_pds = tuple(_number(p.get("pd"), "calibration pd") for p in calibration)
        if any(a >= b for a, b in zip(self._cal_scores, self._cal_scores[1:], strict=False)):
            raise ScorecardFormatError("calibration scores must increase")
        if any(not 0 <= p <= 1 for p in self._cal_pds):
            raise ScorecardFormatError("calibration pd must be within 0..1")
        grades = document.get("grades")
        if not isinstance(grades, list) or not grades:
            raise ScorecardFormatError("grades must be a non-empty list")
        self._grades = tuple((str(g.get("grade")), _number(g.get("max_pd"), "grade max_pd")) for g in grades)
        if any(a[1] >= b[1] for a, b in zip(self._grades, self._grades[1:], strict=False)) or self._grades[-1][1] < 1:
            raise ScorecardFormatError("grades' max_pd must increase and the last must be 1.0")
        self.model_id = model_id
        self.document = document
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        self.sha256 = hashlib.sha256(canonical.encode()).hexdigest()

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
        return tuple(g for g, _ in self._grades)

    def pd_of(self, score: float) -> float:
        scores, pds = self._cal_scores, self._cal_pds
        if score <= scores[0]:
            return pds[0]
        if score >= scores[-1]:
            return pds[-1]
        i = bisect.bisect_right(scores, score)
        s0, s1, p0, p1 = scores[i - 1], scores[i], pds[i - 1], pds[i]
        return p0 + (p1 - p0) * (score - s0) / (s1 - s0)

    def grade_of(self, pd: float) -> str:
        for grade, max_pd in self._grades:
            if pd <= max_pd:
                return grade
        return self._grades[-1][0]

    def score(self, features: Mapping[str, Any]) -> ScoreResult:
        points = {v.name: v.points_for(features.get(v.name)) for v in self._variables}
        total = round(sum(points.values()), 2)
        shortfalls = sorted(
            ((v.best - points[v.name], v.name, v) for v in self._variables if v.best - points[v.name] > 1e-9),
            key=lambda item: (-item[0], item[1]),
        )
        reasons = tuple(Reason(name, round(points[name], 4), round(v.best, 4), round(gap, 4))
                        for gap, name, v in shortfalls[:TOP_REASONS])
        pd = round(self.pd_of(total), 6)
        return ScoreResult(score=total, pd=pd, grade=self.grade_of(pd), points=points, reasons=reasons)
