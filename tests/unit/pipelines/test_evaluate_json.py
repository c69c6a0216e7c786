"""evaluation.json and baseline.json are strict JSON, even when a metric is undefined."""

from __future__ import annotations

import json

import numpy as np

from pipelines.evaluate import strict_json


def test_nan_and_infinity_become_null_and_numpy_scalars_are_plain() -> None:
    text = strict_json(
        {
            "metrics": {"auc": float("nan"), "f1": np.float64(0.5), "rows": np.int64(3)},
            "edges": [float("-inf"), 0.0, float("inf")],
        }
    )
    assert "NaN" not in text
    assert "Infinity" not in text
    assert json.loads(text) == {"metrics": {"auc": None, "f1": 0.5, "rows": 3}, "edges": [None, 0.0, None]}
