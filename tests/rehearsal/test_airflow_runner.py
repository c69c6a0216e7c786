"""The DAG workers' interpreter: the worker libraries and PYTHONPATH, never Airflow (like MWAA's venv)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


# --- the long-lived runner (``--serve``) -----------------------------------------------------------

_DAGS = """
import pendulum
from airflow.sdk import DAG, task

with DAG("hello", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False) as hello:

    @task
    def greet(dag_run=None):
        import os
        print(f"hello {dag_run.conf['who']} from {os.getpid()} in {os.environ.get('MLOPS_TEST_PLACE')}")
        return os.getpid()

    greet()

with DAG("broken", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False) as broken:

    @task
    def fail():
        raise RuntimeError("this task always fails")

    fail()
"""


def _service_env(tmp_path: Path) -> dict[str, str]:
    import json

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "hello.py").write_text(_DAGS)
    home = tmp_path / "home"
    home.mkdir()
    bundle = [
        {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(dags)},
        }
    ]
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundle),
    }


def test_one_runner_serves_several_dag_runs_each_with_its_own_log(tmp_path: Path) -> None:
    from rehearsal.airflow_runner import DagService

    children: list[subprocess.Popen[bytes]] = []

    def spawn(args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(args, start_new_session=True, **kwargs)  # type: ignore[call-overload]
        children.append(child)
        return child

    service = DagService(spawn, _service_env(tmp_path), str(REPO), tmp_path / "runner.log")
    try:
        first = service.run("hello", {"who": "ada"}, tmp_path / "first.log", timeout_s=300)
        elsewhere = {**service.env, "MLOPS_TEST_PLACE": "the lab"}  # read when used: same child
        second = service.run("hello", {"who": "grace"}, tmp_path / "second.log", timeout_s=300, env=elsewhere)
        assert service.serves(elsewhere)
        other_home = {**service.env, "AIRFLOW_HOME": str(tmp_path / "other")}  # read at start: not this child
        assert not service.serves(other_home)
        with pytest.raises(ValueError, match="other AIRFLOW_HOME"):
            service.run("hello", {"who": "x"}, tmp_path / "x.log", timeout_s=300, env=other_home)
        failed = service.run("broken", {}, tmp_path / "broken.log", timeout_s=300)
        missing = service.run("no_such_dag", {}, tmp_path / "missing.log", timeout_s=300)
        assert service.alive()
    finally:
        service.close()
    assert len(children) == 1  # one Airflow for all four requests
    assert first is not None
    assert second is not None
    assert first["state"] == second["state"] == "success"
    assert first["run_id"] != second["run_id"]
    assert first["tasks"] == second["tasks"] == {"greet": "success"}
    first_log, second_log = (tmp_path / "first.log").read_text(), (tmp_path / "second.log").read_text()
    assert "in None" in first_log
    assert "in the lab" in second_log
    assert "hello ada" in first_log
    assert "hello grace" not in first_log
    assert "hello grace" in second_log
    assert "hello ada" not in second_log
    assert failed is not None
    assert failed["state"] == "failed"
    assert failed["tasks"] == {"fail": "failed"}
    assert "this task always fails" in (tmp_path / "broken.log").read_text()
    assert missing == {"state": "no-such-dag", "dags": ["broken", "hello"]}
    assert children[0].poll() is not None  # closed: nothing left running
    start_up = (tmp_path / "runner.log").read_text()
    assert "Dropping Airflow tables" in start_up or "Creating Airflow database tables" in start_up
    assert "Creating Airflow database tables" not in first_log  # the warm-up's output stays out of runs


def test_a_runner_that_dies_answers_none_and_a_silent_one_times_out(tmp_path: Path) -> None:
    from rehearsal.airflow_runner import DagService

    def spawn_exiting(args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        code = "import sys; print('MLOPS-AIRFLOW-READY', flush=True); sys.stdin.readline()"
        return subprocess.Popen([sys.executable, "-c", code], **kwargs)  # type: ignore[call-overload]

    dead = DagService(spawn_exiting, {"PATH": os.environ.get("PATH", "")}, str(tmp_path), tmp_path / "r.log")
    assert dead.run("hello", {}, tmp_path / "dead.log", timeout_s=60) is None
    dead.close()

    def spawn_silent(args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        code = (
            "import sys, time; print('MLOPS-AIRFLOW-READY', flush=True); sys.stdin.readline(); time.sleep(60)"
        )
        return subprocess.Popen([sys.executable, "-c", code], start_new_session=True, **kwargs)  # type: ignore[call-overload]

    silent = DagService(spawn_silent, {"PATH": os.environ.get("PATH", "")}, str(tmp_path), tmp_path / "r.log")
    with pytest.raises(TimeoutError, match="hello did not finish within 1 s"):
        silent.run("hello", {}, tmp_path / "silent.log", timeout_s=1)
    assert not silent.alive()  # the timeout ended it
