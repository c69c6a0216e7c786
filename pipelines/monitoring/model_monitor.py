"""SageMaker Model Monitor file formats: ``statistics.json``, ``constraints.json``, ``constraint_violations.json``.

Model Monitor is closed to new customers, so :mod:`pipelines.monitoring.drift` does the work; these
files keep the formats its users and tools read. Field names follow the Model Monitor data quality
documentation (Deequ-style statistics, ``inferred_type`` of ``Integral``/``Fractional``/``String``,
``monitoring_config``, violation ``constraint_check_type`` values). Where our engine differs (the
drift test and its statistic) the violation description says which test decided.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.monitoring.drift import DriftReport, Reference

FORMAT_VERSION = 0.0
"""The ``version`` field Model Monitor writes."""


def _inferred_type(values: np.ndarray | None, kind: str) -> str:
    if kind != "numeric":
        return "String"
    if values is not None and values.size and np.all(np.mod(values, 1) == 0):
        return "Integral"
    return "Fractional"


def _numeric_statistics(values: np.ndarray, missing: int, bins: int = 10) -> dict[str, Any]:
    common = {"num_present": int(values.size), "num_missing": int(missing)}
    if not values.size:
        return {"common": common}
    counts, edges = np.histogram(values, bins=bins)
    return {
        "common": common,
        "mean": float(values.mean()),
        "sum": float(values.sum()),
        "std_dev": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
        "distribution": {
            "kll": {
                "buckets": [
                    {
                        "lower_bound": float(edges[i]),
                        "upper_bound": float(edges[i + 1]),
                        "count": float(counts[i]),
                    }
                    for i in range(bins)
                ],
                "sketch": {"parameters": {"c": 0.64, "k": 2048.0}, "data": []},
            }
        },
    }


def _string_statistics(counts: dict[str, int], missing: int) -> dict[str, Any]:
    return {
        "common": {"num_present": int(sum(counts.values())), "num_missing": int(missing)},
        "distinct_count": float(len(counts)),
        "distribution": {
            "categorical": {
                "buckets": [{"value": key, "count": int(count)} for key, count in sorted(counts.items())]
            }
        },
    }


def baseline_statistics(reference: Reference) -> dict[str, Any]:
    """``statistics.json`` of the baseline (what a Model Monitor baselining job would write)."""
    features = []
    for feature in reference.features:
        missing = reference.missing.get(feature.name, 0)
        if feature.kind == "numeric":
            values = reference.numeric[feature.name]
            features.append(
                {
                    "name": feature.name,
                    "inferred_type": _inferred_type(values, "numeric"),
                    "numerical_statistics": _numeric_statistics(values, missing),
                }
            )
        else:
            features.append(
                {
                    "name": feature.name,
                    "inferred_type": "String",
                    "string_statistics": _string_statistics(
                        dict(reference.categorical[feature.name]), missing
                    ),
                }
            )
    return {"version": FORMAT_VERSION, "dataset": {"item_count": int(reference.rows)}, "features": features}


def current_statistics(report: DriftReport) -> dict[str, Any]:
    """``statistics.json`` of a monitoring window, from the drift report's streaming summaries."""
    features = []
    for item in report.features:
        common = {"num_present": item.current_rows, "num_missing": item.current_missing}
        if item.kind == "numeric":
            m = item.measures
            numerical: dict[str, Any] = {"common": common}
            if item.current_rows:
                numerical.update(
                    {
                        "mean": m.get("current_mean"),
                        "sum": (m.get("current_mean") or 0.0) * item.current_rows,
                        "std_dev": m.get("current_std"),
                        "min": m.get("current_min"),
                        "max": m.get("current_max"),
                    }
                )
            features.append(
                {"name": item.name, "inferred_type": "Fractional", "numerical_statistics": numerical}
            )
        else:
            plot = item.plot
            buckets = [
                {"value": k, "count": round(share * item.current_rows)}
                for k, share in zip(plot.get("categories", []), plot.get("current", []), strict=False)
            ]
            features.append(
                {
                    "name": item.name,
                    "inferred_type": "String",
                    "string_statistics": {
                        "common": common,
                        "distribution": {"categorical": {"buckets": buckets}},
                    },
                }
            )
    return {"version": FORMAT_VERSION, "dataset": {"item_count": report.current_rows}, "features": features}


def baseline_constraints(reference: Reference, drift_threshold: float = 0.1) -> dict[str, Any]:
    """``constraints.json`` suggested from the baseline (completeness, sign, categorical domains)."""
    features = []
    for feature in reference.features:
        missing = reference.missing.get(feature.name, 0)
        total = reference.rows or 1
        entry: dict[str, Any] = {"name": feature.name, "completeness": float(1 - missing / total)}
        if feature.kind == "numeric":
            values = reference.numeric[feature.name]
            entry["inferred_type"] = _inferred_type(values, "numeric")
            entry["num_constraints"] = {"is_non_negative": bool(values.size and values.min() >= 0)}
        else:
            entry["inferred_type"] = "String"
            entry["string_constraints"] = {"domains": sorted(reference.categorical[feature.name])}
        features.append(entry)
    return {
        "version": FORMAT_VERSION,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": drift_threshold,
                "comparison_method": "Robust",
                "categorical_comparison_threshold": drift_threshold,
                "categorical_drift_method": "LInfinity",
            },
        },
    }


def constraint_violations(
    report: DriftReport, constraints: dict[str, Any], completeness_tolerance: float = 0.05
) -> dict[str, Any]:
    """``constraint_violations.json`` for a window: drift, completeness, domain and missing columns."""
    by_name = {c["name"]: c for c in constraints.get("features", [])}
    violations: list[dict[str, str]] = []
    for item in report.features:
        constraint = by_name.get(item.name, {})
        if item.current_rows == 0 and item.current_missing > 0:
            violations.append(
                {
                    "feature_name": item.name,
                    "constraint_check_type": "missing_column_check",
                    "description": f"feature '{item.name}' has no values in the window",
                }
            )
            continue
        completeness = 1 - item.current_missing_rate
        expected = float(constraint.get("completeness", 1.0))
        if completeness < expected - completeness_tolerance:
            violations.append(
                {
                    "feature_name": item.name,
                    "constraint_check_type": "completeness_check",
                    "description": f"completeness {completeness:.4f} is below the baseline {expected:.4f}",
                }
            )
        if item.drifted:
            violations.append(
                {
                    "feature_name": item.name,
                    "constraint_check_type": "baseline_drift_check",
                    "description": f"{item.method} statistic {item.statistic:.4g} crosses the threshold "
                    f"{item.threshold} (drift against the baseline)",
                }
            )
        if item.new_categories:
            rate = item.measures.get("new_category_rate") or 0.0
            violations.append(
                {
                    "feature_name": item.name,
                    "constraint_check_type": "categorical_values_check",
                    "description": f"{rate:.2%} of values are outside the baseline domain, e.g. "
                    + ", ".join(repr(c) for c in item.new_categories[:5]),
                }
            )
        if item.kind == "numeric" and constraint.get("num_constraints", {}).get("is_non_negative"):
            low = item.measures.get("current_min")
            if low is not None and low < 0:
                violations.append(
                    {
                        "feature_name": item.name,
                        "constraint_check_type": "data_type_check",
                        "description": f"negative value {low} where the baseline is non-negative",
                    }
                )
    return {"violations": violations}
