"""Run one DAG with ``dag.test()`` in this process and print its outcome as one JSON line.

The rehearsal starts this as a child process (``python -m rehearsal.airflow_runner DAG_ID CONF``) so
Airflow reads a throwaway ``AIRFLOW_HOME``/SQLite configuration from its environment when it is first
imported, and nothing of Airflow stays in the rehearsal's own process. The parent sets the
environment (``AIRFLOW_HOME``, ``AIRFLOW__CORE__DAGS_FOLDER``, ``MLOPS_OUTPUTS_FILE``,
``AIRFLOW_CONN_AWS_DEFAULT``...).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

RESULT_PREFIX = "MLOPS-DAG-RESULT "


def run_dag(dag_id: str, conf: dict[str, object]) -> dict[str, object]:
    """Migrate the metadata database when it is new, run ``dag_id`` with ``conf``, return its states."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    home = Path(os.environ["AIRFLOW_HOME"])
    marker = home / ".migrated"
    if not marker.exists():
        db.resetdb()
        marker.write_text("1")
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        return {"state": "import-error", "errors": {str(k): str(v) for k, v in bag.import_errors.items()}}
    if dag_id not in bag.dags:
        return {"state": "no-such-dag", "dags": sorted(bag.dags)}
    run = bag.dags[dag_id].test(run_conf=conf)
    tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return {"state": str(run.state), "run_id": run.run_id, "tasks": tasks}


def main(argv: list[str]) -> int:
    """Entry point: ``DAG_ID [CONF_JSON]``; prints ``MLOPS-DAG-RESULT {...}``; exit 0 when it ran."""
    if len(argv) not in (1, 2):
        print("usage: python -m rehearsal.airflow_runner DAG_ID [CONF_JSON]", file=sys.stderr)
        return 2
    conf = json.loads(argv[1]) if len(argv) == 2 else {}
    result = run_dag(argv[0], conf)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
