"""Population stability index: exact values, smoothing, and the bin of a score."""

from __future__ import annotations

import pytest

from miaodai.credit.monitor import psi, score_bin, verdict


def test_psi_known_values() -> None:
    # Shares (30.5/101, 70.5/101) against (0.5, 0.5): 0.19802 × (0.50424 + 0.33363).
    assert psi([0.5, 0.5], [30, 70]) == pytest.approx(0.165918, abs=1e-6)
    assert psi([0.5, 0.5], [50, 50]) == 0.0
    assert psi([0.2, 0.3, 0.5], [20, 30, 50]) == pytest.approx(0.0, abs=1e-3)


def test_an_empty_bin_is_large_but_finite() -> None:
    value = psi([0.25, 0.25, 0.25, 0.25], [0, 0, 0, 100])
    assert 3.8 < value < 4.0
    assert psi([0.5, 0.5, 0.0], [0, 0, 10]) < float("inf")


def test_psi_needs_matching_bins() -> None:
    with pytest.raises(ValueError, match="same"):
        psi([0.5, 0.5], [1, 2, 3])


def test_verdicts_and_score_bins() -> None:
    assert [verdict(v) for v in (0.05, 0.1, 0.24, 0.25, 1)] == ["stable", "watch", "watch", "shifted", "shifted"]
    uppers = [500.0, 600.0, None]
    assert [score_bin(uppers, s) for s in (400, 499.99, 500, 599, 600, 900)] == [0, 0, 1, 1, 2, 2]
