"""What the Airflow DAGs read from the stack outputs, and the step functions their tasks call.

The DAG files (``dags/``) stay thin: at parse time they call :func:`load_dag_settings`, which reads
one local JSON file (the stack outputs written next to the DAGs at deploy) and derives each model's
names with :mod:`platform_contract.naming`; it imports nothing heavy, opens no connection and calls no
AWS API. Everything else here runs inside tasks, on the workers, and returns JSON-ready dicts (XCom).

Never imports Airflow: the steps are plain functions, tested without it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platform_contract.limits import SPARK_DRIFT_MIN_BYTES
from platform_contract.naming import ModelNames, model_names

if TYPE_CHECKING:
    from pipelines.aws import AwsClients

OUTPUTS_ENV = "MLOPS_OUTPUTS_FILE"
"""Environment variable naming the stack outputs file (wins over the file next to the DAGs)."""
OUTPUTS_FILE_NAME = "mlops_outputs.json"
"""The stack outputs file the deploy step writes into the DAG folder."""
CONTRACTS_DIR_NAME = "contracts"
"""Folder next to the DAG files holding the dataset contracts (``<name>.yaml``)."""
LANDING_PREFIX = "landing"
"""New batches arrive under ``s3://<raw bucket>/landing/<dataset>/``; the training DAG ingests the newest."""
DEFAULT_MONITORING_SCHEDULE = "@hourly"
WORKER_PYTHON = "/usr/local/airflow/mlops-venv/bin/python"
"""Where the MWAA startup script (delivery/mwaa.py) creates the pipeline steps' environment."""
WORKER_PYTHONPATH = "/usr/local/airflow/plugins"
"""MWAA unpacks plugins.zip (the ``pipelines`` source) here."""


class DagSettingsError(ValueError):
    """The stack outputs cannot configure the DAGs; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class ModelDag:
    """One model of the catalog as its DAGs see it."""

    model: str
    """The model's name in the catalog."""
    contract: str
    """Dataset contract name (``<contract>.yaml`` in the contracts folder)."""
    names: ModelNames
    """Every physical name of the model (platform_contract.naming)."""
    model_package_group: str
    """Model package group (the stack's output when given, else the derived name)."""
    endpoint: str
    """Endpoint of this environment (the stack's output when given, else the derived name)."""
    monitoring_schedule: str
    """Cron expression or preset of the monitoring DAG."""
    tuning_max_jobs: int = 10
    """Trials of the model's tuning job (stack config ``models[].tuning.maxJobs``; used when it tunes)."""
    tuning_max_parallel_jobs: int = 2
    """Trials at once (``models[].tuning.maxParallelJobs``)."""
    spark_drift_min_bytes: int = SPARK_DRIFT_MIN_BYTES["dev"]
    """Captured bytes of a window from which the monitoring DAG runs drift as the Spark job on EMR on EKS
    (stack output ``models[].sparkDriftMinBytes``; default: the environment's)."""


@dataclass(frozen=True)
class DagSettings:
    """Everything the DAG files need at parse time."""

    outputs_file: Path
    """The stack outputs file; tasks load their pipeline settings from it too."""
    contracts_dir: Path
    """Folder of the dataset contracts."""
    environment: str
    """dev, staging or prod."""
    region: str
    """AWS region of the platform (the provider operators' ``region_name``)."""
    models: tuple[ModelDag, ...]
    """The model catalog, one DAG instance of each kind per model."""
    aws_conn_id: str | None
    """Airflow connection the Amazon provider operators use (None: the worker's default credentials)."""
    poll_seconds: int
    """Seconds between status polls of EMR and SageMaker jobs."""
    worker_python: str
    """Interpreter of the workers' pipeline environment (the startup script's venv) the step tasks run in."""
    worker_pythonpath: str
    """``PYTHONPATH`` of the step tasks: where ``pipelines`` is (MWAA's plugins folder)."""


def outputs_path(dags_folder: Path) -> Path:
    """The stack outputs file: ``$MLOPS_OUTPUTS_FILE`` when set, else ``mlops_outputs.json`` in the DAG folder."""
    override = os.environ.get(OUTPUTS_ENV)
    return Path(override) if override else dags_folder / OUTPUTS_FILE_NAME


def _read_outputs(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DagSettingsError(
            f"stack outputs file not found: {path}; the delivery deploy step writes it next to the DAGs "
            f"(or set {OUTPUTS_ENV} to the file `pulumi stack output --json` wrote)"
        ) from None
    except json.JSONDecodeError as exc:
        raise DagSettingsError(f"stack outputs file {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise DagSettingsError(f"stack outputs file {path} must hold a JSON object, got {type(raw).__name__}")
    return raw


def _model_entries(outputs: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """The catalog as ``[{"name": model, **fields}]`` from ``models`` (model -> fields, the stack output the
    pipeline settings read too) or, for a stack without a catalog, ``modelPackageGroupNames``."""
    models = outputs.get("models")
    if isinstance(models, dict) and models:
        entries = []
        for name, fields in models.items():
            if not isinstance(fields, dict):
                raise DagSettingsError(
                    f"{path}: models.{name} must be an object with the model's names "
                    f"(contract, modelPackageGroupName, ...), got {fields!r}"
                )
            entries.append({**fields, "name": str(name)})
        return entries
    groups = outputs.get("modelPackageGroupNames")
    if isinstance(groups, dict) and groups:
        return [{"name": name, "modelPackageGroupName": group} for name, group in groups.items()]
    raise DagSettingsError(
        f"{path} names no models: it needs 'models' (model -> its names) or 'modelPackageGroupNames' "
        "(model -> group); write the outputs of a stack with a model catalog"
    )


def _int(outputs: dict[str, Any], key: str, default: int, path: Path) -> int:
    value = outputs.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DagSettingsError(f"{path}: '{key}' must be a positive integer, got {value!r}")
    return value


def load_dag_settings(dags_folder: Path) -> DagSettings:
    """Read the stack outputs for the DAG files (one local file read; no network, no AWS call).

    Raises:
        DagSettingsError: the file is missing or malformed, or names no models.
    """
    path = outputs_path(dags_folder)
    outputs = _read_outputs(path)
    environment = str(outputs.get("environment") or "dev")
    prefix = str(outputs.get("namePrefix") or f"mlops-{environment}")
    endpoints = outputs.get("endpointNames")
    endpoints = endpoints if isinstance(endpoints, dict) else {}
    schedules = outputs.get("monitoringSchedules")
    schedules = schedules if isinstance(schedules, dict) else {}
    models = []
    for entry in _model_entries(outputs, path):
        names = model_names(prefix, entry["name"])
        models.append(
            ModelDag(
                model=entry["name"],
                contract=str(entry.get("contract") or entry["name"]),
                names=names,
                model_package_group=str(entry.get("modelPackageGroupName") or names.model_package_group),
                endpoint=str(entry.get("endpointName") or endpoints.get(entry["name"]) or names.endpoint),
                monitoring_schedule=str(
                    entry.get("monitoringSchedule")
                    or schedules.get(entry["name"])
                    or DEFAULT_MONITORING_SCHEDULE
                ),
                tuning_max_jobs=_int(entry, "tuningMaxJobs", 10, path),
                tuning_max_parallel_jobs=_int(entry, "tuningMaxParallelJobs", 2, path),
                spark_drift_min_bytes=_int(
                    entry,
                    "sparkDriftMinBytes",
                    SPARK_DRIFT_MIN_BYTES.get(environment, SPARK_DRIFT_MIN_BYTES["dev"]),
                    path,
                ),
            )
        )
    conn = outputs.get("airflowAwsConnId", "aws_default")
    return DagSettings(
        outputs_file=path,
        contracts_dir=Path(str(outputs.get("contractsDir") or dags_folder / CONTRACTS_DIR_NAME)),
        environment=environment,
        region=str(outputs.get("region") or "us-east-1"),
        models=tuple(models),
        aws_conn_id=str(conn) if conn else None,
        poll_seconds=_int(outputs, "pollSeconds", 30, path),
        worker_python=str(outputs.get("workerPython") or WORKER_PYTHON),
        worker_pythonpath=str(outputs.get("workerPythonPath") or WORKER_PYTHONPATH),
    )


def contract_tunes(contract_path: Path) -> bool:
    """Whether the contract file has a ``tuning`` section (the training DAG then tunes).

    A plain YAML read at parse time (no validation: the steps validate the contract and fail with its
    errors); False when the file is missing or unreadable, so the DAG still parses.
    """
    import yaml

    try:
        data = yaml.safe_load(contract_path.read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and bool(data.get("tuning"))


# --- task-time helpers (run on the workers) ----------------------------------------------------


def model_clients(outputs_file: str | Path, model_package_group: str, endpoint: str) -> AwsClients:
    """AWS clients for one model: the stack outputs plus the model's group and endpoint names."""
    from pipelines.aws import AwsClients
    from pipelines.settings import load_settings

    return AwsClients(
        load_settings(outputs_file, model_package_group_name=model_package_group, endpoint_name=endpoint)
    )


def capture_window(
    window_start: str | None,
    window_end: str | None,
    interval_start: str | None,
    interval_end: str | None,
    run_after: str,
    endpoint: str,
) -> dict[str, str]:
    """The monitoring window: the params when given, else the scheduled data interval, else the last full
    hour before ``run_after``; plus the training DAG run id that window may trigger (once)."""
    from datetime import timedelta

    from pipelines.monitoring.report import window_label
    from pipelines.monitoring.retrain import dag_run_id_for

    def when(value: str) -> datetime:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

    end = when(window_end or interval_end or run_after)
    if not (window_end or interval_end):
        end = end.replace(minute=0, second=0, microsecond=0)
    given_start = window_start or interval_start
    start = when(given_start) if given_start else end - timedelta(hours=1)
    if start >= end:
        raise ValueError(
            f"monitoring window start {start.isoformat()} is not before its end {end.isoformat()}"
        )
    window = window_label(start, end)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "window": window,
        "retrain_run_id": dag_run_id_for(endpoint, window),
    }


def run_id_for(training_job_prefix: str, run_after: str) -> str:
    """The run ID (also the training job name) of the DAG run due at ``run_after`` (ISO 8601).

    Raises:
        InvalidNameError: the result is not a valid SageMaker training job name.
    """
    from platform_contract.naming import SAGEMAKER_NAME, SAGEMAKER_NAME_MAX, InvalidNameError

    when = datetime.fromisoformat(run_after.replace("Z", "+00:00"))
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    name = f"{training_job_prefix}{when.strftime('%Y%m%d-%H%M%S')}"
    if len(name) > SAGEMAKER_NAME_MAX or not SAGEMAKER_NAME.match(name):
        raise InvalidNameError(
            f"training job name {name!r} is not valid for SageMaker; shorten the model name"
        )
    return name


def newest_landed(clients: AwsClients, dataset: str) -> str:
    """``s3://`` URI of the newest object under ``landing/<dataset>/`` in the raw bucket.

    Raises:
        FileNotFoundError: nothing has landed for the dataset.
    """
    bucket = clients.settings.require("raw_bucket")
    prefix = f"{LANDING_PREFIX}/{dataset}/"
    newest: dict[str, Any] | None = None
    for page in clients.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/"):
                continue
            if newest is None or (item["LastModified"], item["Key"]) > (
                newest["LastModified"],
                newest["Key"],
            ):
                newest = item
    if newest is None:
        raise FileNotFoundError(
            f"no batch to ingest: s3://{bucket}/{prefix} is empty; land a file there or trigger the DAG "
            "with conf {'batch_uri': 's3://...'}"
        )
    return f"s3://{bucket}/{newest['Key']}"


def ingest_step(clients: AwsClients, dataset: str, batch_uri: str | None, ingest_date: str) -> dict[str, Any]:
    """Land the batch at ``batch_uri`` (``s3://`` or a local path; default: the newest landed object)."""
    from pipelines.aws import split_s3_uri
    from pipelines.ingest import ingest_bytes, ingest_file

    source = batch_uri or newest_landed(clients, dataset)
    if source.startswith("s3://"):
        bucket, key = split_s3_uri(source)
        data = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        result = ingest_bytes(clients, dataset, data, key.rsplit("/", 1)[-1], ingest_date)
    else:
        result = ingest_file(clients, dataset, Path(source), ingest_date)
    return {
        "dataset": result.dataset,
        "bucket": result.bucket,
        "key": result.key,
        "file_name": result.file_name,
        "sha256": result.sha256,
        "ingest_date": result.ingest_date,
        "already_present": result.already_present,
        "source": source,
    }


def validate_step(
    clients: AwsClients, contract_path: Path, batch: dict[str, Any], contracts_dir: Path | None = None
) -> dict[str, Any]:
    """Validate and curate the landed batch; raises ``BatchValidationError`` (after writing the report)."""
    from pipelines.contract import ContractError, load_contract
    from pipelines.ingest import IngestResult
    from pipelines.validate import validate_batch

    contract = load_contract(contract_path)
    others = []
    for path in sorted((contracts_dir or contract_path.parent).glob("*.yaml")):
        if path.resolve() != contract_path.resolve():
            try:
                others.append(load_contract(path))
            except ContractError:
                continue
    landed = IngestResult(
        batch["dataset"],
        batch["bucket"],
        batch["key"],
        batch["file_name"],
        batch["sha256"],
        batch["ingest_date"],
        already_present=bool(batch["already_present"]),
    )
    outcome = validate_batch(clients, contract, landed, others)
    return {"report_uri": outcome.report_uri, "curated_uri": outcome.curated_uri}


def features_job(clients: AwsClients, contract_path: Path, ingest_date: str) -> dict[str, Any]:
    """Upload the Spark script and return the StartJobRun arguments for the EMR on EKS operator."""
    from pipelines.contract import load_contract
    from pipelines.features.emr import DEFAULT_SPARK_PARAMETERS, job_run_request, upload_job_script

    contract = load_contract(contract_path)
    request = job_run_request(
        clients, contract, ingest_date, upload_job_script(clients), DEFAULT_SPARK_PARAMETERS
    )
    return {
        "name": request["name"],
        "virtual_cluster_id": request["virtualClusterId"],
        "execution_role_arn": request["executionRoleArn"],
        "release_label": request["releaseLabel"],
        "job_driver": request["jobDriver"],
        "configuration_overrides": request["configurationOverrides"],
        "client_request_token": request["clientToken"],
        "tags": request["tags"],
        "features_uri": request["jobDriver"]["sparkSubmitJobDriver"]["entryPointArguments"][3],
    }


def publish_features_step(
    clients: AwsClients, contract_path: Path, ingest_date: str, features_uri: str
) -> dict[str, Any]:
    """After the EMR job: publish its part files as an immutable feature-set version and write the
    manifest as the features' ``_lineage.json`` (training copies it into the model's metadata)."""
    from pipelines.aws import list_keys
    from pipelines.contract import load_contract
    from pipelines.features.local import curated_prefix
    from pipelines.lineage import write_lineage

    contract = load_contract(contract_path)
    curated_bucket = clients.settings.require("curated_bucket")
    sources = [
        k
        for k in list_keys(clients.s3, curated_bucket, curated_prefix(contract.name, ingest_date))
        if k.endswith(".parquet")
    ]
    from pipelines.features.point_in_time import assemble_training_set

    # the training set: each label row with the feature values as of its event time
    as_of = assemble_training_set(clients, contract, ingest_date, features_uri)
    lineage_uri = write_lineage(clients, contract, features_uri, sources)
    from pipelines.datasets import read_manifest

    manifest = read_manifest(clients.s3, lineage_uri)
    return {
        "manifest_uri": manifest["manifest_uri"],
        "version": manifest["version"],
        "rows": manifest["row_count"],
        "features_uri": features_uri,
        "point_in_time": as_of,
    }


def training_job(
    clients: AwsClients,
    contract_path: Path,
    run_id: str,
    features_uri: str,
    hyperparameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Upload the training source and return the CreateTrainingJob request plus the model URI it produces."""
    from pipelines.aws import put_bytes
    from pipelines.contract import load_contract
    from pipelines.train import model_output_key, source_archive, training_job_request

    contract = load_contract(contract_path)
    bucket = clients.settings.require("artifacts_bucket")
    source_uri = put_bytes(
        clients.s3,
        bucket,
        f"models/{contract.name}/{run_id}/source/sourcedir.tar.gz",
        source_archive(contract_path),
        clients.settings.ml_key_arn,
    )
    config = training_job_request(clients, contract_path, run_id, features_uri, source_uri, hyperparameters)
    return {"config": config, "model_uri": f"s3://{bucket}/{model_output_key(contract.name, run_id)}"}


def tuning_run_id(names_prefix: str, run_after: str) -> str:
    """The tuning job name of the DAG run due at ``run_after``: the model's tuning job prefix and a
    ``YYmmdd-HHMMSS`` stamp (32 characters at most, ``platform_contract.naming``)."""
    from platform_contract.limits import TUNING_JOB_NAME
    from platform_contract.naming import InvalidNameError

    when = datetime.fromisoformat(run_after.replace("Z", "+00:00"))
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    name = f"{names_prefix}{when.strftime('%y%m%d-%H%M%S')}"
    if not TUNING_JOB_NAME.match(name):
        raise InvalidNameError(f"tuning job name {name!r} is not valid for SageMaker (1-32 characters)")
    return name


def tuning_job(
    clients: AwsClients,
    contract_path: Path,
    tuning_job_name: str,
    features_uri: str,
    max_jobs: int,
    max_parallel_jobs: int,
) -> dict[str, Any]:
    """Upload the training source; the CreateHyperParameterTuningJob request (the training definition of
    :func:`training_job`, the contract's search space, the stack config's trial counts)."""
    from pipelines.aws import put_bytes
    from pipelines.contract import load_contract
    from pipelines.train import source_archive
    from pipelines.tuning import tuning_job_request

    contract = load_contract(contract_path)
    source_uri = put_bytes(
        clients.s3,
        clients.settings.require("artifacts_bucket"),
        f"models/{contract.name}/{tuning_job_name}/source/sourcedir.tar.gz",
        source_archive(contract_path),
        clients.settings.ml_key_arn,
    )
    config = tuning_job_request(
        clients, contract_path, tuning_job_name, features_uri, source_uri, max_jobs, max_parallel_jobs
    )
    return {"config": config, "tuning_job_name": tuning_job_name}


def best_trial_step(clients: AwsClients, tuning_job_name: str) -> dict[str, Any]:
    """The finished tuning job's best trial (its model URI flows into evaluate) and every trial, tracked
    in MLflow when a tracking URI is configured (experiment: the model package group)."""
    from pipelines.tuning import log_trials, tuning_result

    result = tuning_result(clients, tuning_job_name)
    experiment = clients.settings.model_package_group_name or tuning_job_name
    result["mlflow_run_id"] = log_trials(clients.settings, experiment, result)
    return result


def evaluate_step(clients: AwsClients, model_uri: str, features_uri: str) -> dict[str, Any]:
    """Evaluate the trained model; the gate's verdict and reasons, the metrics and the report URIs."""
    from pipelines.evaluate import evaluate_model
    from pipelines.tracking import track_training_run

    result = evaluate_model(clients, model_uri, features_uri)
    # Tracked before the gate decides registration: a tracking outage fails here, never after
    # an untracked package exists (pipelines/tracking.py, failure policy). None when tracking is off.
    tracked = track_training_run(clients, model_uri, result.report, features_uri)
    return {
        "passed": result.passed,
        "reasons": list(result.report["gate"]["reasons"]),
        "metrics": dict(result.report["metrics"]),
        "uris": result.uris,
        "model_uri": model_uri,
        "mlflow_run_id": tracked.run_id if tracked else None,
        "mlflow_experiment_id": tracked.experiment_id if tracked else None,
    }


def register_step(
    clients: AwsClients,
    model_uri: str,
    mlflow_run_id: str | None = None,
    mlflow_experiment_id: str | None = None,
) -> dict[str, Any]:
    """Register the evaluated model (idempotent: an identical model returns its existing package).

    With tracking on, ``mlflow_run_id`` (the evaluate step's run) goes into the package's metadata and
    the run is tagged with the package ARN; a missing run id then stops registration.
    """
    from pipelines.register import register_model
    from pipelines.tracking import TrackedTraining, TrackingError, tag_registration

    settings = clients.settings
    run = None
    if settings.tracking_uri():
        if not mlflow_run_id:
            raise TrackingError(
                f"tracking is on ({settings.tracking_uri()}) but no MLflow run was recorded for {model_uri}: "
                "re-run the evaluate step, which records the run, before registering"
            )
        run = TrackedTraining(mlflow_run_id, mlflow_experiment_id or "", "")
    result = register_model(clients, model_uri, mlflow_run=run)
    if run is not None:
        tag_registration(settings, run.run_id, result.model_package_arn, result.created)
    return {
        "model_package_arn": result.model_package_arn,
        "approval_status": result.approval_status,
        "created": result.created,
        "mlflow_run_id": run.run_id if run else None,
        "model_card": result.model_card_name,
    }


def promote_step(
    clients: AwsClients, package_arn: str, approver: str, reason: str, deploy: bool = True
) -> dict[str, Any]:
    """Approve the package (unless it already is) and start the environment's deployment pipeline."""
    from pipelines.promote import approve_package, start_deployment

    status = clients.sagemaker.describe_model_package(ModelPackageName=package_arn)["ModelApprovalStatus"]
    approved_at = None
    if status != "Approved":
        approved_at = approve_package(clients, package_arn, approver, reason).approved_at
    execution = start_deployment(clients) if deploy and clients.settings.delivery_pipeline_name else None
    return {
        "model_package_arn": package_arn,
        "approved_now": approved_at is not None,
        "approved_at": approved_at,
        "pipeline_execution_id": execution,
    }


def serving_package(clients: AwsClients, endpoint: str | None, group: str) -> str | None:
    """The model package of ``group`` that takes the largest share of ``endpoint``'s traffic, or None.

    None when there is no endpoint (batch only, or not deployed yet) or no variant serves a package
    of the group.
    """
    from pipelines.promote import served_packages

    if not endpoint:
        return None
    rows = served_packages(clients, {"endpoint": endpoint})["endpoint"]
    ours = [
        r
        for r in rows
        if r.get("model_package_arn") and f":model-package/{group}/" in str(r["model_package_arn"])
    ]
    if not ours:
        return None
    return str(max(ours, key=lambda r: float(r.get("weight") or 0.0))["model_package_arn"])


def champion_baseline(clients: AwsClients, contract: str, model: str) -> dict[str, Any]:
    """The latest approved package of the model: its ARN, creation time and evaluation prefix (baselines).

    Raises:
        FileNotFoundError: the group has no approved package yet (nothing is served, nothing to monitor).
    """
    from pipelines.promote import latest_approved

    target = clients.settings.model_target(contract, model)
    # The package the endpoint serves, not the newest Approved one: a package the guardrail rolled
    # back stays Approved in the registry but never served, and its baselines are not the champion's.
    arn = serving_package(clients, target.endpoint_name, target.require_group())
    if arn is None:
        latest = latest_approved(clients, target)
        if latest is None:
            group = target.require_group()
            raise FileNotFoundError(f"model package group {group} has no approved package to monitor")
        arn = str(latest["ModelPackageArn"])
    package = clients.sagemaker.describe_model_package(ModelPackageName=arn)
    baseline_uri = package["ModelMetrics"]["ModelDataQuality"]["Statistics"]["S3Uri"]
    created = package["CreationTime"]
    return {
        "model_package_arn": arn,
        "created_at": created.isoformat() if isinstance(created, datetime) else str(created),
        "evaluation_prefix": baseline_uri.rsplit("/", 1)[0] + "/",
    }


def monitor_step(
    clients: AwsClients,
    endpoint: str,
    capture_prefix: str,
    evaluation_prefix: str,
    start: datetime,
    end: datetime,
    output_dir: Path,
) -> dict[str, Any]:
    """Drift of the endpoint's capture window against the champion's baseline; the report files go to S3."""
    from pipelines.aws import split_s3_uri
    from pipelines.monitoring.drift import load_reference
    from pipelines.monitoring.monitor import run_monitor

    settings = clients.settings
    bucket, prefix = split_s3_uri(evaluation_prefix)
    baseline_dir = output_dir / "baseline"
    baseline_dir.mkdir(parents=True, exist_ok=True)
    for name in ("baseline.json", "baseline_sample.parquet"):
        body = clients.s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()
        (baseline_dir / name).write_bytes(body)
    result = run_monitor(
        s3=clients.s3,
        reference=load_reference(baseline_dir),
        capture_bucket=settings.require("capture_bucket"),
        capture_prefix=capture_prefix,
        endpoint_name=endpoint,
        start=start,
        end=end,
        output_dir=output_dir / "report",
        environment=settings.environment,
        artifacts_bucket=settings.require("artifacts_bucket"),
        kms_key_id=settings.ml_key_arn,
    )
    return {"window": result.window, "report": result.report.to_dict(), "s3_keys": result.s3_keys}


GROUND_TRUTH_PREFIX = "ground-truth"
"""Labels land under ``s3://<capture bucket>/ground-truth/<endpoint>/yyyy/mm/dd/hh/`` (pipelines.monitoring.quality)."""


def quality_step(
    clients: AwsClients,
    contract_path: str | Path,
    endpoint: str,
    capture_prefix: str,
    evaluation_prefix: str,
    start: datetime,
    end: datetime,
    output_dir: Path,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Model quality of the window: captured predictions joined to the ground truth landed so far,
    the CBPE estimate (classification), ``quality.json``/``quality.html`` next to the drift report and
    the ``MLOps/Monitoring`` quality metrics. Returns the report (JSON-ready)."""
    from pipelines.aws import split_s3_uri
    from pipelines.contract import load_contract
    from pipelines.monitoring.capture import CaptureStats, list_capture_keys
    from pipelines.monitoring.estimate import compare_with_realized, estimate_performance
    from pipelines.monitoring.quality import (
        LABEL_LOOKAHEAD,
        QUALITY_JSON,
        SCORE,
        compute_quality,
        list_ground_truth_keys,
        load_ground_truth,
        publish_quality_metrics,
        read_scored_capture,
        render_quality_html,
    )
    from pipelines.monitoring.report import report_prefix, upload_reports
    from pipelines.serving.artifact import parse_features

    settings = clients.settings
    contract = load_contract(contract_path)
    # the served model's inputs, as the drift step reads them (baseline.json of the champion)
    bucket, prefix = split_s3_uri(evaluation_prefix)
    baseline = json.loads(clients.s3.get_object(Bucket=bucket, Key=prefix + "baseline.json")["Body"].read())
    raw = [{"name": n, "kind": spec.get("kind")} for n, spec in (baseline.get("features") or {}).items()]
    features = parse_features(raw, evaluation_prefix + "baseline.json")
    feature_names = {f.name for f in features}
    capture_bucket = settings.require("capture_bucket")
    stats = CaptureStats()
    keys = list_capture_keys(clients.s3, capture_bucket, capture_prefix, endpoint, start, end)
    predictions = read_scored_capture(
        clients.s3, capture_bucket, keys, features, stats, start=start, end=end,
        columns=[c for c in contract.monitoring.segments if c in feature_names],
    )  # fmt: skip
    until = min(end + LABEL_LOOKAHEAD, max(now or datetime.now(UTC), end))
    truth_keys = list_ground_truth_keys(
        clients.s3, capture_bucket, GROUND_TRUTH_PREFIX, endpoint, start, until
    )
    labels = load_ground_truth(clients.s3, capture_bucket, truth_keys)
    # a segment neither served nor sent with the labels cannot be split on: say so, do not fail
    segments = [c for c in contract.monitoring.segments if c in feature_names or c in labels.columns]
    unavailable = [c for c in contract.monitoring.segments if c not in segments]
    report = compute_quality(
        predictions,
        labels,
        task=contract.task,  # type: ignore[arg-type]
        positive_class=contract.positive_class,
        segments=segments,
        min_labelled_rows=contract.monitoring.min_labelled_rows,
        quality_min=contract.monitoring.quality_min,
        quality_max=contract.monitoring.quality_max,
        context={
            "endpoint_name": endpoint,
            "window_start": start.astimezone(UTC).isoformat(),
            "window_end": end.astimezone(UTC).isoformat(),
            "ground_truth_files": len(truth_keys),
            "segments_unavailable": unavailable,
            "capture": stats.as_dict(),
        },
    )
    if contract.is_classification and len(predictions):
        estimate = estimate_performance(predictions[SCORE].to_numpy(dtype="float64"))
        report.estimate = estimate.to_dict()
        report.estimate_vs_realized = compare_with_realized(estimate, report.metrics)
    output_dir.mkdir(parents=True, exist_ok=True)
    from pipelines.jsonio import strict_json

    (output_dir / QUALITY_JSON).write_text(strict_json(report.to_dict()), encoding="utf-8")
    (output_dir / "quality.html").write_text(render_quality_html(report), encoding="utf-8")
    s3_keys = upload_reports(
        clients.s3,
        settings.require("artifacts_bucket"),
        report_prefix(endpoint, start, end),
        [output_dir / QUALITY_JSON, output_dir / "quality.html"],
        kms_key_id=settings.ml_key_arn,
    )
    publish_quality_metrics(clients.client("cloudwatch"), report, settings.environment, endpoint, end)
    return {**report.to_dict(), "s3_keys": s3_keys}


def publish_monitoring(clients: AwsClients, endpoint: str, report: dict[str, Any], end: datetime) -> int:
    """Publish the window's drift metrics (``MLOps/Drift``) and the monitor step's status; return the count."""
    from pipelines.monitoring.drift import DriftReport
    from pipelines.monitoring.metrics import publish_drift_metrics, publish_step_status

    cloudwatch = clients.client("cloudwatch")
    environment = clients.settings.environment
    published = publish_drift_metrics(cloudwatch, DriftReport.from_dict(report), environment, endpoint, end)
    publish_step_status(cloudwatch, environment, "monitoring", "monitor", failed=False)
    return published


def publish_retrain(clients: AwsClients, training_dag_id: str, triggered: bool) -> None:
    """``MLOps/Pipeline`` ``RetrainTriggered`` for the training DAG (1 when retraining was decided)."""
    from pipelines.monitoring.metrics import publish_retrain_triggered

    publish_retrain_triggered(
        clients.client("cloudwatch"), clients.settings.environment, training_dag_id, triggered
    )


def retrain_decision(
    report: dict[str, Any] | None, model_created_at: str | None, quality: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Apply the default retrain policy to a drift report (dict) and the champion's age; with a quality
    report (:func:`quality_step`) that had enough labels, its floors too (below floor -> retrain)."""
    from pipelines.monitoring.drift import DriftReport
    from pipelines.monitoring.retrain import RetrainPolicy, decide_retrain

    created = datetime.fromisoformat(model_created_at.replace("Z", "+00:00")) if model_created_at else None
    floors = (quality or {}).get("floors") or {}
    usable = quality is not None and quality.get("status") == "ok"
    decision = decide_retrain(
        DriftReport.from_dict(report) if report is not None else None,
        RetrainPolicy(quality_min=floors.get("min") or {}, quality_max=floors.get("max") or {}),
        quality=(quality or {}).get("metrics") if usable else None,
        model_created_at=created,
    )
    return decision.to_dict()


def package_for_promotion(clients: AwsClients, package_arn: str) -> dict[str, Any]:
    """Check the package belongs to this model's group and can be approved; return what the approver sees.

    Raises:
        ValueError: the package is in another model's group, or was rejected.
    """
    group = clients.settings.require("model_package_group_name")
    package = clients.sagemaker.describe_model_package(ModelPackageName=package_arn)
    if package.get("ModelPackageGroupName") != group:
        raise ValueError(
            f"{package_arn} belongs to group {package.get('ModelPackageGroupName')!r}, not {group!r}: "
            "promote it with that model's promotion DAG"
        )
    status = package["ModelApprovalStatus"]
    if status == "Rejected":
        raise ValueError(f"{package_arn} was rejected; register a new model instead of promoting it")
    metadata = package.get("CustomerMetadataProperties", {})
    return {
        "model_package_arn": package_arn,
        "approval_status": status,
        "run_id": metadata.get("run_id"),
        "metrics": {k.removeprefix("metric_"): v for k, v in metadata.items() if k.startswith("metric_")},
    }


def start_promotion(clients: AwsClients, outputs_file: str | Path) -> str:
    """Start the promotion pipeline (``promotionPipelineName`` in the stack outputs); return the execution ID.

    Raises:
        DagSettingsError: the stack has no promotion pipeline (no promotion targets configured).
    """
    outputs = _read_outputs(Path(outputs_file))
    name = outputs.get("promotionPipelineName")
    if not name:
        raise DagSettingsError(
            f"{outputs_file} has no 'promotionPipelineName': configure promotion targets in the stack"
        )
    response = clients.client("codepipeline").start_pipeline_execution(name=str(name))
    return str(response["pipelineExecutionId"])


def promotion_dag_id(names: ModelNames) -> str:
    """Airflow DAG id of the model's promotion DAG: ``<slug_with_underscores>_promotion``."""
    return f"{names.slug.replace('-', '_')}_promotion"
