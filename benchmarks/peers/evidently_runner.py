"""Evidently's data drift preset over the benchmark files (run inside benchmarks/.venvs/drift).

Prints one JSON object: per-column verdict, score and test name, plus the dataset verdict.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
from evidently.legacy.metric_preset import DataDriftPreset
from evidently.legacy.pipeline.column_mapping import ColumnMapping
from evidently.legacy.report import Report


def main() -> None:
    reference_path, current_dir = Path(sys.argv[1]), Path(sys.argv[2])
    files = sorted(current_dir.glob("*.parquet"))
    if len(sys.argv) > 3:
        files = files[: int(sys.argv[3])]
    started = time.perf_counter()
    reference = pd.read_parquet(reference_path)
    current = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    loaded = time.perf_counter()
    numeric = [c for c in reference.columns if c.startswith("num_")]
    categorical = [c for c in reference.columns if c.startswith("cat_")]
    report = Report(metrics=[DataDriftPreset()])
    report.run(
        reference_data=reference,
        current_data=current,
        column_mapping=ColumnMapping(
            numerical_features=numeric, categorical_features=categorical, target=None, prediction=None
        ),
    )
    result = report.as_dict()
    finished = time.perf_counter()
    table = next(m["result"] for m in result["metrics"] if "drift_by_columns" in m["result"])
    columns = {
        name: {
            "drifted": bool(v["drift_detected"]),
            "score": float(v["drift_score"]),
            "test": v["stattest_name"],
        }
        for name, v in table["drift_by_columns"].items()
    }
    print(
        json.dumps(
            {
                "rows": len(current),
                "dataset_drift": bool(table["dataset_drift"]),
                "share": table["share_of_drifted_columns"],
                "columns": columns,
                "load_s": loaded - started,
                "compute_s": finished - loaded,
            }
        )
    )


if __name__ == "__main__":
    main()
