"""How long the rehearsal takes: total and per stage, from the ``summary.json`` of each run.

Runs ``python3 dev.py rehearse`` (``--quick`` for the CI variant) ``--repeat`` times, each in a fresh
interpreter with its own output folder, reads every run's ``summary.json``, and replaces the
"The rehearsal" section of ``docs/benchmarks.md`` with the figures (median, min, max per stage), the
date, the machine's cores and its load average before and after (other work on the machine slows the
rehearsal: say what ran with ``--note``). Raw figures go to ``benchmarks/results/rehearsal.json``.

    .venv/bin/python benchmarks/rehearsal_bench.py --repeat 3 --note "quiet machine"
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
HEADING = "## The rehearsal"
TARGET_S = 300.0


def run_once(quick: bool, out: Path) -> dict[str, Any]:
    """One rehearsal in a fresh interpreter; its ``summary.json`` plus the wall-clock seconds."""
    command = [sys.executable, str(ROOT / "dev.py"), "rehearse", "--out", str(out)]
    if quick:
        command.append("--quick")
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    summary_file = out / "summary.json"
    if not summary_file.is_file():
        raise SystemExit(
            f"the rehearsal wrote no summary.json (exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    summary = json.loads(summary_file.read_text())
    summary["wall_s"] = round(wall, 3)
    return summary


def section(runs: list[dict[str, Any]], quick: bool, load: tuple[float, float], note: str) -> str:
    """The Markdown section: one row per stage, then the total and the verdicts."""
    stages: dict[str, list[float]] = {}
    for run in runs:
        for stage in run["stages"]:
            if stage["verdict"] != "not run":
                stages.setdefault(stage["stage"], []).append(stage["duration_s"])
    totals = [run["duration_s"] for run in runs]
    walls = [run["wall_s"] for run in runs]
    verdicts = ", ".join(f"{run['verdict']} ({run['message']})" for run in runs)

    def row(name: str, values: list[float]) -> str:
        return f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |"

    lines = [
        HEADING,
        "",
        f"`benchmarks/rehearsal_bench.py{' --quick' if quick else ''}`: `python3 dev.py rehearse"
        f"{' --quick' if quick else ''}` run {len(runs)} time(s), figures from each run's `summary.json`"
        f" (seconds). {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average"
        f" {load[0]:.1f} before and {load[1]:.1f} after. {note}".rstrip(),
        "",
        "| stage | median | min | max |",
        "|---|---:|---:|---:|",
        *(row(name, values) for name, values in stages.items()),
        row("**total** (summary.json)", totals),
        row("wall clock (interpreter start to exit)", walls),
        "",
        f"Target: under {TARGET_S / 60:.0f} minutes ({TARGET_S:.0f} s) on this 2-core machine; "
        f"median total {statistics.median(totals):.1f} s. Verdicts: {verdicts}.",
        "",
    ]
    return "\n".join(lines)


def replace_section(doc: str, new: str) -> str:
    """``doc`` with its "The rehearsal" section (up to the next ``## ``) replaced by ``new``, or appended."""
    if HEADING not in doc:
        return doc.rstrip("\n") + "\n\n" + new
    before, _, rest = doc.partition(HEADING)
    after = rest.find("\n## ")
    return before + new + ("" if after < 0 else rest[after + 1 :])


def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the CI variant (mlops rehearse --quick)")
    parser.add_argument("--note", default="", help="what else ran on the machine")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    load_before = os.getloadavg()[0]
    runs = []
    with tempfile.TemporaryDirectory(prefix="rehearsal-bench-") as scratch:
        for index in range(args.repeat):
            run = run_once(args.quick, Path(scratch) / f"run-{index}")
            print(f"run {index + 1}: {run['verdict']} in {run['duration_s']:.1f} s ({run['message']})")
            runs.append(run)
    load_after = os.getloadavg()[0]
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "rehearsal.json").write_text(json.dumps({"quick": args.quick, "runs": runs}, indent=2) + "\n")
    text = section(runs, args.quick, (load_before, load_after), args.note)
    DOC.write_text(replace_section(DOC.read_text(), text))
    print(text)
    return 0 if all(run["exit_code"] == 0 for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
