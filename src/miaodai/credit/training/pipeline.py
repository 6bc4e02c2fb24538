"""``miaodai model train``: a labelled CSV in, a cross-validated JSON artifact and its report out.

1. Read the CSV (:mod:`.dataset`).
2. Stratified 5-fold cross-validation: the whole pipeline, binning included, fitted on four folds and
   the fifth scored; AUC, KS, Gini and Brier from those out-of-fold scores.
3. Fit on every row for the artifact; its calibration table (score → PD) from the out-of-fold scores.
4. Write ``scorecard.json`` (or ``lightgbm.json``), ``report.html`` and its plots to the output folder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from miaodai.credit.scorecard import FORMAT, Scorecard, canonical_sha256
from miaodai.credit.training import evaluation
from miaodai.credit.training.artifact import GRADES, SCALING, file_sha256, records, training_section
from miaodai.credit.training.dataset import Dataset, TrainingDataError, read_labelled_csv

ALGORITHMS = ("scorecard", "lightgbm")
# The exported table must score every training row as optbinning itself does, to this many points.
MAX_SCORE_DIFFERENCE = 0.01


@dataclass(frozen=True)
class TrainOptions:
    data: Path
    target: str
    out: Path
    bad_value: str | None = None
    algorithm: str = "scorecard"
    seed: int = 0
    description: str | None = None
    model_id: str | None = None
    ignore: tuple[str, ...] = ()


def train(options: TrainOptions) -> dict[str, Any]:
    """Train, evaluate and write the artifact and report; returns the summary the command prints."""
    if options.algorithm not in ALGORITHMS:
        raise TrainingDataError(f"unknown algorithm {options.algorithm!r}; choose {' or '.join(ALGORITHMS)}")
    dataset = read_labelled_csv(options.data, options.target, bad_value=options.bad_value, ignore=options.ignore)
    options.out.mkdir(parents=True, exist_ok=True)
    if options.algorithm == "lightgbm":
        from miaodai.credit.training.lightgbm_model import train_lightgbm

        artifact, scores, table = train_lightgbm(dataset, options.seed)
        name = "lightgbm.json"
    else:
        artifact, scores, table = _train_scorecard(dataset, options.seed)
        name = "scorecard.json"
    artifact["model_id"] = options.model_id or _default_model_id(options, dataset)
    artifact["training"] = {
        "description": options.description or f"trained on {Path(options.data).name}",
        **artifact["training"],
    }
    artifact = _ordered(artifact)
    from miaodai.credit.scorers import scorer_from_dict

    scorer_from_dict(artifact)  # what the service will load must load
    path = options.out / name
    path.write_text(json.dumps(artifact, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    from miaodai.credit.training.report import write_report

    report = write_report(options.out, artifact=artifact, y=dataset.target, scores=scores, table=table)
    return {**{k: artifact["metrics"][k] for k in ("auc", "ks", "gini", "brier")},
            "n_rows": dataset.n_rows, "n_features": len(_features_of(artifact)), "bad_rate": round(dataset.bad_rate, 4),
            "model_id": artifact["model_id"], "algorithm": artifact["algorithm"], "artifact": str(path),
            "report": str(report), "sha256": canonical_sha256(artifact)}


def _train_scorecard(dataset: Dataset, seed: int) -> tuple[dict[str, Any], np.ndarray, dict[str, Any]]:
    from miaodai.credit.training import scorecard_model as sm

    X, y, categorical = dataset.features, dataset.target, dataset.categorical

    def fit_and_score(train_rows: np.ndarray, test_rows: np.ndarray) -> np.ndarray:
        card = sm.fit_scorecard(X.iloc[train_rows], y[train_rows], categorical)
        served = Scorecard.from_dict(_points_table(sm.export_variables(card, categorical)))
        return np.array([served.score(row).score for row in records(X.iloc[test_rows])])

    oof, folds = evaluation.out_of_fold_scores(y, fit_and_score, seed)
    metrics = evaluation.metrics(y, oof, evaluation.cross_calibrated_pd(oof, y, folds))
    card = sm.fit_scorecard(X, y, categorical)
    variables = sm.export_variables(card, categorical)
    rows = records(X)
    served = Scorecard.from_dict(_points_table(variables))
    train_scores = np.array([served.score(row).score for row in rows])
    difference = float(np.max(np.abs(train_scores - card.score(X))))
    if difference > MAX_SCORE_DIFFERENCE:
        raise RuntimeError(f"the exported points table differs from optbinning's scores by {difference:.4f} points")
    artifact = {
        "format": FORMAT, "algorithm": "optbinning_scorecard", "scaling": dict(SCALING), "variables": variables,
        "calibration": evaluation.calibration_table(oof, y), "grades": GRADES,
        "training": {**training_section(dataset, seed, sm.parameters_document()),
                     "score_distribution": evaluation.score_distribution(train_scores),
                     "feature_distributions": evaluation.feature_distributions(served, rows),
                     "dropped_for_reversed_sign": list(card.reversed_sign_dropped_),
                     "conditional_missing_woe": card.missing_woe_,
                     "max_score_difference_to_optbinning": round(difference, 6)},
        "metrics": {**metrics, "seed": seed},
    }
    return artifact, oof, sm.information_values(card)


def _points_table(variables: list[dict[str, Any]]) -> dict[str, Any]:
    """A points table with a placeholder calibration: enough to score (the fold models need no PD)."""
    return {"format": FORMAT, "model_id": "fold", "variables": variables,
            "calibration": [{"score": 0, "pd": 0.5}, {"score": 1, "pd": 0.5}], "grades": GRADES}


def _default_model_id(options: TrainOptions, dataset: Dataset) -> str:
    """Deterministic, and new whenever the data changes: ``<file>-<data sha[:8]>-<algorithm>``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(options.data).stem)[:40]
    return f"{stem}-{file_sha256(Path(dataset.source))[:8]}-{options.algorithm}"


def _features_of(artifact: dict[str, Any]) -> list[Any]:
    return artifact.get("variables") or artifact.get("features") or []


_ORDER = ("format", "model_id", "algorithm", "scaling", "variables", "features", "booster", "calibration",
          "grades", "metrics", "training")


def _ordered(artifact: dict[str, Any]) -> dict[str, Any]:
    """Readable key order in the file (the fingerprint sorts keys anyway)."""
    return {k: artifact[k] for k in sorted(artifact, key=lambda k: (_ORDER.index(k) if k in _ORDER else 99, k))}
