"""Serving a LightGBM challenger (``format: miaodai.lightgbm/1``, written by
``miaodai model train --algorithm lightgbm``; docs/model.md).

The artifact carries the booster as LightGBM's own text (``Booster.model_to_string()``, no pickle) and
the feature encoding: numeric features as floats, categorical ones as their index in the trained
category list (unseen or missing: NaN, which LightGBM sends down its missing-value branch). The
booster's probability is put on the scorecards' scale (same pdo/odds), then PD and grade come from the
calibration table exactly as for a points table, so a challenger in shadow is comparable with the
champion. Reasons are empty: a tree ensemble has no per-variable points to fall short of.

Needs the ``model`` extra (numpy, lightgbm), imported when an artifact is loaded, never at import.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from miaodai.credit.scorecard import (
    Calibration,
    ScorecardFormatError,
    ScoreResult,
    canonical_sha256,
    is_missing,
    model_id_of,
    parse_scaling,
)

FORMAT = "miaodai.lightgbm/1"


class GbmScorer:
    """A loaded LightGBM artifact: ``score(features) -> ScoreResult`` like :class:`Scorecard`."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        if not isinstance(document, Mapping) or document.get("format") != FORMAT:
            raise ScorecardFormatError(f"format must be {FORMAT!r}")
        document = dict(document)
        self.model_id = model_id_of(document)
        self.scaling = parse_scaling(document.get("scaling"))
        self._calibration = Calibration(document)
        features = document.get("features")
        if not isinstance(features, list) or not features:
            raise ScorecardFormatError("features must be a non-empty list")
        self._encoders: list[tuple[str, dict[str, int] | None]] = []
        for spec in features:
            if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
                raise ScorecardFormatError(f"a feature needs a name: {spec!r:.80}")
            if spec.get("kind") == "numeric":
                self._encoders.append((spec["name"], None))
            elif spec.get("kind") == "categorical" and isinstance(spec.get("categories"), list):
                self._encoders.append((spec["name"], {str(c): i for i, c in enumerate(spec["categories"])}))
            else:
                raise ScorecardFormatError(f"feature {spec['name']!r}: kind numeric, or categorical with categories")
        booster = document.get("booster")
        if not isinstance(booster, str) or not booster.startswith("tree"):
            raise ScorecardFormatError("booster must be LightGBM's model text (Booster.model_to_string())")
        import lightgbm
        import numpy

        self._numpy = numpy
        try:
            self._booster = lightgbm.Booster(model_str=booster)
        except lightgbm.basic.LightGBMError as exc:
            raise ScorecardFormatError(f"booster does not load: {exc}") from None
        if self._booster.num_feature() != len(self._encoders):
            raise ScorecardFormatError(f"the booster has {self._booster.num_feature()} features, "
                                       f"the encoding {len(self._encoders)}")
        self.document = document
        self.sha256 = canonical_sha256(document)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> GbmScorer:
        return cls(document)

    @classmethod
    def load(cls, path: str | Path) -> GbmScorer:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._encoders)

    @property
    def grades(self) -> tuple[str, ...]:
        return tuple(g for g, _ in self._calibration.grades)

    def encode(self, features: Mapping[str, Any]) -> list[float]:
        row = []
        for name, categories in self._encoders:
            value = features.get(name)
            if is_missing(value):
                row.append(math.nan)
            elif categories is None:
                try:
                    row.append(float(value))
                except (TypeError, ValueError):
                    row.append(math.nan)
            else:
                index = categories.get(str(value))
                row.append(math.nan if index is None else float(index))
        return row

    def probability(self, features: Mapping[str, Any]) -> float:
        """The booster's own probability of bad (before calibration)."""
        row = self._numpy.array([self.encode(features)], dtype=float)
        return float(self._booster.predict(row, num_threads=1)[0])

    def score(self, features: Mapping[str, Any]) -> ScoreResult:
        score = round(self.scaling.score_of_pd(self.probability(features)), 2)
        pd = round(self._calibration.pd_of(score), 6)
        return ScoreResult(score=score, pd=pd, grade=self._calibration.grade_of(pd), points={}, reasons=())
