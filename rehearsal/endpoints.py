"""SageMaker real-time endpoints that serve for real: containers, routing, capture, metrics, guardrails.

moto records ``CreateEndpoint`` as ``InService`` at once and its ``InvokeEndpoint`` returns canned
bodies. :class:`SageMakerHosting` replaces that with what SageMaker Hosting does:

- **CreateEndpoint** starts, per production variant, the variant's model the way the prebuilt
  scikit-learn image starts it (:mod:`rehearsal.serving_image`, launched through
  :mod:`rehearsal.container`): ``ModelDataUrl``'s ``model.tar.gz`` is unpacked as the model directory,
  ``SAGEMAKER_SUBMIT_DIRECTORY`` (an ``s3://`` tarball, or a folder under ``/opt/ml/model`` such as
  the default ``/opt/ml/model/code``) is the code folder, ``SAGEMAKER_PROGRAM`` the user module. The
  endpoint is ``Creating`` until every container answers ``/ping``, then ``InService``; a container
  that exits or never gets healthy makes it ``Failed`` with a ``FailureReason`` naming the cause.
- **InvokeEndpoint** (``sagemaker-runtime``) routes by variant weights (or ``TargetVariant``),
  forwards ``CustomAttributes``, answers a container's non-2xx with ``ModelError`` (HTTP 424, the
  container's status and body), writes data capture in SageMaker's layout and publishes the
  ``AWS/SageMaker`` invocation metrics to the emulated CloudWatch.
- **UpdateEndpoint** (moto lacks it) runs a blue/green deployment per ``DeploymentConfig``
  (all at once, canary, linear; bake times scaled by ``time_scale``) and rolls back when one of the
  ``AutoRollbackConfiguration`` alarms is in ``ALARM``; alarms change state only through
  :class:`rehearsal.alarms.AlarmEvaluator` evaluating the metrics the endpoint published.
- **UpdateEndpointWeightsAndCapacities**, **DescribeEndpoint**, **DeleteEndpoint** act on that state.

Every deployment is recorded as a timeline (:meth:`SageMakerHosting.timeline`) for the report.
Where this differs from AWS is listed in the class docstring.
"""

from __future__ import annotations

import base64
import functools
import http.client
import io
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rehearsal.alarms import ALARM, TimeScale
from rehearsal.container import ContainerCommand, base_environment, start, unsatisfied_requirements
from rehearsal.faults import service_failure
from rehearsal.iam.identities import SAGEMAKER_SERVICE, RoleSessions, client_as

if TYPE_CHECKING:
    from rehearsal.emulator import Emulator

logger = logging.getLogger(__name__)

MODEL_DIR = "/opt/ml/model"
"""Where SageMaker unpacks ``model.tar.gz`` in the container."""
DEFAULT_SUBMIT_DIRECTORY = "/opt/ml/model/code"
"""The code folder when ``SAGEMAKER_SUBMIT_DIRECTORY`` is not set (the SDK's repack puts it there)."""
SKLEARN_IMAGE = "sagemaker-scikit-learn"
"""ECR repository name of the prebuilt scikit-learn images, the only image this emulator can run."""
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
"""InvokeEndpoint's request payload limit (6 MB)."""
DEFAULT_STARTUP_TIMEOUT_S = 240.0
"""How long SageMaker waits for a new container to pass ``/ping`` when the production variant sets no
``ContainerStartupHealthCheckTimeoutInSeconds``: four minutes
(https://repost.aws/knowledge-center/sagemaker-endpoint-creation-fail)."""
INVOCATION_TIMEOUT_S = 60.0
"""How long SageMaker waits for a container's answer to ``/invocations``."""
NAMESPACE = "AWS/SageMaker"
WEIGHTS_UPDATE_SECONDS = 30.0
"""Emulated seconds an UpdateEndpointWeightsAndCapacities keeps the endpoint ``Updating``."""


class HostingError(RuntimeError):
    """A fleet could not be started; the message becomes the endpoint's ``FailureReason``."""


def _now() -> datetime:
    return datetime.now(UTC)


def _split_s3(uri: str, what: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise HostingError(f"{what} {uri!r} is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def _safe_extract(data: bytes, target: Path, what: str) -> None:
    """Unpack a ``.tar.gz`` into ``target``, refusing members that would land outside it."""
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for member in archive.getmembers():
                destination = (root / member.name).resolve()
                if not destination.is_relative_to(root) or member.issym() or member.islnk():
                    raise HostingError(
                        f"{what}: member {member.name!r} would be written outside the model directory"
                    )
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    source = archive.extractfile(member)
                    assert source is not None
                    destination.write_bytes(source.read())
    except (tarfile.TarError, OSError, EOFError) as error:
        raise HostingError(f"{what} is not a readable .tar.gz archive: {error}") from error


# ---------------------------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class ContainerDefinition:
    """What a production variant runs (after resolving the model and its model package)."""

    image: str
    model_data_url: str | None
    environment: Mapping[str, str]
    source: str
    """Where the definition came from (model name, and package ARN when there is one)."""


@dataclass(frozen=True)
class VariantDefinition:
    """One production variant of an endpoint config."""

    name: str
    model_name: str
    container: ContainerDefinition
    instance_type: str
    instance_count: int
    initial_weight: float
    startup_timeout_s: float | None
    execution_role_arn: str = ""
    """The model's ExecutionRoleArn: SageMaker downloads the model data and writes capture with it."""
    model_arn: str = ""
    network_isolation: bool = False
    """The model's ``EnableNetworkIsolation``: an isolated container gets no AWS credentials."""


@dataclass(frozen=True)
class CaptureDefinition:
    """The endpoint config's ``DataCaptureConfig``."""

    enabled: bool
    sampling_percent: int
    destination: str
    kms_key_id: str | None
    capture_input: bool
    capture_output: bool
    csv_types: frozenset[str]
    json_types: frozenset[str]

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> CaptureDefinition | None:
        """``None`` when the config has no (or a disabled) capture."""
        if not raw or raw.get("EnableCapture") is False:
            return None
        modes = {o.get("CaptureMode") for o in raw.get("CaptureOptions") or []}
        header = raw.get("CaptureContentTypeHeader") or {}
        return cls(
            enabled=True,
            sampling_percent=int(raw.get("InitialSamplingPercentage", 0)),
            destination=str(raw["DestinationS3Uri"]).rstrip("/"),
            kms_key_id=raw.get("KmsKeyId"),
            capture_input=bool(modes & {"Input", "InputAndOutput"}),
            capture_output=bool(modes & {"Output", "InputAndOutput"}),
            csv_types=frozenset(t.lower() for t in header.get("CsvContentTypes") or []),
            json_types=frozenset(t.lower() for t in header.get("JsonContentTypes") or []),
        )

    def section(self, data: bytes, content_type: str, mode: str) -> dict[str, str]:
        """One ``endpointInput``/``endpointOutput`` object; types not named in the header are base64
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CaptureContentTypeHeader.html)."""
        kind = content_type.split(";", 1)[0].strip().lower()
        encoding = "CSV" if kind in self.csv_types else "JSON" if kind in self.json_types else "BASE64"
        text = ""
        if encoding != "BASE64":
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                encoding = "BASE64"
        if encoding == "BASE64":
            text = base64.b64encode(data).decode("ascii")
        return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}


# ---------------------------------------------------------------------------------------------- servers


class ModelServer:
    """One variant's container process (standing in for the variant's instances)."""

    def __init__(self, variant: VariantDefinition, folder: Path) -> None:
        self.variant = variant
        self.folder = folder
        self.log_path = folder / "container.log"
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.resolved_at: datetime | None = None

    def prepare_and_start(
        self, download: Callable[[str], bytes], aws_environment: Mapping[str, str] | None = None
    ) -> None:
        """Fetch the model and code, then start the serving process (not yet waiting for health).

        ``aws_environment``: the model role's session (and where AWS answers) for the container's SDK
        chain; None for a network-isolated model, which gets no credentials.
        """
        from rehearsal.emulator import free_port

        container = self.variant.container
        where = f"production variant {self.variant.name} (model {self.variant.model_name})"
        if SKLEARN_IMAGE not in container.image.split("/", 1)[-1]:
            raise HostingError(
                f"{where}: image {container.image!r} is not the SageMaker scikit-learn image; the emulator can "
                "only run that image's serving stack"
            )
        if not container.model_data_url:
            raise HostingError(
                f"{where}: the container has no ModelDataUrl; the scikit-learn image needs model data"
            )
        program = container.environment.get("SAGEMAKER_PROGRAM")
        if not program:
            raise HostingError(
                f"{where}: the container environment has no SAGEMAKER_PROGRAM, so the scikit-learn image has no "
                "user module to serve (set it, e.g. to inference.py)"
            )
        model_dir = self.folder / "model"
        _safe_extract(
            download(container.model_data_url), model_dir, f"{where}: ModelDataUrl {container.model_data_url}"
        )
        submit = container.environment.get("SAGEMAKER_SUBMIT_DIRECTORY") or DEFAULT_SUBMIT_DIRECTORY
        if submit.startswith("s3://"):
            code_dir = self.folder / "code"
            _safe_extract(download(submit), code_dir, f"{where}: SAGEMAKER_SUBMIT_DIRECTORY {submit}")
        elif submit == MODEL_DIR or submit.startswith(MODEL_DIR + "/"):
            code_dir = (model_dir / submit[len(MODEL_DIR) :].lstrip("/")).resolve()
            if not code_dir.is_relative_to(model_dir.resolve()):
                raise HostingError(
                    f"{where}: SAGEMAKER_SUBMIT_DIRECTORY {submit!r} leaves the model directory"
                )
        else:
            raise HostingError(
                f"{where}: SAGEMAKER_SUBMIT_DIRECTORY {submit!r} is neither an s3:// source tarball nor a folder "
                f"of the model artifact under {MODEL_DIR}; the container cannot see any other path"
            )
        requirements = code_dir / "requirements.txt"
        if requirements.is_file():
            problems = unsatisfied_requirements(requirements.read_text(encoding="utf-8"))
            if problems:
                raise HostingError(
                    f"{where}: requirements.txt cannot be installed in the image: " + "; ".join(problems)
                )
        image_dir = self.folder / "image"
        image_dir.mkdir(parents=True, exist_ok=True)
        bootstrap = image_dir / "serve.py"
        shutil.copyfile(Path(__file__).with_name("serving_image.py"), bootstrap)
        home = self.folder / "home"
        home.mkdir(exist_ok=True)
        self.port = free_port()
        env = {**base_environment(home), **{str(k): str(v) for k, v in container.environment.items()}}
        env["SAGEMAKER_SUBMIT_DIRECTORY"] = submit
        env.update(aws_environment or {})
        command = ContainerCommand(
            code_paths=[code_dir], script=bootstrap, args=["serve", str(model_dir), str(self.port)], env=env
        )
        self.process = start(command, cwd=self.folder, log_path=self.log_path)
        self.resolved_at = _now()

    def log_tail(self, lines: int = 6) -> str:
        """The last lines of the container's log (for a FailureReason)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def ping(self) -> bool:
        """``GET /ping`` answered 200 within SageMaker's 2 s ping timeout."""
        if self.port is None:
            return False
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", "/ping")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def wait_healthy(self, timeout_s: float, cancelled: threading.Event) -> None:
        """Poll ``/ping`` until it answers; raise :class:`HostingError` when the process exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        where = f"The primary container for production variant {self.variant.name}"
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise HostingError(
                    f"{where} did not pass the ping health check: the container exited with status "
                    f"{self.process.returncode}. Container log: {self.log_tail()}"
                )
            if self.ping():
                return
            if cancelled.is_set():
                raise HostingError(f"{where}: start cancelled")
            if time.monotonic() > deadline:
                raise HostingError(
                    f"{where} did not pass the ping health check within {timeout_s:g} s. Container log: {self.log_tail()}"
                )
            time.sleep(0.1)

    def invoke(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        """``POST /invocations``; returns the container's status, headers and body."""
        if self.port is None:
            raise OSError("the container is not running")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=INVOCATION_TIMEOUT_S)
        try:
            conn.request("POST", "/invocations", body=body, headers=dict(headers))
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the process group (SIGTERM, then SIGKILL after 5 s)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=5)
        except (ProcessLookupError, PermissionError):
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@dataclass
class Fleet:
    """The containers of one endpoint config (the blue or the green fleet)."""

    config_name: str
    variants: dict[str, VariantDefinition]
    capture: CaptureDefinition | None
    servers: dict[str, ModelServer] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    instance_counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.weights = {n: v.initial_weight for n, v in self.variants.items()}
        self.instance_counts = {n: v.instance_count for n, v in self.variants.items()}

    def pick_variant(self, rng: random.Random, target: str | None) -> str:
        """A variant by weight, or ``target``."""
        if target is not None:
            return target
        names = list(self.weights)
        total = sum(self.weights.values())
        if total <= 0:
            raise HostingError("every production variant has weight 0")
        return rng.choices(names, weights=[self.weights[n] for n in names])[0]

    def stop(self) -> None:
        """Stop every container of the fleet."""
        for server in self.servers.values():
            server.stop()


@dataclass
class TimelineEvent:
    """One point of an endpoint's deployment timeline."""

    time: datetime
    event: str
    """``creating``, ``in-service``, ``failed``, ``update-started``, ``green-healthy``, ``traffic-shifted``,
    ``baking``, ``alarm``, ``rolled-back``, ``update-failed``, ``blue-terminated``, ``update-completed``,
    ``weights-updated``, ``deleted``."""
    blue_config: str | None
    green_config: str | None
    green_share: float
    """Share of the traffic on the green fleet (0 outside a deployment)."""
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"time", "event", "weights": {"blue": {"config", "share"}, "green": ...}, "detail"}``."""
        weights: dict[str, Any] = {}
        if self.blue_config is not None:
            weights["blue"] = {"config": self.blue_config, "share": round(1.0 - self.green_share, 6)}
        if self.green_config is not None:
            weights["green"] = {"config": self.green_config, "share": round(self.green_share, 6)}
        return {"time": self.time.isoformat(), "event": self.event, "weights": weights, "detail": self.detail}


@dataclass
class HostedEndpoint:
    """The emulator's state of one endpoint."""

    name: str
    arn: str
    config_name: str
    status: str = "Creating"
    failure_reason: str | None = None
    blue: Fleet | None = None
    green: Fleet | None = None
    green_share: float = 0.0
    pending_config: str | None = None
    pending_started: datetime | None = None
    last_deployment_config: dict[str, Any] | None = None
    created: datetime = field(default_factory=_now)
    modified: datetime = field(default_factory=_now)
    timeline: list[TimelineEvent] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)
    worker: threading.Thread | None = None

    def record(self, event: str, detail: str = "") -> None:
        """Append a timeline event with the current traffic split."""
        with self.lock:
            self.timeline.append(
                TimelineEvent(
                    _now(),
                    event,
                    self.blue.config_name if self.blue else None,
                    self.green.config_name if self.green else None,
                    self.green_share if self.green else 0.0,
                    detail,
                )
            )


# ---------------------------------------------------------------------------------------------- hosting


class SageMakerHosting:
    """Real-time SageMaker endpoints on the emulator (an :class:`~rehearsal.emulator.Extension`).

    Install it after :class:`rehearsal.alarms.AlarmEvaluator` (the guardrails read the alarm states it
    keeps): ``Emulator(extensions=[AlarmEvaluator(time_scale=60), SageMakerHosting(time_scale=60)])``.

    Args:
        time_scale: Emulated seconds per wall-clock second for deployment waits
            (``WaitIntervalInSeconds``, ``TerminationWaitInSeconds``, ``MaximumExecutionTimeoutInSeconds``);
            use the evaluator's value so bake times and alarm periods shrink together.
        startup_timeout_s: Wall-clock seconds a container gets to answer ``/ping`` (not scaled: it is
            real process start-up time); a variant's ``ContainerStartupHealthCheckTimeoutInSeconds``
            overrides it. The default is SageMaker's when the variant sets none: four minutes after
            the container starts (https://repost.aws/knowledge-center/sagemaker-endpoint-creation-fail,
            "did not pass the ping health check"). A container that crashes fails at once either way.
        capture_flush_s: Wall-clock seconds between data-capture uploads.
        seed: Seed of the traffic-routing and capture-sampling random generator (``None``: random).

    Differences from AWS:
        - one process per variant whatever its instance count or type (counts only weigh traffic);
          canary and linear sizes shift that exact share of traffic, not whole instances;
        - only the SageMaker scikit-learn image can run, single-container models only (no inference
          pipelines, ``ModelDataSource``, multi-model, serverless cold starts, async or shadow variants);
          a ``RollingUpdatePolicy`` is refused as not emulated;
        - a container whose module fails to import exits at once (the endpoint fails without waiting
          out the health-check timeout); the container has no network; it gets its model role's session
          in its environment (``AWS_*`` variables, as SageMaker's credential chain would give it) unless
          the model is network-isolated, then none;
        - metrics are published per invocation as raw values (SageMaker sends one-minute statistic
          sets), with ``EndpointName``+``VariantName`` and ``EndpointName``+``EndpointConfigName``+
          ``VariantName`` dimensions; capture files are flushed every ``capture_flush_s``;
        - only successful (2xx) invocations are captured;
        - UpdateEndpoint refuses rollback alarms that do not exist (AWS documents no check); the alarms
          are watched during every bake (``WaitIntervalInSeconds`` after each shift) and the whole update
          is bounded by ``MaximumExecutionTimeoutInSeconds``; the blue fleet is stopped after
          ``TerminationWaitInSeconds``, without alarm watching.
    """

    name = "sagemaker-endpoints"

    def __init__(
        self,
        *,
        time_scale: float = 1.0,
        startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
        capture_flush_s: float = 1.0,
        seed: int | None = None,
    ) -> None:
        self.scale = TimeScale(time_scale)
        self.startup_timeout_s = startup_timeout_s
        self.capture_flush_s = capture_flush_s
        self._rng = random.Random(seed)  # noqa: S311 - traffic routing and sampling, not security
        self._rng_lock = threading.Lock()
        self._emulator: Emulator | None = None
        self.endpoints: dict[str, HostedEndpoint] = {}
        self._lock = threading.RLock()
        self._patched: list[tuple[type, str, Any]] = []
        self._capture_buffers: dict[tuple[str, str, str, str], list[tuple[datetime, str]]] = {}
        self._capture_lock = threading.Lock()
        self.capture_errors: list[str] = []
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._clients: dict[str, Any] = {}
        self._sessions = RoleSessions()
        self._role_clients: dict[tuple[str, str], Any] = {}

    def _role_client(self, service: str, role_arn: str, source_arn: str = "") -> Any:
        """A client acting as ``role_arn`` assumed by SageMaker (root when the emulator has no IAM).

        Raises :class:`HostingError` when SageMaker cannot assume the role (its trust refuses).
        """
        from rehearsal.iam.authorizer import TrustDeniedError

        assert self._emulator is not None
        if not role_arn:
            return self._client(service)
        try:
            credentials = self._sessions.service(
                self._emulator, role_arn, SAGEMAKER_SERVICE, source_arn or None
            )
        except TrustDeniedError as error:
            raise HostingError(f"SageMaker could not assume the model's role {role_arn}: {error}") from error
        if credentials is None:
            return self._client(service)
        with self._lock:
            key = (service, credentials["AWS_ACCESS_KEY_ID"])
            if key not in self._role_clients:
                self._role_clients[key] = client_as(self._emulator, service, credentials)
            return self._role_clients[key]

    def _container_environment(self, variant: VariantDefinition) -> dict[str, str] | None:
        """The AWS environment the variant's container gets: its model role's session, as SageMaker hands
        it to the SDK chain, with the region and the emulator's address.

        None for a network-isolated model: "no AWS credentials are made available to the container
        runtime environment" (https://docs.aws.amazon.com/sagemaker/latest/dg/mkt-algo-model-internet-free.html),
        and for a model without a role or an emulator without IAM (the container keeps no credentials).
        """
        from rehearsal.iam.authorizer import TrustDeniedError

        assert self._emulator is not None
        if variant.network_isolation or not variant.execution_role_arn:
            return None
        try:
            credentials = self._sessions.service(
                self._emulator, variant.execution_role_arn, SAGEMAKER_SERVICE, variant.model_arn or None
            )
        except TrustDeniedError as error:
            raise HostingError(
                f"SageMaker could not assume the model's role {variant.execution_role_arn}: {error}"
            ) from error
        if credentials is None:
            return None
        return {
            **credentials,
            "AWS_DEFAULT_REGION": self._emulator.region,
            "AWS_REGION": self._emulator.region,
            "AWS_ENDPOINT_URL": self._emulator.endpoint_url,
        }

    def _alarms_denial(self, fleet: Fleet | None, alarms: list[str]) -> str | None:
        """SageMaker reads the rollback alarms with the execution role of the endpoint's models: the
        denial (as a rollback reason) when that role may not ``cloudwatch:DescribeAlarms`` them, or None.

        https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html: the
        execution role needs ``cloudwatch:DescribeAlarms`` on the auto-rollback alarms.
        """
        from rehearsal.iam.identities import authorizer_of

        authorizer = authorizer_of(self._emulator)
        if authorizer is None or fleet is None or not alarms:
            return None
        roles = sorted({v.execution_role_arn for v in fleet.variants.values() if v.execution_role_arn})
        for role in roles:
            denial = authorizer.authorize_call(role, "cloudwatch", "DescribeAlarms", {"AlarmNames": alarms})
            if denial is not None and authorizer.enforce:
                return (
                    f"Deployment failed: SageMaker could not read the rollback alarms {alarms} with the model's "
                    f"execution role {role}: {denial.action} on {denial.resource} is denied ({denial.decisive}). "
                    f"Fix: {denial.hint}"
                )
        return None

    def _client(self, service: str) -> Any:
        """A cached boto3 client of the emulator (clients are thread-safe and costly to make)."""
        assert self._emulator is not None
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._emulator.client(service)
            return self._clients[service]

    # ------------------------------------------------------------------ lifecycle

    def install(self, emulator: Emulator) -> None:
        """Patch moto's SageMaker and SageMaker Runtime responses and start the capture flusher."""
        from moto.sagemaker.responses import SageMakerResponse
        from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

        from rehearsal.emulator import EmulatorError

        try:
            emulator.extension("cloudwatch-alarms")
        except EmulatorError:
            raise EmulatorError(
                "SageMakerHosting needs the AlarmEvaluator installed before it (extensions=[AlarmEvaluator(...), "
                "SageMakerHosting(...)]): deployment guardrails read the alarm states it evaluates"
            ) from None
        self._emulator = emulator
        hosting = self

        def action(method: Callable[[Any], Any]) -> Callable[[Any], Any]:
            def handler(response: Any) -> Any:
                return method(response)

            return handler

        self._patch(SageMakerResponse, "create_model", action(self._create_model))
        self._patch(SageMakerResponse, "create_endpoint", action(self._create_endpoint))
        self._patch(SageMakerResponse, "describe_endpoint", action(self._describe_endpoint))
        self._patch(SageMakerResponse, "delete_endpoint", action(self._delete_endpoint))
        self._patch(SageMakerResponse, "update_endpoint", action(self._update_endpoint))
        self._patch(SageMakerResponse, "update_endpoint_weights_and_capacities", action(self._update_weights))
        self._patch(SageMakerRuntimeResponse, "invoke_endpoint", action(hosting._invoke_endpoint))
        self._stop.clear()
        self._flusher = threading.Thread(target=self._flush_loop, name="sagemaker-capture", daemon=True)
        self._flusher.start()

    def close(self) -> None:
        """Stop every deployment, container and the flusher; restore moto's responses."""
        self._stop.set()
        with self._lock:
            endpoints = list(self.endpoints.values())
        for endpoint in endpoints:
            endpoint.cancelled.set()
        for endpoint in endpoints:
            if endpoint.worker is not None:
                endpoint.worker.join(timeout=30)
            self._stop_fleets(endpoint)
        if self._flusher is not None:
            self._flusher.join(timeout=10)
            self._flusher = None
        self._flush_capture()
        for cls, attr, original in reversed(self._patched):
            if original is None:
                delattr(cls, attr)
            else:
                setattr(cls, attr, original)
        self._patched.clear()
        self._clients.clear()
        self._role_clients.clear()
        self._sessions.clear()

    def _patch(self, cls: type, attr: str, value: Any) -> None:
        self._patched.append((cls, attr, cls.__dict__.get(attr)))
        setattr(cls, attr, value)

    @staticmethod
    def _stop_fleets(endpoint: HostedEndpoint) -> None:
        with endpoint.lock:
            fleets = [f for f in (endpoint.blue, endpoint.green) if f is not None]
        for fleet in fleets:
            fleet.stop()

    # ------------------------------------------------------------------ public queries

    def timeline(self, endpoint_name: str) -> list[dict[str, Any]]:
        """The endpoint's timeline as JSON-ready dicts (see :meth:`TimelineEvent.as_dict`)."""
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            raise KeyError(f"no endpoint named {endpoint_name!r} was created in this emulator")
        with endpoint.lock:
            return [e.as_dict() for e in endpoint.timeline]

    def wait_for_status(
        self,
        endpoint_name: str,
        statuses: tuple[str, ...] = ("InService", "Failed"),
        timeout_s: float = 120.0,
    ) -> str:
        """Block until the endpoint has no deployment running and is in one of ``statuses``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            endpoint = self.endpoints.get(endpoint_name)
            if (
                endpoint is not None
                and endpoint.status in statuses
                and not (endpoint.worker is not None and endpoint.worker.is_alive())
            ):
                return endpoint.status
            time.sleep(0.05)
        current = self.endpoints.get(endpoint_name)
        raise TimeoutError(
            f"endpoint {endpoint_name} not in {statuses} after {timeout_s} s (status {current.status if current else None})"
        )

    # ------------------------------------------------------------------ moto plumbing

    def _backend(self) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        assert self._emulator is not None
        return sagemaker_backends[self._emulator.account_id][self._emulator.region]

    def _download(self, uri: str, role_arn: str = "", source_arn: str = "") -> bytes:
        from botocore.exceptions import ClientError

        assert self._emulator is not None
        bucket, key = _split_s3(uri, "S3 location")
        s3 = self._role_client("s3", role_arn, source_arn)
        try:
            body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            raise HostingError(
                f"could not download {uri}: {error.response['Error'].get('Message') or error}"
            ) from error
        return body

    def _sync_moto(self, endpoint: HostedEndpoint) -> None:
        fake = self._backend().endpoints.get(endpoint.name)
        if fake is not None:
            fake.endpoint_status = endpoint.status
            fake.endpoint_config_name = endpoint.config_name
            fake.failure_reason = endpoint.failure_reason
            fake.last_modified_time = endpoint.modified.replace(tzinfo=None)

    def _set(self, endpoint: HostedEndpoint, **changes: Any) -> None:
        with endpoint.lock:
            for key, value in changes.items():
                setattr(endpoint, key, value)
            endpoint.modified = _now()
        self._sync_moto(endpoint)

    def _fleet_definition(self, config_name: str) -> Fleet:
        """Resolve an endpoint config's variants to containers (model -> package -> container)."""
        backend = self._backend()
        config = backend.endpoint_configs.get(config_name)
        if config is None:
            raise HostingError(f"Could not find endpoint configuration {config_name!r}.")
        variants: dict[str, VariantDefinition] = {}
        for raw in config.production_variants:
            name = raw["VariantName"]
            if raw.get("ServerlessConfig"):
                raise HostingError(f"production variant {name}: serverless variants are not emulated")
            model_name = raw["ModelName"]
            model = backend._models.get(model_name)
            if model is None:
                raise HostingError(f"production variant {name}: Could not find model {model_name!r}.")
            containers = list(
                [model.primary_container] if model.primary_container else model.containers or []
            )
            if len(containers) != 1:
                raise HostingError(
                    f"model {model_name}: {len(containers)} containers; the emulator hosts single-container models only"
                )
            container = dict(containers[0])
            if container.get("ModelDataSource"):
                raise HostingError(
                    f"model {model_name}: ModelDataSource (uncompressed model data) is not emulated"
                )
            source = f"model {model_name}"
            env = dict(container.get("Environment") or {})
            if container.get("ModelPackageName"):
                package_name = container["ModelPackageName"]
                try:
                    package = backend.describe_model_package(package_name)
                except Exception as error:
                    raise HostingError(
                        f"model {model_name}: model package {package_name} not found ({error})"
                    ) from None
                spec = package.inference_specification or {}
                package_containers = spec.get("Containers") or []
                if len(package_containers) != 1:
                    raise HostingError(
                        f"model package {package_name}: {len(package_containers)} inference containers; "
                        "the emulator hosts single-container packages only"
                    )
                package_container = package_containers[0]
                container = {**package_container, "Image": package_container.get("Image")}
                env = {**(package_container.get("Environment") or {}), **env}
                source += f" (model package {package.arn})"
            variants[name] = VariantDefinition(
                name=name,
                model_name=model_name,
                container=ContainerDefinition(
                    image=str(container.get("Image") or ""),
                    model_data_url=container.get("ModelDataUrl"),
                    environment=env,
                    source=source,
                ),
                instance_type=str(raw.get("InstanceType", "")),
                instance_count=int(raw.get("InitialInstanceCount") or 1),
                initial_weight=float(raw.get("InitialVariantWeight", 1.0)),
                startup_timeout_s=(
                    float(raw["ContainerStartupHealthCheckTimeoutInSeconds"])
                    if raw.get("ContainerStartupHealthCheckTimeoutInSeconds")
                    else None
                ),
                execution_role_arn=str(getattr(model, "execution_role_arn", "") or ""),
                model_arn=str(getattr(model, "arn", "") or ""),
                network_isolation=bool(getattr(model, "enable_network_isolation", False)),
            )
        return Fleet(config_name, variants, CaptureDefinition.parse(config.data_capture_config))

    def _start_fleet(self, endpoint: HostedEndpoint, fleet: Fleet, label: str) -> None:
        """Start every variant's container and wait until all are healthy (raises :class:`HostingError`)."""
        assert self._emulator is not None
        root = (
            self._emulator.workdir
            / "endpoints"
            / endpoint.name
            / f"{label}-{fleet.config_name}-{uuid.uuid4().hex[:6]}"
        )
        try:
            for name, variant in fleet.variants.items():
                server = ModelServer(variant, root / name)
                fleet.servers[name] = server
                try:
                    server.prepare_and_start(
                        functools.partial(
                            self._download, role_arn=variant.execution_role_arn, source_arn=variant.model_arn
                        ),
                        self._container_environment(variant),
                    )
                except HostingError:
                    raise
                except Exception as error:
                    raise HostingError(
                        f"production variant {name}: could not start the container: {error}"
                    ) from error
            for name, server in fleet.servers.items():
                timeout = fleet.variants[name].startup_timeout_s or self.startup_timeout_s
                server.wait_healthy(timeout, endpoint.cancelled)
        except BaseException:
            fleet.stop()
            raise

    # ------------------------------------------------------------------ SageMaker API

    def _create_model(self, response: Any) -> Any:
        """moto's CreateModel, keeping ``EnableNetworkIsolation`` (moto drops it): it decides whether the
        container gets the role's credentials."""
        from moto.sagemaker.responses import SageMakerResponse

        original = next(
            o for cls, attr, o in self._patched if cls is SageMakerResponse and attr == "create_model"
        )
        result = original(response)
        model = self._backend()._models.get(response._get_param("ModelName"))
        if model is not None:
            model.enable_network_isolation = bool(response._get_param("EnableNetworkIsolation"))
        return result

    def _create_endpoint(self, response: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.sagemaker.exceptions import ValidationError

        name = response._get_param("EndpointName")
        config_name = response._get_param("EndpointConfigName")
        backend = self._backend()
        if name in backend.endpoints:
            raise ValidationError(
                message=f'Cannot create already existing endpoint "{backend.endpoints[name].arn}".'
            )
        deployment = response._get_param("DeploymentConfig")
        if deployment is not None:
            self._parse_deployment(deployment)  # refused now if UpdateEndpoint would refuse it later
        fake = backend.create_endpoint(
            endpoint_name=name, endpoint_config_name=config_name, tags=response._get_param("Tags")
        )
        endpoint = HostedEndpoint(
            name=name, arn=fake.arn, config_name=config_name, last_deployment_config=deployment
        )
        with self._lock:
            self.endpoints[name] = endpoint
        self._sync_moto(endpoint)
        endpoint.record("creating", f"endpoint config {config_name}")
        endpoint.worker = threading.Thread(
            target=self._create_worker, args=(endpoint,), name=f"create-{name}", daemon=True
        )
        endpoint.worker.start()
        return ActionResult({"EndpointArn": fake.arn})

    def _create_worker(self, endpoint: HostedEndpoint) -> None:
        try:
            fleet = self._fleet_definition(endpoint.config_name)
            with endpoint.lock:
                endpoint.blue = fleet
            self._start_fleet(endpoint, fleet, "blue")
        except HostingError as error:
            with endpoint.lock:
                endpoint.blue = None
            self._set(endpoint, status="Failed", failure_reason=str(error))
            endpoint.record("failed", str(error))
            return
        self._set(endpoint, status="InService", failure_reason=None)
        endpoint.record("in-service")

    def _get(self, name: str) -> HostedEndpoint:
        from moto.sagemaker.exceptions import ValidationError

        endpoint = self.endpoints.get(name)
        if endpoint is None or name not in self._backend().endpoints:
            assert self._emulator is not None
            arn = f"arn:aws:sagemaker:{self._emulator.region}:{self._emulator.account_id}:endpoint/{name}"
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        return endpoint

    @staticmethod
    def _variant_summaries(fleet: Fleet, share: float, status: str | None = None) -> list[dict[str, Any]]:
        out = []
        for name, variant in fleet.variants.items():
            server = fleet.servers.get(name)
            summary: dict[str, Any] = {
                "VariantName": name,
                "CurrentWeight": fleet.weights[name] * share,
                "DesiredWeight": fleet.weights[name],
                "CurrentInstanceCount": fleet.instance_counts[name],
                "DesiredInstanceCount": fleet.instance_counts[name],
            }
            if server is not None and server.resolved_at is not None:
                summary["DeployedImages"] = [
                    {
                        "SpecifiedImage": variant.container.image,
                        "ResolvedImage": variant.container.image,
                        "ResolutionTime": server.resolved_at,
                    }
                ]
            if status is not None:
                summary["VariantStatus"] = [{"Status": status, "StartTime": _now()}]
            out.append(summary)
        return out

    def _describe_endpoint(self, response: Any) -> Any:
        from moto.core.responses import ActionResult

        endpoint = self._get(response._get_param("EndpointName"))
        with endpoint.lock:
            result: dict[str, Any] = {
                "EndpointName": endpoint.name,
                "EndpointArn": endpoint.arn,
                "EndpointConfigName": endpoint.config_name,
                "EndpointStatus": endpoint.status,
                "CreationTime": endpoint.created,
                "LastModifiedTime": endpoint.modified,
            }
            if endpoint.failure_reason:
                result["FailureReason"] = endpoint.failure_reason[:1024]
            blue = endpoint.blue
            if blue is not None:
                serving = endpoint.status in ("InService", "Updating")
                share = (1.0 - endpoint.green_share) if serving else 0.0
                result["ProductionVariants"] = self._variant_summaries(blue, share)
                if blue.capture is not None:
                    result["DataCaptureConfig"] = {
                        "EnableCapture": True,
                        "CaptureStatus": "Started",
                        "CurrentSamplingPercentage": blue.capture.sampling_percent,
                        "DestinationS3Uri": blue.capture.destination,
                        **({"KmsKeyId": blue.capture.kms_key_id} if blue.capture.kms_key_id else {}),
                    }
            if endpoint.last_deployment_config is not None:
                result["LastDeploymentConfig"] = endpoint.last_deployment_config
            if endpoint.pending_config is not None:
                green = endpoint.green
                pending: dict[str, Any] = {
                    "EndpointConfigName": endpoint.pending_config,
                    "StartTime": endpoint.pending_started,
                }
                if green is not None:
                    status = "Baking" if endpoint.green_share > 0 else "Creating"
                    pending["ProductionVariants"] = self._variant_summaries(
                        green, endpoint.green_share, status
                    )
                result["PendingDeploymentSummary"] = pending
        return ActionResult(result)

    def _delete_endpoint(self, response: Any) -> Any:
        from moto.core.responses import EmptyResult

        name = response._get_param("EndpointName")
        endpoint = self._get(name)
        endpoint.cancelled.set()
        if endpoint.worker is not None and endpoint.worker is not threading.current_thread():
            endpoint.worker.join(timeout=30)
        self._stop_fleets(endpoint)
        endpoint.record("deleted")
        self._backend().delete_endpoint(name)
        with self._lock:
            self.endpoints.pop(name, None)
        return EmptyResult()

    def _update_weights(self, response: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.sagemaker.exceptions import ValidationError

        endpoint = self._get(response._get_param("EndpointName"))
        desired = response._get_param("DesiredWeightsAndCapacities") or []
        with endpoint.lock:
            if endpoint.status != "InService" or endpoint.blue is None:
                raise ValidationError(
                    message=f'Cannot update in-progress endpoint "{endpoint.arn}" (status {endpoint.status}).'
                )
            fleet = endpoint.blue
            for item in desired:
                if item["VariantName"] not in fleet.variants:
                    raise ValidationError(
                        message=f"The variant name(s) [{item['VariantName']}] is/are not present in the endpoint."
                    )
            for item in desired:
                if item.get("DesiredWeight") is not None:
                    fleet.weights[item["VariantName"]] = float(item["DesiredWeight"])
                if item.get("DesiredInstanceCount") is not None:
                    fleet.instance_counts[item["VariantName"]] = int(item["DesiredInstanceCount"])
        self._set(endpoint, status="Updating")
        endpoint.record("weights-updated", json.dumps(fleet.weights))

        def finish() -> None:
            if not endpoint.cancelled.wait(self.scale.wall(WEIGHTS_UPDATE_SECONDS)):
                self._set(endpoint, status="InService")

        endpoint.worker = threading.Thread(target=finish, name=f"weights-{endpoint.name}", daemon=True)
        endpoint.worker.start()
        return ActionResult({"EndpointArn": endpoint.arn})

    def _update_endpoint(self, response: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.sagemaker.exceptions import ValidationError

        endpoint = self._get(response._get_param("EndpointName"))
        config_name = response._get_param("EndpointConfigName")
        deployment = response._get_param("DeploymentConfig")
        if response._get_param("RetainDeploymentConfig") and deployment is None:
            deployment = endpoint.last_deployment_config
        backend = self._backend()
        if config_name not in backend.endpoint_configs:
            assert self._emulator is not None
            arn = f"arn:aws:sagemaker:{self._emulator.region}:{self._emulator.account_id}:endpoint-config/{config_name}"
            raise ValidationError(message=f"Could not find endpoint configuration '{arn}'.")
        if response._get_param("RetainAllVariantProperties"):
            raise ValidationError(
                message="RetainAllVariantProperties is not emulated; give the full endpoint config"
            )
        with endpoint.lock:
            if endpoint.status != "InService":
                raise ValidationError(
                    message=f'Cannot update in-progress endpoint "{endpoint.arn}" (status {endpoint.status}).'
                )
        policy = self._parse_deployment(deployment)
        instances = sum(
            int(v.get("InitialInstanceCount") or 1)
            for v in backend.endpoint_configs[config_name].production_variants
        )
        self._traffic_steps(policy, instances)  # refuse a bad canary/linear size now, as the API does
        alarms = policy["alarms"]
        cloudwatch = self._cloudwatch_backend()
        missing = [a for a in alarms if a not in cloudwatch.alarms]
        if missing:
            raise ValidationError(
                message=f"AutoRollbackConfiguration names alarms that do not exist in the account: {missing}"
            )
        with endpoint.lock:
            endpoint.pending_config = config_name
            endpoint.pending_started = _now()
            endpoint.last_deployment_config = deployment
        self._set(endpoint, status="Updating", failure_reason=None)
        endpoint.record("update-started", f"to endpoint config {config_name} ({policy['type']})")
        endpoint.worker = threading.Thread(
            target=self._deploy,
            args=(endpoint, config_name, policy),
            name=f"deploy-{endpoint.name}",
            daemon=True,
        )
        endpoint.worker.start()
        return ActionResult({"EndpointArn": endpoint.arn})

    def _cloudwatch_backend(self) -> Any:
        from moto.cloudwatch.models import cloudwatch_backends

        assert self._emulator is not None
        return cloudwatch_backends[self._emulator.account_id][self._emulator.region]

    @staticmethod
    def _parse_deployment(deployment: Mapping[str, Any] | None) -> dict[str, Any]:
        """The blue/green policy in emulated seconds (API_DeploymentConfig / API_TrafficRoutingConfig)."""
        from moto.sagemaker.exceptions import ValidationError

        deployment = deployment or {}
        if deployment.get("RollingUpdatePolicy"):
            raise ValidationError(message="RollingUpdatePolicy is not emulated; use BlueGreenUpdatePolicy")
        blue_green = deployment.get("BlueGreenUpdatePolicy") or {}
        routing = blue_green.get("TrafficRoutingConfiguration") or {
            "Type": "ALL_AT_ONCE",
            "WaitIntervalInSeconds": 0,
        }
        kind = routing.get("Type", "ALL_AT_ONCE")
        wait = float(routing.get("WaitIntervalInSeconds", 0))
        if not 0 <= wait <= 3600:
            raise ValidationError(message=f"WaitIntervalInSeconds={wait:g} must be between 0 and 3600")
        alarms = [
            a["AlarmName"] for a in (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms") or []
        ]
        termination = float(blue_green.get("TerminationWaitInSeconds", 0))
        timeout = float(blue_green.get("MaximumExecutionTimeoutInSeconds", 14400))
        # ranges from https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html
        if not 0 <= termination <= 3600:
            raise ValidationError(
                message=f"TerminationWaitInSeconds={termination:g} must be between 0 and 3600"
            )
        if not 600 <= timeout <= 14400:
            raise ValidationError(
                message=f"MaximumExecutionTimeoutInSeconds={timeout:g} must be between 600 and 14400"
            )
        if len(alarms) > 10:
            raise ValidationError(message="AutoRollbackConfiguration.Alarms takes at most 10 alarms")
        return {
            "type": kind,
            "wait": wait,
            "canary": routing.get("CanarySize"),
            "linear": routing.get("LinearStepSize"),
            "termination_wait": termination,
            "timeout": timeout,
            "alarms": alarms,
        }

    @staticmethod
    def _traffic_steps(policy: Mapping[str, Any], instances: int) -> list[float]:
        """The green fleet's traffic share after each shift."""
        from moto.sagemaker.exceptions import ValidationError

        def share_of(size: Mapping[str, Any] | None, what: str) -> float:
            if not size:
                raise ValidationError(message=f"{what} is required for {policy['type']} traffic routing")
            value = float(size["Value"])
            if size["Type"] == "INSTANCE_COUNT":
                return min(1.0, value / max(instances, 1))
            if size["Type"] == "CAPACITY_PERCENT":
                return value / 100.0
            raise ValidationError(
                message=f"{what}.Type={size['Type']!r}: use INSTANCE_COUNT or CAPACITY_PERCENT"
            )

        kind = policy["type"]
        if kind == "ALL_AT_ONCE":
            return [1.0]
        if kind == "CANARY":
            canary = share_of(policy["canary"], "CanarySize")
            if not 0 < canary <= 0.5:
                raise ValidationError(message="CanarySize must be at most 50% of the variant's capacity")
            return [canary, 1.0]
        if kind == "LINEAR":
            step = share_of(policy["linear"], "LinearStepSize")
            if not 0.1 <= step <= 0.5:
                raise ValidationError(message="LinearStepSize must be 10-50% of the variant's capacity")
            steps, share = [], 0.0
            while share < 1.0 - 1e-9:
                share = min(1.0, share + step)
                steps.append(share)
            return steps
        raise ValidationError(
            message=f"TrafficRoutingConfiguration.Type={kind!r}: use ALL_AT_ONCE, CANARY or LINEAR"
        )

    def _deploy(self, endpoint: HostedEndpoint, config_name: str, policy: dict[str, Any]) -> None:
        started = time.monotonic()
        deadline = started + self.scale.wall(policy["timeout"])
        try:
            green = self._fleet_definition(config_name)
            with endpoint.lock:
                endpoint.green = green
                endpoint.green_share = 0.0
            self._start_fleet(endpoint, green, "green")
            injected = service_failure(self._emulator, "endpoint-update", endpoint.name)  # rehearsal.faults
            if injected is not None:
                raise HostingError(injected)
        except HostingError as error:
            self._end_update(
                endpoint,
                f"Update failed: the new endpoint config {config_name} could not be provisioned: {error}",
                "update-failed",
            )
            return
        endpoint.record("green-healthy", f"endpoint config {config_name}")
        try:
            steps = self._traffic_steps(policy, sum(green.instance_counts.values()))
        except Exception as error:  # validated at the call already; keep the endpoint consistent anyway
            self._end_update(endpoint, f"Update failed: {error}", "update-failed")
            return
        for share in steps:
            with endpoint.lock:
                endpoint.green_share = share
            endpoint.record("traffic-shifted", f"{share:.0%} of traffic on {config_name}")
            fired = self._bake(endpoint, policy, deadline)
            if fired is not None:
                self._end_update(endpoint, fired, "rolled-back")
                return
        if endpoint.cancelled.wait(self.scale.wall(policy["termination_wait"])):
            return
        with endpoint.lock:
            old = endpoint.blue
            endpoint.blue, endpoint.green, endpoint.green_share = green, None, 0.0
            endpoint.config_name = config_name
            endpoint.pending_config = None
            endpoint.pending_started = None
        if old is not None:
            old.stop()
        endpoint.record("blue-terminated", f"old endpoint config {old.config_name if old else '?'} stopped")
        self._set(endpoint, status="InService", failure_reason=None)
        endpoint.record("update-completed", f"serving endpoint config {config_name}")

    def _bake(self, endpoint: HostedEndpoint, policy: Mapping[str, Any], deadline: float) -> str | None:
        """Watch the rollback alarms for one baking period; the rollback reason, or ``None``."""
        if policy["wait"] > 0:
            endpoint.record("baking", f"{policy['wait']:g} s (emulated) watching {policy['alarms']}")
        end = time.monotonic() + self.scale.wall(policy["wait"])
        denied = self._alarms_denial(endpoint.green, list(policy["alarms"]))
        if denied is not None:
            endpoint.record("alarms-unreadable", denied)
            return denied
        cloudwatch = self._cloudwatch_backend()
        while True:
            for name in policy["alarms"]:
                alarm = cloudwatch.alarms.get(name)
                if alarm is not None and alarm.state_value == ALARM:
                    endpoint.record("alarm", f"{name}: {alarm.state_reason}")
                    return (
                        f"Deployment rolled back: CloudWatch alarm {name} went into ALARM during the deployment "
                        f"({alarm.state_reason}); all traffic is back on the previous endpoint config"
                    )
            if endpoint.cancelled.is_set():
                return "Deployment cancelled: the endpoint is being deleted"
            if time.monotonic() > deadline:
                return f"Deployment rolled back: it exceeded MaximumExecutionTimeoutInSeconds ({policy['timeout']:g} s)"
            if time.monotonic() >= end:
                return None
            time.sleep(min(0.05, max(0.0, end - time.monotonic())) or 0.01)

    def _end_update(self, endpoint: HostedEndpoint, reason: str, event: str) -> None:
        """Roll back: all traffic to blue, stop green, back to InService on the old config with a reason."""
        with endpoint.lock:
            green = endpoint.green
            endpoint.green_share = 0.0
        endpoint.record(event, reason)
        if green is not None:
            green.stop()
        with endpoint.lock:
            endpoint.green = None
            endpoint.pending_config = None
            endpoint.pending_started = None
        if endpoint.cancelled.is_set():
            return
        self._set(endpoint, status="InService", failure_reason=reason)

    # ------------------------------------------------------------------ runtime

    def _route(self, endpoint: HostedEndpoint, target: str | None) -> tuple[Fleet, str]:
        with endpoint.lock:
            blue, green, share = endpoint.blue, endpoint.green, endpoint.green_share
        if blue is None:
            raise HostingError("the endpoint has no serving fleet")
        with self._rng_lock:
            fleet = green if green is not None and share > 0 and self._rng.random() < share else blue
            if target is not None and target not in fleet.variants:
                raise KeyError(target)
            return fleet, fleet.pick_variant(self._rng, target)

    def _invoke_endpoint(self, response: Any) -> Any:
        assert self._emulator is not None
        account, region = self._emulator.account_id, self._emulator.region
        received = time.perf_counter()
        parts = response.path.split("/")
        name = parts[2] if len(parts) > 2 else ""
        headers = {k.lower(): v for k, v in response.headers.items()}
        body = response.body if isinstance(response.body, bytes) else (response.body or "").encode("utf-8")
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return _error(400, "ValidationError", f"Endpoint {name} of account {account} not found.")
        if endpoint.status not in ("InService", "Updating") or endpoint.blue is None:
            return _error(
                400,
                "ValidationError",
                f"Endpoint {name} of account {account} is not in service (status {endpoint.status}).",
            )
        if len(body) > MAX_PAYLOAD_BYTES:
            return _error(
                413, "ValidationError", f"Request payload of {len(body)} bytes exceeds the 6 MB limit."
            )
        target = headers.get("x-amzn-sagemaker-target-variant")
        try:
            fleet, variant = self._route(endpoint, target)
        except KeyError:
            return _error(400, "ValidationError", f"The variant {target} is not present in endpoint {name}.")
        except HostingError as error:
            return _error(400, "ValidationError", str(error))
        server = fleet.servers[variant]
        content_type = headers.get("content-type") or "application/octet-stream"
        forward = {"Content-Type": content_type}
        for header in ("accept", "x-amzn-sagemaker-custom-attributes"):
            if header in headers:
                forward["X-Amzn-SageMaker-Custom-Attributes" if header != "accept" else "Accept"] = headers[
                    header
                ]
        started = time.perf_counter()
        try:
            status, out_headers, out_body = server.invoke(body, forward)
        except (OSError, http.client.HTTPException) as error:
            model_us = (time.perf_counter() - started) * 1e6
            self._publish(name, fleet.config_name, variant, model_us, received, 500)
            return _error(
                424,
                "ModelError",
                f'Received server error (0) from primary with message "{error}". The container did not answer.',
                OriginalStatusCode=500,
                OriginalMessage=str(error),
                LogStreamArn=self._log_stream(name, variant),
            )
        model_us = (time.perf_counter() - started) * 1e6
        self._publish(name, fleet.config_name, variant, model_us, received, status)
        if not 200 <= status < 300:
            message = out_body.decode("utf-8", errors="replace")
            kind = "client" if 400 <= status < 500 else "server"
            logs = f"/aws/sagemaker/Endpoints/{name}"
            return _error(
                424,
                "ModelError",
                f'Received {kind} error ({status}) from primary with message "{message}". See '
                f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:group={logs} "
                f"in account {account} for more information.",
                OriginalStatusCode=status,
                OriginalMessage=message,
                LogStreamArn=self._log_stream(name, variant),
            )
        out_type = out_headers.get("content-type", "application/json")
        capture = fleet.capture
        if capture is not None:
            self._capture(
                capture,
                name,
                variant,
                body,
                content_type,
                out_body,
                out_type,
                headers.get("x-amzn-sagemaker-inference-id"),
                fleet.variants[variant].execution_role_arn if variant in fleet.variants else "",
            )
        reply = {"status": 200, "Content-Type": out_type, "x-Amzn-Invoked-Production-Variant": variant}
        if "x-amzn-sagemaker-custom-attributes" in out_headers:
            reply["X-Amzn-SageMaker-Custom-Attributes"] = out_headers["x-amzn-sagemaker-custom-attributes"]
        return 200, reply, out_body

    def _log_stream(self, endpoint: str, variant: str) -> str:
        assert self._emulator is not None
        return (
            f"arn:aws:logs:{self._emulator.region}:{self._emulator.account_id}:log-group:/aws/sagemaker/Endpoints/"
            f"{endpoint}:log-stream:{variant}/emulated"
        )

    def _publish(
        self, endpoint: str, config: str, variant: str, model_us: float, received: float, status: int
    ) -> None:
        """The ``AWS/SageMaker`` invocation metrics of one request
        (https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html)."""
        total_us = (time.perf_counter() - received) * 1e6
        when = datetime.now(UTC).replace(tzinfo=None)
        values = [
            ("Invocations", 1.0, "None"),
            ("Invocation4XXErrors", 1.0 if 400 <= status < 500 else 0.0, "None"),
            ("Invocation5XXErrors", 1.0 if status >= 500 else 0.0, "None"),
            ("ModelLatency", model_us, "Microseconds"),
            ("OverheadLatency", max(0.0, total_us - model_us), "Microseconds"),
        ]
        dimension_sets = [
            [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
            [
                {"Name": "EndpointName", "Value": endpoint},
                {"Name": "EndpointConfigName", "Value": config},
                {"Name": "VariantName", "Value": variant},
            ],
        ]
        data = [
            {"MetricName": metric, "Value": value, "Unit": unit, "Dimensions": dims, "Timestamp": when}
            for dims in dimension_sets
            for metric, value, unit in values
        ]
        self._cloudwatch_backend().put_metric_data(NAMESPACE, data)

    # ------------------------------------------------------------------ data capture

    def _capture(
        self,
        capture: CaptureDefinition,
        endpoint: str,
        variant: str,
        body: bytes,
        content_type: str,
        out_body: bytes,
        out_type: str,
        inference_id: str | None,
        role_arn: str = "",
    ) -> None:
        with self._rng_lock:
            sampled = self._rng.random() * 100 < capture.sampling_percent
        if not sampled:
            return
        when = _now()
        data: dict[str, Any] = {}
        if capture.capture_input:
            data["endpointInput"] = capture.section(body, content_type, "INPUT")
        if capture.capture_output:
            data["endpointOutput"] = capture.section(out_body, out_type, "OUTPUT")
        metadata = {
            "eventId": str(uuid.uuid4()),
            "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        }
        if inference_id:
            metadata["inferenceId"] = inference_id
        line = json.dumps({"captureData": data, "eventMetadata": metadata, "eventVersion": "0"})
        key = (capture.destination, capture.kms_key_id or "", f"{endpoint}/{variant}", role_arn)
        with self._capture_lock:
            self._capture_buffers.setdefault(key, []).append((when, line))

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.capture_flush_s):
            self._flush_capture()

    def flush_capture(self) -> None:
        """Upload the buffered capture records now (the flusher does it every ``capture_flush_s``)."""
        self._flush_capture()

    def _flush_capture(self) -> None:
        """One object per destination, variant and hour: ``<dest>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl``
        (https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html)."""
        with self._capture_lock:
            buffers, self._capture_buffers = self._capture_buffers, {}
        if not buffers or self._emulator is None:
            return
        for (destination, kms, path, role_arn), records in buffers.items():
            by_hour: dict[str, list[tuple[datetime, str]]] = {}
            for when, line in records:
                by_hour.setdefault(when.strftime("%Y/%m/%d/%H"), []).append((when, line))
            for hour, items in by_hour.items():
                first = items[0][0]
                bucket, _, prefix = destination[len("s3://") :].partition("/")
                name = f"{first:%M-%S}-{first.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
                key = "/".join(p for p in (prefix.strip("/"), path, hour, name) if p)
                extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms} if kms else {}
                try:
                    # SageMaker writes capture files with the model's execution role
                    self._role_client("s3", role_arn).put_object(
                        Bucket=bucket, Key=key, Body="\n".join(line for _, line in items) + "\n", **extra
                    )
                except Exception as error:
                    self.capture_errors.append(f"s3://{bucket}/{key}: {error}")
                    logger.warning("data capture upload to s3://%s/%s failed: %s", bucket, key, error)


def _error(status: int, code: str, message: str, **fields: Any) -> tuple[int, dict[str, Any], str]:
    """A SageMaker Runtime error response (rest-json: ``x-amzn-ErrorType`` + JSON body)."""
    headers = {"status": status, "Content-Type": "application/json", "x-amzn-ErrorType": code}
    return status, headers, json.dumps({"message": message, **fields})
