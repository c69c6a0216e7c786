"""Drift engine: per-feature drift of captured traffic against the training baseline, streaming.

Defaults follow Evidently's data drift preset (legacy ``stattests.registry._get_default_stattest``),
so verdicts can be compared one for one:

=====================  ===============================  ======================================
column                 reference rows <= 1000            reference rows > 1000
=====================  ===============================  ======================================
numeric, > 5 values    Kolmogorov-Smirnov, p < 0.05      Wasserstein / std(reference) >= 0.1
numeric, <= 5 values   chi-square (Z-test if <= 2),      Jensen-Shannon distance >= 0.1
categorical            p < 0.05
=====================  ===============================  ======================================

and the dataset drifts when the share of drifted features is >= 0.5. Missing and infinite values
are dropped before the tests (as Evidently does) and reported as the missing-value rate. PSI
(reference-quantile bins for numeric features) and the new-category rate are computed for every
feature as extra evidence; either can be chosen as the deciding test in :class:`DriftConfig`.

Memory stays bounded however many rows stream through :meth:`DriftAccumulator.update`: counts,
sums and histograms are exact; numeric values are kept in a fixed-size uniform reservoir
(Vitter's algorithm R, vectorised) that KS and Wasserstein read, so they are exact up to
``reservoir_size`` current rows and a uniform-sample estimate beyond; categorical counts are exact
up to ``max_categories`` distinct values.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipelines.errors import InputRejectedError
from pipelines.monitoring.capture import PREDICTION_COLUMN
from pipelines.serving.artifact import FeatureSpec

NumericMethod = Literal["auto", "ks", "wasserstein", "psi"]
CategoricalMethod = Literal["auto", "chisquare", "z", "jensenshannon", "psi"]
OTHER_CATEGORY = "__other__"
"""Bucket for categories seen after ``max_categories`` distinct values were tracked."""


class DriftInputError(InputRejectedError, ValueError):
    """A drift configuration or reference data set is invalid; the message names the key or column."""


class BaselineNotFoundError(InputRejectedError, FileNotFoundError):
    """The baseline folder lacks a file the monitor needs."""


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds, test choice and resource bounds (defaults match Evidently's data drift preset)."""

    small_sample_max_rows: int = 1000
    ks_threshold: float = 0.05
    chisquare_threshold: float = 0.05
    z_threshold: float = 0.05
    wasserstein_threshold: float = 0.1
    jensenshannon_threshold: float = 0.1
    psi_threshold: float = 0.1
    psi_bins: int = 10
    low_cardinality_max: int = 5
    drift_share: float = 0.5
    min_current_rows: int = 30
    min_reference_rows: int = 30
    numeric_method: NumericMethod = "auto"
    categorical_method: CategoricalMethod = "auto"
    reservoir_size: int = 100_000
    max_categories: int = 10_000
    plot_bins: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.drift_share <= 1:
            raise DriftInputError(f"drift_share must be in (0, 1]; got {self.drift_share}")
        if self.reservoir_size < 100:
            raise DriftInputError(f"reservoir_size must be at least 100; got {self.reservoir_size}")
        if self.min_current_rows < 1 or self.min_reference_rows < 1:
            raise DriftInputError("min_current_rows and min_reference_rows must be at least 1")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DriftConfig:
        """Build from a config mapping, rejecting unknown keys with their names."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise DriftInputError(f"unknown drift config key(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(values))


# --------------------------------------------------------------------------------------------------
# statistics on counts and samples (vectorised)


def _fill_zeroes(percents: np.ndarray) -> np.ndarray:
    # Evidently's get_binned_data(feel_zeroes=True): empty bins get a tiny share so logs stay finite
    nonzero = percents[percents != 0]
    if nonzero.size == 0:
        return percents
    smallest = nonzero.min()
    fill = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(percents == 0, fill, percents)


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index over matching bins (Evidently's formula, zero bins filled)."""
    ref = _fill_zeroes(reference_counts / max(reference_counts.sum(), 1))
    cur = _fill_zeroes(current_counts / max(current_counts.sum(), 1))
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def jensen_shannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log) between two count vectors over the same keys."""
    from scipy.special import rel_entr

    # scipy.spatial.distance.jensenshannon's formula, without importing scipy.spatial
    p = reference_counts / reference_counts.sum()
    q = current_counts / current_counts.sum()
    m = (p + q) / 2.0
    divergence = (float(np.sum(rel_entr(p, m))) + float(np.sum(rel_entr(q, m)))) / 2.0
    return math.sqrt(max(divergence, 0.0))


def chisquare_pvalue(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Chi-square goodness of fit of current counts against reference shares (Evidently's chi_stat_test)."""
    from scipy.special import chdtrc  # chi-square survival function (scipy.stats.chi2.sf)

    expected = reference_counts * (current_counts.sum() / reference_counts.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(
            expected > 0,
            (current_counts - expected) ** 2 / expected,
            np.where(current_counts > 0, np.inf, 0.0),
        )
    statistic = float(terms.sum())
    if len(reference_counts) < 2:
        return 1.0
    return float(chdtrc(len(reference_counts) - 1, statistic))


def z_test_pvalue(keys: Sequence[str], reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Two-proportion Z-test for a column with at most two values (Evidently's z_stat_test)."""
    from scipy.special import ndtr  # standard normal CDF (scipy.stats.norm.cdf)

    present_ref = [k for k, c in zip(keys, reference_counts, strict=True) if c > 0]
    present_cur = [k for k, c in zip(keys, current_counts, strict=True) if c > 0]
    if len(present_ref) == 1 and present_ref == present_cur:
        return 1.0
    first = sorted(keys)[0]
    index = list(keys).index(first)
    n1, n2 = float(reference_counts.sum()), float(current_counts.sum())
    p1 = (n1 - reference_counts[index]) / n1
    p2 = (n2 - current_counts[index]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    denominator = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if denominator == 0:
        return 1.0
    return float(2 * (1 - ndtr(abs((p1 - p2) / denominator))))


def wasserstein_distance_sorted(u_sorted: np.ndarray, v_sorted: np.ndarray) -> float:
    """First Wasserstein distance of two sorted samples: the area between their empirical CDFs
    (scipy's ``wasserstein_distance`` algorithm without its per-call overhead)."""
    values = np.concatenate([u_sorted, v_sorted])
    values.sort(kind="mergesort")
    deltas = np.diff(values)
    u_cdf = np.searchsorted(u_sorted, values[:-1], side="right") / u_sorted.size
    v_cdf = np.searchsorted(v_sorted, values[:-1], side="right") / v_sorted.size
    return float(np.sum(np.abs(u_cdf - v_cdf) * deltas))


def wasserstein_normed(reference: np.ndarray, current: np.ndarray) -> float:
    """First Wasserstein distance divided by the reference std (floored at 0.001), as in Evidently."""
    distance = wasserstein_distance_sorted(np.sort(reference), np.sort(current))
    return distance / max(float(np.std(reference)), 0.001)


def ks_pvalue(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov p-value (scipy's ``ks_2samp``, method auto)."""
    from scipy.stats import ks_2samp

    result: Any = ks_2samp(reference, current)  # scipy's result class is not typed
    return float(result.pvalue)


# --------------------------------------------------------------------------------------------------
# reference


def _category_key(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def count_categories(values: Any) -> tuple[Counter[str], int]:
    """Counts of non-missing values as strings, and the number of missing ones (vectorised via pandas)."""
    import pandas as pd

    series = (
        values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object), dtype=object)
    )
    missing = int(series.isna().sum())
    counts: Counter[str] = Counter()
    for value, count in series.value_counts(dropna=True).items():
        key = _category_key(value)
        if key is not None:
            counts[key] += int(count)
    return counts, missing


def _finite(values: Any) -> tuple[np.ndarray, int]:
    array = np.asarray(values, dtype=np.float64)
    mask = np.isfinite(array)
    return array[mask], int(array.size - mask.sum())


@dataclass
class Reference:
    """Reference data for drift: raw sample values per feature plus ``baseline.json``."""

    features: tuple[FeatureSpec, ...]
    numeric: dict[str, np.ndarray]
    categorical: dict[str, Counter[str]]
    missing: dict[str, int]
    rows: int
    baseline: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_frame(
        cls, frame: Any, features: Sequence[FeatureSpec], baseline: Mapping[str, Any] | None = None
    ) -> Reference:
        """Build from a DataFrame holding the features (and optionally :data:`PREDICTION_COLUMN`)."""
        numeric: dict[str, np.ndarray] = {}
        categorical: dict[str, Counter[str]] = {}
        missing: dict[str, int] = {}
        columns = list(features)
        if PREDICTION_COLUMN in frame.columns:
            columns.append(FeatureSpec(PREDICTION_COLUMN, "numeric"))
        for feature in columns:
            if feature.name not in frame.columns:
                raise DriftInputError(
                    f"reference data has no column '{feature.name}' (columns: {list(frame.columns)})"
                )
            if feature.kind == "numeric":
                values, missing[feature.name] = _finite(
                    frame[feature.name].to_numpy(dtype=np.float64, na_value=np.nan)
                )
                numeric[feature.name] = np.sort(values)
            else:
                categorical[feature.name], missing[feature.name] = count_categories(
                    frame[feature.name].astype(object)
                )
        return cls(tuple(features), numeric, categorical, missing, len(frame), dict(baseline or {}))


def load_reference(baseline_dir: str | Path, features: Sequence[FeatureSpec] | None = None) -> Reference:
    """Load ``baseline_sample.parquet`` and ``baseline.json`` (and ``metadata.json`` for the features).

    ``features`` defaults to the ``features`` list of ``metadata.json`` in the same directory.
    """
    import json

    import pandas as pd

    from pipelines.serving.artifact import parse_features

    directory = Path(baseline_dir)
    baseline_path = directory / "baseline.json"
    baseline = json.loads(baseline_path.read_text()) if baseline_path.is_file() else {}
    if features is None:
        metadata_path = directory / "metadata.json"
        if metadata_path.is_file():
            features = parse_features(
                json.loads(metadata_path.read_text()).get("features"), str(metadata_path)
            )
        elif isinstance(baseline.get("features"), dict):
            # baseline.json lists the features (in model order, as the evaluation step writes them)
            raw = [{"name": name, "kind": spec.get("kind")} for name, spec in baseline["features"].items()]
            features = parse_features(raw, str(baseline_path))
        else:
            raise BaselineNotFoundError(
                f"no feature list: put metadata.json or baseline.json in {directory}, or pass the features"
            )
    sample_path = directory / "baseline_sample.parquet"
    if not sample_path.is_file():
        raise BaselineNotFoundError(
            f"{sample_path} not found: the evaluation step writes it next to baseline.json"
        )
    frame = pd.read_parquet(sample_path)
    return Reference.from_frame(frame, features, baseline)


# --------------------------------------------------------------------------------------------------
# streaming accumulators


class _Reservoir:
    """Fixed-size uniform sample of a stream (algorithm R, vectorised per batch)."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.values = np.empty(size, dtype=np.float64)
        self.size = size
        self.seen = 0
        self._rng = rng

    def add(self, batch: np.ndarray) -> None:
        if batch.size == 0:
            return
        fill = min(max(self.size - self.seen, 0), batch.size)
        if fill:
            self.values[self.seen : self.seen + fill] = batch[:fill]
        rest = batch[fill:]
        if rest.size:
            positions = np.arange(self.seen + fill + 1, self.seen + batch.size + 1, dtype=np.float64)
            # uniform slot in [0, position): exact for streams far below 2**53 items
            slots = (self._rng.random(rest.size) * positions).astype(np.int64)
            keep = slots < self.size
            # sequential semantics: a later item overwriting the same slot wins, as in algorithm R
            self.values[slots[keep]] = rest[keep]
        self.seen += batch.size

    def sample(self) -> np.ndarray:
        return self.values[: min(self.seen, self.size)]


class _NumericColumn:
    def __init__(self, reference: np.ndarray, config: DriftConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.count = 0
        self.missing = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.reservoir = _Reservoir(config.reservoir_size, rng)
        quantiles = (
            np.quantile(reference, np.linspace(0, 1, config.psi_bins + 1)[1:-1])
            if reference.size
            else np.array([])
        )
        self.psi_edges = np.unique(quantiles)
        self.psi_counts = np.zeros(self.psi_edges.size + 1, dtype=np.int64)
        low, high = (float(reference[0]), float(reference[-1])) if reference.size else (0.0, 1.0)
        if high <= low:
            high = low + 1.0
        self.plot_edges = np.linspace(low, high, config.plot_bins + 1)
        self.plot_counts = np.zeros(config.plot_bins + 2, dtype=np.int64)  # + below, above
        self.distinct: dict[float, int] | None = {}

    def _plot_bins(self, values: np.ndarray) -> np.ndarray:
        # equal-width bins: index arithmetically (0 = below the reference range, last = above)
        low, high = self.plot_edges[0], self.plot_edges[-1]
        width = (high - low) / (self.plot_edges.size - 1)
        index = np.floor((values - low) / width).astype(np.int64) + 1
        index[values >= high] = self.plot_edges.size
        return np.clip(index, 0, self.plot_counts.size - 1)

    def update(self, raw: Any) -> None:
        values, missing = _finite(raw)
        self.missing += missing
        if not values.size:
            return
        self.count += values.size
        self.total += float(values.sum())
        self.total_sq += float(np.dot(values, values))
        self.minimum = min(self.minimum, float(values.min()))
        self.maximum = max(self.maximum, float(values.max()))
        self.psi_counts += np.bincount(
            np.searchsorted(self.psi_edges, values, side="right"), minlength=self.psi_counts.size
        )
        self.plot_counts += np.bincount(self._plot_bins(values), minlength=self.plot_counts.size)
        if self.distinct is not None:
            uniques, counts = np.unique(values, return_counts=True)
            if uniques.size > self.config.low_cardinality_max:
                self.distinct = None  # not low-cardinality; stop tracking
            else:
                for value, count in zip(uniques.tolist(), counts.tolist(), strict=True):
                    self.distinct[value] = self.distinct.get(value, 0) + count
                if len(self.distinct) > self.config.low_cardinality_max:
                    self.distinct = None
        self.reservoir.add(values)


class _CategoricalColumn:
    def __init__(self, config: DriftConfig) -> None:
        self.config = config
        self.counts: Counter[str] = Counter()
        self.missing = 0

    def update(self, raw: Any) -> None:
        counts, missing = count_categories(raw)
        self.missing += missing
        for key, count in counts.items():
            if key in self.counts or len(self.counts) < self.config.max_categories:
                self.counts[key] += count
            else:
                self.counts[OTHER_CATEGORY] += count

    @property
    def count(self) -> int:
        return sum(self.counts.values())


# --------------------------------------------------------------------------------------------------
# results


@dataclass
class FeatureDrift:
    """Verdict and evidence for one feature (or for the prediction)."""

    name: str
    kind: str
    method: str
    statistic: float | None
    threshold: float | None
    drifted: bool
    status: Literal["ok", "drift", "insufficient_data"]
    reference_rows: int
    current_rows: int
    current_missing: int
    reference_missing_rate: float
    current_missing_rate: float
    measures: dict[str, float | None] = field(default_factory=dict)
    new_categories: list[str] = field(default_factory=list)
    plot: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass
class DriftReport:
    """A monitoring window's drift verdict: per feature, prediction, dataset level."""

    features: list[FeatureDrift]
    prediction: FeatureDrift | None
    dataset_drift: bool
    drift_share: float
    drifted_features: list[str]
    evaluated_features: int
    missing_value_rate: float
    current_rows: int
    reference_rows: int
    config: dict[str, Any]
    status: Literal["ok", "drift", "insufficient_data"]
    context: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (schema_version 1)."""
        data = asdict(self)
        data["schema_version"] = 1
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        """Rebuild from :meth:`to_dict` output (e.g. a ``report.json`` read back)."""
        values = {k: v for k, v in data.items() if k != "schema_version"}
        values["features"] = [FeatureDrift(**f) for f in values["features"]]
        if values.get("prediction") is not None:
            values["prediction"] = FeatureDrift(**values["prediction"])
        return cls(**values)

    def feature(self, name: str) -> FeatureDrift:
        """The result for one feature by name."""
        for item in self.features:
            if item.name == name:
                return item
        raise KeyError(name)


def _none_if_nan(value: float | None) -> float | None:
    return (
        None
        if value is None or (isinstance(value, float) and not math.isfinite(value) and math.isnan(value))
        else value
    )


class DriftAccumulator:
    """Streaming drift computation: feed batches with :meth:`update`, then call :meth:`result`."""

    def __init__(self, reference: Reference, config: DriftConfig | None = None) -> None:
        self.reference = reference
        self.config = config or DriftConfig()
        rng = np.random.default_rng(self.config.seed)
        self.rows = 0
        self._numeric: dict[str, _NumericColumn] = {}
        self._categorical: dict[str, _CategoricalColumn] = {}
        for feature in reference.features:
            if feature.kind == "numeric":
                self._numeric[feature.name] = _NumericColumn(
                    reference.numeric[feature.name], self.config, rng
                )
            else:
                self._categorical[feature.name] = _CategoricalColumn(self.config)
        self._prediction: _NumericColumn | None = None
        if PREDICTION_COLUMN in reference.numeric:
            self._prediction = _NumericColumn(reference.numeric[PREDICTION_COLUMN], self.config, rng)

    def update(self, batch: Mapping[str, Any]) -> None:
        """Add a batch: a mapping (dict of arrays or DataFrame) with one column per feature.

        A feature absent from the batch counts as missing for every row of it.
        """
        rows = _batch_rows(batch)
        if rows == 0:
            return
        self.rows += rows
        for name, column in self._numeric.items():
            if name in batch:
                column.update(batch[name])
            else:
                column.missing += rows
        for name, column in self._categorical.items():
            if name in batch:
                column.update(batch[name])
            else:
                column.missing += rows
        if self._prediction is not None and PREDICTION_COLUMN in batch:
            self._prediction.update(batch[PREDICTION_COLUMN])

    def result(self, context: Mapping[str, Any] | None = None) -> DriftReport:
        """Run the tests and return the report (the accumulator can keep streaming afterwards)."""
        results = []
        for feature in self.reference.features:
            if feature.kind == "numeric":
                results.append(self._numeric_result(feature.name, self._numeric[feature.name]))
            else:
                results.append(self._categorical_result(feature.name, self._categorical[feature.name]))
        prediction = None
        if self._prediction is not None and self._prediction.count:
            prediction = self._numeric_result(PREDICTION_COLUMN, self._prediction)
        evaluated = [r for r in results if r.status != "insufficient_data"]
        drifted = [r.name for r in evaluated if r.drifted]
        share = len(drifted) / len(evaluated) if evaluated else 0.0
        dataset_drift = bool(evaluated) and share >= self.config.drift_share
        cells = self.rows * len(results)
        missing_cells = sum(r.current_missing for r in results)
        status: Literal["ok", "drift", "insufficient_data"] = (
            "insufficient_data" if not evaluated else ("drift" if dataset_drift else "ok")
        )
        return DriftReport(
            features=results,
            prediction=prediction,
            dataset_drift=dataset_drift,
            drift_share=share,
            drifted_features=drifted,
            evaluated_features=len(evaluated),
            missing_value_rate=missing_cells / cells if cells else 0.0,
            current_rows=self.rows,
            reference_rows=self.reference.rows,
            config=asdict(self.config),
            status=status,
            context=dict(context or {}),
        )

    # ---- per kind ---------------------------------------------------------------------------------

    def _base(
        self, name: str, kind: str, reference_rows: int, current_rows: int, current_missing: int
    ) -> dict[str, Any]:
        ref_missing = self.reference.missing.get(name, 0)
        ref_total = reference_rows + ref_missing
        cur_total = current_rows + current_missing
        return {
            "name": name,
            "kind": kind,
            "reference_rows": reference_rows,
            "current_rows": current_rows,
            "current_missing": current_missing,
            "reference_missing_rate": ref_missing / ref_total if ref_total else 0.0,
            "current_missing_rate": current_missing / cur_total if cur_total else 0.0,
        }

    def _insufficient(
        self, base: dict[str, Any], measures: dict[str, float | None], plot: dict[str, Any]
    ) -> FeatureDrift:
        return FeatureDrift(
            **base, method="none", statistic=None, threshold=None, drifted=False, status="insufficient_data",
            measures=measures, plot=plot,
        )  # fmt: skip

    def _numeric_result(self, name: str, column: _NumericColumn) -> FeatureDrift:
        config = self.config
        reference = self.reference.numeric[name]
        base = self._base(name, "numeric", reference.size, column.count, column.missing)
        ref_psi_counts = np.bincount(
            np.searchsorted(column.psi_edges, reference, side="right"), minlength=column.psi_counts.size
        )
        ref_plot = np.bincount(column._plot_bins(reference), minlength=column.plot_counts.size)
        plot = {
            "type": "histogram",
            "edges": column.plot_edges.tolist(),
            "reference": (ref_plot / max(reference.size, 1)).tolist(),
            "current": (column.plot_counts / max(column.count, 1)).tolist(),
        }
        measures: dict[str, float | None] = {
            "reference_mean": float(reference.mean()) if reference.size else None,
            "current_mean": column.total / column.count if column.count else None,
            "current_std": math.sqrt(
                max(column.total_sq / column.count - (column.total / column.count) ** 2, 0.0)
            )
            if column.count
            else None,
            "current_min": column.minimum if column.count else None,
            "current_max": column.maximum if column.count else None,
        }
        if column.count < config.min_current_rows or reference.size < config.min_reference_rows:
            return self._insufficient(base, measures, plot)
        sample = column.reservoir.sample()
        measures["psi"] = psi(ref_psi_counts, column.psi_counts)
        measures["wasserstein_normed"] = wasserstein_normed(reference, sample)
        measures["sampled"] = float(column.count > config.reservoir_size)
        small = reference.size <= config.small_sample_max_rows
        if small or config.numeric_method == "ks":  # only where it can decide: scipy.stats is slow to import
            measures["ks_pvalue"] = ks_pvalue(reference, sample)
        method = config.numeric_method
        if method == "auto":
            distinct = column.distinct
            if distinct is not None:
                ref_values, ref_counts = np.unique(reference, return_counts=True)
                union = sorted(set(ref_values.tolist()) | set(distinct))
                if len(union) <= config.low_cardinality_max:
                    keys = [repr(v) for v in union]
                    ref_map = dict(zip(ref_values.tolist(), ref_counts.tolist(), strict=True))
                    ref_vector = np.array([ref_map.get(v, 0) for v in union], dtype=np.float64)
                    cur_vector = np.array([distinct.get(v, 0) for v in union], dtype=np.float64)
                    return self._count_verdict(
                        base, measures, plot, keys, ref_vector, cur_vector, small, "auto"
                    )
            method = "ks" if small else "wasserstein"
        statistic, threshold, drifted = self._numeric_verdict(method, measures)
        return FeatureDrift(
            **base, method=method, statistic=statistic, threshold=threshold, drifted=drifted,
            status="drift" if drifted else "ok", measures=measures, plot=plot,
        )  # fmt: skip

    def _numeric_verdict(self, method: str, measures: dict[str, float | None]) -> tuple[float, float, bool]:
        config = self.config
        if method == "ks":
            value = float(measures["ks_pvalue"] or 0.0)
            return value, config.ks_threshold, value < config.ks_threshold
        if method == "psi":
            value = float(measures["psi"] or 0.0)
            return value, config.psi_threshold, value >= config.psi_threshold
        value = float(measures["wasserstein_normed"] or 0.0)
        return value, config.wasserstein_threshold, value >= config.wasserstein_threshold

    def _categorical_result(self, name: str, column: _CategoricalColumn) -> FeatureDrift:
        config = self.config
        reference = self.reference.categorical[name]
        ref_rows = sum(reference.values())
        base = self._base(name, "categorical", ref_rows, column.count, column.missing)
        keys = sorted(set(reference) | set(column.counts))
        ref_vector = np.array([reference.get(k, 0) for k in keys], dtype=np.float64)
        cur_vector = np.array([column.counts.get(k, 0) for k in keys], dtype=np.float64)
        new = [k for k in keys if k not in reference and column.counts.get(k, 0) > 0]
        new_rows = sum(column.counts[k] for k in new)
        top = sorted(
            keys,
            key=lambda k: (
                -(reference.get(k, 0) / max(ref_rows, 1) + column.counts.get(k, 0) / max(column.count, 1))
            ),
        )[:20]
        plot = {
            "type": "bars",
            "categories": top,
            "reference": [reference.get(k, 0) / max(ref_rows, 1) for k in top],
            "current": [column.counts.get(k, 0) / max(column.count, 1) for k in top],
        }
        measures: dict[str, float | None] = {
            "new_category_rate": new_rows / column.count if column.count else None
        }
        result = None
        if column.count < config.min_current_rows or ref_rows < config.min_reference_rows:
            result = self._insufficient(base, measures, plot)
        else:
            result = self._count_verdict(
                base,
                measures,
                plot,
                keys,
                ref_vector,
                cur_vector,
                ref_rows <= config.small_sample_max_rows,
                config.categorical_method,
            )
        result.kind = "categorical"
        result.new_categories = new[:50]
        return result

    def _count_verdict(
        self,
        base: dict[str, Any],
        measures: dict[str, float | None],
        plot: dict[str, Any],
        keys: list[str],
        ref_vector: np.ndarray,
        cur_vector: np.ndarray,
        small: bool,
        method: str,
    ) -> FeatureDrift:
        config = self.config
        measures["psi"] = psi(ref_vector, cur_vector)
        measures["jensenshannon"] = jensen_shannon(ref_vector, cur_vector)
        measures["chisquare_pvalue"] = chisquare_pvalue(ref_vector, cur_vector)
        if method == "auto":
            method = ("chisquare" if len(keys) > 2 else "z") if small else "jensenshannon"
        if method == "z":
            value = z_test_pvalue(keys, ref_vector, cur_vector)
            measures["z_pvalue"] = value
            threshold, drifted = config.z_threshold, value < config.z_threshold
        elif method == "chisquare":
            value = float(measures["chisquare_pvalue"] or 0.0)
            threshold, drifted = config.chisquare_threshold, value < config.chisquare_threshold
        elif method == "psi":
            value = float(measures["psi"] or 0.0)
            threshold, drifted = config.psi_threshold, value >= config.psi_threshold
        else:
            value = float(measures["jensenshannon"] or 0.0)
            threshold, drifted = config.jensenshannon_threshold, value >= config.jensenshannon_threshold
        return FeatureDrift(
            **base, method=method, statistic=value, threshold=threshold, drifted=bool(drifted),
            status="drift" if drifted else "ok", measures=measures, plot=plot,
        )  # fmt: skip


def _batch_rows(batch: Mapping[str, Any]) -> int:
    if hasattr(batch, "shape"):  # a DataFrame
        return int(getattr(batch, "shape")[0])  # noqa: B009 - Mapping has no shape; DataFrames do
    for name in batch:
        return len(batch[name])
    return 0


def compute_drift(
    reference: Reference,
    batches: Iterable[Mapping[str, Any]],
    config: DriftConfig | None = None,
    context: Mapping[str, Any] | None = None,
) -> DriftReport:
    """Stream ``batches`` through a :class:`DriftAccumulator` and return the report."""
    accumulator = DriftAccumulator(reference, config)
    for batch in batches:
        accumulator.update(batch)
    return accumulator.result(context)
