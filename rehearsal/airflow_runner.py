"""Run one DAG with ``dag.test()`` in this process and print its outcome as one JSON line.

The rehearsal starts this as a child process so Airflow reads a throwaway ``AIRFLOW_HOME``/SQLite
configuration from its environment when it is first imported, and nothing of Airflow stays in the
rehearsal's own process. The parent sets the environment (``AIRFLOW_HOME``,
``AIRFLOW__CORE__DAGS_FOLDER``, ``MLOPS_OUTPUTS_FILE``, ``AIRFLOW_CONN_AWS_DEFAULT``...). Two modes:

- ``python -m rehearsal.airflow_runner DAG_ID [CONF]``: one run, then exit;
- ``python -m rehearsal.airflow_runner --serve``: a long-lived Airflow, as MWAA's scheduler and
  workers are. It warms up first (imports, the metadata database, the in-process execution API that
  ``dag.test()`` otherwise builds for its first task: 6-11 s on this machine), then takes one request
  per stdin line (``{"dag_id", "conf", "log", "env"}``): each run's log (stderr) in its own file, its
  environment the request's (connections, credentials, the outputs file), one result line per request
  on stdout. The rehearsal starts it with the emulator, so the warm-up overlaps the deploy, and every
  DAG run of the rehearsal reuses it. The DAG folder is parsed afresh for every request, so a changed
  stack outputs file is seen. What Airflow reads once at start (``AIRFLOW_HOME``, ``AIRFLOW__*``
  settings, ``PYTHONPATH``: :func:`service_identity`) must be the same for every request.

:func:`write_worker_python` writes the interpreter the DAG's ``@task.external_python`` steps run
with: on MWAA that is the startup script's virtualenv (``delivery/mwaa.py`` ``WORKER_VENV``), which
holds the worker libraries and not Airflow. Running the steps with the rehearsal's own interpreter
would let them import Airflow (and makes Airflow's task script import its task runner, about 2 s per
step); the wrapper hides it, as the workers' environment does.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULT_PREFIX = "MLOPS-DAG-RESULT "
READY_LINE = "MLOPS-AIRFLOW-READY"
"""What ``--serve`` prints on stdout once warm (what it logged before goes to the runner's own log)."""
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


def service_identity(env: dict[str, str]) -> dict[str, str]:
    """The part of an Airflow child's environment it reads only at start (a request that needs another
    one needs another child): ``AIRFLOW_HOME``, the ``AIRFLOW__SECTION__KEY`` settings, ``PYTHONPATH``.
    Connections (``AIRFLOW_CONN_*``) and everything else are read when used, so they may change per run."""
    return {k: v for k, v in env.items() if k in ("AIRFLOW_HOME", "PYTHONPATH") or k.startswith("AIRFLOW__")}


class DagService:
    """The parent's side of ``--serve``: one long-lived child Airflow with a fixed environment.

    Args:
        spawn: Starts the child (``RunContext.spawn``: its own process group, ended when the
            rehearsal closes).
        env: The child's environment at start; requests bring their own, with the same
            :func:`service_identity`.
        cwd: The child's working directory.
        log: Where the child logs between requests (its start-up).
    """

    def __init__(
        self, spawn: Callable[..., subprocess.Popen[bytes]], env: dict[str, str], cwd: str, log: Path
    ) -> None:
        self.env = dict(env)
        self.identity = service_identity(self.env)
        self.log = log
        self._ready = False
        with log.open("ab") as sink:
            self._child = spawn(
                [sys.executable, "-m", "rehearsal.airflow_runner", "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=sink,
                env=self.env,
                cwd=cwd,
            )
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read, name="airflow-runner-stdout", daemon=True).start()

    def _read(self) -> None:
        assert self._child.stdout is not None
        for line in self._child.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def alive(self) -> bool:
        """The child is still running."""
        return self._child.poll() is None

    def serves(self, env: dict[str, str]) -> bool:
        """The child is running and can run DAGs under ``env`` (same :func:`service_identity`)."""
        return self.alive() and service_identity(env) == self.identity

    @property
    def returncode(self) -> int | None:
        """The child's exit status (None while it runs)."""
        return self._child.poll()

    def run(
        self,
        dag_id: str,
        conf: dict[str, Any],
        log: Path,
        timeout_s: float,
        env: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """Run ``dag_id`` with ``conf`` under ``env`` (default: the start environment), its log in ``log``
        (stdout lines appended there too); the result, or None when the child exited without answering.

        Raises:
            ValueError: ``env`` has another :func:`service_identity`.
            TimeoutError: no answer within ``timeout_s`` (the child is then ended).
        """
        env = self.env if env is None else env
        if service_identity(env) != self.identity:
            raise ValueError("this Airflow child was started with other AIRFLOW_HOME/AIRFLOW__*/PYTHONPATH")
        deadline = time.monotonic() + timeout_s
        if not self._ready:  # its start-up output (Airflow logs to stdout) goes to the runner's log
            with self.log.open("ab") as sink:
                while not self._ready:
                    line = self._next_line(deadline, dag_id, timeout_s)
                    if line is None:
                        return None
                    self._ready = line.decode(errors="replace").strip() == READY_LINE
                    if not self._ready:
                        sink.write(line)
        log.write_bytes(b"")
        request = json.dumps({"dag_id": dag_id, "conf": conf, "log": str(log), "env": env}) + "\n"
        assert self._child.stdin is not None
        try:
            self._child.stdin.write(request.encode())
            self._child.stdin.flush()
        except BrokenPipeError:
            return None
        with log.open("ab") as sink:
            while True:
                line = self._next_line(deadline, dag_id, timeout_s)
                if line is None:
                    return None
                text = line.decode(errors="replace")
                if text.startswith(RESULT_PREFIX):
                    return json.loads(text.removeprefix(RESULT_PREFIX))
                sink.write(line)

    def _next_line(self, deadline: float, dag_id: str, timeout_s: float) -> bytes | None:
        """The child's next stdout line (None: it exited); past ``deadline`` end it and raise TimeoutError."""
        try:
            return self._lines.get(timeout=max(deadline - time.monotonic(), 0.001))
        except queue.Empty:
            self.close()
            raise TimeoutError(f"{dag_id} did not finish within {timeout_s:.0f} s") from None

    def close(self) -> None:
        """End the child: close its stdin (it exits after the current request), then terminate it."""
        from rehearsal.run import end_process_group

        if self._child.stdin is not None and not self._child.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._child.stdin.close()
        try:
            self._child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            end_process_group(self._child)


def run_dag(dag_id: str, conf: dict[str, object]) -> dict[str, object]:
    """Migrate the metadata database when it is new, run ``dag_id`` with ``conf``, return its states."""
    from airflow.dag_processing.dagbag import DagBag

    migrate_once()
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        return {"state": "import-error", "errors": {str(k): str(v) for k, v in bag.import_errors.items()}}
    if dag_id not in bag.dags:
        return {"state": "no-such-dag", "dags": sorted(bag.dags)}
    run = bag.dags[dag_id].test(run_conf=conf)
    tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return {"state": str(run.state), "run_id": run.run_id, "tasks": tasks}


def migrate_once() -> None:
    """Create the metadata database when this ``AIRFLOW_HOME`` has none yet."""
    from airflow.utils import db

    marker = Path(os.environ["AIRFLOW_HOME"]) / ".migrated"
    if not marker.exists():
        db.resetdb()
        marker.write_text("1")


def warm_up() -> None:
    """What the first DAG run would otherwise pay: the metadata database, the operators' modules and
    the in-process execution API (``dag.test()`` builds it once per process, for its first task)."""
    import airflow.providers.amazon.aws.operators.emr
    import airflow.providers.amazon.aws.operators.sagemaker
    import airflow.providers.amazon.aws.sensors.emr
    import airflow.providers.standard.decorators.external_python  # noqa: F401
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor

    migrate_once()
    # The app dag.test() talks to (cached per process) answers its first request slowly: most of the
    # start-up is there (first request 50-70 s at load average 16-24, the next one 3.5 s, then 0.2 s).
    client = InProcessTestSupervisor._api_client(None)  # pyright: ignore[reportPrivateUsage]
    client.get("health")
    with contextlib.suppress(Exception):  # 404: no such DAG; the route's first use is what counts
        client.get("dags/mlops-warm-up")


def serve() -> int:
    """Warm up, then run one DAG per stdin request line until stdin closes; answer each with a result line.

    A request is ``{"dag_id": ..., "conf": {...}, "log": "<path>", "env": {...}}``. While it runs, this
    process's environment is the request's ``env`` and its standard error (where Airflow and the tasks
    log) goes to ``log``; a run that raises is answered ``{"state": "runner-error", "error": ...}`` with
    the traceback in ``log``, and the process goes on serving (the parent decides whether to start a
    fresh one).
    """
    import traceback

    warm_up()
    print(READY_LINE, flush=True)
    own_stderr = os.dup(2)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("env") is not None:
            os.environ.clear()
            os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        sys.stderr.flush()
        with open(request["log"], "ab", buffering=0) as log:
            os.dup2(log.fileno(), 2)
            try:
                result = run_dag(str(request["dag_id"]), dict(request.get("conf") or {}))
            except Exception as exc:  # answer, keep serving: the parent reports it with the log
                traceback.print_exc()
                result = {"state": "runner-error", "error": f"{type(exc).__name__}: {exc}"}
            finally:
                sys.stderr.flush()
                os.dup2(own_stderr, 2)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def main(argv: list[str]) -> int:
    """Entry point: ``DAG_ID [CONF_JSON]`` (one run) or ``--serve``; prints ``MLOPS-DAG-RESULT {...}``."""
    if argv == ["--serve"]:
        return serve()
    if len(argv) not in (1, 2):
        print("usage: python -m rehearsal.airflow_runner DAG_ID [CONF_JSON] | --serve", file=sys.stderr)
        return 2
    conf = json.loads(argv[1]) if len(argv) == 2 else {}
    result = run_dag(argv[0], conf)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
