"""The scorecard: optbinning's BinningProcess (optimal WoE bins, IV selection) + a logistic regression,
scaled to points (pdo/odds) and exported as the JSON points table :mod:`miaodai.credit.scorecard` serves.

The hyper-parameters are fixed (:data:`PARAMETERS`); docs/model.md says how they were chosen.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from miaodai.credit.training.artifact import SCALING
from miaodai.credit.training.dataset import TrainingDataError


@dataclass(frozen=True)
class ScorecardParameters:
    max_n_prebins: int = 20  # pre-binning: quantile bins before the optimiser merges them
    min_prebin_size: float = 0.05  # every bin keeps at least 5 % of the rows
    max_n_bins: int | None = None
    monotonic_trend: str = "auto"  # optbinning picks ascending/descending/peak/valley per variable
    min_iv: float = 0.01  # variables with an information value below this are left out
    c: float = 0.1  # inverse L2 strength of the logistic regression (1.0 overfits the WoE bins)
    class_weight: str | None = None
    # A variable whose coefficient came out against its own WoE (collinearity) gives points that contradict
    # its bins' bad rates, and reason codes that say the opposite of the truth: drop it and refit.
    drop_reversed_signs: bool = True
    conditional_missing: bool = True  # missing bins get their effect given the other variables (see below)


PARAMETERS = ScorecardParameters()
# The missing-indicator regression is barely regularised: shrinking a rare indicator pulls a thin file's
# effect back towards "no evidence", which is exactly the double counting it is there to undo.
AUXILIARY_C = 10.0


def quiet_modelling_libraries() -> None:
    """cvxpy (imported by optbinning, unused by its binning) logs a solver it cannot load."""
    logging.getLogger("__cvxpy__").disabled = True


def fit_scorecard(
    X: pd.DataFrame, y: np.ndarray, categorical: Sequence[str], params: ScorecardParameters = PARAMETERS,
) -> Any:
    """A fitted ``optbinning.Scorecard`` on the columns of ``X``. Its ``reversed_sign_dropped_`` lists
    the variables left out for a reversed sign, ``missing_woe_`` the WoE given to missing values
    where it is not the empirical one (see :func:`conditional_missing_woe`)."""
    card = _fit_with_coherent_signs(X, y, categorical, params, {})
    if params.conditional_missing:
        missing_woe = conditional_missing_woe(card, X, y, params)
        if missing_woe:
            kept = [n for n in X.columns if n not in card.reversed_sign_dropped_]
            dropped = card.reversed_sign_dropped_
            card = _fit_with_coherent_signs(X[kept], y, categorical, params, missing_woe)
            card.reversed_sign_dropped_ = dropped + card.reversed_sign_dropped_
    return card


def _fit_with_coherent_signs(
    X: pd.DataFrame, y: np.ndarray, categorical: Sequence[str], params: ScorecardParameters,
    missing_woe: dict[str, float],
) -> Any:
    names, dropped = list(X.columns), []
    while True:
        woe = {n: w for n, w in missing_woe.items() if n in names}
        card = _fit_once(X[names], y, [c for c in categorical if c in names], params, woe)
        selected = card.binning_process_.get_support(names=True)
        # optbinning's WoE is ln(good share / bad share): a variable agreeing with its WoE has coef < 0.
        reversed_signs = [(coef, str(name)) for coef, name in zip(np.ravel(card.estimator_.coef_), selected,
                                                                 strict=True) if coef > 0]
        if not reversed_signs or not params.drop_reversed_signs:
            card.reversed_sign_dropped_ = tuple(dropped)
            card.missing_woe_ = woe
            return card
        worst = max(reversed_signs)[1]
        names.remove(worst)
        dropped.append(worst)


def conditional_missing_woe(card: Any, X: pd.DataFrame, y: np.ndarray, params: ScorecardParameters) -> dict:
    """The WoE a missing value should carry *given the other variables*, for each selected variable
    with missing values.

    The empirical WoE of a missing bin is marginal: when several variables are missing together (a
    thin bureau file has no file age, no utilisation, and zero inquiries and debts, which are the
    best bins of those variables), each one's marginal WoE counts the same evidence again, and one
    coefficient per variable cannot undo it. So: a logistic regression on the WoE columns (missing
    set to 0) plus one missing indicator per variable; indicator coefficient / WoE coefficient is the
    WoE that gives the missing bin its conditional effect. It is passed to optbinning as that
    variable's ``metric_missing``, so the refitted Scorecard (and its own ``score()``) uses it.
    """
    from sklearn.linear_model import LogisticRegression

    binning = card.binning_process_
    selected = [str(n) for n in binning.get_support(names=True)]
    missing = [n for n in selected if X[n].isna().any()]
    if not missing:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        woe = binning.transform(X[binning.variable_names], metric="woe", metric_missing=0)[selected]
    indicators = X[missing].isna().astype(float).add_suffix(" (missing)")
    model = LogisticRegression(C=AUXILIARY_C, class_weight=params.class_weight, max_iter=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(pd.concat([woe, indicators], axis=1).to_numpy(), y)
    coefs = dict(zip([*selected, *indicators.columns], np.ravel(model.coef_), strict=True))
    result = {}
    for name in missing:
        if coefs[name] < -1e-3:  # a usable WoE coefficient (sign as expected)
            result[name] = round(float(np.clip(coefs[f"{name} (missing)"] / coefs[name], -4.0, 4.0)), 6)
    return result


def _fit_once(
    X: pd.DataFrame, y: np.ndarray, categorical: Sequence[str], params: ScorecardParameters,
    missing_woe: dict[str, float],
) -> Any:
    quiet_modelling_libraries()
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression

    names = list(X.columns)
    numeric_trend = {name: {"monotonic_trend": params.monotonic_trend} for name in names if name not in categorical}
    binning = BinningProcess(
        names, categorical_variables=list(categorical), max_n_prebins=params.max_n_prebins,
        min_prebin_size=params.min_prebin_size, max_n_bins=params.max_n_bins,
        selection_criteria={"iv": {"min": params.min_iv}}, binning_fit_params=numeric_trend or None,
        binning_transform_params={n: {"metric_missing": w} for n, w in missing_woe.items()} or None,
    )
    estimator = LogisticRegression(C=params.c, class_weight=params.class_weight, max_iter=2000)
    card = Scorecard(binning, estimator, scaling_method="pdo_odds", scaling_method_params={
        "pdo": SCALING["pdo"], "odds": SCALING["base_odds"], "scorecard_points": SCALING["base_score"]})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            card.fit(X, y, metric_missing="empirical", metric_special="empirical")
    except ValueError as exc:
        if "0 feature" in str(exc) or "at least one" in str(exc).lower():
            raise TrainingDataError(f"no column carries enough information about the target "
                                    f"(information value >= {params.min_iv})") from None
        raise
    return card


def export_variables(card: Any, categorical: Sequence[str]) -> list[dict[str, Any]]:
    """The points table of a fitted scorecard: the bins' edges come from the binning (exact split
    points; the table's "Bin" text is rounded), the points from ``card.table(style="detailed")``,
    whose rows per variable are the bins in order, then Special, then Missing."""
    table = card.table(style="detailed")
    binning = card.binning_process_
    neutral = _neutral_points(card)
    variables = []
    for name in binning.get_support(names=True):
        rows = table[table["Variable"] == name]
        points = [float(p) for p in rows["Points"]]
        splits = binning.get_binned_variable(name).splits
        n_bins = len(points) - 2  # minus Special and Missing
        spec: dict[str, Any] = {"name": str(name)}
        if name in categorical:
            if len(splits) != n_bins:
                raise RuntimeError(f"{name}: {len(splits)} category groups for {n_bins} bins")
            spec |= {"kind": "categorical",
                     "bins": [{"categories": sorted(str(c) for c in group), "points": _p(points[i])}
                              for i, group in enumerate(splits)],
                     "missing_points": _p(points[-1]), "other_points": _p(neutral)}
        else:
            if len(splits) + 1 != n_bins:
                raise RuntimeError(f"{name}: {len(splits)} split points for {n_bins} bins")
            uppers = [float(s) for s in splits] + [None]
            spec |= {"kind": "numeric",
                     "bins": [{"upper": upper, "points": _p(points[i])} for i, upper in enumerate(uppers)],
                     "missing_points": _p(points[-1])}
        variables.append(spec)
    if not variables:
        raise TrainingDataError("no column carries enough information about the target")
    return variables


def _neutral_points(card: Any) -> float:
    """The points of a bin with WoE 0 (no evidence either way): what a category unseen in training gets.
    From optbinning's pdo_odds scaling: -(WoE * coef + intercept / n) * factor + offset / n."""
    n = len(card.binning_process_.get_support(names=True))
    factor = SCALING["pdo"] / math.log(2)
    offset = SCALING["base_score"] - factor * math.log(SCALING["base_odds"])
    intercept = float(np.ravel(card.estimator_.intercept_)[0])
    return -(intercept / n) * factor + offset / n


def information_values(card: Any) -> dict[str, Any]:
    """Every candidate variable's IV, bins and whether it was selected (the report's IV table)."""
    with warnings.catch_warnings():  # optbinning's summary() uses pandas' deprecated inplace=
        warnings.simplefilter("ignore")
        summary = card.binning_process_.summary()
    rows = [[str(r["name"]), str(r["dtype"]), "yes" if r["selected"] else "no", int(r["n_bins"]),
             f"{float(r['iv']):.4f}", f"{float(r['gini']):.4f}"]
            for r in summary.sort_values("iv", ascending=False).to_dict("records")]
    return {"title": "Information value", "columns": ["variable", "type", "selected", "bins", "IV", "Gini"],
            "rows": rows}


def parameters_document(params: ScorecardParameters = PARAMETERS) -> dict[str, Any]:
    return asdict(params)


def _p(value: float) -> float:
    return round(float(value), 6)
