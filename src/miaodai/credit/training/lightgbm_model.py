"""A LightGBM challenger: a small gradient-boosted tree ensemble on the same CSV, evaluated by the same
cross-validation, exported as ``miaodai.lightgbm/1`` for :mod:`miaodai.credit.gbm`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from miaodai.credit.gbm import FORMAT
from miaodai.credit.training import evaluation
from miaodai.credit.training.artifact import GRADES, SCALING, training_section
from miaodai.credit.training.dataset import Dataset

# Small and strongly regularised: a challenger for ~1,000-100,000 applicants, not a competition model.
PARAMETERS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.03, "num_leaves": 7, "max_depth": 3, "min_data_in_leaf": 30,
    "feature_fraction": 0.7, "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 5.0, "cat_smooth": 10,
    "min_data_per_group": 30, "verbose": -1, "deterministic": True, "force_row_wise": True, "num_threads": 1,
}
ROUNDS = 300


def _encoding(X: pd.DataFrame, categorical: tuple[str, ...]) -> list[dict[str, Any]]:
    features = []
    for name in X.columns:
        if name in categorical:
            categories = sorted(str(c) for c in X[name].dropna().unique())
            features.append({"name": str(name), "kind": "categorical", "categories": categories})
        else:
            features.append({"name": str(name), "kind": "numeric"})
    return features


def _matrix(X: pd.DataFrame, encoding: list[dict[str, Any]]) -> np.ndarray:
    columns = []
    for spec in encoding:
        column = X[spec["name"]]
        if spec["kind"] == "categorical":
            index = {c: float(i) for i, c in enumerate(spec["categories"])}
            columns.append(column.map(lambda v, index=index: index.get(str(v), np.nan) if pd.notna(v) else np.nan))
        else:
            columns.append(column.astype(float))
    return np.column_stack([np.asarray(c, dtype=float) for c in columns])


def _fit(X: pd.DataFrame, y: np.ndarray, categorical: tuple[str, ...], seed: int) -> tuple[Any, list[dict]]:
    import lightgbm

    encoding = _encoding(X, categorical)
    cat_index = [i for i, spec in enumerate(encoding) if spec["kind"] == "categorical"]
    data = lightgbm.Dataset(_matrix(X, encoding), label=y, categorical_feature=cat_index or "auto",
                            feature_name=[spec["name"] for spec in encoding], free_raw_data=True)
    booster = lightgbm.train({**PARAMETERS, "seed": seed}, data, num_boost_round=ROUNDS)
    return booster, encoding


def scores_of(booster: Any, X: pd.DataFrame, encoding: list[dict[str, Any]]) -> np.ndarray:
    pd_ = np.clip(booster.predict(_matrix(X, encoding)), 1e-9, 1 - 1e-9)
    factor = SCALING["pdo"] / np.log(2)
    return np.round(SCALING["base_score"] + factor * (np.log((1 - pd_) / pd_) - np.log(SCALING["base_odds"])), 2)


def train_lightgbm(dataset: Dataset, seed: int) -> tuple[dict[str, Any], np.ndarray, dict[str, Any]]:
    X, y, categorical = dataset.features, dataset.target, dataset.categorical

    def fit_and_score(train_rows: np.ndarray, test_rows: np.ndarray) -> np.ndarray:
        booster, encoding = _fit(X.iloc[train_rows], y[train_rows], categorical, seed)
        return scores_of(booster, X.iloc[test_rows], encoding)

    oof, folds = evaluation.out_of_fold_scores(y, fit_and_score, seed)
    metrics = evaluation.metrics(y, oof, evaluation.cross_calibrated_pd(oof, y, folds))
    booster, encoding = _fit(X, y, categorical, seed)
    train_scores = scores_of(booster, X, encoding)
    artifact = {
        "format": FORMAT, "algorithm": "lightgbm", "scaling": dict(SCALING), "features": encoding,
        "booster": booster.model_to_string(), "calibration": evaluation.calibration_table(oof, y), "grades": GRADES,
        "training": {**training_section(dataset, seed, {**PARAMETERS, "num_boost_round": ROUNDS}),
                     "score_distribution": evaluation.score_distribution(train_scores)},
        "metrics": {**metrics, "seed": seed},
    }
    gains = booster.feature_importance(importance_type="gain")
    rows = sorted(zip([s["name"] for s in encoding], gains, strict=True), key=lambda r: -r[1])
    total = float(sum(gains)) or 1.0
    table = {"title": "Feature importance (total gain)", "columns": ["variable", "share of gain"],
             "rows": [[name, f"{gain / total:.4f}"] for name, gain in rows]}
    return artifact, oof, table
