"""Spark drift vs the in-process engine on the same capture files (local mode, 2 cores).

Capture JSON lines as SageMaker writes them (20 CSV rows per request, 6 numeric + 4 categorical
features, two shifted), one generated 1M-row file linked ``rows / 1M`` times so large sizes cost no
extra disk. The in-process engine streams the files through the capture decoder and the
``DriftAccumulator`` (what ``run_monitor`` does, minus S3); the Spark engine runs the EMR job's
computation (``spark_drift_job.compute_state``) in a local-mode session with 2 cores. Each size
records both times, whether the verdicts agree, and the load average (the machine may be shared).

Usage (from the repository root)::

    .venv/bin/python benchmarks/spark_drift_bench.py --sizes 200000              # check the script
    .venv/bin/python benchmarks/spark_drift_bench.py --sizes 10000000,50000000    # the recorded run

A size up to 1M rows gets a file of exactly that many rows; a larger size must be a multiple of 1M
(copies of the 1M-row file). ``--out FILE`` also writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NUMERIC = [f"num_{i}" for i in range(6)]
CATEGORICAL = [f"cat_{i}" for i in range(4)]
FILE_ROWS = 1_000_000
PER_REQUEST = 20
START = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def make_rows(rows: int, seed: int, shifted: bool) -> Any:
    """Feature rows; ``shifted`` moves num_0 and cat_1."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {name: rng.normal(float(i), 1.0 + i / 4, rows) for i, name in enumerate(NUMERIC)}
    for j, name in enumerate(CATEGORICAL):
        data[name] = rng.choice([f"v{k}" for k in range(4 + 3 * j)], rows)
    frame = pd.DataFrame(data)
    if shifted:
        frame["num_0"] += 0.5
        frame["cat_1"] = np.where(rng.random(rows) < 0.5, "v0", frame["cat_1"])
    return frame.round(4)


def write_capture(path: Path, rows: int) -> None:
    """One capture file of ``rows`` shifted rows."""
    from pipelines.monitoring.capture import format_capture_line

    lines = make_rows(rows, 7, True).to_csv(header=False, index=False).splitlines()
    with path.open("w") as out:
        for index in range(0, len(lines), PER_REQUEST):
            body = ("\n".join(lines[index : index + PER_REQUEST]) + "\n").encode()
            when = START + timedelta(milliseconds=index)
            out.write(format_capture_line(body, "text/csv", None, None, inference_time=when) + "\n")


def in_process(paths: list[Path], reference: Any) -> tuple[float, Any]:
    """Time the in-process engine over the files."""
    from pipelines.monitoring.capture import CaptureStats, decode_records, iter_capture_file_records
    from pipelines.monitoring.drift import DriftAccumulator

    started = time.perf_counter()
    accumulator = DriftAccumulator(reference)
    stats = CaptureStats()
    for path in paths:
        with path.open() as lines:
            batch = decode_records(iter_capture_file_records(lines, stats), reference.features, stats)
            if batch is not None:
                accumulator.update(batch)
    return time.perf_counter() - started, accumulator.result()


def on_spark(spark: Any, paths: list[Path], reference: Any) -> tuple[float, Any]:
    """Time the Spark engine over the files."""
    from pipelines.monitoring.spark_drift import spark_drift

    started = time.perf_counter()
    report = spark_drift(spark, [str(p) for p in paths], reference)
    return time.perf_counter() - started, report


def main() -> None:
    """Run the sizes and print the figures as JSON."""
    from pipelines.features.local import spark_session
    from pipelines.monitoring.drift import Reference
    from pipelines.serving.artifact import FeatureSpec

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000000,50000000")
    parser.add_argument(
        "--skip-in-process-above", type=int, default=0, help="0: run both engines at every size"
    )
    parser.add_argument("--out", help="also write the figures to this JSON file")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    for size in sizes:
        if size < 1 or (size > FILE_ROWS and size % FILE_ROWS):
            parser.error(f"--sizes: {size} must be 1 to {FILE_ROWS:,} rows, or a multiple of {FILE_ROWS:,}")
    features = [FeatureSpec(n, "numeric") for n in NUMERIC] + [
        FeatureSpec(n, "categorical") for n in CATEGORICAL
    ]
    reference = Reference.from_frame(make_rows(100_000, 1, False), features)
    results = []
    with tempfile.TemporaryDirectory(prefix="spark-drift-bench-") as scratch:
        folder = Path(scratch)
        base = folder / "base.jsonl"
        if any(size >= FILE_ROWS for size in sizes):
            write_capture(base, FILE_ROWS)
        spark = spark_session("mlops-drift-bench", cores=2)
        try:
            for size in sizes:
                paths = []
                if size < FILE_ROWS:
                    paths.append(folder / f"size{size}.jsonl")
                    write_capture(paths[0], size)
                for k in range(size // FILE_ROWS):
                    link = folder / f"size{size}-part{k:03d}.jsonl"
                    link.symlink_to(base)
                    paths.append(link)
                load = os.getloadavg()[0]
                spark_s, spark_report = on_spark(spark, paths, reference)
                row: dict[str, Any] = {"rows": spark_report.current_rows, "spark_seconds": round(spark_s, 1)}
                if not args.skip_in_process_above or size <= args.skip_in_process_above:
                    local_s, local_report = in_process(paths, reference)
                    row["in_process_seconds"] = round(local_s, 1)
                    row["same_verdicts"] = local_report.drifted_features == spark_report.drifted_features
                row["drifted"] = spark_report.drifted_features
                row["load"] = {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)}
                results.append(row)
                print(json.dumps(row), flush=True)
        finally:
            spark.stop()
    summary = {"cpus": os.cpu_count(), "command": " ".join(sys.argv), "results": results}
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
