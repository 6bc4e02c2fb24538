"""Cross-validated evaluation, the calibration table, and the training distributions kept for monitoring.

Scores rise as risk falls. Every figure comes from out-of-fold scores: stratified 5-fold, the whole
pipeline (binning included) fitted on four folds and scored on the fifth. Brier needs a PD: the
out-of-fold scores are calibrated fold by fold on the *other* folds' out-of-fold scores, so no row's
PD was fitted with its own label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

N_FOLDS = 5
PD_FLOOR, PD_CEILING = 0.0005, 0.9995
SCORE_DISTRIBUTION_BINS = 10

FitAndScore = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (train rows, test rows) -> test scores


def out_of_fold_scores(y: np.ndarray, fit_and_score: FitAndScore, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every row from the model fitted without its fold, and each row's fold number."""
    from sklearn.model_selection import StratifiedKFold

    scores = np.full(len(y), np.nan)
    folds = np.zeros(len(y), dtype=int)
    splitter = StratifiedKFold(n_splits=N_FOLDS, shuffle=True, random_state=seed)
    for k, (train, test) in enumerate(splitter.split(np.zeros(len(y)), y)):
        scores[test] = fit_and_score(train, test)
        folds[test] = k
    return scores, folds


def calibration_table(scores: np.ndarray, y: np.ndarray) -> list[dict[str, float]]:
    """Score quantile groups → observed bad rate, made non-increasing in the score by isotonic
    regression (weighted by the groups' sizes); one point per group at its mean score."""
    import pandas as pd
    from sklearn.isotonic import IsotonicRegression

    n_groups = 10 if len(y) < 10_000 else 20
    groups = pd.qcut(scores, n_groups, labels=False, duplicates="drop")
    frame = pd.DataFrame({"score": scores, "bad": y, "group": groups}).groupby("group")
    stats = frame.agg(score=("score", "mean"), bad_rate=("bad", "mean"), n=("bad", "size")).sort_values("score")
    isotonic = IsotonicRegression(increasing=False, y_min=PD_FLOOR, y_max=PD_CEILING)
    pds = isotonic.fit_transform(stats["score"], stats["bad_rate"], sample_weight=stats["n"])
    table: list[dict[str, float]] = []
    for score, pd_ in zip(stats["score"], pds, strict=True):
        point = {"score": round(float(score), 2), "pd": round(float(pd_), 6)}
        if table and point["score"] <= table[-1]["score"]:
            continue
        table.append(point)
    if len(table) < 2:  # every row scored the same: a flat line over a 1-point span
        rate = round(float(np.clip(y.mean(), PD_FLOOR, PD_CEILING)), 6)
        table = [{"score": table[0]["score"], "pd": rate}, {"score": table[0]["score"] + 1, "pd": rate}]
    return table


def apply_calibration(table: list[dict[str, float]], scores: np.ndarray) -> np.ndarray:
    """The serving rule (linear between points, clamped at the ends), vectorised."""
    return np.interp(scores, [p["score"] for p in table], [p["pd"] for p in table])


def cross_calibrated_pd(scores: np.ndarray, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    pd_ = np.zeros(len(y))
    for k in np.unique(folds):
        inside = folds == k
        pd_[inside] = apply_calibration(calibration_table(scores[~inside], y[~inside]), scores[inside])
    return pd_


def metrics(y: np.ndarray, scores: np.ndarray, pd_: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

    auc = float(roc_auc_score(y, -scores))
    fpr, tpr, _ = roc_curve(y, -scores)
    return {"auc": round(auc, 4), "ks": round(float(np.max(tpr - fpr)), 4), "gini": round(2 * auc - 1, 4),
            "brier": round(float(brier_score_loss(y, pd_)), 4), "cv": f"stratified {N_FOLDS}-fold"}


def score_distribution(scores: np.ndarray) -> list[dict[str, Any]]:
    """The training scores' histogram on fixed edges (their deciles): the baseline of a PSI. Bins are
    right-open like the scorecard's (``score < upper``), the last one open-ended."""
    quantiles = np.quantile(scores, np.linspace(0, 1, SCORE_DISTRIBUTION_BINS + 1)[1:-1])
    edges = sorted({round(float(e), 2) for e in quantiles})
    counts = np.bincount(np.searchsorted(edges, scores, side="right"), minlength=len(edges) + 1)
    shares = counts / counts.sum()
    uppers: list[float | None] = [*edges, None]
    return [{"upper": upper, "share": round(float(share), 6)} for upper, share in zip(uppers, shares, strict=True)]


def feature_distributions(card: Any, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per variable of a loaded :class:`~miaodai.credit.scorecard.Scorecard`, the share of the training
    rows in each bin: every bin by index, then "missing" and (categorical) "other", zeros included."""
    result = {}
    for spec in card.document["variables"]:
        name = spec["name"]
        keys: list[int | str] = [*range(len(spec["bins"])), "missing"]
        if spec["kind"] == "categorical":
            keys.append("other")
        counts = dict.fromkeys(keys, 0)
        for row in rows:
            counts[card.bin_of(name, row.get(name))] += 1
        result[name] = [{"bin": key, "share": round(counts[key] / len(rows), 6)} for key in keys]
    return result
