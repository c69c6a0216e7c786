"""Drift benchmark: this engine vs Evidently's data drift preset (same tests and thresholds).

1,000,000 captured rows x 20 features (12 numeric, 8 categorical; four features shifted, two
nudged just below the thresholds) against a 100,000-row reference sample. Both sides read the
same parquet files and report per-feature verdicts; each run is a separate process so its peak
memory (max RSS) is measured alone. Then this engine alone at 100k, 1M and 10M rows (the 1M files
streamed ten times) to show time growing linearly and memory staying flat.

Usage (from the repository root)::

    .venv/bin/python benchmarks/drift_bench.py            # full run
    .venv/bin/python benchmarks/drift_bench.py --no-evidently --sizes 100000,1000000

Evidently 0.7 does not import with pandas 3: it runs in benchmarks/.venvs/drift, created on first
use from benchmarks/requirements-drift.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
sys.path.insert(0, str(REPO))

NUMERIC = [f"num_{i}" for i in range(12)]
CATEGORICAL = [f"cat_{i}" for i in range(8)]
FILE_ROWS = 100_000


def make_rows(rows: int, seed: int, shifted: bool) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        values = rng.lognormal(1.0, 0.5, rows) if i % 3 == 2 else rng.normal(float(i), 1.0 + i / 4, rows)
        data[name] = values
    for j, name in enumerate(CATEGORICAL):
        levels = 5 + 4 * j
        weights = 1.0 / np.arange(1, levels + 1)
        data[name] = rng.choice([f"v{k}" for k in range(levels)], rows, p=weights / weights.sum())
    frame = pd.DataFrame(data)
    if shifted:
        frame["num_0"] += 0.4 * 1.0  # normed Wasserstein ~0.4: drift
        frame["num_4"] = frame["num_4"].mean() + (frame["num_4"] - frame["num_4"].mean()) * 1.6  # drift
        frame["num_7"] += 0.05 * (1 + 7 / 4)  # ~0.05: below the 0.1 threshold
        levels = [f"v{k}" for k in range(13)]
        frame["cat_2"] = rng.choice(levels, rows)  # uniform instead of Zipf: drift
        moved = rng.random(rows) < 0.5
        frame.loc[moved, "cat_5"] = "v0"  # half the mass onto one level: drift
        nudge = rng.random(rows) < 0.03
        frame.loc[nudge, "cat_6"] = "v1"  # small move: below 0.1
    return frame


def generate(directory: Path, current_rows: int) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    reference = directory / "reference.parquet"
    if not reference.exists():
        make_rows(100_000, seed=1, shifted=False).to_parquet(reference, index=False)
    current = directory / "current"
    current.mkdir(exist_ok=True)
    for index in range(current_rows // FILE_ROWS):
        path = current / f"part-{index:04d}.parquet"
        if not path.exists():
            make_rows(FILE_ROWS, seed=100 + index, shifted=True).to_parquet(path, index=False)
    return reference, current


def run_ours(reference_path: Path, current_dir: Path, files: int, repeat: int) -> dict[str, Any]:
    """This engine: stream the files (``repeat`` times) through the accumulator."""
    import pandas as pd
    import pyarrow.parquet as pq

    from pipelines.monitoring.drift import DriftAccumulator, Reference
    from pipelines.serving.artifact import FeatureSpec

    started = time.perf_counter()
    features = [FeatureSpec(n, "numeric") for n in NUMERIC] + [
        FeatureSpec(n, "categorical") for n in CATEGORICAL
    ]
    reference = Reference.from_frame(pd.read_parquet(reference_path), features)
    accumulator = DriftAccumulator(reference)
    paths = sorted(current_dir.glob("*.parquet"))[:files]
    for _ in range(repeat):
        for path in paths:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=FILE_ROWS):
                # numeric columns as NumPy views, categorical as (Arrow-backed) pandas Series
                columns = {
                    name: batch.column(name).to_numpy() if name in NUMERIC else batch.column(name).to_pandas()
                    for name in batch.schema.names
                }
                accumulator.update(columns)
    report = accumulator.result()
    return {
        "rows": report.current_rows,
        "dataset_drift": report.dataset_drift,
        "share": report.drift_share,
        "columns": {
            f.name: {"drifted": f.drifted, "score": f.statistic, "test": f.method} for f in report.features
        },
        "compute_s": time.perf_counter() - started,
    }


def measure(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a child process, return its JSON output plus wall time and peak RSS."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, cwd=REPO)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    out = process.stdout.read() if process.stdout else b""
    if status != 0:
        raise RuntimeError(f"{argv[:3]} failed with status {status}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["wall_s"] = wall
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time, with the largest peak RSS of all runs."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    median = dict(ordered[len(ordered) // 2])
    median["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    median["wall_s_all"] = [r["wall_s"] for r in runs]
    return median


def ensure_drift_venv() -> Path:
    python = BENCH / ".venvs" / "drift" / "bin" / "python"
    marker = BENCH / ".venvs" / "drift" / ".installed"
    requirements = BENCH / "requirements-drift.txt"
    if not marker.exists() or marker.read_text() != requirements.read_text():
        subprocess.run([sys.executable, "-m", "venv", str(python.parent.parent)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)
        marker.write_text(requirements.read_text())
    return python


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "drift-bench-data")
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--compare-rows", type=int, default=1_000_000)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=3, help="comparison runs per side, alternated; the median is reported"
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "drift.json")
    parser.add_argument(
        "--child", nargs=3, metavar=("REFERENCE", "CURRENT_DIR", "ROWS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    if args.child:
        rows = int(args.child[2])
        files = min(rows, 1_000_000) // FILE_ROWS
        repeat = max(rows // 1_000_000, 1)
        print(json.dumps(run_ours(Path(args.child[0]), Path(args.child[1]), files, repeat)))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    reference, current = generate(args.data_dir, max(min(max(sizes), 1_000_000), args.compare_rows))
    me = [sys.executable, __file__, "--child", str(reference), str(current)]
    results: dict[str, Any] = {"scaling": [], "comparison": {}}
    for rows in sizes:
        entry = measure([*me, str(rows)])
        results["scaling"].append(entry)
        print(f"ours {rows:>10,} rows: {entry['wall_s']:.1f} s, peak {entry['peak_rss_mb']:.0f} MB, drifted "
              f"{sorted(k for k, v in entry['columns'].items() if v['drifted'])}", flush=True)  # fmt: skip
    if not args.no_evidently:
        python = ensure_drift_venv()
        files = args.compare_rows // FILE_ROWS
        evidently_argv = [
            str(python),
            str(BENCH / "peers" / "evidently_runner.py"),
            str(reference),
            str(current),
            str(files),
        ]
        ours_runs: list[dict[str, Any]] = []
        their_runs: list[dict[str, Any]] = []
        for index in range(args.repeat):  # alternate, so drift in machine load hits both sides
            ours_runs.append(measure([*me, str(args.compare_rows)]))
            their_runs.append(measure(evidently_argv))
            print(f"  run {index}: ours {ours_runs[-1]['wall_s']:.1f} s, evidently {their_runs[-1]['wall_s']:.1f} s", flush=True)  # fmt: skip
        ours, theirs = _median_run(ours_runs), _median_run(their_runs)
        for side, runs in (("this engine", ours_runs), ("Evidently", their_runs)):
            for name in runs[0]["columns"]:  # the same files every run: the verdicts must not change
                if len({r["columns"][name]["drifted"] for r in runs}) != 1:
                    raise RuntimeError(f"{side}'s verdict on {name} changed between runs")
        agree = {
            name: ours["columns"][name]["drifted"] == theirs["columns"][name]["drifted"]
            for name in ours["columns"]
        }
        results["comparison"] = {
            "ours": ours,
            "evidently": theirs,
            "verdicts_agree": agree,
            "runs": {"ours": ours_runs, "evidently": their_runs},
        }
        print(f"ours:      {ours['wall_s']:.1f} s median of {args.repeat}, peak {ours['peak_rss_mb']:.0f} MB")
        print(
            f"evidently: {theirs['wall_s']:.1f} s median of {args.repeat} ({theirs['compute_s']:.1f} s compute), "
            f"peak {theirs['peak_rss_mb']:.0f} MB"
        )
        print(f"speed-up (median wall): {theirs['wall_s'] / ours['wall_s']:.1f}x")
        for name in ours["columns"]:
            o, e = ours["columns"][name], theirs["columns"][name]
            print(f"  {name:7s} ours {o['test']:13s} {o['score']:.4f} {o['drifted']!s:5s} | "
                  f"evidently {e['test']:13s} {e['score']:.4f} {e['drifted']!s:5s}")  # fmt: skip
        print(f"all verdicts agree: {all(agree.values())}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
