"""Submit the feature job to EMR on EKS (StartJobRun) and wait for it with a timeout."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.aws import put_bytes, sha256_hex
from pipelines.errors import PipelineError
from pipelines.features.local import curated_prefix, features_prefix
from pipelines.features.spec import feature_spec

if TYPE_CHECKING:
    from pipelines.aws import AwsClients
    from pipelines.contract import DatasetContract
    from pipelines.settings import PipelineSettings

TERMINAL_OK = {"COMPLETED"}
TERMINAL_BAD = {"FAILED", "CANCELLED"}
DEFAULT_SPARK_PARAMETERS = (
    "--conf spark.executor.instances=2 --conf spark.executor.cores=2 --conf spark.executor.memory=4G "
    "--conf spark.driver.cores=1 --conf spark.driver.memory=2G"
)


class JobRunError(PipelineError):
    """The EMR on EKS job run failed, was cancelled, or did not finish in time."""


@dataclass(frozen=True)
class JobRun:
    """A submitted job run."""

    virtual_cluster_id: str
    job_run_id: str
    output_uri: str


def batch_event_time(ingest_date: str) -> str:
    """The event time of a batch's feature records without their own: its ingest date, 00:00 UTC
    (deterministic, so a re-run of the date PutRecords the same (identifier, event time) records)."""
    return f"{ingest_date}T00:00:00Z"


def upload_job_script(clients: AwsClients) -> str:
    """Upload ``spark_job.py`` (content-addressed) to the artifacts bucket; return its S3 URI."""
    script = (Path(__file__).parent / "spark_job.py").read_bytes()
    bucket = clients.settings.require("artifacts_bucket")
    key = f"code/features/{sha256_hex(script)[:16]}/spark_job.py"
    return put_bytes(clients.s3, bucket, key, script, clients.settings.ml_key_arn, "text/x-python")


def configuration_overrides(
    settings: PipelineSettings, log_stream_prefix: str, key_arn: str | None
) -> dict[str, Any]:
    """A job run's ``configurationOverrides``: Spark sessions in UTC, EMRFS writes encrypted (SSE-KMS with
    ``key_arn``, else S3's default key), logs to S3 (``emr_logs_s3_uri``, else the artifacts bucket) and,
    when the stack names a log group, to CloudWatch under ``log_stream_prefix``."""
    artifacts = settings.require("artifacts_bucket")
    monitoring: dict[str, Any] = {
        "persistentAppUI": "ENABLED",
        "s3MonitoringConfiguration": {
            "logUri": settings.emr_logs_s3_uri or f"s3://{artifacts}/logs/emr-on-eks/"
        },
    }
    if settings.emr_log_group_name:
        monitoring["cloudWatchMonitoringConfiguration"] = {
            "logGroupName": settings.emr_log_group_name,
            "logStreamNamePrefix": log_stream_prefix,
        }
    emrfs: dict[str, str] = {"fs.s3.enableServerSideEncryption": "true"}
    if key_arn:
        emrfs["fs.s3.serverSideEncryption.kms.keyId"] = key_arn
    return {
        "applicationConfiguration": [
            {"classification": "spark-defaults", "properties": {"spark.sql.session.timeZone": "UTC"}},
            {"classification": "emrfs-site", "properties": emrfs},
        ],
        "monitoringConfiguration": monitoring,
    }


def job_run_request(
    clients: AwsClients, contract: DatasetContract, ingest_date: str, script_uri: str, spark_parameters: str
) -> dict[str, Any]:
    """The StartJobRun request for ``contract``'s features of ``ingest_date`` (see docs/pipelines.md)."""
    settings = clients.settings
    curated = f"s3://{settings.require('curated_bucket')}/{curated_prefix(contract.name, ingest_date)}"
    output = f"s3://{settings.require('features_bucket')}/{features_prefix(contract.name, ingest_date)}"
    ingestion: list[str] = []
    group = settings.feature_group_for(contract.name)
    if group:  # the job PutRecords the batch into the model's group, as its execution role
        ingestion = ["--feature-group", group, "--event-time", batch_event_time(ingest_date)]
        ingestion += ["--region", settings.region]
    return {
        "name": f"features-{contract.name}-{ingest_date}",
        "virtualClusterId": settings.require("emr_virtual_cluster_id"),
        "executionRoleArn": settings.require("emr_job_role_arn"),
        "releaseLabel": settings.emr_release_label,
        "clientToken": str(uuid.uuid4()),
        "jobDriver": {
            "sparkSubmitJobDriver": {
                "entryPoint": script_uri,
                "entryPointArguments": [
                    "--input",
                    curated,
                    "--output",
                    output,
                    "--spec-json",
                    json.dumps(feature_spec(contract)),
                    *ingestion,
                ],
                "sparkSubmitParameters": spark_parameters,
            }
        },
        "configurationOverrides": configuration_overrides(
            settings, f"features-{contract.name}", settings.data_lake_key_arn
        ),
        "tags": {
            "mlops:dataset": contract.name,
            "mlops:step": "features",
            "mlops:environment": settings.environment,
        },
    }


def submit_features_job(
    clients: AwsClients,
    contract: DatasetContract,
    ingest_date: str,
    spark_parameters: str = DEFAULT_SPARK_PARAMETERS,
) -> JobRun:
    """Upload the script and start the job run on the virtual cluster from settings."""
    request = job_run_request(clients, contract, ingest_date, upload_job_script(clients), spark_parameters)
    response = clients.client("emr-containers").start_job_run(**request)
    output = request["jobDriver"]["sparkSubmitJobDriver"]["entryPointArguments"][3]
    return JobRun(response["virtualClusterId"], response["id"], output)


def wait_for_job_run(
    clients: AwsClients,
    run: JobRun,
    timeout_s: float = 3600,
    poll_s: float = 20,
    cancel_on_timeout: bool = True,
) -> dict[str, Any]:
    """Poll the job run until it completes; raise :class:`JobRunError` on failure or timeout."""
    emr = clients.client("emr-containers")
    deadline = time.monotonic() + timeout_s
    while True:
        job = emr.describe_job_run(id=run.job_run_id, virtualClusterId=run.virtual_cluster_id)["jobRun"]
        state = job["state"]
        if state in TERMINAL_OK:
            return job
        if state in TERMINAL_BAD:
            detail = job.get("stateDetails") or job.get("failureReason") or "no details"
            raise JobRunError(f"EMR job run {run.job_run_id} ended {state}: {detail}")
        if time.monotonic() >= deadline:
            if cancel_on_timeout:
                emr.cancel_job_run(id=run.job_run_id, virtualClusterId=run.virtual_cluster_id)
            raise JobRunError(
                f"EMR job run {run.job_run_id} still {state} after {timeout_s:.0f}s"
                + (" (cancelled)" if cancel_on_timeout else "")
            )
        time.sleep(poll_s)
