"""What every artifact shares: the score scale, the grades, the training section."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from miaodai.credit.training.dataset import Dataset

SCALING = {"pdo": 20, "base_score": 600, "base_odds": 50}  # 600 points = 50:1 good:bad; +20 points doubles it
# PD bands of the grades; the ruleset (data/default_ruleset.json) says what each grade gets.
GRADES = [{"grade": "A", "max_pd": 0.02}, {"grade": "B", "max_pd": 0.05}, {"grade": "C", "max_pd": 0.10},
          {"grade": "D", "max_pd": 0.20}, {"grade": "E", "max_pd": 1.0}]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def training_section(dataset: Dataset, seed: int, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"data": Path(dataset.source).name, "data_sha256": file_sha256(Path(dataset.source)),
            "target": dataset.target_name, "n_rows": dataset.n_rows, "bad_rate": round(dataset.bad_rate, 6),
            "candidate_features": [str(c) for c in dataset.features.columns], "seed": seed, "parameters": parameters}


def records(frame: Any) -> list[dict[str, Any]]:
    """Rows as the service passes features: plain Python values, None for missing."""
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            for row in frame.to_dict("records")]
