"""Batch transform runs the real inference code: joined output that agrees row by row with the endpoint
(serving consistency), payload limits, honest failures.

One emulator for the module with the hosting, transform and EMR on EKS extensions; the same trained
artifact is served by an endpoint and scored by transform jobs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from pipelines.aws import AwsClients
from pipelines.batch import TransformJobFailedError, run_transform, stage_input, wait_for_transform
from pipelines.contract import parse_contract
from pipelines.settings import PipelineSettings
from rehearsal.alarms import AlarmEvaluator
from rehearsal.emulator import Emulator
from rehearsal.endpoints import SageMakerHosting
from rehearsal.transform import SageMakerTransform
from tests.rehearsal.endpoint_fixtures import ROLE, csv_rows, endpoint_config, register_model

pytestmark = pytest.mark.slow

ROWS = 300


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("transform")


@pytest.fixture(scope="module")
def emu(tmp: Path) -> Iterator[Emulator]:
    transform = SageMakerTransform()
    with Emulator(
        extensions=[AlarmEvaluator(time_scale=60), SageMakerHosting(time_scale=60), transform]
    ) as emulator:
        register_model(emulator, tmp, "served-model", via_package=True)
        register_model(emulator, tmp, "no-code", inference_code=None, via_package=True)
        yield emulator
        workers = [run.worker for run in transform.jobs.values() if run.worker is not None]
    assert not [w for w in workers if w.is_alive()]
    assert not [t.name for t in threading.enumerate() if t.name.startswith("transform-")]


@pytest.fixture(scope="module")
def platform(emu: Emulator) -> dict[str, Any]:
    s3, kms, glue = emu.client("s3"), emu.client("kms"), emu.client("glue")
    for bucket in ("lake-features", "lake-artifacts"):
        s3.create_bucket(Bucket=bucket)
    emu.client("iam").create_role(
        RoleName="emr-job", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )
    cluster = emu.client("emr-containers").create_virtual_cluster(
        name="vc", containerProvider={"id": "eks", "type": "EKS", "info": {"eksInfo": {"namespace": "emr"}}}
    )["id"]
    lake_key = kms.create_key(Description="lake")["KeyMetadata"]["Arn"]
    ml_key = kms.create_key(Description="ml")["KeyMetadata"]["Arn"]
    glue.create_database(DatabaseInput={"Name": "mlops_dev"})
    model = emu.client("sagemaker").describe_model(ModelName="served-model")
    package = model["PrimaryContainer"]["ModelPackageName"]
    settings = PipelineSettings(
        endpoint_url=emu.endpoint_url,
        region=emu.region,
        features_bucket="lake-features",
        data_lake_key_arn=lake_key,
        ml_key_arn=ml_key,
        sagemaker_role_arn=ROLE,
        glue_database_name="mlops_dev",
        artifacts_bucket="lake-artifacts",
        emr_virtual_cluster_id=cluster,
        emr_job_role_arn=f"arn:aws:iam::{emu.account_id}:role/emr-job",
        emr_logs_s3_uri="s3://lake-artifacts/logs/emr/",
    )
    clients = AwsClients(settings, session=boto3.Session(region_name=emu.region, **emu.credentials))
    return {"clients": clients, "package": package, "lake_key": lake_key, "ml_key": ml_key}


def _contract(tmp: Path) -> Any:
    """The fixture model's dataset contract (its features in the model's order)."""
    from tests.unit.serving.model_fixture import CATEGORICAL, NUMERIC

    columns = [{"name": n, "type": "float"} for n in NUMERIC]
    columns += [{"name": n, "type": "string"} for n in CATEGORICAL] + [{"name": "churned", "type": "integer"}]
    return parse_contract(
        {
            "name": "churn-test",
            "task": "binary_classification",
            "target": "churned",
            "positive_class": 1,
            "columns": columns,
            "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
        }
    )


_SERVED: list[str] = []


def _endpoint_predictions(emu: Emulator, lines: list[str]) -> list[str]:
    """The endpoint's CSV answer line per row (the endpoint is created on first use)."""
    if not _SERVED:
        endpoint_config(emu, "served-config", {"AllTraffic": ("served-model", 1.0)})
        emu.client("sagemaker").create_endpoint(EndpointName="served", EndpointConfigName="served-config")
        _SERVED.append("served")
    hosting = emu.extension("sagemaker-endpoints")
    assert hosting.wait_for_status("served") == "InService"  # type: ignore[attr-defined]
    runtime = emu.client("sagemaker-runtime")
    answers: list[str] = []
    for start in range(0, len(lines), 50):
        body = "\n".join(lines[start : start + 50])
        response = runtime.invoke_endpoint(
            EndpointName="served", ContentType="text/csv", Accept="text/csv", Body=body.encode()
        )
        answers += [line for line in response["Body"].read().decode().splitlines() if line]
    return answers


def test_transform_output_is_joined_partitioned_and_agrees_with_the_endpoint(
    emu: Emulator, tmp: Path, platform: dict[str, Any]
) -> None:
    clients: AwsClients = platform["clients"]
    contract = _contract(tmp)
    target = clients.settings.model_target(contract.name)
    lines = csv_rows(ROWS).strip().splitlines()
    input_uri = stage_input(clients, target, "r1", lines)

    result = run_transform(clients, contract, target, platform["package"], input_uri, "r1", poll_s=0.2)

    assert result.rows == ROWS
    s3 = emu.client("s3")
    bucket, _, prefix = result.output_uri.removeprefix("s3://").partition("/")
    objects = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    assert [o["Key"] for o in objects] == [f"{prefix}part-00000.csv.out"]  # SageMaker's <input>.out layout
    head = s3.head_object(Bucket=bucket, Key=objects[0]["Key"])
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == platform["lake_key"]
    joined = s3.get_object(Bucket=bucket, Key=objects[0]["Key"])["Body"].read().decode().splitlines()
    width = len(contract.feature_names)
    # JoinSource=Input: each line is the input row, then the prediction the container answered
    assert [",".join(line.split(",")[:width]) for line in joined] == lines
    batch_predictions = [",".join(line.split(",")[width:]) for line in joined]
    assert batch_predictions == _endpoint_predictions(emu, lines)

    described = clients.sagemaker.describe_transform_job(TransformJobName=result.job_name)
    assert described["TransformJobStatus"] == "Completed"
    assert "FailureReason" not in described
    glue = emu.client("glue")
    table = glue.get_table(DatabaseName="mlops_dev", Name=result.table)["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["run"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]][:width] == contract.feature_names
    partition = glue.get_partition(DatabaseName="mlops_dev", TableName=result.table, PartitionValues=["r1"])
    assert partition["Partition"]["StorageDescriptor"]["Location"] == result.output_uri
    transform = emu.extension("sagemaker-transform")
    assert transform.jobs[result.job_name].requests == 1  # type: ignore[attr-defined]  # 300 rows fit one 6 MB batch


def _job(emu: Emulator, name: str, model: str, input_uri: str, **overrides: Any) -> str:
    request: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": model,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": f"s3://lake-features/out/{name}/",
            "Accept": "text/csv",
            "AssembleWith": "Line",
        },
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        **overrides,
    }
    emu.client("sagemaker").create_transform_job(**request)
    return name


def _put(emu: Emulator, key: str, body: bytes) -> str:
    emu.client("s3").put_object(Bucket="lake-features", Key=key, Body=body)
    return f"s3://lake-features/{key.rsplit('/', 1)[0]}/"


def test_a_package_without_inference_code_fails_the_job(emu: Emulator, platform: dict[str, Any]) -> None:
    uri = _put(emu, "in/no-code/rows.csv", csv_rows(5).encode())
    name = _job(emu, "no-code-job", "no-code", uri)
    sm = emu.client("sagemaker")
    assert sm.describe_transform_job(TransformJobName=name)["TransformJobStatus"] == "InProgress"
    with pytest.raises(TransformJobFailedError, match="No module named 'inference'"):
        wait_for_transform(sm, name, poll_s=0.1)


def test_mini_batches_honour_max_payload(emu: Emulator, platform: dict[str, Any]) -> None:
    rows = csv_rows(2000).encode().splitlines(keepends=True)
    body = b""
    while len(body) < int(2.5 * 1024 * 1024):  # 2.5 MB of records: three mini-batches of at most 1 MB
        body += b"".join(rows)
    uri = _put(emu, "in/big/rows.csv", body)
    name = _job(emu, "big-job", "served-model", uri, MaxPayloadInMB=1)
    described = wait_for_transform(emu.client("sagemaker"), name, poll_s=0.2, timeout_s=300)
    run = emu.extension("sagemaker-transform").jobs[name]  # type: ignore[attr-defined]
    assert described["TransformJobStatus"] == "Completed"
    assert run.requests == 3
    assert run.records == body.count(b"\n")
    out = emu.client("s3").get_object(Bucket="lake-features", Key="out/big-job/rows.csv.out")["Body"].read()
    assert out.count(b"\n") == body.count(b"\n")  # AssembleWith Line: one answer line per record


def test_a_record_over_the_payload_limit_fails_the_job(emu: Emulator, platform: dict[str, Any]) -> None:
    uri = _put(emu, "in/huge/rows.csv", b"1," * (700 * 1024) + b"1\n")
    name = _job(emu, "huge-job", "served-model", uri, MaxPayloadInMB=1)
    with pytest.raises(TransformJobFailedError, match="over MaxPayloadInMB"):
        wait_for_transform(emu.client("sagemaker"), name, poll_s=0.1)


def test_requests_the_emulator_cannot_run_as_aws_are_refused(emu: Emulator, platform: dict[str, Any]) -> None:
    with pytest.raises(ClientError, match="ManifestFile is not emulated"):
        _job(
            emu,
            "manifest-job",
            "served-model",
            "s3://lake-features/in/",
            TransformInput={
                "DataSource": {
                    "S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": "s3://lake-features/m"}
                },
                "ContentType": "text/csv",
            },
        )
    with pytest.raises(ClientError, match="Could not find model"):
        _job(emu, "no-model-job", "missing-model", "s3://lake-features/in/")


def test_wait_for_transform_times_out_honestly() -> None:
    class Stuck:
        def describe_transform_job(self, TransformJobName: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
            return {"TransformJobStatus": "InProgress"}

    ticks = iter(range(100))
    with pytest.raises(TransformJobFailedError, match="still InProgress after 5 s"):
        wait_for_transform(
            Stuck(), "j", timeout_s=5, poll_s=1, sleep=lambda _: None, clock=lambda: float(next(ticks))
        )
