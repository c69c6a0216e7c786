"""SageMaker batch transform jobs that run for real: the model's container, mini-batches, joined output.

moto records ``CreateTransformJob`` as ``Completed`` at once and runs nothing. :class:`SageMakerTransform`
makes it do what SageMaker batch transform does
(https://docs.aws.amazon.com/sagemaker/latest/dg/batch-transform.html,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html):

- the job's model is resolved as an endpoint resolves it (model -> model package -> container) and its
  container is started exactly as :mod:`rehearsal.endpoints` starts a production variant (the
  package's ``model.tar.gz`` unpacked as ``/opt/ml/model``, ``SAGEMAKER_PROGRAM`` from the submit
  directory, :mod:`rehearsal.serving_image` as the web stack): a package without inference code fails
  the job;
- every object under ``TransformInput.DataSource.S3DataSource.S3Uri`` (``S3Prefix``) is read as the
  model's execution role, split by line (``SplitType=Line``), and sent to ``/invocations`` in
  mini-batches of as many records as fit in ``MaxPayloadInMB`` (``BatchStrategy=MultiRecord``) or one
  record each (``SingleRecord``); a single record larger than the payload limit fails the job;
- the answers are assembled by line (``AssembleWith=Line``) into ``<output path>/<input key relative to
  the input prefix>.out``, written as the execution role with SSE-KMS under ``TransformOutput.KmsKeyId``;
  with ``DataProcessing.JoinSource=Input`` each CSV output line is appended to its input line
  ("For CSV data, SageMaker ... joins the transformed data with the input by appending each
  transformed row to the end of the input", API_DataProcessing.html);
- status ``InProgress`` until every object is written, then ``Completed``; any failure is ``Failed``
  with a ``FailureReason`` naming the object and the cause. The container is stopped either way.

Differences from AWS (the emulator refuses these at CreateTransformJob rather than guess):
``ManifestFile``/``AugmentedManifestFile`` inputs, ``SplitType`` other than ``Line``/``None``,
``InputFilter``/``OutputFilter`` other than ``$``, a join with JSON data, ``CompressionType`` other than
``None``/``Gzip``. One container process runs whatever ``InstanceCount`` says, and mini-batches are sent
one at a time (``MaxConcurrentTransforms`` is recorded, not honoured). ``VolumeKmsKeyId`` is checked to
name an existing key (the container's scratch volume is the local disk).
"""

from __future__ import annotations

import gzip
import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rehearsal.endpoints import (
    ContainerDefinition,
    HostingError,
    ModelServer,
    VariantDefinition,
    _split_s3,
)
from rehearsal.iam.identities import SAGEMAKER_SERVICE, RoleSessions, client_as

if TYPE_CHECKING:
    from rehearsal.emulator import Emulator

logger = logging.getLogger(__name__)

DEFAULT_MAX_PAYLOAD_MB = 6
"""``MaxPayloadInMB`` when the request has none (the API's default)."""
MAX_PAYLOAD_MB = 100
"""Largest ``MaxPayloadInMB`` the API accepts."""


REQUEST_MEMBERS = (
    "TransformJobName",
    "ModelName",
    "MaxConcurrentTransforms",
    "ModelClientConfig",
    "MaxPayloadInMB",
    "BatchStrategy",
    "Environment",
    "TransformInput",
    "TransformOutput",
    "DataCaptureConfig",
    "TransformResources",
    "DataProcessing",
    "Tags",
    "ExperimentConfig",
)
"""CreateTransformJob's request members."""


class TransformJobError(RuntimeError):
    """The job cannot go on; the message becomes its ``FailureReason``."""


@dataclass
class TransformRun:
    """One transform job as the emulator runs it."""

    name: str
    arn: str
    request: Mapping[str, Any]
    status: str = "InProgress"
    failure_reason: str = ""
    records: int = 0
    requests: int = 0
    outputs: list[str] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    worker: threading.Thread | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _refuse_unemulated(request: Mapping[str, Any]) -> str | None:
    """Why the emulator cannot run ``request`` as AWS would (None: it can)."""
    transform_input = request.get("TransformInput") or {}
    source = (transform_input.get("DataSource") or {}).get("S3DataSource") or {}
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        return f"S3DataType {source.get('S3DataType')} is not emulated (use S3Prefix)"
    if transform_input.get("SplitType", "None") not in ("Line", "None"):
        return f"SplitType {transform_input.get('SplitType')} is not emulated (use Line)"
    if transform_input.get("CompressionType", "None") not in ("None", "Gzip"):
        return f"CompressionType {transform_input.get('CompressionType')} is unknown"
    processing = request.get("DataProcessing") or {}
    for member in ("InputFilter", "OutputFilter"):
        if processing.get(member, "$") not in ("$", ""):
            return f"DataProcessing.{member} {processing[member]!r} is not emulated (only '$')"
    if processing.get("JoinSource", "None") == "Input":
        kind = str(transform_input.get("ContentType") or "").split(";", 1)[0].strip().lower()
        if kind != "text/csv":
            return f"JoinSource Input with ContentType {kind or '(none)'} is not emulated (CSV joins only)"
    return None


class SageMakerTransform:
    """SageMaker batch transform on the emulator (an :class:`~rehearsal.emulator.Extension`).

    Args:
        startup_timeout_s: Wall-clock seconds the model's container gets to answer ``/ping``.
    """

    name = "sagemaker-transform"

    def __init__(self, *, startup_timeout_s: float = 60.0) -> None:
        self.startup_timeout_s = startup_timeout_s
        self.jobs: dict[str, TransformRun] = {}
        self._emulator: Emulator | None = None
        self._lock = threading.Lock()
        self._patched: list[tuple[type, str, Any]] = []
        self._sessions = RoleSessions()

    # ------------------------------------------------------------------ lifecycle

    def install(self, emulator: Emulator) -> None:
        """Patch moto's CreateTransformJob, DescribeTransformJob and StopTransformJob."""
        from moto.sagemaker.responses import SageMakerResponse

        self._emulator = emulator
        self._patch(SageMakerResponse, "create_transform_job", lambda response: self._create(response))
        self._patch(SageMakerResponse, "describe_transform_job", lambda response: self._describe(response))
        self._patch(SageMakerResponse, "stop_transform_job", lambda response: self._stop_job(response))

    def close(self) -> None:
        """Cancel running jobs, wait for their workers (which stop their containers), restore moto."""
        with self._lock:
            runs = list(self.jobs.values())
        for run in runs:
            run.cancelled.set()
        for run in runs:
            if run.worker is not None:
                run.worker.join(timeout=30)
        for cls, attr, original in reversed(self._patched):
            if original is None:
                delattr(cls, attr)
            else:
                setattr(cls, attr, original)
        self._patched.clear()
        self._sessions.clear()

    def _patch(self, cls: type, attr: str, value: Any) -> None:
        self._patched.append((cls, attr, cls.__dict__.get(attr)))
        setattr(cls, attr, value)

    def wait(self, job_name: str, timeout_s: float = 300.0) -> str:
        """Block until the job has ended; returns its status."""
        run = self.jobs.get(job_name)
        if run is None:
            raise KeyError(f"no transform job named {job_name!r} was created in this emulator")
        if run.worker is not None:
            run.worker.join(timeout=timeout_s)
        return run.status

    # ------------------------------------------------------------------ moto plumbing

    def _backend(self) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        assert self._emulator is not None
        return sagemaker_backends[self._emulator.account_id][self._emulator.region]

    def _sync(self, run: TransformRun) -> None:
        fake = self._backend().transform_jobs.get(run.name)
        if fake is None:
            return
        fake.transform_job_status = run.status
        fake.failure_reason = run.failure_reason
        now = _now().replace(tzinfo=None)
        fake.last_modified_time = now
        if run.status in ("Completed", "Failed", "Stopped"):
            fake.transform_end_time = now

    def _create(self, response: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.sagemaker.exceptions import ValidationError

        params = {m: response._get_param(m) for m in REQUEST_MEMBERS}
        name = str(params.get("TransformJobName") or "")
        backend = self._backend()
        for member in (
            "TransformJobName",
            "ModelName",
            "TransformInput",
            "TransformOutput",
            "TransformResources",
        ):
            if not params.get(member):
                raise ValidationError(message=f"1 validation error detected: {member} must not be null")
        if name in backend.transform_jobs:
            raise ValidationError(
                message=f"Job name must be unique within an AWS account and region, and a job with this name "
                f"already exists ({backend.transform_jobs[name].arn})"
            )
        if params["ModelName"] not in backend._models:
            raise ValidationError(message=f'Could not find model "{params["ModelName"]}".')
        payload = params.get("MaxPayloadInMB")
        if payload is not None and not 0 <= int(payload) <= MAX_PAYLOAD_MB:
            raise ValidationError(message=f"MaxPayloadInMB {payload} is outside 0-{MAX_PAYLOAD_MB}")
        refused = _refuse_unemulated(params)
        if refused:
            raise ValidationError(
                message=f"the emulator cannot run this transform job as AWS does: {refused}"
            )
        fake = backend.create_transform_job(
            transform_job_name=name,
            model_name=params["ModelName"],
            max_concurrent_transforms=params.get("MaxConcurrentTransforms"),
            model_client_config=params.get("ModelClientConfig"),
            max_payload_in_mb=payload,
            batch_strategy=params.get("BatchStrategy"),
            environment=params.get("Environment"),
            transform_input=params["TransformInput"],
            transform_output=params["TransformOutput"],
            data_capture_config=params.get("DataCaptureConfig"),
            transform_resources=params["TransformResources"],
            data_processing=params.get("DataProcessing"),
            tags=params.get("Tags"),
            experiment_config=params.get("ExperimentConfig"),
        )
        run = TransformRun(name=name, arn=fake.arn, request=params)
        with self._lock:
            self.jobs[name] = run
        self._sync(run)
        run.worker = threading.Thread(target=self._work, args=(run,), name=f"transform-{name}", daemon=True)
        run.worker.start()
        return ActionResult({"TransformJobArn": fake.arn})

    def _describe(self, response: Any) -> Any:
        from moto.core.responses import ActionResult

        name = response._get_param("TransformJobName")
        run = self.jobs.get(name)
        if run is not None:
            self._sync(run)
        described = dict(self._backend().describe_transform_job(transform_job_name=name))
        if run is not None and not run.failure_reason:
            described.pop("FailureReason", None)
        return ActionResult(described)

    def _stop_job(self, response: Any) -> Any:
        from moto.core.responses import EmptyResult
        from moto.sagemaker.exceptions import ValidationError

        name = response._get_param("TransformJobName")
        run = self.jobs.get(name)
        if run is None:
            raise ValidationError(message=f"Could not find job to update with name {name}")
        if run.status == "InProgress":
            run.status = "Stopping"
            self._sync(run)
            run.cancelled.set()
        return EmptyResult()

    # ------------------------------------------------------------------ the job

    def _role_client(self, service: str, role_arn: str, job_arn: str) -> Any:
        from rehearsal.iam.authorizer import TrustDeniedError

        assert self._emulator is not None
        try:
            credentials = self._sessions.service(self._emulator, role_arn, SAGEMAKER_SERVICE, job_arn)
        except TrustDeniedError as error:
            raise TransformJobError(
                f"SageMaker could not assume the model's role {role_arn}: {error}"
            ) from error
        return client_as(self._emulator, service, credentials)

    def _container(self, model_name: str) -> tuple[ContainerDefinition, str, str]:
        """The model's one container (through its model package), its execution role and ARN."""
        backend = self._backend()
        model = backend._models.get(model_name)
        if model is None:
            raise TransformJobError(f"Could not find model {model_name!r}.")
        containers = list([model.primary_container] if model.primary_container else model.containers or [])
        if len(containers) != 1:
            raise TransformJobError(f"model {model_name}: the emulator runs single-container models only")
        container = dict(containers[0])
        env = dict(container.get("Environment") or {})
        source = f"model {model_name}"
        if container.get("ModelPackageName"):
            package_name = container["ModelPackageName"]
            try:
                package = backend.describe_model_package(package_name)
            except Exception as error:
                raise TransformJobError(
                    f"model {model_name}: model package {package_name} not found ({error})"
                ) from None
            package_containers = (package.inference_specification or {}).get("Containers") or []
            if len(package_containers) != 1:
                raise TransformJobError(
                    f"model package {package_name}: the emulator runs single-container packages only"
                )
            container = dict(package_containers[0])
            env = {**(container.get("Environment") or {}), **env}
            source += f" (model package {package.arn})"
        definition = ContainerDefinition(
            image=str(container.get("Image") or ""),
            model_data_url=container.get("ModelDataUrl"),
            environment=env,
            source=source,
        )
        return definition, str(getattr(model, "execution_role_arn", "") or ""), str(model.arn)

    def _work(self, run: TransformRun) -> None:
        server: ModelServer | None = None
        try:
            request = run.request
            container, role_arn, _model_arn = self._container(str(request["ModelName"]))
            env = {
                **container.environment,
                **{str(k): str(v) for k, v in (request.get("Environment") or {}).items()},
            }
            container = ContainerDefinition(
                image=container.image,
                model_data_url=container.model_data_url,
                environment=env,
                source=container.source,
            )
            resources = request.get("TransformResources") or {}
            s3 = self._role_client("s3", role_arn, run.arn)
            volume_key = resources.get("VolumeKmsKeyId")
            if volume_key:
                self._check_key(str(volume_key), role_arn, run.arn)
            variant = VariantDefinition(
                name="transform",
                model_name=str(request["ModelName"]),
                container=container,
                instance_type=str(resources.get("InstanceType", "")),
                instance_count=int(resources.get("InstanceCount") or 1),
                initial_weight=1.0,
                startup_timeout_s=None,
                execution_role_arn=role_arn,
            )
            assert self._emulator is not None
            folder = self._emulator.workdir / "transform" / f"{run.name}-{uuid.uuid4().hex[:6]}"
            server = ModelServer(variant, folder)

            def download(uri: str) -> bytes:
                bucket, key = _split_s3(uri, "S3 location")
                return self._get(s3, bucket, key)

            try:
                server.prepare_and_start(download)
                server.wait_healthy(self.startup_timeout_s, run.cancelled)
            except HostingError as error:
                raise TransformJobError(f"ClientError: {error}") from error
            self._transform_all(run, server, s3)
            run.status = "Stopped" if run.cancelled.is_set() else "Completed"
        except TransformJobError as failure:
            run.status, run.failure_reason = (
                ("Stopped", "") if run.cancelled.is_set() else ("Failed", str(failure))
            )
        except Exception as error:  # a bug or an unexpected S3 answer: fail the job, never hang it
            logger.exception("transform job %s failed", run.name)
            run.status, run.failure_reason = "Failed", f"InternalServerError: {type(error).__name__}: {error}"
        finally:
            if server is not None:
                server.stop()
            self._sync(run)

    def _check_key(self, key_id: str, role_arn: str, job_arn: str) -> None:
        from botocore.exceptions import ClientError

        kms = self._role_client("kms", role_arn, job_arn)
        try:
            kms.describe_key(KeyId=key_id)
        except ClientError as error:
            raise TransformJobError(
                f"ClientError: VolumeKmsKeyId {key_id} cannot be used by {role_arn}: "
                f"{error.response['Error'].get('Message') or error}"
            ) from error

    @staticmethod
    def _get(s3: Any, bucket: str, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError as error:
            raise TransformJobError(
                f"ClientError: could not read s3://{bucket}/{key}: {error.response['Error'].get('Message') or error}"
            ) from error

    def _transform_all(self, run: TransformRun, server: ModelServer, s3: Any) -> None:
        from botocore.exceptions import ClientError

        request = run.request
        transform_input = request["TransformInput"]
        output = request["TransformOutput"]
        source_uri = str(transform_input["DataSource"]["S3DataSource"]["S3Uri"])
        bucket, prefix = _split_s3(source_uri if "/" in source_uri[5:] else source_uri + "/", "S3Uri")
        keys: list[str] = []
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/")]
        except ClientError as error:
            raise TransformJobError(
                f"ClientError: could not list {source_uri}: {error.response['Error'].get('Message') or error}"
            ) from error
        if not keys:
            raise TransformJobError(f"ClientError: no input objects found under {source_uri}")
        out_bucket, out_prefix = _split_s3(str(output["S3OutputPath"]).rstrip("/") + "/", "S3OutputPath")
        base = prefix if prefix.endswith("/") or prefix == "" else prefix.rsplit("/", 1)[0] + "/"
        for key in sorted(keys):
            if run.cancelled.is_set():
                return
            body = self._get(s3, bucket, key)
            if transform_input.get("CompressionType") == "Gzip":
                body = gzip.decompress(body)
            result = self._transform_object(run, server, key, body)
            relative = key[len(base) :] if key.startswith(base) else key.rsplit("/", 1)[-1]
            out_key = f"{out_prefix}{relative}.out"
            extra: dict[str, str] = {"ServerSideEncryption": "aws:kms"}
            if output.get("KmsKeyId"):
                extra["SSEKMSKeyId"] = str(output["KmsKeyId"])
            try:
                s3.put_object(Bucket=out_bucket, Key=out_key, Body=result, **extra)
            except ClientError as error:
                raise TransformJobError(
                    f"ClientError: could not write s3://{out_bucket}/{out_key} as the model's role: "
                    f"{error.response['Error'].get('Message') or error}"
                ) from error
            run.outputs.append(f"s3://{out_bucket}/{out_key}")

    def _transform_object(self, run: TransformRun, server: ModelServer, key: str, body: bytes) -> bytes:
        request = run.request
        transform_input = request["TransformInput"]
        output = request["TransformOutput"]
        limit = int(request.get("MaxPayloadInMB") or DEFAULT_MAX_PAYLOAD_MB) * 1024 * 1024
        if transform_input.get("SplitType", "None") == "Line":
            records = [line for line in body.split(b"\n") if line.strip()]
            records = [r[:-1] if r.endswith(b"\r") else r for r in records]
        else:
            records = [body]
        single = request.get("BatchStrategy", "SingleRecord") != "MultiRecord"
        join = (request.get("DataProcessing") or {}).get("JoinSource") == "Input"
        headers = {"Content-Type": str(transform_input.get("ContentType") or "application/octet-stream")}
        if output.get("Accept"):
            headers["Accept"] = str(output["Accept"])
        pieces: list[bytes] = []
        batch: list[bytes] = []
        size = 0

        def flush() -> None:
            nonlocal size
            if batch:
                pieces.extend(self._invoke(run, server, key, batch, headers, join))
                batch.clear()
                size = 0

        for record in records:
            if len(record) > limit:
                raise TransformJobError(
                    f"ClientError: a record of {key} is {len(record)} bytes, over MaxPayloadInMB "
                    f"({limit // (1024 * 1024)} MB); raise MaxPayloadInMB or split the record"
                )
            added = len(record) + (1 if batch else 0)
            if batch and (single or size + added > limit):
                flush()
                added = len(record)
            batch.append(record)
            size += added
            if single:
                flush()
        flush()
        assemble = output.get("AssembleWith", "None")
        separator = b"\n" if assemble == "Line" else b""
        joined = separator.join(pieces)
        return joined + (b"\n" if assemble == "Line" and joined else b"")

    def _invoke(
        self,
        run: TransformRun,
        server: ModelServer,
        key: str,
        batch: list[bytes],
        headers: dict[str, str],
        join: bool,
    ) -> list[bytes]:
        if run.cancelled.is_set():
            raise TransformJobError("stopped")
        try:
            status, _headers, answer = server.invoke(b"\n".join(batch), headers)
        except OSError as error:
            raise TransformJobError(
                f"AlgorithmError: the model container did not answer a mini-batch of {key}: {error}. "
                f"Container log: {server.log_tail()}"
            ) from error
        run.requests += 1
        if not 200 <= status < 300:
            raise TransformJobError(
                f"ClientError: the model container answered {status} to a mini-batch of {len(batch)} records "
                f"of {key}: {answer[:300].decode('utf-8', 'replace')}"
            )
        run.records += len(batch)
        lines = (
            [line for line in answer.split(b"\n") if line.strip()]
            if len(batch) > 1 or join
            else [answer.rstrip(b"\n")]
        )
        if not join:
            return lines if len(batch) > 1 else [answer.rstrip(b"\n")]
        if len(lines) != len(batch):
            raise TransformJobError(
                f"ClientError: cannot join the output with the input for {key}: {len(batch)} input records, "
                f"{len(lines)} output lines (answer one line per record, e.g. Accept text/csv)"
            )
        return [record + b"," + line for record, line in zip(batch, lines, strict=True)]
