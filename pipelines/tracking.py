"""MLflow run tracking of training runs: parameters, dataset identity, code version, metrics, reports, model.

Every training run the pipeline evaluates becomes one MLflow run in the experiment named after the
model's package group (:func:`experiment_name`). The run records what went in (hyperparameters, the
contract's name, version and hash, the validated data's hash and row count, the batch(es) it came
from with their hashes and validation reports, the code version) and what came out (the metrics of
``evaluation.json``, the evaluation report, the model archive). Registration then writes the run id
into the model package's metadata (``mlflow_run_id``) and tags the run with the package ARN
(``mlops.model_package_arn``), so each leads to the other.

Where runs go is :meth:`pipelines.settings.PipelineSettings.tracking_uri`: the managed MLflow App's ARN
on AWS (the ``sagemaker-mlflow`` plugin registers the ``arn`` URI scheme and signs each call with the
caller's credentials: IAM action ``sagemaker:CallMlflowAppApi`` on the App), a local store
(``sqlite:///...``) in tests and the rehearsal. No tracking URI: nothing is tracked and nothing fails.

Failure policy: a tracking outage fails the evaluate step, before registration (the MLflow client
already retries transient HTTP errors with backoff). An untracked package would break the lineage
chain for good, while re-running the evaluate step is cheap and idempotent; so the pipeline never
registers a model whose run it could not record. Tagging the run after registration is retried by
re-running the register step (registration is idempotent and re-tags).

Tuning (other steps) logs trials as child runs of a parent in the same experiment::

    tracker = open_tracker(settings)
    if tracker is not None:
        with tracker.run(experiment_name(target), "tuning-<job>") as parent:
            for trial in trials:
                with tracker.run(experiment_name(target), trial.name, parent_run_id=parent.run_id) as run:
                    run.log_params(trial.hyperparameters)
                    run.log_metrics(trial.metrics)
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import PipelineError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from pipelines.aws import AwsClients
    from pipelines.settings import ModelTarget, PipelineSettings
    from platform_contract.naming import ModelNames

RUN_ID_KEY = "mlflow_run_id"
"""Model package metadata key (CustomerMetadataProperties) holding the MLflow run id."""
EXPERIMENT_ID_KEY = "mlflow_experiment_id"
"""Model package metadata key holding the MLflow experiment id."""
PACKAGE_TAG = "mlops.model_package_arn"
"""Run tag holding the model package ARN registration created (or found) for the run."""
DATASET_ARTIFACT = "dataset.json"
"""Run artifact with the dataset identity (contract, validated data hash, batches, validation reports)."""
LOCAL_ARTIFACTS_DIR = "mlflow-artifacts"
"""Folder next to a local ``sqlite:///`` store where its experiments keep their artifacts."""
MAX_PARAM_CHARS = 6000
"""MLflow's limit on a parameter value (mlflow.utils.validation.MAX_PARAM_VAL_LENGTH)."""

_CURATED_KEY = re.compile(
    r"^curated/(?P<dataset>[^/]+)/ingest_date=(?P<date>[^/]+)/(?P<sha>[0-9a-f]+)/[^/]+$"
)


class TrackingError(PipelineError):
    """The tracking store refused or could not be reached; the message names the URI and the run."""


def experiment_name(model: ModelTarget | ModelNames) -> str:
    """The MLflow experiment of a model: its model package group name (training runs and tuning trials)."""
    from platform_contract.naming import ModelNames

    if isinstance(model, ModelNames):
        return model.model_package_group
    return model.model_package_group_name or model.names.model_package_group


def default_artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """Artifact location of a new experiment: beside a local ``sqlite:///`` store, else the server's default.

    A managed MLflow App (an ``arn:`` URI) keeps artifacts in its own artifact store (a prefix of the
    artifacts bucket), so None lets it choose.
    """
    if tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri.removeprefix("sqlite:///"))
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", experiment)
        return (database.parent / LOCAL_ARTIFACTS_DIR / safe).resolve().as_uri()
    return None


@dataclass
class TrackedRun:
    """One open MLflow run: log to it through these methods (values are stringified as MLflow wants)."""

    client: MlflowClient
    run_id: str
    experiment_id: str

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters (non-strings as JSON; values truncated to MLflow's limit)."""
        from mlflow.entities import Param

        items = [Param(str(k), _param_value(v)) for k, v in sorted(params.items())]
        for start in range(0, len(items), 100):  # log_batch takes at most 100 params per call
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Log the numeric metrics; None (undefined, e.g. AUC on one class) and non-numbers are skipped."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(str(k), float(v), now, 0)
            for k, v in sorted(metrics.items())
            if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set run tags (values stringified)."""
        from mlflow.entities import RunTag

        items = [RunTag(str(k), str(v)) for k, v in sorted(tags.items()) if v is not None]
        if items:
            self.client.log_batch(self.run_id, tags=items)

    def log_bytes(self, name: str, body: bytes, artifact_path: str | None = None) -> None:
        """Store ``body`` as the artifact ``<artifact_path>/<name>`` of the run."""
        with tempfile.TemporaryDirectory(prefix="mlops-mlflow-") as tmp:
            path = Path(tmp) / name
            path.write_bytes(body)
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_dataset(self, name: str, digest: str, source: str, profile: Mapping[str, Any]) -> None:
        """Record a dataset input of the run (MLflow's dataset entity: name, digest, source, profile)."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(
            name=name,
            digest=digest[:36],  # MLflow caps a dataset digest at 36 characters
            source_type="s3",
            source=json.dumps({"uri": source}),
            profile=json.dumps(dict(profile), default=str),
        )
        self.client.log_inputs(
            self.run_id, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])]
        )


@dataclass
class Tracker:
    """An MLflow client on the platform's tracking URI."""

    client: MlflowClient
    uri: str

    def experiment_id(self, name: str) -> str:
        """The id of experiment ``name``, creating it (artifacts at :func:`default_artifact_location`)."""
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        mlflow_client = self.client  # an MLflow client: its create_experiment is not SageMaker's
        try:
            return str(mlflow_client.create_experiment(name, default_artifact_location(self.uri, name)))
        except MlflowException:  # created meanwhile by another run of the same model
            again = self.client.get_experiment_by_name(name)
            if again is None:
                raise
            return str(again.experiment_id)

    @contextmanager
    def run(
        self,
        experiment: str,
        run_name: str,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> Iterator[TrackedRun]:
        """Open a run (a child of ``parent_run_id`` when given); FINISHED on exit, FAILED on an exception."""
        experiment_id = self.experiment_id(experiment)
        all_tags = {str(k): str(v) for k, v in (tags or {}).items() if v is not None}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        created = self.client.create_run(experiment_id, tags=all_tags, run_name=run_name)
        run = TrackedRun(self.client, created.info.run_id, experiment_id)
        try:
            yield run
        except BaseException:
            self.client.set_terminated(run.run_id, "FAILED")
            raise
        self.client.set_terminated(run.run_id, "FINISHED")


def open_tracker(settings: PipelineSettings) -> Tracker | None:
    """A tracker on ``settings.tracking_uri()``, or None when tracking is off (no URI configured)."""
    uri = settings.tracking_uri()
    if not uri:
        return None
    from mlflow.tracking import MlflowClient

    if uri.startswith("arn:"):
        import mlflow

        # The sagemaker-mlflow plugin's request signer reads the process-wide tracking URI, not the
        # client's (sagemaker_mlflow/auth_provider.py: set_arn(get_tracking_uri())), so set both.
        mlflow.set_tracking_uri(uri)
    return Tracker(MlflowClient(tracking_uri=uri), uri)


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:MAX_PARAM_CHARS]


# --- what a training run records --------------------------------------------------------------


def raw_batch_prefix(curated_uri: str) -> str | None:
    """The raw batch folder (``raw/<dataset>/ingest_date=<d>/<sha16>/``) a curated object was validated from.

    Curation keeps the batch's dataset, ingest date and content-hash prefix in the curated key
    (:func:`pipelines.validate.curated_key`, :func:`pipelines.ingest.raw_key`). None for another layout.
    """
    key = (
        curated_uri.split("/", 3)[3]
        if curated_uri.startswith("s3://") and curated_uri.count("/") >= 3
        else ""
    )
    match = _CURATED_KEY.match(key)
    if not match:
        return None
    return f"raw/{match['dataset']}/ingest_date={match['date']}/{match['sha']}/"


def batch_records(clients: AwsClients, sources: list[str]) -> list[dict[str, Any]]:
    """For each curated source: the raw batch it came from (URI, SHA-256) and its validation report.

    Reads the raw batch folder (the batch file and ``validation.json``) in the raw bucket; a source
    whose batch is not found is recorded with ``batch_uri`` None (e.g. data curated elsewhere).
    """
    raw_bucket = clients.settings.raw_bucket
    records: list[dict[str, Any]] = []
    for source in sources:
        record: dict[str, Any] = {
            "curated_uri": source,
            "batch_uri": None,
            "batch_sha256": None,
            "validation_report_uri": None,
            "validation": None,
        }
        prefix = raw_batch_prefix(source)
        if prefix and raw_bucket:
            listed = clients.s3.list_objects_v2(Bucket=raw_bucket, Prefix=prefix)
            for item in listed.get("Contents", []):
                key = str(item["Key"])
                name = key.rsplit("/", 1)[-1]
                if name == "validation.json":
                    body = json.loads(clients.s3.get_object(Bucket=raw_bucket, Key=key)["Body"].read())
                    record["validation_report_uri"] = f"s3://{raw_bucket}/{key}"
                    record["validation"] = {
                        k: body.get(k) for k in ("passed", "rows", "contract_version", "created_at", "source")
                    }
                elif not name.startswith("validation."):
                    digest = hashlib.sha256()
                    stream = clients.s3.get_object(Bucket=raw_bucket, Key=key)["Body"]
                    while chunk := stream.read(1 << 20):
                        digest.update(chunk)
                    record["batch_uri"] = f"s3://{raw_bucket}/{key}"
                    record["batch_sha256"] = digest.hexdigest()
        records.append(record)
    return records


def dataset_identity(
    clients: AwsClients, metadata: Mapping[str, Any], contract_version: int
) -> dict[str, Any]:
    """The dataset identity of a model: contract, validated data hash and rows, and its batches."""
    lineage = dict(metadata.get("data_lineage") or {})
    sources = [str(s) for s in lineage.get("sources") or []]
    return {
        "contract": str(metadata["model_name"]),
        "contract_version": contract_version,
        "contract_sha256": metadata.get("contract_sha256") or lineage.get("contract_sha256"),
        "validated_data_sha256": lineage.get("validated_data_sha256"),
        "training_data_sha256": metadata.get("training_data_sha256"),
        "training_rows": metadata.get("training_rows"),
        "curated_sources": sources,
        "batches": batch_records(clients, sources),
    }


@dataclass(frozen=True)
class TrackedTraining:
    """The MLflow run recorded for a trained model."""

    run_id: str
    experiment_id: str
    experiment: str


def track_training_run(
    clients: AwsClients,
    model_uri: str,
    evaluation: Mapping[str, Any],
    features_uri: str,
    model: ModelTarget | None = None,
) -> TrackedTraining | None:
    """Record the training run of ``model_uri`` (evaluated as ``evaluation``) in MLflow; None when off.

    Raises:
        TrackingError: the tracking store could not record the run (the caller must not register).
    """
    from pipelines.aws import split_s3_uri
    from pipelines.evaluate import evaluation_prefix, load_model_archive
    from pipelines.jsonio import strict_json

    tracker = open_tracker(clients.settings)
    if tracker is None:
        return None
    bucket, key = split_s3_uri(model_uri)
    archive = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    loaded = load_model_archive(archive)
    metadata = loaded.metadata
    target = model or clients.settings.model_target(loaded.contract.name)
    experiment = experiment_name(target)
    run_id = str(metadata["run_id"])
    dataset = dataset_identity(clients, metadata, loaded.contract.version)
    artifacts = clients.settings.artifacts_bucket
    evaluation_uri = (
        f"s3://{artifacts}/{evaluation_prefix(loaded.contract.name, run_id)}evaluation.json"
        if artifacts
        else None
    )
    gate = evaluation.get("gate") or {}
    try:
        with tracker.run(
            experiment,
            run_id,
            tags={
                "mlops.model": target.model,
                "mlops.contract": loaded.contract.name,
                "mlops.environment": clients.settings.environment,
                "mlops.training_job": run_id,
                "mlops.model_uri": model_uri,
                "mlops.features_uri": features_uri,
                "mlops.evaluation_uri": evaluation_uri,
                "mlops.code_version": metadata.get("code_version"),
                "mlops.gate": "passed" if gate.get("passed") else "failed",
                "mlflow.source.git.commit": metadata.get("code_version"),
                "mlflow.source.name": "pipelines/train.py",
                "mlflow.source.type": "JOB",
            },
        ) as run:
            run.log_params(
                {
                    **dict(metadata.get("hyperparameters") or {}),
                    "contract": loaded.contract.name,
                    "contract_version": loaded.contract.version,
                    "contract_sha256": dataset["contract_sha256"],
                    "validated_data_sha256": dataset["validated_data_sha256"],
                    "training_data_sha256": dataset["training_data_sha256"],
                    "training_rows": dataset["training_rows"],
                    "code_version": metadata.get("code_version"),
                    "task": metadata.get("task"),
                    "batch_uris": ",".join(b["batch_uri"] or b["curated_uri"] for b in dataset["batches"]),
                }
            )
            run.log_metrics(dict(evaluation.get("metrics") or {}))
            run.log_dataset(
                loaded.contract.name,
                str(dataset["validated_data_sha256"] or dataset["training_data_sha256"]),
                ",".join(dataset["curated_sources"]) or features_uri,
                {"rows": dataset["training_rows"], "contract_version": loaded.contract.version},
            )
            run.log_bytes(DATASET_ARTIFACT, strict_json(dataset).encode())
            run.log_bytes("evaluation.json", strict_json(dict(evaluation)).encode(), "reports")
            for index, batch in enumerate(dataset["batches"]):
                if batch["validation_report_uri"]:
                    vb, vk = split_s3_uri(batch["validation_report_uri"])
                    body = clients.s3.get_object(Bucket=vb, Key=vk)["Body"].read()
                    run.log_bytes(f"validation-{index}.json", body, "reports")
            run.log_bytes("metadata.json", strict_json(metadata).encode(), "model")
            run.log_bytes("model.tar.gz", archive, "model")
            from pipelines.tuning import nest_tuning_run

            nest_tuning_run(tracker, run.experiment_id, run.run_id, run_id)  # a trial: its tuning run below
    except PipelineError:
        raise
    except Exception as exc:
        raise TrackingError(
            f"could not record training run {run_id} in MLflow at {tracker.uri}: {exc}",
            hint="the model is not registered until its run is tracked: check the MLflow App (or unset "
            "MLOPS_MLFLOW_TRACKING_URI / mlflowArn to train untracked) and re-run the evaluate step",
        ) from exc
    return TrackedTraining(run.run_id, run.experiment_id, experiment)


def tag_registration(settings: PipelineSettings, mlflow_run_id: str, package_arn: str, created: bool) -> None:
    """Tag the run with the package registration created (or found, for an identical model).

    Raises:
        TrackingError: the tag could not be set (re-run the register step: it is idempotent).
    """
    tracker = open_tracker(settings)
    if tracker is None:
        return
    try:
        TrackedRun(tracker.client, mlflow_run_id, "").set_tags(
            {PACKAGE_TAG: package_arn, "mlops.registration": "created" if created else "existing"}
        )
    except Exception as exc:
        raise TrackingError(
            f"registered {package_arn} but could not tag MLflow run {mlflow_run_id} at {tracker.uri}: {exc}",
            hint="re-run the register step: it finds the package and tags the run again",
        ) from exc
