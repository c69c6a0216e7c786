"""Batch inference with a SageMaker batch transform job over a registered model package.

Steps (each a function; :func:`run_transform` chains them):

1. :func:`stage_input`: the rows to score, as CSV lines in the model's input order
   (``contract.feature_names``, the one definition the training features and the endpoint payload
   also come from), written to ``s3://<features>/predictions/<slug>/input/run=<id>/`` with SSE-KMS;
2. :func:`ensure_model`: a SageMaker model made from the package (``PrimaryContainer.ModelPackageName``)
   with the SageMaker execution role, in the platform's private subnets, network-isolated (the
   scikit-learn container needs no network: SageMaker itself reads and writes S3);
3. :func:`transform_request` / :func:`start_transform`: ``CreateTransformJob`` with ``SplitType=Line``,
   ``BatchStrategy=MultiRecord``, ``AssembleWith=Line``, ``Accept=text/csv`` and
   ``DataProcessing.JoinSource=Input`` (each output line is the input row followed by the prediction),
   output encrypted with the lake key, the volume with the ML key;
4. :func:`wait_for_transform`: polls ``DescribeTransformJob``; a ``Failed``/``Stopped`` job raises
   :class:`TransformJobFailedError` with SageMaker's ``FailureReason``;
5. :func:`register_run_partition`: the output prefix ``.../transform/run=<id>/`` becomes partition
   ``run=<id>`` of the Glue table ``<slug>_batch_predictions`` (created on first use: its columns are
   the model inputs followed by the prediction columns, CSV).

API reference: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html
(``TransformOutput.KmsKeyId``, ``TransformResources.VolumeKmsKeyId``, ``MaxPayloadInMB``) and
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DataProcessing.html (the CSV join).
A transform job has no VPC config of its own: it runs in the model's ``VpcConfig``.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.errors import InputRejectedError, PipelineError

if TYPE_CHECKING:
    from pipelines.aws import AwsClients
    from pipelines.contract import DatasetContract
    from pipelines.settings import ModelTarget

TRANSFORM_INSTANCE_TYPE = "ml.m5.large"
"""Instance type of the transform job (the scikit-learn image runs on CPU)."""
MAX_PAYLOAD_MB = 6
"""``MaxPayloadInMB`` of a mini-batch (the API default; the serving codec reads the whole body)."""
TERMINAL = ("Completed", "Failed", "Stopped")

GLUE_TYPES = {"numeric": "double", "categorical": "string"}
"""Glue column type of each model input kind."""


class BatchInferenceError(PipelineError):
    """Batch inference could not run; the message says why and what to do."""


class TransformJobFailedError(BatchInferenceError):
    """The transform job ended ``Failed`` or ``Stopped``; the message carries its ``FailureReason``."""


@dataclass(frozen=True)
class TransformResult:
    """What a finished transform run produced."""

    job_name: str
    model_name: str
    input_uri: str
    output_uri: str
    rows: int
    table: str | None
    partition: str


def run_prefix(target: ModelTarget, kind: str, run_id: str) -> str:
    """``predictions/<slug>/<kind>/run=<id>/`` (kind: ``input``, ``transform`` or ``spark``)."""
    if not run_id or "/" in run_id or "=" in run_id:
        raise InputRejectedError(
            f"run id {run_id!r} cannot name a partition: use letters, digits, '-' and '_'"
        )
    return f"{target.names.batch_prefix}/{kind}/run={run_id}/"


def model_name_for(target: ModelTarget, package_arn: str) -> str:
    """``<prefix>-<slug>-bt-<hash>``: one SageMaker model per package (the Airflow role may create ``<prefix>-*``)."""
    digest = hashlib.sha256(package_arn.encode()).hexdigest()[:10]
    return target.names.transform_job_name(digest)


def stage_input(clients: AwsClients, target: ModelTarget, run_id: str, lines: Sequence[str]) -> str:
    """Write ``lines`` (CSV rows in the model's input order, no header) as the run's input; returns its prefix URI."""
    from pipelines.aws import put_bytes

    if not lines:
        raise InputRejectedError("no rows to score: the batch is empty")
    settings = clients.settings
    bucket = settings.require("features_bucket")
    prefix = run_prefix(target, "input", run_id)
    body = ("\n".join(line.rstrip("\n") for line in lines) + "\n").encode()
    put_bytes(clients.s3, bucket, f"{prefix}part-00000.csv", body, settings.data_lake_key_arn, "text/csv")
    return f"s3://{bucket}/{prefix}"


def ensure_model(clients: AwsClients, target: ModelTarget, package_arn: str) -> str:
    """The SageMaker model serving ``package_arn`` (created if absent) with the SageMaker role."""
    from botocore.exceptions import ClientError

    settings = clients.settings
    name = model_name_for(target, package_arn)
    sm = clients.sagemaker
    try:
        sm.describe_model(ModelName=name)
        return name
    except ClientError as error:
        if "Could not find model" not in str(error):
            raise
    request: dict[str, Any] = {
        "ModelName": name,
        "ExecutionRoleArn": settings.require("sagemaker_role_arn"),
        "PrimaryContainer": {"ModelPackageName": package_arn},
        "EnableNetworkIsolation": True,
        "Tags": [
            {"Key": "mlops:model", "Value": target.model},
            {"Key": "mlops:environment", "Value": settings.environment},
        ],
    }
    if settings.private_subnet_ids and settings.training_security_group_id:
        request["VpcConfig"] = {
            "Subnets": list(settings.private_subnet_ids),
            "SecurityGroupIds": [settings.training_security_group_id],
        }
    sm.create_model(**request)
    return name


def transform_request(
    clients: AwsClients, target: ModelTarget, model_name: str, job_name: str, input_uri: str, run_id: str
) -> dict[str, Any]:
    """The CreateTransformJob request: CSV split by line, multi-record mini-batches, joined CSV output."""
    settings = clients.settings
    key = settings.require("data_lake_key_arn")
    bucket = settings.require("features_bucket")
    return {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "MaxConcurrentTransforms": 1,
        "MaxPayloadInMB": MAX_PAYLOAD_MB,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": "text/csv",
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": f"s3://{bucket}/{run_prefix(target, 'transform', run_id)}",
            "Accept": "text/csv",
            "AssembleWith": "Line",
            "KmsKeyId": key,
        },
        "TransformResources": {
            "InstanceType": TRANSFORM_INSTANCE_TYPE,
            "InstanceCount": 1,
            # the ML key, as for training volumes (the SageMaker role may grant it to SageMaker volumes)
            "VolumeKmsKeyId": settings.require("ml_key_arn"),
        },
        "DataProcessing": {"InputFilter": "$", "JoinSource": "Input", "OutputFilter": "$"},
        "Tags": [
            {"Key": "mlops:model", "Value": target.model},
            {"Key": "mlops:environment", "Value": settings.environment},
        ],
    }


def wait_for_transform(
    sm: Any,
    job_name: str,
    *,
    timeout_s: float = 3600.0,
    poll_s: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll until the job ends; returns the final description.

    Raises:
        TransformJobFailedError: the job ended ``Failed`` or ``Stopped`` (its ``FailureReason`` quoted),
            or did not end within ``timeout_s``.
    """
    deadline = clock() + timeout_s
    while True:
        described: dict[str, Any] = sm.describe_transform_job(TransformJobName=job_name)
        status = described["TransformJobStatus"]
        if status == "Completed":
            return described
        if status in TERMINAL:
            reason = described.get("FailureReason") or "no FailureReason given"
            raise TransformJobFailedError(
                f"transform job {job_name} ended {status}: {reason}",
                hint="see the job's CloudWatch logs (/aws/sagemaker/TransformJobs) for the container's output",
            )
        if clock() > deadline:
            raise TransformJobFailedError(
                f"transform job {job_name} is still {status} after {timeout_s:g} s",
                hint="stop it with StopTransformJob or raise the timeout",
            )
        sleep(poll_s)


def read_output(clients: AwsClients, output_uri: str) -> list[str]:
    """The joined output lines (input row, then the prediction columns) of every ``.out`` object."""
    bucket, _, prefix = output_uri.removeprefix("s3://").partition("/")
    s3 = clients.s3
    keys = sorted(
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
        if o["Key"].endswith(".out")
    )
    lines: list[str] = []
    for key in keys:
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        lines += [line for line in text.splitlines() if line.strip()]
    return lines


def prediction_columns(contract: DatasetContract, output_fields: int) -> list[tuple[str, str]]:
    """The columns the serving codec's CSV answer appends: ``prediction`` (regression) or ``label``
    and one ``probability_<i>`` per class in the model's class order."""
    if not contract.is_classification:
        return [("prediction", "double")]
    return [("label", "string"), *((f"probability_{i}", "double") for i in range(output_fields - 1))]


def register_run_partition(
    clients: AwsClients,
    contract: DatasetContract,
    target: ModelTarget,
    run_id: str,
    location: str,
    output_fields: int,
) -> str:
    """Add partition ``run=<id>`` at ``location`` to ``<slug>_batch_predictions`` (the table is created on
    first use); returns the table name. A partition that exists already is left as it is."""
    glue = clients.client("glue")
    database = clients.settings.require("glue_database_name")
    table = target.names.batch_predictions_table
    root = location.split("run=", 1)[0]
    csv = {
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerdeInfo": {
            "SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
            "Parameters": {"field.delim": ","},
        },
    }
    columns = [{"Name": n, "Type": GLUE_TYPES[k]} for n, k in contract.feature_kinds]
    columns += [{"Name": n, "Type": t} for n, t in prediction_columns(contract, output_fields)]
    try:
        glue.get_table(DatabaseName=database, Name=table)
    except glue.exceptions.EntityNotFoundException:
        glue.create_table(
            DatabaseName=database,
            TableInput={
                "Name": table,
                "Description": f"batch transform predictions of {target.model}, joined with their inputs",
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"classification": "csv", "EXTERNAL": "TRUE"},
                "PartitionKeys": [{"Name": "run", "Type": "string"}],
                "StorageDescriptor": {"Columns": columns, "Location": root, **csv},
            },
        )
    with contextlib.suppress(glue.exceptions.AlreadyExistsException):
        glue.create_partition(
            DatabaseName=database,
            TableName=table,
            PartitionInput={
                "Values": [run_id],
                "StorageDescriptor": {"Columns": columns, "Location": location, **csv},
            },
        )
    return table


def run_transform(
    clients: AwsClients,
    contract: DatasetContract,
    target: ModelTarget,
    package_arn: str,
    input_uri: str,
    run_id: str,
    *,
    timeout_s: float = 3600.0,
    poll_s: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
) -> TransformResult:
    """Create the model, run the transform job over ``input_uri``, wait, and register the output partition."""
    model_name = ensure_model(clients, target, package_arn)
    job_name = target.names.transform_job_name(
        time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + hashlib.sha256(run_id.encode()).hexdigest()[:4]
    )
    request = transform_request(clients, target, model_name, job_name, input_uri, run_id)
    clients.sagemaker.create_transform_job(**request)
    wait_for_transform(clients.sagemaker, job_name, timeout_s=timeout_s, poll_s=poll_s, sleep=sleep)
    output_uri = request["TransformOutput"]["S3OutputPath"]
    lines = read_output(clients, output_uri)
    if not lines:
        raise BatchInferenceError(
            f"transform job {job_name} completed but wrote no output under {output_uri}"
        )
    fields = len(lines[0].split(",")) - len(contract.feature_names)
    if fields < 1:
        raise BatchInferenceError(
            f"transform job {job_name}: output lines have no prediction columns after the "
            f"{len(contract.feature_names)} inputs (was DataProcessing.JoinSource Input?)"
        )
    table = None
    if clients.settings.glue_database_name:
        table = register_run_partition(clients, contract, target, run_id, output_uri, fields)
    return TransformResult(
        job_name=job_name,
        model_name=model_name,
        input_uri=input_uri,
        output_uri=output_uri,
        rows=len(lines),
        table=table,
        partition=f"run={run_id}",
    )


def package_to_score(clients: AwsClients, target: ModelTarget, package_arn: str | None = None) -> str:
    """``package_arn`` when given, else the package the model's endpoint serves, else its newest Approved one.

    Raises:
        BatchInferenceError: none of those exists.
    """
    from pipelines.orchestration import serving_package
    from pipelines.promote import latest_approved

    if package_arn:
        return package_arn
    group = target.require_group()
    served = serving_package(clients, target.endpoint_name, group)
    if served:
        return served
    approved = latest_approved(clients, target)
    if approved:
        return str(approved["ModelPackageArn"])
    raise BatchInferenceError(
        f"model package group {group} has no Approved package and no endpoint serving one",
        hint="pass model_package_arn, or approve a package first",
    )


def transform_step(
    clients: AwsClients,
    contract_path: str,
    model: str,
    input_uri: str,
    run_id: str,
    package_arn: str | None = None,
    poll_s: float = 30.0,
) -> dict[str, Any]:
    """The batch DAG's transform task: score ``input_uri`` (CSV rows in the model's input order) with the
    chosen package; returns what it produced (job, output, table, partition, rows)."""
    from pipelines.contract import load_contract

    if not input_uri.startswith("s3://"):
        raise InputRejectedError(f"input_uri {input_uri!r} is not an s3:// prefix of CSV rows to score")
    contract = load_contract(contract_path)
    target = clients.settings.model_target(contract.name, model)
    package = package_to_score(clients, target, package_arn)
    result = run_transform(clients, contract, target, package, input_uri, run_id, poll_s=poll_s)
    return {"package_arn": package, **vars(result)}


# --------------------------------------------------------------------------------------------- Spark


def package_model_uri(clients: AwsClients, package_arn: str) -> str:
    """The ``ModelDataUrl`` (``model.tar.gz``) of a package's one inference container."""
    package = clients.sagemaker.describe_model_package(ModelPackageName=package_arn)
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
    if len(containers) != 1 or not containers[0].get("ModelDataUrl"):
        raise BatchInferenceError(
            f"model package {package_arn} has {len(containers)} inference containers with model data; "
            "Spark scoring needs exactly one ModelDataUrl"
        )
    return str(containers[0]["ModelDataUrl"])


def upload_scoring_script(clients: AwsClients) -> str:
    """Upload ``score_job.py`` (content-addressed, beside the feature job's scripts); returns its S3 URI."""
    from pathlib import Path

    from pipelines.aws import put_bytes, sha256_hex

    script = (Path(__file__).parent / "features" / "score_job.py").read_bytes()
    bucket = clients.settings.require("artifacts_bucket")
    key = f"code/features/{sha256_hex(script)[:16]}/score_job.py"
    return put_bytes(clients.s3, bucket, key, script, clients.settings.ml_key_arn, "text/x-python")


def scoring_request(
    clients: AwsClients,
    contract: DatasetContract,
    target: ModelTarget,
    model_uri: str,
    input_uri: str,
    run_id: str,
    script_uri: str,
    split: str | None = None,
    spark_parameters: str | None = None,
) -> dict[str, Any]:
    """The EMR on EKS StartJobRun request of the scoring job (same monitoring and encryption as the feature job)."""
    import json
    import uuid

    from pipelines.features.emr import DEFAULT_SPARK_PARAMETERS, configuration_overrides

    settings = clients.settings
    output = f"s3://{settings.require('features_bucket')}/{run_prefix(target, 'spark', run_id)}"
    arguments = [
        "--model",
        model_uri,
        "--input",
        input_uri,
        "--output",
        output,
        "--features-json",
        json.dumps(contract.feature_names),
        "--keys-json",
        json.dumps(list(contract.unique_keys)),
    ]
    if split:
        arguments += ["--split", split]
    return {
        "name": f"score-{target.names.slug}-{run_id}"[:64],
        "virtualClusterId": settings.require("emr_virtual_cluster_id"),
        "executionRoleArn": settings.require("emr_job_role_arn"),
        "releaseLabel": settings.emr_release_label,
        "clientToken": str(uuid.uuid4()),
        "jobDriver": {
            "sparkSubmitJobDriver": {
                "entryPoint": script_uri,
                "entryPointArguments": arguments,
                "sparkSubmitParameters": spark_parameters or DEFAULT_SPARK_PARAMETERS,
            }
        },
        "configurationOverrides": configuration_overrides(
            settings, f"score-{target.names.slug}", settings.data_lake_key_arn
        ),
        "tags": {
            "mlops:model": target.model,
            "mlops:step": "score",
            "mlops:environment": settings.environment,
        },
    }


def register_spark_partition(
    clients: AwsClients, contract: DatasetContract, target: ModelTarget, run_id: str, location: str
) -> str:
    """Add partition ``run=<id>`` to ``<slug>_spark_scores`` (Parquet; created on first use); returns the table."""
    glue = clients.client("glue")
    database = clients.settings.require("glue_database_name")
    table = target.names.spark_scores_table
    parquet = {
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
    }
    kinds = dict(contract.feature_kinds)
    columns = [{"Name": k, "Type": "string"} for k in contract.unique_keys if k not in kinds]
    columns += [{"Name": n, "Type": GLUE_TYPES[k]} for n, k in contract.feature_kinds]
    columns += [{"Name": "prediction", "Type": "string"}, {"Name": "label", "Type": "string"}]
    try:
        glue.get_table(DatabaseName=database, Name=table)
    except glue.exceptions.EntityNotFoundException:
        glue.create_table(
            DatabaseName=database,
            TableInput={
                "Name": table,
                "Description": f"Spark scores of {target.model} (the serving handler's answer per row)",
                "TableType": "EXTERNAL_TABLE",
                "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
                "PartitionKeys": [{"Name": "run", "Type": "string"}],
                "StorageDescriptor": {
                    "Columns": columns,
                    "Location": location.split("run=", 1)[0],
                    **parquet,
                },
            },
        )
    with contextlib.suppress(glue.exceptions.AlreadyExistsException):
        glue.create_partition(
            DatabaseName=database,
            TableName=table,
            PartitionInput={
                "Values": [run_id],
                "StorageDescriptor": {"Columns": columns, "Location": location, **parquet},
            },
        )
    return table


def run_spark_scoring(
    clients: AwsClients,
    contract: DatasetContract,
    target: ModelTarget,
    package_arn: str,
    input_uri: str,
    run_id: str,
    *,
    split: str | None = None,
    spark_parameters: str | None = None,
    timeout_s: float = 3600.0,
    poll_s: float = 20.0,
) -> dict[str, Any]:
    """Score ``input_uri`` (a Parquet table in the lake) on EMR on EKS with the package's serving code,
    wait, and register the output as partition ``run=<id>`` of ``<slug>_spark_scores``."""
    from pipelines.features.emr import JobRun, wait_for_job_run

    request = scoring_request(
        clients,
        contract,
        target,
        package_model_uri(clients, package_arn),
        input_uri,
        run_id,
        upload_scoring_script(clients),
        split,
        spark_parameters,
    )
    response = clients.client("emr-containers").start_job_run(**request)
    output = request["jobDriver"]["sparkSubmitJobDriver"]["entryPointArguments"][5]
    wait_for_job_run(
        clients,
        JobRun(response["virtualClusterId"], response["id"], output),
        timeout_s=timeout_s,
        poll_s=poll_s,
    )
    table = (
        register_spark_partition(clients, contract, target, run_id, output)
        if clients.settings.glue_database_name
        else None
    )
    return {"job_run_id": response["id"], "output_uri": output, "table": table, "partition": f"run={run_id}"}


ENGINES = ("transform", "spark")
"""Batch paths: a SageMaker batch transform job over CSV rows, or a Spark job over a Parquet table in the lake."""


def score_step(
    clients: AwsClients,
    engine: str,
    contract_path: str,
    model: str,
    input_uri: str,
    run_id: str,
    package_arn: str | None = None,
    split: str | None = None,
) -> dict[str, Any]:
    """The batch DAG's scoring task: ``transform`` (input: CSV rows in the model's input order) or
    ``spark`` (input: a Parquet table, e.g. the features table; ``split`` keeps one ``__split__``)."""
    from pipelines.contract import load_contract

    if engine not in ENGINES:
        raise InputRejectedError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    if engine == "transform":
        return transform_step(clients, contract_path, model, input_uri, run_id, package_arn)
    if not input_uri.startswith("s3://"):
        raise InputRejectedError(f"input_uri {input_uri!r} is not an s3:// prefix of a Parquet table")
    contract = load_contract(contract_path)
    target = clients.settings.model_target(contract.name, model)
    package = package_to_score(clients, target, package_arn)
    result = run_spark_scoring(clients, contract, target, package, input_uri, run_id, split=split or None)
    return {"package_arn": package, **result}
