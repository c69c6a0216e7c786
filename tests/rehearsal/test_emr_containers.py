"""EMR on EKS job runs run their PySpark entry point against the emulated S3, with honest states."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rehearsal.emr_containers import EmrContainersExtension, driver_error
from rehearsal.emulator import Emulator

RELEASE = "emr-7.5.0-latest"
FINAL = {"COMPLETED", "FAILED", "CANCELLED"}

# A Python UDF, so PySpark's Python workers run too, not only the JVM.
SPARK_SCRIPT = """
import json, sys
from pyspark.sql import SparkSession, functions as F, types as T
source, target = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.appName("t").getOrCreate()
frame = spark.read.json(source)
double = F.udf(lambda x: x * 2, T.LongType())
out = frame.select("id", double("value").alias("doubled"))
out.coalesce(1).write.mode("overwrite").json(target)
print(json.dumps({"rows": out.count()}))
"""


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(extensions=[EmrContainersExtension(cores=1)]) as emulator:
        s3 = emulator.client("s3")
        for bucket in ("code", "data", "logs"):
            s3.create_bucket(Bucket=bucket)
        emulator.client("iam").create_role(
            RoleName="emr-job",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )
        yield emulator


def _cluster(emu: Emulator) -> str:
    return str(
        emu.client("emr-containers").create_virtual_cluster(
            name="vc",
            containerProvider={"id": "eks-cluster", "type": "EKS", "info": {"eksInfo": {"namespace": "emr"}}},
        )["id"]
    )


def _start(emu: Emulator, script: str, args: list[str], **extra: Any) -> tuple[str, str]:
    emu.client("s3").put_object(Bucket="code", Key="jobs/job.py", Body=script.encode())
    cluster = _cluster(emu)
    request: dict[str, Any] = {
        "name": "job",
        "virtualClusterId": cluster,
        "executionRoleArn": f"arn:aws:iam::{emu.account_id}:role/emr-job",
        "releaseLabel": RELEASE,
        "jobDriver": {
            "sparkSubmitJobDriver": {
                "entryPoint": "s3://code/jobs/job.py",
                "entryPointArguments": args,
                "sparkSubmitParameters": "--conf spark.executor.instances=2 --conf spark.driver.memory=1G",
            }
        },
        "configurationOverrides": {
            "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://logs/emr/"}}
        },
    }
    request.update(extra)
    job_id = str(emu.client("emr-containers").start_job_run(**request)["id"])
    return cluster, job_id


def _wait(emu: Emulator, cluster: str, job_id: str, timeout_s: float = 240) -> dict[str, Any]:
    emr = emu.client("emr-containers")
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = emr.describe_job_run(id=job_id, virtualClusterId=cluster)["jobRun"]
        if not seen or seen[-1] != job["state"]:
            seen.append(job["state"])
        if job["state"] in FINAL:
            job["seen"] = seen
            return dict(job)
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {seen} after {timeout_s}s")


def _logs(emu: Emulator, cluster: str, job_id: str) -> dict[str, str]:
    s3 = emu.client("s3")
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket="logs", Prefix=f"emr/{cluster}/jobs/{job_id}/")["Contents"]
    ]
    return {
        k.rsplit("/", 1)[1]: gzip.decompress(s3.get_object(Bucket="logs", Key=k)["Body"].read()).decode()
        for k in keys
    }


@pytest.mark.spark
def test_a_job_run_reads_and_writes_s3_and_completes(emu: Emulator) -> None:
    s3 = emu.client("s3")
    rows = "\n".join(json.dumps({"id": i, "value": i}) for i in range(5))
    s3.put_object(Bucket="data", Key="in/part-0.json", Body=rows.encode())
    s3.put_object(Bucket="data", Key="out/stale.json", Body=b"{}")  # overwrite mode removes it
    log_group = {"logGroupName": "/emr/jobs", "logStreamNamePrefix": "features"}
    cluster, job_id = _start(
        emu,
        SPARK_SCRIPT,
        ["s3://data/in/", "s3://data/out/"],
        configurationOverrides={
            "applicationConfiguration": [
                {"classification": "emrfs-site", "properties": {"fs.s3.enableServerSideEncryption": "true"}}
            ],
            "monitoringConfiguration": {
                "s3MonitoringConfiguration": {"logUri": "s3://logs/emr/"},
                "cloudWatchMonitoringConfiguration": log_group,
            },
        },
    )
    job = _wait(emu, cluster, job_id)
    assert job["state"] == "COMPLETED", job
    assert job["seen"][-1] == "COMPLETED"
    assert "RUNNING" in job["seen"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="data", Prefix="out/")["Contents"]]
    assert "out/stale.json" not in keys
    assert "out/_SUCCESS" in keys
    assert not [k for k in keys if k.endswith(".crc") or "_temporary" in k]
    part = next(k for k in keys if k.endswith(".json"))
    head = s3.head_object(Bucket="data", Key=part)
    assert head["ServerSideEncryption"] == "AES256"  # emrfs-site encryption honoured
    written = [
        json.loads(line) for line in s3.get_object(Bucket="data", Key=part)["Body"].read().splitlines()
    ]
    assert sorted(r["doubled"] for r in written) == [0, 2, 4, 6, 8]
    logs = _logs(emu, cluster, job_id)
    assert '{"rows": 5}' in logs["stdout.gz"]
    streams = emu.client("logs").describe_log_streams(logGroupName="/emr/jobs")["logStreams"]
    names = {s["logStreamName"] for s in streams}
    assert any(
        n.startswith(f"features/{cluster}/jobs/{job_id}/containers/spark-") and n.endswith("/stdout")
        for n in names
    )


@pytest.mark.spark
def test_a_missing_input_path_fails_with_sparks_reason(emu: Emulator) -> None:
    cluster, job_id = _start(emu, SPARK_SCRIPT, ["s3://data/nothing-here/", "s3://data/out/"])
    job = _wait(emu, cluster, job_id)
    assert job["state"] == "FAILED"
    assert job["failureReason"] == "USER_ERROR"
    assert "PATH_NOT_FOUND" in job["stateDetails"]
    assert "s3://data/nothing-here" in job["stateDetails"]
    assert "Traceback" in _logs(emu, cluster, job_id)["stderr.gz"]


def test_a_failing_script_is_failed_with_its_error(emu: Emulator) -> None:
    script = "import sys\nraise ValueError(f'bad input {sys.argv[1]}')\n"
    cluster, job_id = _start(emu, script, ["s3://data/x/"])
    job = _wait(emu, cluster, job_id)
    assert job["state"] == "FAILED"
    assert "ValueError: bad input s3://data/x/" in job["stateDetails"]
    assert "finishedAt" in job


def test_the_script_sees_only_itself_and_the_image(emu: Emulator) -> None:
    script = "import pipelines\n"
    cluster, job_id = _start(emu, script, [])
    job = _wait(emu, cluster, job_id)
    assert "No module named 'pipelines'" in job["stateDetails"]


def test_a_missing_execution_role_or_script_fails_the_run(emu: Emulator) -> None:
    cluster, job_id = _start(emu, "print(1)\n", [], executionRoleArn="arn:aws:iam::123456789012:role/nope")
    job = _wait(emu, cluster, job_id)
    assert job["state"] == "FAILED"
    assert "role/nope" in job["stateDetails"]
    cluster2 = _cluster_again(emu)
    emr = emu.client("emr-containers")
    job_id = emr.start_job_run(
        name="j",
        virtualClusterId=cluster2,
        executionRoleArn=f"arn:aws:iam::{emu.account_id}:role/emr-job",
        releaseLabel=RELEASE,
        jobDriver={"sparkSubmitJobDriver": {"entryPoint": "s3://code/absent.py"}},
    )["id"]
    job = _wait(emu, cluster2, job_id)
    assert job["state"] == "FAILED"
    assert "s3://code/absent.py" in job["stateDetails"]


def _cluster_again(emu: Emulator) -> str:
    return str(
        emu.client("emr-containers").create_virtual_cluster(
            name="vc2",
            containerProvider={
                "id": "eks-cluster",
                "type": "EKS",
                "info": {"eksInfo": {"namespace": "emr2"}},
            },
        )["id"]
    )


def test_a_running_job_can_be_cancelled(emu: Emulator) -> None:
    cluster, job_id = _start(emu, "import time\nprint('started', flush=True)\ntime.sleep(120)\n", [])
    emr = emu.client("emr-containers")
    deadline = time.monotonic() + 30
    while emr.describe_job_run(id=job_id, virtualClusterId=cluster)["jobRun"]["state"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    emr.cancel_job_run(id=job_id, virtualClusterId=cluster)
    job = _wait(emu, cluster, job_id, timeout_s=30)
    assert job["state"] == "CANCELLED"
    with pytest.raises(ClientError, match="not in a cancellable state"):
        emr.cancel_job_run(id=job_id, virtualClusterId=cluster)


def test_releases_and_drivers_the_emulator_cannot_run_are_refused(emu: Emulator) -> None:
    emu.client("s3").put_object(Bucket="code", Key="jobs/job.py", Body=b"print(1)\n")
    cluster = _cluster(emu)
    emr = emu.client("emr-containers")
    base: dict[str, Any] = {
        "name": "j",
        "virtualClusterId": cluster,
        "executionRoleArn": f"arn:aws:iam::{emu.account_id}:role/emr-job",
        "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "s3://code/jobs/job.py"}},
    }
    with pytest.raises(ClientError, match=r"EMR 7\.x releases"):
        emr.start_job_run(**base, releaseLabel="emr-6.15.0-latest")
    with pytest.raises(ClientError, match="doesn't exist"):
        emr.start_job_run(**base, releaseLabel="spark-3.5")
    with pytest.raises(ClientError, match="sparkSubmitJobDriver"):
        emr.start_job_run(
            **{**base, "jobDriver": {"sparkSqlJobDriver": {"entryPoint": "s3://code/q.sql"}}},
            releaseLabel=RELEASE,
        )
    with pytest.raises(ClientError, match="unknown classification"):
        emr.start_job_run(
            **base,
            releaseLabel=RELEASE,
            configurationOverrides={
                "applicationConfiguration": [{"classification": "nope", "properties": {}}]
            },
        )


def test_driver_error_picks_the_last_traceback_line() -> None:
    log = "INFO x\nTraceback (most recent call last):\n  File x\n    raise\nKeyError: 'a'\n\nINFO shutdown\n"
    assert driver_error(log) == "KeyError: 'a'"
    assert driver_error("26/12/01 ERROR SparkContext: boom\n") == "26/12/01 ERROR SparkContext: boom"
    assert driver_error("all fine\n") is None


@pytest.mark.spark
def test_the_platforms_feature_job_runs_as_submitted(emu: Emulator) -> None:
    """pipelines.features.emr submits spark_job.py; the emulator runs it on the curated data in S3."""
    import io

    import boto3
    import pandas as pd

    from pipelines.aws import AwsClients
    from pipelines.contract import SPLIT_COLUMN, load_contract
    from pipelines.features.emr import submit_features_job, wait_for_job_run
    from pipelines.features.local import curated_prefix, features_prefix
    from pipelines.settings import PipelineSettings
    from pipelines.synthetic import generate
    from pipelines.validate import check_batch, frame_to_parquet

    s3 = emu.client("s3")
    for bucket in ("curated", "features", "artifacts"):
        s3.create_bucket(Bucket=bucket)
    key = emu.client("kms").create_key(Description="lake")["KeyMetadata"]["Arn"]
    contract = load_contract("churn")
    _, curated = check_batch(generate("churn", 300, 5).to_csv(index=False).encode(), "x.csv", contract)
    assert curated is not None
    day = "2026-11-24"
    s3.put_object(
        Bucket="curated",
        Key=f"{curated_prefix('churn', day)}abc/data.parquet",
        Body=frame_to_parquet(curated),
    )
    settings = PipelineSettings(
        environment="dev",
        region=emu.region,
        curated_bucket="curated",
        features_bucket="features",
        artifacts_bucket="artifacts",
        data_lake_key_arn=key,
        emr_virtual_cluster_id=_cluster(emu),
        emr_job_role_arn=f"arn:aws:iam::{emu.account_id}:role/emr-job",
        emr_logs_s3_uri="s3://logs/emr/",
        endpoint_url=emu.endpoint_url,
    )
    clients = AwsClients(settings, session=boto3.Session(region_name=emu.region, **emu.credentials))
    run = submit_features_job(clients, contract, day, spark_parameters="--conf spark.driver.memory=1G")
    job = wait_for_job_run(clients, run, timeout_s=300, poll_s=1)
    assert job["state"] == "COMPLETED"
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket="features", Prefix=features_prefix("churn", day))["Contents"]
    ]
    parts = [k for k in keys if k.endswith(".parquet")]
    assert parts
    head = s3.head_object(Bucket="features", Key=parts[0])
    assert head["ServerSideEncryption"] == "aws:kms"  # the job's emrfs-site settings
    assert head["SSEKMSKeyId"] == key
    frame = pd.concat(
        pd.read_parquet(io.BytesIO(s3.get_object(Bucket="features", Key=k)["Body"].read())) for k in parts
    )
    assert len(frame) == len(curated)
    assert set(frame[SPLIT_COLUMN]) == {"train", "validation", "test"}
