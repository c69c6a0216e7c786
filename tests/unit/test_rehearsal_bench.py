"""The rehearsal benchmark's per-stage figures and the DAG task durations it reads from Airflow logs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]

LOG = """\
2026-12-01T11:49:14.552758Z [info     ] [DAG TEST] starting task_id=ingest map_index=-1 [airflow.sdk.definitions.dag]
2026-12-01T11:49:21.965716Z [info     ] Task started                   [airflow.api_fastapi...]
2026-12-01T11:49:26.939004Z [info     ] [DAG TEST] end task task_id=ingest map_index=-1 [airflow.sdk.definitions.dag]
2026-12-01T11:49:26.965529Z [info     ] [DAG TEST] starting task_id=validate map_index=-1 [airflow.sdk.definitions.dag]
2026-12-01 11:49:30.237403+00:00 [info     ] Found credentials in environment variables. [botocore.credentials]
2026-12-01T11:49:34.842568Z [info     ] [DAG TEST] end task task_id=validate map_index=-1 [airflow.sdk.definitions.dag]
2026-12-01T11:49:34.865859Z [info     ] [DAG TEST] starting task_id=prepare_features map_index=-1 [airflow.sdk]
"""


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "rehearsal_bench", ROOT / "benchmarks" / "rehearsal_bench.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("rehearsal_bench", module)
    spec.loader.exec_module(module)
    return module


def test_task_durations_come_from_the_dag_test_markers() -> None:
    # a task still running when the log ends has no duration
    assert _bench().dag_task_durations(LOG) == {"ingest": 12.39, "validate": 7.88}


def test_stage_figures_keep_durations_verdicts_headlines_and_load() -> None:
    def run(total: float, train: float, verdict: str) -> dict:
        return {
            "duration_s": total,
            "wall_s": total + 10,
            "verdict": verdict,
            "message": "m",
            "load": {"start": 1.0, "end": 2.0},
            "dag_tasks": {"training-1": {"ingest": 1.5}},
            "stages": [
                {
                    "stage": "train",
                    "verdict": "passed",
                    "duration_s": train,
                    "headline": "AUC 0.83; package v1 Approved",
                },
                {"stage": "canary", "verdict": "not run", "duration_s": 0.0, "headline": None},
            ],
        }

    figures = _bench().stage_figures([run(200.0, 40.0, "passed"), run(220.0, 50.0, "failed")], quick=False)
    assert figures["stages"]["train"]["durations_s"] == [40.0, 50.0]
    assert figures["stages"]["train"]["median_s"] == 45.0
    assert figures["stages"]["train"]["headline"] == "AUC 0.83; package v1 Approved"
    assert figures["stages"]["canary"] == {
        "durations_s": [],
        "verdicts": ["not run", "not run"],
        "headline": None,
        "median_s": None,
    }
    assert [r["load"] for r in figures["runs"]] == [{"start": 1.0, "end": 2.0}] * 2
    assert figures["runs"][0]["dag_tasks"] == {"training-1": {"ingest": 1.5}}
    assert figures["target_s"] == 300.0


def test_new_figures_keep_the_hand_written_subsections() -> None:
    doc = "# B\n\n## The rehearsal\n\nold figures\n\n### Where the time goes\n\nnotes\n\n## Next\n\nx\n"
    new = _bench().replace_section(doc, "## The rehearsal\n\nnew figures\n\n")
    assert (
        new == "# B\n\n## The rehearsal\n\nnew figures\n\n### Where the time goes\n\nnotes\n\n## Next\n\nx\n"
    )
    assert _bench().replace_section("# B\n", "## The rehearsal\n") == "# B\n\n## The rehearsal\n"
