"""The DAG workers' interpreter: the worker libraries and PYTHONPATH, never Airflow (like MWAA's venv)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rehearsal.airflow_runner import write_worker_python

REPO = Path(__file__).resolve().parents[2]


def _run(python: Path, *args: str, pythonpath: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": pythonpath}
    return subprocess.run(
        [str(python), *args], capture_output=True, text=True, env=env, check=False, timeout=120
    )


def test_the_worker_interpreter_hides_airflow_but_not_the_worker_libraries(tmp_path: Path) -> None:
    python = write_worker_python(tmp_path)
    assert os.access(python, os.X_OK)
    code = "import boto3, pandas, sklearn, pipelines.orchestration; print('libraries ok')"
    ok = _run(python, "-c", code, pythonpath=str(REPO))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "libraries ok"
    hidden = _run(python, "-c", "import airflow.sdk")
    assert hidden.returncode != 0
    assert "the DAG workers' environment has no Airflow" in hidden.stderr
    # what Airflow's external_python script does first: it must find no task runner to set up
    probe = "try:\n    from airflow.sdk.execution_time import task_runner\nexcept ModuleNotFoundError:\n    print('none')"
    assert _run(python, "-c", probe).stdout.strip() == "none"


def test_the_project_is_only_there_through_pythonpath(tmp_path: Path) -> None:
    python = write_worker_python(tmp_path)
    without = _run(python, "-c", "import pipelines", pythonpath="")
    assert without.returncode != 0
    assert "No module named 'pipelines'" in without.stderr


def test_scripts_and_modules_get_their_arguments(tmp_path: Path) -> None:
    python = write_worker_python(tmp_path / "bin")
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint(sys.argv[1:], __name__)\n")
    assert _run(python, str(script), "a", "b").stdout.strip() == "['a', 'b'] __main__"
    version = _run(python, "-c", "import sys; print('.'.join(map(str, sys.version_info)))")
    assert version.stdout.startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    module = _run(python, "-m", "json.tool", "--compact", str(_json(tmp_path)))
    assert module.stdout.strip() == '{"a":1}'
    assert _run(python).returncode != 0


def _json(tmp_path: Path) -> Path:
    path = tmp_path / "x.json"
    path.write_text('{"a": 1}')
    return path
