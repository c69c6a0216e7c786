"""Drift on Spark: the in-process engine's statistics from a PySpark job, for windows too large for one machine.

The split of work: the job (:mod:`pipelines.monitoring.spark_drift_job`, self-contained) makes one
pass over the captured rows and returns the sufficient statistics the streaming
:class:`~pipelines.monitoring.drift.DriftAccumulator` keeps; this module writes the job's plan (the
reference's PSI and plot bin edges, the bounds) and loads the state back into an accumulator, whose
``result()`` runs the very same tests (KS, Wasserstein, chi-square, Z, Jensen-Shannon, PSI) and the
same verdict rules. So the two engines agree exactly on counts, sums, histograms, PSI, category
counts and every categorical and low-cardinality verdict. Where they can differ, only in the last
digits: KS and Wasserstein read a uniform sample of at most ``reservoir_size`` values in both
engines (all values below that size, so equal there); beyond it each engine draws its own sample
(reservoir vs Bernoulli), and a verdict can differ only when the statistic sits within sampling
noise (about ``1/sqrt(reservoir_size)``) of its threshold. Sums are added in a different order
(floating-point rounding in the last bits of means and standard deviations). Past ``max_categories``
distinct values the in-process engine keeps the first seen, the Spark one the most frequent.

Not covered by the Spark engine: prediction (score) drift (the response payload is not decoded) and
JSON/base64 or quoted-CSV request payloads (counted as ``unsupported_records``; the in-process engine
handles them).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.monitoring.drift import OTHER_CATEGORY, DriftAccumulator, DriftConfig, DriftReport, Reference

JOB_SCRIPT = Path(__file__).with_name("spark_drift_job.py")
"""The PySpark entry point to upload and submit."""
DEFAULT_SPARK_MIN_BYTES = 4 * 1024**3
"""Window size (captured bytes) from which drift goes to Spark; a placeholder until the crossover is
measured on a quiet machine (benchmarks/spark_drift_bench.py, docs/benchmarks.md)."""


def _stamp(value: datetime) -> str:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def use_spark(window_bytes: int, threshold_bytes: int = DEFAULT_SPARK_MIN_BYTES) -> bool:
    """Whether a window of ``window_bytes`` captured bytes goes to the Spark engine."""
    return window_bytes >= threshold_bytes


def drift_plan(
    reference: Reference,
    config: DriftConfig | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """The job's plan: features in model order with the reference's bin edges, bounds and the window."""
    config = config or DriftConfig()
    accumulator = DriftAccumulator(reference, config)
    features = []
    for feature in reference.features:
        item: dict[str, Any] = {"name": feature.name, "kind": feature.kind}
        if feature.kind == "numeric":
            column = accumulator._numeric[feature.name]
            item["psi_edges"] = column.psi_edges.tolist()
            item["plot_edges"] = column.plot_edges.tolist()
        features.append(item)
    return {
        "features": features,
        "reservoir_size": config.reservoir_size,
        "low_cardinality_max": config.low_cardinality_max,
        "seed": config.seed,
        "window_start": _stamp(start) if start else None,
        "window_end": _stamp(end) if end else None,
    }


def accumulator_from_state(
    reference: Reference, state: Mapping[str, Any], config: DriftConfig | None = None
) -> DriftAccumulator:
    """A :class:`DriftAccumulator` holding the Spark job's state, ready for ``result()``."""
    config = config or DriftConfig()
    accumulator = DriftAccumulator(reference, config)
    accumulator.rows = int(state["rows"])
    rng = np.random.default_rng(config.seed)
    for name, values in state["numeric"].items():
        column = accumulator._numeric[name]
        column.count = int(values["count"])
        column.missing = int(values["missing"])
        column.total = float(values["total"])
        column.total_sq = float(values["total_sq"])
        column.minimum = float(values["minimum"])
        column.maximum = float(values["maximum"])
        column.psi_counts = np.asarray(values["psi_counts"], dtype=np.int64)
        column.plot_counts = np.asarray(values["plot_counts"], dtype=np.int64)
        distinct = values.get("distinct")
        column.distinct = None if distinct is None else {float(k): int(v) for k, v in distinct.items()}
        sample = np.asarray(values["sample"], dtype=np.float64)
        if sample.size > config.reservoir_size:  # the Bernoulli sample overshot: trim uniformly
            sample = rng.choice(sample, config.reservoir_size, replace=False)
        reservoir = column.reservoir
        reservoir.values[: sample.size] = sample
        reservoir.seen = sample.size  # sample() returns exactly these values
    for name, values in state["categorical"].items():
        column = accumulator._categorical[name]
        counts = Counter({str(k): int(v) for k, v in values["counts"].items()})
        if len(counts) > config.max_categories:
            kept = dict(counts.most_common(config.max_categories))
            other = sum(v for k, v in counts.items() if k not in kept)
            counts = Counter(kept)
            counts[OTHER_CATEGORY] += other
        column.counts = counts
        column.missing = int(values["missing"])
    return accumulator


def spark_drift(
    spark: Any,
    paths: Sequence[str],
    reference: Reference,
    config: DriftConfig | None = None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    context: Mapping[str, Any] | None = None,
) -> DriftReport:
    """Run the job's computation in ``spark`` (local mode in tests and benchmarks) and return the report."""
    from pipelines.monitoring import spark_drift_job

    plan = drift_plan(reference, config, start, end)
    state = spark_drift_job.compute_state(spark, list(paths), plan)
    return report_from_state(reference, state, config, context)


def report_from_state(
    reference: Reference,
    state: Mapping[str, Any],
    config: DriftConfig | None = None,
    context: Mapping[str, Any] | None = None,
) -> DriftReport:
    """The drift report of a job state (e.g. the JSON the EMR job wrote)."""
    extra = {
        "engine": "spark",
        "spark": {k: state[k] for k in ("records", "unsupported_records", "malformed_records")},
    }
    return accumulator_from_state(reference, state, config).result({**dict(context or {}), **extra})


def load_state(text: str) -> dict[str, Any]:
    """Parse the job's state file."""
    return json.loads(text)
