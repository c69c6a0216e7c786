"""SageMaker training jobs that run: the entry point in its own process, under the container contract.

moto records ``CreateTrainingJob`` and reports the job ``Completed`` at once, with a made-up metric and
a model artifact that was never written. :class:`SageMakerTraining` replaces that with what the
prebuilt scikit-learn training image does (it runs aws/sagemaker-training-toolkit):

* ``CreateTrainingJob`` validates what AWS validates synchronously (unique name, a role SageMaker can
  assume, an image the emulator can stand in for) and starts the job in a background thread;
* the job goes ``InProgress`` through the secondary statuses Starting -> Downloading -> Training ->
  Uploading, then ``Completed``; or ``Failed`` with the reason from the process; or ``Stopped``
  (``StopTrainingJob``, or ``MaxRuntimeExceeded`` when ``StoppingCondition.MaxRuntimeInSeconds``
  passes);
* a job folder stands for ``/opt/ml``: ``input/config/{hyperparameters,resourceconfig,inputdataconfig}.json``,
  ``input/data/<channel>/`` downloaded from the emulated S3, ``code/`` (the unpacked
  ``sagemaker_submit_directory``), ``model/``, ``output/data/``; the process gets the toolkit's
  ``SM_*`` environment and runs as ``python <sagemaker_program> --hp value ...`` through
  :mod:`rehearsal.container`, so it sees the submitted source and the image's libraries only;
* on success ``model/`` becomes ``<S3OutputPath>/<job>/output/model.tar.gz`` and ``output/data/``
  ``output.tar.gz`` (SSE-KMS with ``OutputDataConfig.KmsKeyId``), ``FinalMetricDataList`` comes from
  the ``MetricDefinitions`` regexes over the log, and the log goes to CloudWatch Logs
  ``/aws/sagemaker/TrainingJobs``, stream ``<job>/algo-1-<epoch seconds>``.

Where it differs from AWS (for the "from rehearsal to AWS" notes):

* the "image" is this interpreter and its site-packages (:mod:`rehearsal.container`), not the
  image's own Python and library set; only the scikit-learn image whose minor version matches the
  installed scikit-learn is accepted;
* ``requirements.txt`` is checked, never installed (no network): a requirement the libraries here do
  not meet fails the job, where AWS would ``pip install`` it (unless the job is network-isolated);
* the ``/opt/ml`` folders live under the emulator's workdir, so ``SM_*`` paths are not ``/opt/ml/...``;
* the process gets no AWS credentials or endpoint (on AWS it has the role's); VpcConfig,
  VolumeKmsKeyId, spot training, checkpoints and debugger settings are recorded, not acted on;
* one host only (``InstanceCount`` 1), File/FastFile input only, no Pipe mode;
* the job log reaches CloudWatch Logs when the job ends, not as it is written.

Status values: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_SecondaryStatusTransition.html
Environment and command line: aws/sagemaker-training-toolkit ``environment.py`` (``to_env_vars``),
``mapping.py`` (``to_cmd_args``), ``entry_point.py`` and ``errors.py`` (failure messages).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rehearsal import container
from rehearsal.faults import service_failure
from rehearsal.iam.identities import SAGEMAKER_SERVICE, RoleSessions, client_as, log_group_exists

if TYPE_CHECKING:
    from rehearsal.emulator import Emulator

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
CURRENT_HOST = "algo-1"
INSTANCE_GROUP = "homogeneousCluster"
FAILURE_REASON_MAX = 1024  # DescribeTrainingJob FailureReason: Length Constraints: Maximum length of 1024
_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_SKLEARN_IMAGE = re.compile(
    r"^\d{12}\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/sagemaker-scikit-learn:"
    r"(?P<version>\d+\.\d+(\.\d+)?-\d+)-cpu-py3$"
)
# SageMaker's own hyperparameters (split off by the toolkit, never passed to the program).
_SAGEMAKER_HP_PREFIX = "sagemaker_"
_CLOSE_GRACE_S = 1.0  # SIGTERM -> SIGKILL when the emulator itself stops
_PROCESS_PYTHON = "/miniconda3/bin/python"  # what the image's toolkit prints as the command


class JobFailedError(Exception):
    """The job fails with this FailureReason."""


@dataclass
class _Job:
    name: str
    arn: str
    fake: Any  # moto's FakeTrainingJob: the record DescribeTrainingJob serializes
    request: dict[str, Any]
    root: Path
    started: float = field(default_factory=time.monotonic)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    process: subprocess.Popen[bytes] | None = None
    stop_status: str | None = None  # "Stopped" or "MaxRuntimeExceeded" once the job is being stopped
    log_lines: list[tuple[int, str]] = field(default_factory=list)
    credentials: dict[str, str] | None = None
    """The job role's session SageMaker acts with (None: the emulator has no IAM, root is used)."""

    @property
    def ml(self) -> Path:
        """The folder standing for ``/opt/ml``."""
        return self.root / "opt" / "ml"


def _now() -> datetime:
    from moto.core.utils import utcnow

    return utcnow()


def _validation_error(message: str) -> Exception:
    from moto.sagemaker.exceptions import ValidationError

    return ValidationError(message)


def _resource_in_use(message: str) -> Exception:
    from moto.sagemaker.exceptions import ResourceInUseException

    return ResourceInUseException(message)


def _json_value(value: str) -> Any:
    """Decode a hyperparameter as the toolkit does (``read_hyperparameters``): JSON, else the raw string."""
    try:
        return json.loads(value)
    except (ValueError, TypeError):
        return value


def _env_value(value: Any) -> str:
    """``mapping.to_env_vars``: strings as they are, everything else compact sorted JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def cmd_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """``mapping.to_cmd_args``: ``--key value`` in sorted key order (dicts as ``k=v,k2=v2``)."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        args.append(f"--{key}" if len(key) > 1 else f"-{key}")
        if isinstance(value, Mapping):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append("" if value is None else str(value))
    return args


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise JobFailedError(f"ClientError: {uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _extract_tar(data: bytes, target: Path) -> None:
    """Unpack a (gzipped) tar into ``target``, refusing members that would land outside it."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        archive.extractall(target, filter="data")  # "data" refuses absolute paths, .., links out


def _tar_folder(folder: Path) -> bytes:
    """A ``.tar.gz`` of the folder's contents at the archive root (as SageMaker packs ``model/``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            archive.add(str(path), arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buffer.getvalue()


def _truncate(reason: str) -> str:
    return reason if len(reason) <= FAILURE_REASON_MAX else reason[: FAILURE_REASON_MAX - 3] + "..."


def traceback_tail(log: str, lines: int = 3) -> str:
    """The last lines of the last traceback in ``log`` (else its last non-empty lines)."""
    text = log.rstrip().splitlines()
    starts = [i for i, line in enumerate(text) if line.startswith("Traceback (most recent call last)")]
    block = text[starts[-1] :] if starts else text
    block = [line for line in block if line.strip()]
    return "\n".join(block[-lines:])


def supported_image_versions() -> dict[str, str]:
    """Which scikit-learn image the emulator can stand in for: the one matching the host's scikit-learn."""
    from importlib import metadata

    installed = metadata.version("scikit-learn")
    major_minor = ".".join(installed.split(".")[:2])
    return {"scikit-learn": installed, "image_version_prefix": f"{major_minor}-"}


def published_sklearn_image(region: str, version: str) -> str | None:
    """The scikit-learn training image URI the SageMaker SDK publishes for ``version`` in ``region``.

    Read from the SDK's own table (``sagemaker/core/image_uri_config/sklearn.json``, what
    ``image_uris.retrieve`` uses) without importing the SDK, which takes seconds.
    """
    for folder in container.image_site_packages():
        table = Path(folder) / "sagemaker" / "core" / "image_uri_config" / "sklearn.json"
        if table.is_file():
            versions = json.loads(table.read_text())["training"]["versions"]
            entry = versions.get(version)
            account = (entry or {}).get("registries", {}).get(region)
            if entry is None or account is None:
                return None
            domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
            return f"{account}.dkr.ecr.{region}.{domain}/{entry['repository']}:{version}-cpu-py3"
    raise RuntimeError("the SageMaker SDK's image table (sagemaker/core/image_uri_config) is not installed")


@dataclass
class _Patch:
    owner: Any
    attribute: str
    original: Any
    existed: bool


class SageMakerTraining:
    """Extension: SageMaker training jobs run their entry point for real (see the module docstring).

    ``stop_grace_s`` is how long a stopped job's process has between SIGTERM and SIGKILL (120 s on
    AWS, which the algorithm may use to save its model; shorten it for tests). ``poll_s`` is how
    often a job checks its process, its stop request and its runtime limit.
    """

    name = "sagemaker-training"

    def __init__(self, *, stop_grace_s: float = 120.0, poll_s: float = 0.1) -> None:
        self.stop_grace_s = stop_grace_s
        self.poll_s = poll_s
        self._emulator: Emulator | None = None
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._patches: list[_Patch] = []
        self._closing = threading.Event()
        self._image_cache: dict[tuple[str, str], str | None] = {}
        self._sessions = RoleSessions()

    # --- Extension protocol -------------------------------------------------------------------

    def install(self, emulator: Emulator) -> None:
        """Patch moto's SageMaker responses: Create/Stop run and stop jobs; Describe reads their state."""
        from moto.sagemaker.responses import SageMakerResponse

        self._emulator = emulator
        self._closing.clear()
        extension = self

        def create_training_job(response: Any) -> Any:
            return extension._create(response)

        def stop_training_job(response: Any) -> Any:
            return extension._stop(response)

        self._patch(SageMakerResponse, "create_training_job", create_training_job)
        self._patch(SageMakerResponse, "stop_training_job", stop_training_job)

    def close(self) -> None:
        """Stop every running job (its whole process group), join the job threads, undo the patches."""
        self._closing.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop_requested.set()
        for job in jobs:
            self._kill(job, grace_s=_CLOSE_GRACE_S)  # the emulator is going away: no 120 s window
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout=30)
            self._kill(job, grace_s=0)
        for patch in reversed(self._patches):
            if patch.existed:
                setattr(patch.owner, patch.attribute, patch.original)
            else:
                delattr(patch.owner, patch.attribute)
        self._patches.clear()

    def _patch(self, owner: Any, attribute: str, replacement: Callable[..., Any]) -> None:
        existed = attribute in owner.__dict__
        self._patches.append(_Patch(owner, attribute, owner.__dict__.get(attribute), existed))
        setattr(owner, attribute, replacement)

    # --- for tests and the rehearsal ----------------------------------------------------------

    def job_folder(self, job_name: str) -> Path:
        """The folder that stood for ``/opt/ml`` in job ``job_name``."""
        with self._lock:
            return self._jobs[job_name].ml

    def wait(self, job_name: str, timeout_s: float = 60) -> str:
        """Block until the job's thread ends; return its final TrainingJobStatus."""
        with self._lock:
            job = self._jobs[job_name]
        if job.thread is not None:
            job.thread.join(timeout=timeout_s)
            if job.thread.is_alive():
                raise TimeoutError(f"training job {job_name} still running after {timeout_s}s")
        return str(job.fake.training_job_status)

    # --- the API --------------------------------------------------------------------------------

    def _create(self, response: Any) -> Any:
        from moto.core.responses import ActionResult

        original = next(p.original for p in self._patches if p.attribute == "create_training_job")
        if self._closing.is_set():
            raise _validation_error("the emulator is shutting down")
        params: dict[str, Any] = copy.deepcopy(json.loads(response.body or "{}"))
        name = str(params.get("TrainingJobName") or "")
        backend = response.sagemaker_backend
        self._validate(params, backend)
        with self._lock:
            if name in backend.training_jobs:
                raise _resource_in_use(
                    "Training job names must be unique within an AWS account and region, and a training "
                    f"job with this name already exists ({backend.training_jobs[name].arn})"
                )
            result = original(response)
            fake = backend.training_jobs[name]
            # moto overwrites MetricDefinitions with a made-up one and says Completed: undo both.
            fake.algorithm_specification = copy.deepcopy(params["AlgorithmSpecification"])
            now = _now()
            fake.training_job_status = "InProgress"
            fake.secondary_status = "Starting"
            fake.secondary_status_transitions = [
                {
                    "Status": "Starting",
                    "StartTime": now,
                    "StatusMessage": "Preparing the instances for training",
                }
            ]
            fake.creation_time = fake.last_modified_time = now
            fake.training_start_time = None
            fake.training_end_time = None
            fake.final_metric_data_list = None
            # ModelArtifacts is a required response member (S3ModelArtifacts: minimum length 0); it
            # names the archive only once it is uploaded.
            # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelArtifacts.html
            fake.model_artifacts = {"S3ModelArtifacts": ""}
            fake.failure_reason = None
            emulator = self._require_emulator()
            root = emulator.workdir / "sagemaker-training" / name
            shutil.rmtree(root, ignore_errors=True)
            job = _Job(name=name, arn=fake.arn, fake=fake, request=params, root=root)
            job.thread = threading.Thread(target=self._run, args=(job,), name=f"training-{name}", daemon=True)
            self._jobs[name] = job
        job.thread.start()
        return result if result is not None else ActionResult({"TrainingJobArn": fake.arn})

    def _stop(self, response: Any) -> Any:
        from moto.core.responses import EmptyResult

        name = str(response._get_param("TrainingJobName") or "")
        backend = response.sagemaker_backend
        with self._lock:
            job = self._jobs.get(name)
            if job is None:
                backend.describe_training_job(name)  # moto's "Could not find training job" for unknown names
                raise _validation_error(f"Training job {name} was not started by this emulator")
            if job.fake.training_job_status != "InProgress":
                raise _validation_error(
                    f"The request was rejected because the training job is in status "
                    f"{job.fake.training_job_status}."
                )
            job.stop_status = job.stop_status or "Stopped"
            job.fake.training_job_status = "Stopping"
            self._transition(job, "Stopping", "Stopping the training job")
            job.stop_requested.set()
        return EmptyResult()

    def _require_emulator(self) -> Emulator:
        if self._emulator is None:
            raise RuntimeError("SageMakerTraining is not installed in an emulator")
        return self._emulator

    def _validate(self, params: dict[str, Any], backend: Any) -> None:
        """What CreateTrainingJob refuses before a job exists."""
        name = str(params.get("TrainingJobName") or "")
        if not _JOB_NAME.match(name):
            raise _validation_error(
                f"1 validation error detected: Value '{name}' at 'trainingJobName' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
            )
        role_arn = params.get("RoleArn")
        if not role_arn:
            raise _validation_error("RoleArn is required: the role SageMaker assumes to run the job")
        self._check_role(str(role_arn), backend.account_id)
        spec = params.get("AlgorithmSpecification") or {}
        if spec.get("AlgorithmName"):
            raise _validation_error(
                "the emulator runs only the prebuilt scikit-learn training image (TrainingImage); "
                f"AlgorithmName {spec['AlgorithmName']!r} is not available offline"
            )
        self._check_image(str(spec.get("TrainingImage") or ""), backend.region_name)
        mode = spec.get("TrainingInputMode", "File")
        if mode not in {"File", "FastFile"}:
            raise _validation_error(
                f"TrainingInputMode {mode!r}: the emulator provides channels as files (File or FastFile); "
                "Pipe mode is not emulated"
            )
        hps = params.get("HyperParameters") or {}
        if len(hps) > 100:
            raise _validation_error("HyperParameters: at most 100 entries")
        for key, value in hps.items():
            if len(key) > 256 or len(str(value)) > 2500:
                raise _validation_error(
                    f"HyperParameters[{key[:40]!r}]: keys are at most 256 characters, values at most 2500"
                )
        resources = params.get("ResourceConfig") or {}
        if int(resources.get("InstanceCount", 1)) != 1 or resources.get("InstanceGroups"):
            raise _validation_error(
                "ResourceConfig: the emulator runs a job on a single host (InstanceCount 1, no "
                "InstanceGroups); distributed training is not emulated"
            )
        output = params.get("OutputDataConfig") or {}
        if not str(output.get("S3OutputPath", "")).startswith("s3://"):
            raise _validation_error("OutputDataConfig.S3OutputPath must be an s3:// URI")
        stopping = params.get("StoppingCondition") or {}
        if "MaxRuntimeInSeconds" in stopping and int(stopping["MaxRuntimeInSeconds"]) < 1:
            raise _validation_error("StoppingCondition.MaxRuntimeInSeconds must be at least 1")
        names = [c.get("ChannelName") for c in params.get("InputDataConfig") or []]
        if len(names) != len(set(names)):
            raise _validation_error(f"InputDataConfig: channel names must be unique, got {names}")

    def _check_role(self, role_arn: str, account_id: str) -> None:
        from moto.iam.models import iam_backends

        refusal = (
            f"Could not assume role {role_arn}. Please ensure that the role exists and allows principal "
            "'sagemaker.amazonaws.com' to assume the role."
        )
        iam = iam_backends[account_id]["aws"]
        role = next((r for r in iam.get_roles() if r.arn == role_arn), None)
        if role is None:
            raise _validation_error(refusal)
        try:
            trust = json.loads(role.assume_role_policy_document)
        except (TypeError, ValueError):
            raise _validation_error(refusal) from None
        statements = trust.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            services = (statement.get("Principal") or {}).get("Service", [])
            services = [services] if isinstance(services, str) else services
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            if (
                statement.get("Effect") == "Allow"
                and "sagemaker.amazonaws.com" in services
                and any(a in {"sts:AssumeRole", "sts:*", "*"} for a in actions)
            ):
                return
        raise _validation_error(refusal)

    def _check_image(self, image: str, region: str) -> None:
        match = _SKLEARN_IMAGE.match(image)
        supported = supported_image_versions()
        hint = (
            "the emulator stands in only for the prebuilt SageMaker scikit-learn training image whose "
            f"scikit-learn matches its own ({supported['scikit-learn']}): "
            f"<account>.dkr.ecr.{region}.amazonaws.com/sagemaker-scikit-learn:"
            f"{supported['image_version_prefix']}<n>-cpu-py3 (sagemaker.image_uris.retrieve('sklearn', ...))"
        )
        if match is None:
            raise _validation_error(f"TrainingImage {image!r} cannot run offline: {hint}")
        if match["region"] != region:
            raise _validation_error(
                f"TrainingImage {image!r} is in {match['region']}, not the job's region {region}"
            )
        version = match["version"]
        key = (region, version)
        if key not in self._image_cache:
            self._image_cache[key] = published_sklearn_image(region, version)
        if self._image_cache[key] != image:
            raise _validation_error(f"TrainingImage {image!r} is not a published scikit-learn image: {hint}")
        if not version.startswith(supported["image_version_prefix"]):
            raise _validation_error(f"TrainingImage {image!r} has scikit-learn {version}: {hint}")

    # --- running a job --------------------------------------------------------------------------

    def _transition(self, job: _Job, status: str, message: str) -> None:
        now = _now()
        transitions = [dict(t) for t in job.fake.secondary_status_transitions or []]
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = now
        transitions.append({"Status": status, "StartTime": now, "StatusMessage": message})
        job.fake.secondary_status_transitions = transitions
        job.fake.secondary_status = status
        job.fake.last_modified_time = now

    def _finish(
        self, job: _Job, status: str, secondary: str, message: str, reason: str | None = None
    ) -> None:
        self._publish_logs(job)  # before the final status, so a caller that saw it can read the log
        with self._lock:
            self._transition(job, secondary, message)
            transitions = job.fake.secondary_status_transitions
            transitions[-1]["EndTime"] = transitions[-1]["StartTime"]
            now = _now()
            job.fake.training_end_time = now
            if job.fake.training_start_time is not None:
                seconds = max(1, int((now - job.fake.training_start_time).total_seconds()))
                job.fake.training_time_in_seconds = seconds
                job.fake.billable_time_in_seconds = seconds
            job.fake.failure_reason = _truncate(reason) if reason else None
            job.fake.training_job_status = status

    def _check_stop(self, job: _Job) -> None:
        if job.stop_requested.is_set():
            raise _StopRequestedError()
        limit = (job.request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        if limit is not None and time.monotonic() - job.started > float(limit):
            with self._lock:
                job.stop_status = "MaxRuntimeExceeded"
                job.fake.training_job_status = "Stopping"
                self._transition(job, "Stopping", "Stopping the training job: MaxRuntimeInSeconds exceeded")
            raise _StopRequestedError()

    def _assume_role(self, job: _Job) -> None:
        """SageMaker assumes the job's RoleArn (trust evaluated) and acts with it from here on."""
        from rehearsal.iam.authorizer import TrustDeniedError

        role = str(job.request.get("RoleArn"))
        try:
            job.credentials = self._sessions.service(self._emulator, role, SAGEMAKER_SERVICE, job.arn)
        except TrustDeniedError as exc:
            raise JobFailedError(
                f"ClientError: SageMaker could not assume the job's role {role}: {exc}"
            ) from exc

    def _client(self, job: _Job, service: str) -> Any:
        """A client acting as the job's role (root when the emulator has no IAM)."""
        return client_as(self._require_emulator(), service, job.credentials)

    def _run(self, job: _Job) -> None:
        try:
            self._assume_role(job)
        except JobFailedError as failure:
            self._finish(job, "Failed", "Failed", "Training job failed", str(failure))
            return
        s3 = self._client(job, "s3")
        try:
            try:
                self._check_stop(job)
                with self._lock:
                    job.fake.training_start_time = _now()
                    self._transition(job, "Downloading", "Downloading input data")
                self._prepare_folders(job)
                self._download_channels(job, s3)
                self._check_stop(job)
                with self._lock:
                    self._transition(
                        job, "Training", "Training image download completed. Training in progress."
                    )
                command = self._prepare_code(job, s3)
                self._check_stop(job)
                code = self._run_process(job, command)
                if code != 0:
                    raise JobFailedError(self._failure_reason(job, command, code))
                injected = service_failure(
                    self._require_emulator(), "training-job", job.name
                )  # rehearsal.faults
                if injected is not None:
                    raise JobFailedError(injected)
                with self._lock:
                    self._transition(job, "Uploading", "Uploading generated training model")
                self._upload_outputs(job, s3)
                self._set_metrics(job)
                self._finish(job, "Completed", "Completed", "Training job completed")
            except _StopRequestedError:
                self._kill(job, _CLOSE_GRACE_S if self._closing.is_set() else self.stop_grace_s)
                if job.process is not None and any((job.ml / "model").iterdir()):
                    with contextlib.suppress(JobFailedError):
                        self._upload_outputs(job, s3)  # AWS keeps what the algorithm saved before the stop
                self._set_metrics(job)
                secondary = job.stop_status or "Stopped"
                message = (
                    "Training job ended because it exceeded the maximum runtime"
                    if secondary == "MaxRuntimeExceeded"
                    else "Training job stopped"
                )
                self._finish(job, "Stopped", secondary, message)
        except JobFailedError as failure:
            self._kill(job, grace_s=0)
            self._set_metrics(job)
            self._finish(job, "Failed", "Failed", "Training job failed", str(failure))
        except Exception as exc:  # an emulator bug must still end the job, with the reason visible
            self._kill(job, grace_s=0)
            self._finish(
                job, "Failed", "Failed", "Training job failed", f"InternalServerError: emulator: {exc!r}"
            )

    def _prepare_folders(self, job: _Job) -> None:
        ml = job.ml
        for sub in ("input/config", "input/data", "code", "model", "output/data", "output/intermediate"):
            (ml / sub).mkdir(parents=True, exist_ok=True)
        (job.root / "home").mkdir(parents=True, exist_ok=True)
        request = job.request
        resources = request.get("ResourceConfig") or {}
        instance_type = str(resources.get("InstanceType", "ml.m5.large"))
        (ml / "input/config/hyperparameters.json").write_text(
            json.dumps(request.get("HyperParameters") or {})
        )
        (ml / "input/config/resourceconfig.json").write_text(
            json.dumps(
                {
                    "current_host": CURRENT_HOST,
                    "current_instance_type": instance_type,
                    "current_group_name": INSTANCE_GROUP,
                    "hosts": [CURRENT_HOST],
                    "instance_groups": [
                        {
                            "instance_group_name": INSTANCE_GROUP,
                            "instance_type": instance_type,
                            "hosts": [CURRENT_HOST],
                        }
                    ],
                    "network_interface_name": "eth0",
                }
            )
        )
        mode = (request.get("AlgorithmSpecification") or {}).get("TrainingInputMode", "File")
        (ml / "input/config/inputdataconfig.json").write_text(
            json.dumps(
                {
                    c["ChannelName"]: {
                        "TrainingInputMode": c.get("InputMode", mode),
                        "S3DistributionType": (c.get("DataSource", {}).get("S3DataSource") or {}).get(
                            "S3DataDistributionType", "FullyReplicated"
                        ),
                        "RecordWrapperType": c.get("RecordWrapperType", "None"),
                        **({"ContentType": c["ContentType"]} if c.get("ContentType") else {}),
                    }
                    for c in request.get("InputDataConfig") or []
                }
            )
        )

    def _download_channels(self, job: _Job, s3: Any) -> None:
        role = job.request.get("RoleArn")
        region = self._require_emulator().region
        for channel in job.request.get("InputDataConfig") or []:
            name = channel["ChannelName"]
            source = (channel.get("DataSource") or {}).get("S3DataSource")
            if source is None:
                raise JobFailedError(
                    f"ClientError: channel {name!r}: only S3DataSource is emulated (not FileSystemDataSource)"
                )
            if channel.get("CompressionType", "None") != "None":
                raise JobFailedError(
                    f"ClientError: channel {name!r}: CompressionType is supported only in Pipe mode"
                )
            data_type = source.get("S3DataType", "S3Prefix")
            folder = job.ml / "input" / "data" / name
            folder.mkdir(parents=True, exist_ok=True)
            uri = str(source.get("S3Uri", ""))
            if data_type == "S3Prefix":
                bucket, prefix = split_s3_uri(uri)
                keys = self._list_keys(s3, bucket, prefix)
                # files keep their path below the prefix (an exact key match lands under its own name)
                items = [
                    (bucket, key, key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]) for key in keys
                ]
            elif data_type == "ManifestFile":
                items = self._manifest_items(s3, uri, name)
            else:
                raise JobFailedError(
                    f"ClientError: channel {name!r}: S3DataType {data_type!r} is not emulated "
                    "(S3Prefix and ManifestFile are); AugmentedManifestFile needs Pipe mode"
                )
            if not items:
                raise JobFailedError(
                    f'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source. '
                    f"Please ensure that the bucket exists in the selected region ({region}), that objects "
                    f'exist under that S3 prefix, and that the role "{role}" has "s3:ListBucket" '
                    f'permissions on bucket "{split_s3_uri(uri)[0]}".'
                )
            for bucket, key, relative in items:
                if not relative or relative.endswith("/"):
                    continue  # a folder marker object
                target = (folder / relative).resolve()
                if not target.is_relative_to(folder.resolve()):
                    raise JobFailedError(
                        f"ClientError: channel {name!r}: object {key} would land outside the channel"
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, key, str(target))
            self._check_stop(job)

    @staticmethod
    def _list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
        from botocore.exceptions import ClientError

        keys: list[str] = []
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return []
            raise
        return keys

    def _manifest_items(self, s3: Any, uri: str, channel: str) -> list[tuple[str, str, str]]:
        """A manifest: ``[{"prefix": "s3://bucket/p/"}, "relative/key", ...]``; files keep the relative path."""
        bucket, key = split_s3_uri(uri)
        try:
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            prefix = str(manifest[0]["prefix"])
            relatives = [str(r) for r in manifest[1:]]
        except Exception as exc:
            raise JobFailedError(
                f"ClientError: channel {channel!r}: cannot read manifest {uri} "
                f'(expected [{{"prefix": "s3://..."}}, "key", ...]): {exc}'
            ) from None
        prefix_bucket, prefix_key = split_s3_uri(prefix)
        return [(prefix_bucket, prefix_key + rel, rel) for rel in relatives]

    def _prepare_code(self, job: _Job, s3: Any) -> container.ContainerCommand:
        """Script mode, as the toolkit does it: unpack the submit directory, install requirements, run."""
        raw = job.request.get("HyperParameters") or {}
        hps = {k: _json_value(v) for k, v in raw.items()}
        program = hps.get("sagemaker_program")
        submit = hps.get("sagemaker_submit_directory")
        if not program or not submit:
            raise JobFailedError(
                "AlgorithmError: Framework Error: the scikit-learn image runs script mode only: set the "
                "sagemaker_program and sagemaker_submit_directory hyperparameters (JSON-encoded strings)"
            )
        code_dir = job.ml / "code"
        isolated = bool(job.request.get("EnableNetworkIsolation"))
        submit = str(submit)
        if submit.startswith("s3://"):
            if isolated:
                raise JobFailedError(
                    f"AlgorithmError: Framework Error: could not download {submit}: EnableNetworkIsolation "
                    "is set, so the container has no network access; ship the source in an input channel "
                    "and point sagemaker_submit_directory at its /opt/ml/input/data/<channel>/ path"
                )
            bucket, key = split_s3_uri(submit)
            try:
                data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as exc:
                raise JobFailedError(
                    f"AlgorithmError: Framework Error: could not download {submit}: {exc}"
                ) from None
        elif submit.startswith("/opt/ml/"):
            local = job.ml / submit.removeprefix("/opt/ml/")
            if local.is_dir():
                shutil.copytree(local, code_dir, dirs_exist_ok=True)
                data = None
            elif local.is_file():
                data = local.read_bytes()
            else:
                raise JobFailedError(
                    f"AlgorithmError: Framework Error: sagemaker_submit_directory {submit} does not exist"
                )
        else:
            raise JobFailedError(
                f"AlgorithmError: Framework Error: sagemaker_submit_directory {submit!r} must be an s3:// URI "
                "or a path under /opt/ml"
            )
        if data is not None:
            try:
                _extract_tar(data, code_dir)
            except (tarfile.TarError, OSError) as exc:
                raise JobFailedError(
                    f"AlgorithmError: Framework Error: sagemaker_submit_directory {submit} is not a tar.gz "
                    f"archive that unpacks inside /opt/ml/code: {exc}"
                ) from None
        program = str(program)
        script = (code_dir / program).resolve()
        if not script.is_relative_to(code_dir.resolve()) or not script.is_file():
            raise JobFailedError(
                f"AlgorithmError: Framework Error: sagemaker_program {program!r} is not a file in the "
                f"source archive (it holds {sorted(p.name for p in code_dir.iterdir())})"
            )
        if (code_dir / "setup.py").is_file() or not program.endswith(".py"):
            raise JobFailedError(
                "AlgorithmError: Framework Error: the emulator runs a Python program (sagemaker_program "
                "ending in .py) from a source folder without setup.py; packages and shell commands are not "
                "emulated"
            )
        requirements = code_dir / "requirements.txt"
        if requirements.is_file():
            problems = container.unsatisfied_requirements(requirements.read_text())
            if problems:
                raise JobFailedError(
                    'AlgorithmError: InstallRequirementsError:\nExitCode 1\nErrorMessage "'
                    + "; ".join(problems)
                    + f'"\nCommand "{_PROCESS_PYTHON} -m pip install -r requirements.txt"'
                )
        user_hps = {k: v for k, v in hps.items() if not k.startswith(_SAGEMAKER_HP_PREFIX)}
        return container.ContainerCommand(
            code_paths=[code_dir],
            script=script,
            args=cmd_args(user_hps),
            env=self._environment(job, hps, user_hps, program, submit),
        )

    def _environment(
        self, job: _Job, hps: Mapping[str, Any], user_hps: Mapping[str, Any], program: str, submit: str
    ) -> dict[str, str]:
        """The toolkit's ``Environment.to_env_vars()`` for this job, plus what the platform sets."""
        ml = job.ml
        emulator = self._require_emulator()
        request = job.request
        resource_config = json.loads((ml / "input/config/resourceconfig.json").read_text())
        input_data_config = json.loads((ml / "input/config/inputdataconfig.json").read_text())
        channels = {name: str(ml / "input" / "data" / name) for name in input_data_config}
        instance_type = resource_config["current_instance_type"]
        framework_params = {k: v for k, v in hps.items() if k.startswith(_SAGEMAKER_HP_PREFIX)}
        module_name = program.removesuffix(".py")
        values: dict[str, Any] = {
            "hosts": [CURRENT_HOST],
            "network_interface_name": "eth0",
            "hps": dict(user_hps),
            "user_entry_point": program,
            "framework_params": {
                k: v
                for k, v in framework_params.items()
                if k
                not in {
                    "sagemaker_program",
                    "sagemaker_submit_directory",
                    "sagemaker_region",
                    "sagemaker_job_name",
                    "sagemaker_container_log_level",
                    "sagemaker_enable_cloudwatch_metrics",
                }
            },
            "resource_config": resource_config,
            "input_data_config": input_data_config,
            "output_data_dir": str(ml / "output" / "data"),
            "channels": sorted(channels),
            "current_host": CURRENT_HOST,
            "current_instance_type": instance_type,
            "current_instance_group": INSTANCE_GROUP,
            "current_instance_group_hosts": [CURRENT_HOST],
            "instance_groups": [INSTANCE_GROUP],
            "instance_groups_dict": {
                INSTANCE_GROUP: {
                    "instance_group_name": INSTANCE_GROUP,
                    "instance_type": instance_type,
                    "hosts": [CURRENT_HOST],
                }
            },
            "distribution_instance_groups": [],
            "is_hetero": False,
            "module_name": module_name,
            "log_level": hps.get("sagemaker_container_log_level", 20),
            "framework_module": "sagemaker_sklearn_container.training:main",
            "input_dir": str(ml / "input"),
            "input_config_dir": str(ml / "input" / "config"),
            "output_dir": str(ml / "output"),
            "num_cpus": os.cpu_count() or 1,
            "num_gpus": 0,
            "num_neurons": 0,
            "model_dir": str(ml / "model"),
            "module_dir": submit,
            "user_args": cmd_args(user_hps),
            "output_intermediate_dir": str(ml / "output" / "intermediate"),
        }
        values["training_env"] = {
            **{k: v for k, v in values.items() if k not in {"hps", "framework_params", "user_args"}},
            "hyperparameters": dict(user_hps),
            "additional_framework_parameters": values["framework_params"],
            "channel_input_dirs": channels,
            "job_name": job.name,
            "master_hostname": CURRENT_HOST,
            "is_master": True,
        }
        for name, path in channels.items():
            values[f"channel_{name}"] = path
        for key, value in user_hps.items():
            values[f"hp_{key}"] = value
        env = container.base_environment(job.root / "home")
        env.update({f"SM_{key.upper()}": _env_value(value) for key, value in values.items()})
        region = str(hps.get("sagemaker_region") or emulator.region)
        env.update(
            {
                "TRAINING_JOB_NAME": job.name,
                "TRAINING_JOB_ARN": job.arn,
                "CURRENT_HOST": CURRENT_HOST,
                "SAGEMAKER_JOB_NAME": str(hps.get("sagemaker_job_name", "")),
                "SAGEMAKER_REGION": region,
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                "SAGEMAKER_TRAINING_MODULE": "sagemaker_sklearn_container.training:main",
                "SAGEMAKER_SUBMIT_DIRECTORY": submit,
                "SAGEMAKER_PROGRAM": program,
            }
        )
        env.update({str(k): str(v) for k, v in (request.get("Environment") or {}).items()})
        if job.credentials is not None:
            # the container gets the job role's session (on AWS through the container credentials
            # endpoint); AWS_ENDPOINT_URL stands for the AWS API endpoints it would reach
            env.update({**job.credentials, "AWS_ENDPOINT_URL": emulator.endpoint_url})
        return env

    def _run_process(self, job: _Job, command: container.ContainerCommand) -> int:
        log_path = job.root / "job.log"
        with self._lock:
            if job.stop_requested.is_set():
                raise _StopRequestedError()
            job.process = container.start(command, cwd=job.ml / "code", log_path=log_path)
        with log_path.open("rb") as log:
            while True:
                self._read_log(job, log)
                code = job.process.poll()
                if code is not None:
                    self._read_log(job, log)
                    return code
                self._check_stop(job)
                time.sleep(self.poll_s)

    @staticmethod
    def _read_log(job: _Job, log: io.BufferedReader) -> None:
        chunk = log.read()
        if not chunk:
            return
        stamp = int(time.time() * 1000)
        text = chunk.decode("utf-8", errors="replace")
        pending = job.log_lines[-1][1] if job.log_lines and not job.log_lines[-1][1].endswith("\n") else None
        if pending is not None:
            job.log_lines.pop()
            text = pending + text
        job.log_lines.extend((stamp, line) for line in text.splitlines(keepends=True))

    def _failure_reason(self, job: _Job, command: container.ContainerCommand, code: int) -> str:
        failure_file = job.ml / "output" / "failure"
        if failure_file.is_file() and failure_file.read_text().strip():
            return "AlgorithmError: " + failure_file.read_text().strip()
        log = "".join(line for _, line in job.log_lines)
        program = Path(str(command.script)).name
        shown = " ".join([_PROCESS_PYTHON, program, *command.args])
        if code < 0:
            return f'AlgorithmError: the training process was killed by signal {-code}\nCommand "{shown}"'
        return (
            f'AlgorithmError: ExecuteUserScriptError:\nExitCode {code}\nErrorMessage "{traceback_tail(log)}"\n'
            f'Command "{shown}", exit code: {code}'
        )

    def _kill(self, job: _Job, grace_s: float) -> None:
        """SIGTERM the job's process group, then SIGKILL after ``grace_s`` if it is still running."""
        process = job.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s if grace_s > 0 else 0.5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def _upload_outputs(self, job: _Job, s3: Any) -> None:
        output = job.request["OutputDataConfig"]
        bucket, prefix = split_s3_uri(str(output["S3OutputPath"]))
        prefix = prefix.rstrip("/")
        base = f"{prefix}/{job.name}/output" if prefix else f"{job.name}/output"
        extra: dict[str, str] = {"ServerSideEncryption": "aws:kms"}
        if output.get("KmsKeyId"):
            extra["SSEKMSKeyId"] = str(output["KmsKeyId"])
        uploads = [("model.tar.gz", job.ml / "model"), ("output.tar.gz", job.ml / "output" / "data")]
        for filename, folder in uploads:
            key = f"{base}/{filename}"
            try:
                s3.put_object(Bucket=bucket, Key=key, Body=_tar_folder(folder), **extra)
            except Exception as exc:
                raise JobFailedError(
                    f"ClientError: Data upload failed: could not write s3://{bucket}/{key}: {exc}"
                ) from None
        job.fake.model_artifacts = {"S3ModelArtifacts": f"s3://{bucket}/{base}/model.tar.gz"}
        job.fake.output_data_config = dict(output)

    def _set_metrics(self, job: _Job) -> None:
        definitions = (job.request.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
        if not definitions or not job.log_lines:
            return
        found: list[dict[str, Any]] = []
        for definition in definitions:
            try:
                pattern = re.compile(str(definition["Regex"]))
            except re.error:
                continue
            last: tuple[int, float] | None = None
            for stamp, line in job.log_lines:
                for match in pattern.finditer(line):
                    with contextlib.suppress(IndexError, ValueError):
                        last = (stamp, float(match.group(1)))
            if last is not None:
                stamp = datetime.fromtimestamp(last[0] / 1000, UTC).replace(tzinfo=None)
                found.append({"MetricName": definition["Name"], "Value": last[1], "Timestamp": stamp})
        job.fake.final_metric_data_list = found or None
        if found:
            with contextlib.suppress(Exception):
                self._client(job, "cloudwatch").put_metric_data(
                    Namespace=METRICS_NAMESPACE,
                    MetricData=[
                        {
                            "MetricName": m["MetricName"],
                            "Dimensions": [{"Name": "Host", "Value": f"{job.name}/{CURRENT_HOST}"}],
                            "Value": m["Value"],
                        }
                        for m in found
                    ],
                )

    def _publish_logs(self, job: _Job) -> None:
        """The job log to CloudWatch Logs, as SageMaker writes it (one stream per host)."""
        lines = [(stamp, line.rstrip("\n")) for stamp, line in job.log_lines if line.strip()]
        if not lines:
            return
        try:
            logs = self._client(job, "logs")
            if not log_group_exists(self._require_emulator(), LOG_GROUP):
                with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                    logs.create_log_group(logGroupName=LOG_GROUP)
            stream = (
                f"{job.name}/{CURRENT_HOST}-{int(job.fake.creation_time.replace(tzinfo=UTC).timestamp())}"
            )
            logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
            for start in range(0, len(lines), 5000):
                batch = lines[start : start + 5000]
                logs.put_log_events(
                    logGroupName=LOG_GROUP,
                    logStreamName=stream,
                    logEvents=[{"timestamp": stamp, "message": message} for stamp, message in batch],
                )
        except Exception as exc:  # the job's outcome stands; say why its log is missing
            (job.root / "log-publish-error.txt").write_text(repr(exc))


class _StopRequestedError(Exception):
    """The job is being stopped (StopTrainingJob or MaxRuntimeInSeconds)."""
