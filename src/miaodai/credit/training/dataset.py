"""A labelled CSV as model input: the feature columns split into numeric and categorical, a 0/1 target.

Everything wrong with the file is a :class:`TrainingDataError` whose message says what to fix; the
command prints it and exits non-zero (never a traceback).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MIN_ROWS = 100
MIN_PER_CLASS = 10  # five folds need a few of each class in every fold


class TrainingDataError(ValueError):
    """The data cannot be trained on; the message says why."""


@dataclass(frozen=True)
class Dataset:
    features: pd.DataFrame  # numeric columns as float, categorical ones as str (missing = NaN)
    target: np.ndarray  # 1 = bad
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    target_name: str
    source: str

    @property
    def n_rows(self) -> int:
        return len(self.target)

    @property
    def bad_rate(self) -> float:
        return float(self.target.mean())


def read_labelled_csv(
    path: str | Path, target: str, *, bad_value: str | None = None, ignore: Sequence[str] = (),
) -> Dataset:
    """Read ``path``; rows whose ``target`` equals ``bad_value`` are bad (1), the others good. Without
    ``bad_value`` the target must already be 0/1 with 1 = bad. ``ignore`` names columns not to use."""
    path = Path(path)
    if not path.is_file():
        raise TrainingDataError(f"no such file: {path}")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise TrainingDataError(f"{path} is not a readable CSV file: {exc}") from None
    if target not in frame.columns:
        raise TrainingDataError(f"no column {target!r} in {path}; its columns: {', '.join(map(str, frame.columns))}")
    unknown = [c for c in ignore if c not in frame.columns]
    if unknown:
        raise TrainingDataError(f"cannot ignore {', '.join(unknown)}: no such column in {path}")
    y = _target(frame[target], target, bad_value)
    features = frame.drop(columns=[target, *ignore])
    if features.shape[1] == 0:
        raise TrainingDataError(f"{path} has no feature columns besides the target")
    n, n_bad = len(y), int(y.sum())
    if n < MIN_ROWS:
        raise TrainingDataError(f"too few rows: {n} (at least {MIN_ROWS} are needed for a 5-fold evaluation)")
    if n_bad == 0 or n_bad == n:
        raise TrainingDataError(f"the target {target!r} has one class only ({'bad' if n_bad else 'good'})")
    if min(n_bad, n - n_bad) < MIN_PER_CLASS:
        raise TrainingDataError(f"too few rows of one class: {n_bad} bad and {n - n_bad} good "
                                f"(at least {MIN_PER_CLASS} of each are needed)")
    numeric = tuple(c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])
                    and not pd.api.types.is_bool_dtype(features[c]))
    categorical = tuple(c for c in features.columns if c not in numeric)
    for column in numeric:
        features[column] = features[column].astype(float)
    for column in categorical:
        features[column] = features[column].map(lambda v: v if pd.isna(v) else str(v)).astype(object)
    return Dataset(features, y, numeric, categorical, target, str(path))


def _target(column: pd.Series, name: str, bad_value: str | None) -> np.ndarray:
    if column.isna().any():
        raise TrainingDataError(f"{int(column.isna().sum())} rows have no value in the target column {name!r}")
    if bad_value is not None:
        return (column.astype(str).str.strip() == bad_value.strip()).to_numpy(dtype=int)
    values = set(column.astype(str).str.strip().unique())
    if not values <= {"0", "1", "0.0", "1.0"}:
        shown = ", ".join(sorted(values)[:5])
        raise TrainingDataError(f"the target {name!r} must be 0/1 (1 = bad) unless --bad-value says which value "
                                f"is bad; it has {shown}")
    return column.astype(float).to_numpy(dtype=int)
