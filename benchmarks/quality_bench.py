"""Model-quality benchmark: ground truth joined to captured predictions, metrics, segments and CBPE.

``--rows`` captured predictions (default 1,000,000; 5 rows per request, so keys are
``(inference_id, row)``), labels for ``--coverage`` of them (default 0.8) landing in another order,
two segment columns (4 and 12 values). Times the join + window metrics + segment metrics
(:func:`pipelines.monitoring.quality.compute_quality`) and the CBPE estimate with its Monte Carlo
intervals (:func:`pipelines.monitoring.estimate.estimate_performance`, 500 draws), and records the
load average beside the figures (the machine may be shared).

Usage (from the repository root)::

    .venv/bin/python benchmarks/quality_bench.py                 # 1M rows
    .venv/bin/python benchmarks/quality_bench.py --rows 100000   # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def frames(rows: int, coverage: float, seed: int = 0) -> tuple[Any, Any]:
    """Captured predictions and a shuffled share of their labels (calibrated scores)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    request = np.arange(rows) // 5
    scores = rng.beta(2, 3, rows)
    predictions = pd.DataFrame(
        {
            "inference_id": pd.Series([f"req-{i:08d}" for i in request], dtype=object),
            "row": np.arange(rows) % 5,
            "score": scores,
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "plan": rng.choice([f"p{i}" for i in range(12)], rows),
        }
    )
    labels = (rng.random(rows) < scores).astype(int)
    keep = rng.permutation(rows)[: int(rows * coverage)]
    truth = pd.DataFrame(
        {"inference_id": predictions["inference_id"].to_numpy()[keep], "row": predictions["row"].to_numpy()[keep],
         "label": labels[keep]}
    )  # fmt: skip
    return predictions, truth


def run(rows: int, coverage: float) -> dict[str, Any]:
    """Time the quality computation and the estimate on ``rows`` predictions."""
    from pipelines.monitoring.estimate import compare_with_realized, estimate_performance
    from pipelines.monitoring.quality import compute_quality

    predictions, truth = frames(rows, coverage)
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    report = compute_quality(
        predictions,
        truth,
        task="binary_classification",
        segments=["region", "plan"],
        quality_min={"auc": 0.7},
    )
    quality_s = time.perf_counter() - started
    started = time.perf_counter()
    estimate = estimate_performance(predictions["score"].to_numpy(), draws=500)
    estimate_s = time.perf_counter() - started
    comparison = compare_with_realized(estimate, report.metrics)
    return {
        "rows": rows,
        "labelled": report.labelled,
        "segments": len(report.segments),
        "quality_seconds": round(quality_s, 2),
        "estimate_seconds": round(estimate_s, 2),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "auc": report.metrics.get("auc"),
        "estimate_within_interval": {k: v["within_interval"] for k, v in comparison.items()},
        "load": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
        "cpus": os.cpu_count(),
    }


def main() -> None:
    """Run and print the result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--coverage", type=float, default=0.8)
    args = parser.parse_args()
    print(json.dumps(run(args.rows, args.coverage), indent=2))


if __name__ == "__main__":
    main()
