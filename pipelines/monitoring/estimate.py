"""Performance estimation before labels: confidence-based performance estimation (CBPE).

A binary classifier whose probabilities are calibrated says, for every row, how likely the positive
label is: ``P(y = 1 | score) = score``. Under that assumption (which covariate shift preserves: the
inputs move, the relation between inputs and label does not), each unknown label is an independent
Bernoulli(score) draw, so the window's confusion matrix at the decision threshold has a known
distribution:

- expected counts: ``E[TP] = sum(p | predicted 1)``, ``E[FP] = sum(1 - p | predicted 1)``,
  ``E[FN] = sum(p | predicted 0)``, ``E[TN] = sum(1 - p | predicted 0)``; the point estimates of
  accuracy, precision, recall and F1 are those of the expected matrix (NannyML's CBPE,
  https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html#confidence-based-performance-estimation-cbpe);
- the interval is the sampling distribution of the metric the labels will give: ``draws`` label
  vectors are drawn from Bernoulli(p) and the metric computed on each (Monte Carlo); its central
  ``confidence`` range is the interval. The realized metric, once labels land, falls inside it with
  that probability when the model is calibrated;
- AUC has no closed form in the expected matrix; its estimate is the mean of the Monte Carlo AUCs
  (the expected realized AUC), computed from the score ranks so each draw is one dot product.

What breaks the estimate: a miscalibrated model (check ``calibration_error`` at evaluation) and
concept drift (the relation itself changed). Compare with the realized metric when labels land
(:func:`compare_with_realized`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pipelines.errors import InputRejectedError

ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "auc")
"""The metrics CBPE estimates."""

_CELLS_PER_BLOCK = 20_000_000  # draws x rows per Monte Carlo block (~20 MB of booleans)


class EstimateInputError(InputRejectedError, ValueError):
    """The scores cannot be used for an estimate (not probabilities, no rows)."""


@dataclass(frozen=True)
class MetricEstimate:
    """One metric's estimate and its interval."""

    estimate: float | None
    low: float | None
    high: float | None


@dataclass
class PerformanceEstimate:
    """CBPE over one window: point estimates, intervals, the expected confusion matrix."""

    rows: int
    threshold: float
    confidence: float
    draws: int
    metrics: dict[str, MetricEstimate]
    expected_confusion: dict[str, float]
    status: str = "ok"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Average ranks (1-based; ties share their mean rank), as in the Mann-Whitney form of AUC."""
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    ranks = np.empty(scores.size, dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(ordered)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [scores.size]])
    mean_rank = (starts + ends + 1) / 2.0  # ranks start..end-1 (0-based) -> mean of start+1..end
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _quantiles(values: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None, None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def estimate_performance(
    scores: Any,
    *,
    threshold: float = 0.5,
    confidence: float = 0.95,
    draws: int = 500,
    seed: int = 0,
) -> PerformanceEstimate:
    """CBPE of accuracy, precision, recall, F1 and AUC from calibrated positive-class probabilities.

    Args:
        scores: the model's probability of the positive class per row (NaN rows are ignored).
        threshold: the decision threshold (predicted positive when ``score >= threshold``), as evaluation.
        confidence: central mass of the interval.
        draws: Monte Carlo label draws for the intervals (and the AUC estimate).
        seed: random seed (the estimate is reproducible).

    Raises:
        EstimateInputError: a score outside [0, 1], or bad ``confidence``/``draws``.
    """
    if not 0 < confidence < 1:
        raise EstimateInputError(f"confidence must be in (0, 1); got {confidence}")
    if draws < 20:
        raise EstimateInputError(f"draws must be at least 20 for a usable interval; got {draws}")
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    p = values[np.isfinite(values)]
    if p.size and (p.min() < 0 or p.max() > 1):
        raise EstimateInputError(
            f"scores must be probabilities in [0, 1] (got {p.min():.4g}..{p.max():.4g}): CBPE needs the "
            "classifier's calibrated probability of the positive class, not a margin or a label"
        )
    n = int(p.size)
    empty = MetricEstimate(None, None, None)
    if n == 0:
        return PerformanceEstimate(
            0, threshold, confidence, draws, dict.fromkeys(ESTIMATED_METRICS, empty), {}, "no_scores",
            ["no scored rows in the window"],
        )  # fmt: skip
    predicted = p >= threshold
    tp = float(p[predicted].sum())
    fp = float((1.0 - p[predicted]).sum())
    fn = float(p[~predicted].sum())
    tn = float((1.0 - p[~predicted]).sum())
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    point = {"accuracy": (tp + tn) / n, "precision": precision, "recall": recall, "f1": f1}

    # Monte Carlo: labels ~ Bernoulli(p), metrics per draw
    rng = np.random.default_rng(seed)
    ranks = _ranks(p)
    pred_f = predicted.astype(np.float64)
    n_pred = float(pred_f.sum())
    samples: dict[str, list[np.ndarray]] = {m: [] for m in ESTIMATED_METRICS}
    block = max(1, min(draws, _CELLS_PER_BLOCK // max(n, 1)))
    done = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        while done < draws:
            size = min(block, draws - done)
            labels = (rng.random((size, n)) < p).astype(np.float64)
            positives = labels.sum(axis=1)
            true_pos = labels @ pred_f
            false_pos = n_pred - true_pos
            false_neg = positives - true_pos
            true_neg = n - n_pred - false_neg
            samples["accuracy"].append((true_pos + true_neg) / n)
            samples["precision"].append(np.where(n_pred > 0, true_pos / n_pred, np.nan))
            samples["recall"].append(np.where(positives > 0, true_pos / positives, np.nan))
            samples["f1"].append(
                np.where(2 * true_pos + false_pos + false_neg > 0,
                         2 * true_pos / (2 * true_pos + false_pos + false_neg), np.nan)
            )  # fmt: skip
            negatives = n - positives
            auc = (labels @ ranks - positives * (positives + 1) / 2.0) / (positives * negatives)
            samples["auc"].append(np.where((positives > 0) & (negatives > 0), auc, np.nan))
            done += size
    metrics: dict[str, MetricEstimate] = {}
    for name in ESTIMATED_METRICS:
        drawn = np.concatenate(samples[name])
        low, high = _quantiles(drawn, confidence)
        value = point.get(name)
        if name == "auc":
            finite = drawn[np.isfinite(drawn)]
            value = float(finite.mean()) if finite.size else None
        metrics[name] = MetricEstimate(None if value is None else float(value), low, high)
    notes = []
    if n < 100:
        notes.append(f"only {n} scored rows: the interval is wide")
    return PerformanceEstimate(
        rows=n,
        threshold=threshold,
        confidence=confidence,
        draws=draws,
        metrics=metrics,
        expected_confusion={"tp": tp, "fp": fp, "fn": fn, "tn": tn},
        notes=notes,
    )


def compare_with_realized(
    estimate: PerformanceEstimate | Mapping[str, Any], realized: Mapping[str, float | None]
) -> dict[str, dict[str, Any]]:
    """Per metric: the estimate, its interval, the realized value and whether it fell inside."""
    metrics = estimate.metrics if isinstance(estimate, PerformanceEstimate) else estimate.get("metrics", {})
    out: dict[str, dict[str, Any]] = {}
    for name, item in metrics.items():
        value = item if isinstance(item, Mapping) else asdict(item)
        actual = realized.get(name)
        if actual is None or (isinstance(actual, float) and math.isnan(actual)):
            continue
        low, high = value.get("low"), value.get("high")
        out[name] = {
            "estimate": value.get("estimate"),
            "low": low,
            "high": high,
            "realized": float(actual),
            "error": None if value.get("estimate") is None else float(actual) - float(value["estimate"]),
            "within_interval": bool(low is not None and high is not None and low <= actual <= high),
        }
    return out
