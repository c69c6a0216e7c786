"""Group fairness of a classifier at evaluation (fairlearn), over the contract's sensitive attributes.

For each sensitive attribute: per-group row count, selection rate, true and false positive rates of the
predicted class (score >= threshold), fairlearn's demographic parity difference and equalized odds
difference, and the gate's verdict against the contract's maxima.
https://fairlearn.org/main/user_guide/assessment/common_fairness_metrics.html
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from pipelines.contract import FairnessConfig

MISSING_GROUP = "(missing)"
"""Group label of rows whose sensitive attribute is missing."""


def _number(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


def group_labels(values: pd.Series) -> pd.Series:
    """Sensitive attribute values as text group labels (missing values form their own group)."""
    import pandas as pd

    from pipelines.transforms import category_text

    def label(value: Any) -> str:
        text = None if pd.isna(value) else category_text(value)
        return MISSING_GROUP if text is None else text

    return values.astype(object).map(label).astype(str)


def attribute_fairness(y_true: np.ndarray, predicted: np.ndarray, groups: pd.Series) -> dict[str, Any]:
    """Fairness of 0/1 predictions ``predicted`` against 0/1 ``y_true`` across ``groups``."""
    from fairlearn.metrics import (
        MetricFrame,
        count,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    frame = MetricFrame(
        metrics={
            "count": count,
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
        },
        y_true=y_true,
        y_pred=predicted,
        sensitive_features=groups.to_numpy(),
    )
    by_group = frame.by_group
    per_group = {
        str(group): {
            "count": int(cast("int", row["count"])),
            "selection_rate": _number(row["selection_rate"]),
            "true_positive_rate": _number(row["true_positive_rate"]),
            "false_positive_rate": _number(row["false_positive_rate"]),
        }
        for group, row in by_group.iterrows()
    }
    features = groups.to_numpy()
    return {
        "demographic_parity_difference": _number(
            demographic_parity_difference(y_true, predicted, sensitive_features=features)
        ),
        "equalized_odds_difference": _number(
            equalized_odds_difference(y_true, predicted, sensitive_features=features)
        ),
        "groups": dict(sorted(per_group.items())),
    }


def fairness_report(
    config: FairnessConfig,
    frame: pd.DataFrame,
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Fairness of the classifier's scores on ``frame`` (the test rows, with the sensitive columns) per
    attribute, with ``reasons`` for every breached maximum (empty: passed).

    Raises:
        KeyError: a sensitive attribute is not a column of ``frame`` (the features lack it).
    """
    predicted = (scores >= threshold).astype(int)
    attributes: dict[str, Any] = {}
    reasons: list[str] = []
    limits = {
        "demographic_parity_difference": config.max_demographic_parity_difference,
        "equalized_odds_difference": config.max_equalized_odds_difference,
    }
    for attribute in config.sensitive_attributes:
        if attribute not in frame.columns:
            raise KeyError(
                f"sensitive attribute '{attribute}' is not in the features; rebuild the features with this "
                "contract (the feature job carries the sensitive attributes)"
            )
        result = attribute_fairness(y_true, predicted, group_labels(cast("pd.Series", frame[attribute])))
        attributes[attribute] = result
        for metric, bound in limits.items():
            value = result[metric]
            if bound is None:
                continue
            if value is None or value > bound:
                reasons.append(_reason(attribute, metric, value, bound, result["groups"]))
    return {
        "threshold": threshold,
        "attributes": attributes,
        "limits": {k: v for k, v in limits.items() if v is not None},
        "passed": not reasons,
        "reasons": reasons,
    }


def _reason(attribute: str, metric: str, value: float | None, bound: float, groups: dict[str, Any]) -> str:
    """A readable gate reason naming the attribute, the value, the bound and the groups far apart."""
    label = metric.replace("_", " ")
    if value is None:
        return f"fairness: {label} on '{attribute}' is undefined (a group lacks positives or negatives)"
    rate = "selection_rate" if metric == "demographic_parity_difference" else "true_positive_rate"
    known = {g: v[rate] for g, v in groups.items() if v[rate] is not None}
    detail = ""
    if known:
        low, high = min(known, key=known.__getitem__), max(known, key=known.__getitem__)
        detail = f" ({rate.replace('_', ' ')} {known[high]:.3f} for '{high}' vs {known[low]:.3f} for '{low}')"
    return f"fairness: {label} on '{attribute}' is {value:.4f}, above the maximum {bound}{detail}"
