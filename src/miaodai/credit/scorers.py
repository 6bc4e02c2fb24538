"""Any model artifact as a scorer with ``score(features) -> ScoreResult``: the one module that knows
every artifact format.

A points table is a :class:`~miaodai.credit.scorecard.Scorecard`; a LightGBM challenger
(``format: miaodai.lightgbm/1``) a :class:`~miaodai.credit.gbm.GbmScorer`, whose ``model`` extra is imported
only when such an artifact is loaded. The choice lives here, apart from both, so that neither imports the
other: the gradient-boosting twin reuses the scorecard's scaling and calibration, and the scorecard knows
nothing of it (the import contracts in pyproject.toml keep it so).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from miaodai.credit.gbm import FORMAT as GBM_FORMAT
from miaodai.credit.gbm import GbmScorer
from miaodai.credit.scorecard import Scorecard


def scorer_from_dict(document: Mapping[str, Any]) -> Any:
    """A points table, or a LightGBM challenger when the artifact says so (needs the model extra)."""
    if isinstance(document, Mapping) and document.get("format") == GBM_FORMAT:
        return GbmScorer.from_dict(document)
    return Scorecard.from_dict(document)
