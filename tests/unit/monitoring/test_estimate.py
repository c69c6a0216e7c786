"""CBPE: on a covariate shift that keeps calibration, the realized metrics fall inside the stated intervals."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.evaluate import classification_metrics
from pipelines.monitoring.estimate import (
    ESTIMATED_METRICS,
    EstimateInputError,
    compare_with_realized,
    estimate_performance,
)


def _true_probability(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(-1.0 + 1.8 * x[:, 0] - 0.9 * x[:, 1])))


def _window(rows: int, seed: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Inputs shifted by ``shift`` (covariate shift); labels from the unchanged relation; the model is
    the true probability (perfectly calibrated)."""
    rng = np.random.default_rng(seed)
    x = rng.normal([shift, -shift / 2], [1.0 + shift / 2, 1.0], size=(rows, 2))
    p = _true_probability(x)
    return p, (rng.random(rows) < p).astype(int)


def _realized(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    values = classification_metrics(y, p)
    values["accuracy"] = float(np.mean((p >= 0.5).astype(int) == y))
    return values


def test_estimate_within_interval_on_a_covariate_shift() -> None:
    reference_p, reference_y = _window(5000, 1, 0.0)
    shifted_p, shifted_y = _window(2000, 2, 1.2)
    # the shift really moves the metrics (else the test proves nothing)
    assert (
        abs(_realized(shifted_p, shifted_y)["accuracy"] - _realized(reference_p, reference_y)["accuracy"])
        > 0.03
    )
    estimate = estimate_performance(shifted_p, draws=400, seed=5)
    comparison = compare_with_realized(estimate, _realized(shifted_p, shifted_y))
    assert set(comparison) == set(ESTIMATED_METRICS)
    for name, item in comparison.items():
        assert item["within_interval"], (name, item)
        assert item["low"] < item["estimate"] < item["high"]


def test_interval_coverage_over_many_windows() -> None:
    # 95% intervals: over 40 independent shifted windows nearly all realized values fall inside
    inside = dict.fromkeys(ESTIMATED_METRICS, 0)
    for seed in range(40):
        p, y = _window(800, 100 + seed, 0.8 + seed / 40)
        comparison = compare_with_realized(estimate_performance(p, draws=200, seed=seed), _realized(p, y))
        for name in ESTIMATED_METRICS:
            inside[name] += comparison[name]["within_interval"]
    assert all(count >= 34 for count in inside.values()), inside


def test_miscalibration_is_visible() -> None:
    # an overconfident model (probabilities pushed to the extremes): the realized accuracy is below the
    # estimate's interval, which is what the comparison is for
    p, y = _window(3000, 9, 1.0)
    overconfident = 1 / (1 + np.exp(-4 * np.log(p / (1 - p))))
    comparison = compare_with_realized(
        estimate_performance(overconfident, seed=1), _realized(overconfident, y)
    )
    assert not comparison["accuracy"]["within_interval"]
    assert comparison["accuracy"]["realized"] < comparison["accuracy"]["low"]


def test_expected_confusion_matrix_and_input_errors() -> None:
    estimate = estimate_performance(np.array([0.9, 0.8, 0.2, 0.1]), draws=50)
    assert estimate.expected_confusion == pytest.approx({"tp": 1.7, "fp": 0.3, "fn": 0.3, "tn": 1.7})
    assert estimate.metrics["accuracy"].estimate == pytest.approx(0.85)
    assert estimate.metrics["precision"].estimate == pytest.approx(0.85)
    with pytest.raises(EstimateInputError, match="probabilities"):
        estimate_performance(np.array([1.5, 0.2]))
    with pytest.raises(EstimateInputError, match="confidence"):
        estimate_performance(np.array([0.5]), confidence=1.0)
    assert estimate_performance(np.array([np.nan])).status == "no_scores"
