"""How long the rehearsal takes: total and per stage, from the ``summary.json`` of each run.

Runs ``python3 dev.py rehearse`` (``--quick`` for the CI variant) ``--repeat`` times, each in a fresh
interpreter with its own output folder, reads every run's ``summary.json``, and replaces the
"The rehearsal" section of ``docs/benchmarks.md`` with the figures (median, min, max per stage), the
date, the machine's cores and its load average before and after (other work on the machine slows the
rehearsal: say what ran with ``--note``). Raw figures go to ``benchmarks/results/rehearsal.json``
(every run's summary) and the per-stage figures to ``benchmarks/results/rehearsal-stages.json``
(stage -> durations, verdicts, headline; the load average at each run's start and end; the DAG runs'
task durations from the Airflow logs). Only figures from a quiet machine (load average well under
the core count) are comparable: under load every stage stretches, the deploy and Spark the most.

    .venv/bin/python benchmarks/rehearsal_bench.py --repeat 3 --note "quiet machine"
    .venv/bin/python benchmarks/rehearsal_bench.py --quick --repeat 1 --no-doc
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
    load_start = os.getloadavg()[0]
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
    summary["load"] = {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)}
    summary["dag_tasks"] = {
        log.stem: dag_task_durations(log.read_text(errors="replace"))
        for log in sorted((out / "airflow").glob("*.log"))
    }
    return summary


_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")
_TASK_EVENT = re.compile(r"\[DAG TEST\] (starting|end task) task_id=(\w+)")


def dag_task_durations(log: str) -> dict[str, float]:
    """Seconds per task of one ``dag.test()`` log (from ``[DAG TEST] starting`` to ``end task``)."""
    started: dict[str, datetime] = {}
    durations: dict[str, float] = {}
    for line in log.splitlines():
        when, event = _LOG_TIME.match(line), _TASK_EVENT.search(line)
        if when is None or event is None:
            continue
        at = datetime.fromisoformat(when.group(1))
        kind, task = event.groups()
        if kind == "starting":
            started[task] = at
        elif task in started:
            durations[task] = round((at - started[task]).total_seconds(), 2)
    return durations


def stage_figures(runs: list[dict[str, Any]], quick: bool) -> dict[str, Any]:
    """``rehearsal-stages.json``: per stage its durations, verdicts and last headline, per run its load."""
    stages: dict[str, dict[str, Any]] = {}
    for run in runs:
        for stage in run["stages"]:
            entry = stages.setdefault(stage["stage"], {"durations_s": [], "verdicts": [], "headline": None})
            entry["verdicts"].append(stage["verdict"])
            if stage["verdict"] != "not run":
                entry["durations_s"].append(stage["duration_s"])
            entry["headline"] = stage.get("headline") or entry["headline"]
    for entry in stages.values():
        values = entry["durations_s"]
        entry["median_s"] = round(statistics.median(values), 3) if values else None
    return {
        "date": f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "quick": quick,
        "cores": os.cpu_count(),
        "target_s": TARGET_S,
        "runs": [
            {
                "total_s": run["duration_s"],
                "wall_s": run["wall_s"],
                "verdict": run["verdict"],
                "message": run["message"],
                "load": run.get("load"),
                "dag_tasks": run.get("dag_tasks", {}),
            }
            for run in runs
        ],
        "stages": stages,
    }


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
    loads = "; ".join(
        f"run {i + 1} {run['load']['start']:.1f} -> {run['load']['end']:.1f}"
        for i, run in enumerate(runs)
        if run.get("load")
    )

    def row(name: str, values: list[float]) -> str:
        return f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |"

    lines = [
        HEADING,
        "",
        f"`benchmarks/rehearsal_bench.py{' --quick' if quick else ''}`: `python3 dev.py rehearse"
        f"{' --quick' if quick else ''}` run {len(runs)} time(s), figures from each run's `summary.json`"
        f" (seconds). {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average"
        f" {load[0]:.1f} before and {load[1]:.1f} after ({loads}). {note}".rstrip(),
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
    """``doc`` with the figures of its "The rehearsal" section replaced by ``new``, or ``new`` appended.

    The figures run up to the section's first ``### `` subsection or the next ``## `` section, so
    hand-written subsections (where the time goes, earlier figures) stay.
    """
    if HEADING not in doc:
        return doc.rstrip("\n") + "\n\n" + new
    before, _, rest = doc.partition(HEADING)
    ends = [i for i in (rest.find("\n### "), rest.find("\n## ")) if i >= 0]
    return before + new + ("" if not ends else rest[min(ends) + 1 :])


def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the CI variant (mlops rehearse --quick)")
    parser.add_argument("--note", default="", help="what else ran on the machine")
    parser.add_argument(
        "--no-doc", action="store_true", help="write the JSON results only, not docs/benchmarks.md"
    )
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
    figures = stage_figures(runs, args.quick)
    (results / "rehearsal-stages.json").write_text(json.dumps(figures, indent=2) + "\n")
    text = section(runs, args.quick, (load_before, load_after), args.note)
    if not args.no_doc:
        DOC.write_text(replace_section(DOC.read_text(), text))
    print(text)
    return 0 if all(run["exit_code"] == 0 for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
