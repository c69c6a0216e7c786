"""Run one DAG with ``dag.test()`` in this process and print its outcome as one JSON line.

The rehearsal starts this as a child process (``python -m rehearsal.airflow_runner DAG_ID CONF``) so
Airflow reads a throwaway ``AIRFLOW_HOME``/SQLite configuration from its environment when it is first
imported, and nothing of Airflow stays in the rehearsal's own process. The parent sets the
environment (``AIRFLOW_HOME``, ``AIRFLOW__CORE__DAGS_FOLDER``, ``MLOPS_OUTPUTS_FILE``,
``AIRFLOW_CONN_AWS_DEFAULT``...).

:func:`write_worker_python` writes the interpreter the DAG's ``@task.external_python`` steps run
with: on MWAA that is the startup script's virtualenv (``delivery/mwaa.py`` ``WORKER_VENV``), which
holds the worker libraries and not Airflow. Running the steps with the rehearsal's own interpreter
would let them import Airflow (and makes Airflow's task script import its task runner, about 2 s per
step); the wrapper hides it, as the workers' environment does.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

RESULT_PREFIX = "MLOPS-DAG-RESULT "
WORKER_PYTHON_NAME = "worker-python"

_WORKER_PYTHON = """#!{python} -IS
# The pipeline steps' interpreter, like MWAA's worker virtualenv: the standard library, PYTHONPATH
# (the plugins folder holding ``pipelines``) and the worker libraries, but no Airflow.
import os, runpy, sys


class _NoAirflow:
    \"\"\"The workers' virtualenv has no Airflow: importing it fails as it would there.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name == "airflow" or name.startswith("airflow."):
            raise ModuleNotFoundError(
                f"No module named {{name!r}} (the DAG workers' environment has no Airflow)", name=name
            )
        return None


sys.meta_path.insert(0, _NoAirflow())
sys.path.extend([p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p] + {site!r})
args = sys.argv[1:]
if args[:1] == ["-m"]:
    sys.argv = [args[1], *args[2:]]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)
elif args[:1] == ["-c"]:
    sys.argv = ["-c", *args[2:]]
    exec(compile(args[1], "<string>", "exec"), {{"__name__": "__main__"}})
elif args:
    sys.argv = args
    runpy.run_path(args[0], run_name="__main__")
else:
    sys.exit("usage: worker-python SCRIPT [ARG...] | -c CODE | -m MODULE")
"""


def write_worker_python(folder: Path) -> Path:
    """Write the DAG workers' interpreter (an executable script) into ``folder``; return its path."""
    from rehearsal.container import image_site_packages

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / WORKER_PYTHON_NAME
    path.write_text(_WORKER_PYTHON.format(python=sys.executable, site=image_site_packages()))
    path.chmod(0o755)
    return path


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
