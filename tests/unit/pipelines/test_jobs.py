"""Requests sent to SageMaker (training job) and EMR on EKS (job run), and the waiting loops, against moto."""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

import boto3
import pytest
from moto.emrcontainers.models import emrcontainers_backends

from pipelines.contract import DatasetContract
from pipelines.features.emr import JobRunError, submit_features_job, wait_for_job_run
from pipelines.settings import SettingMissingError
from pipelines.train import TrainingError, start_training_job, wait_for_training_job
from tests.unit.pipelines.conftest import ACCOUNT, REGION, Platform
from tests.unit.pipelines.helpers import contract_path


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr("time.sleep", slept.append)
    return slept


def test_training_job_in_subnets_needs_the_training_security_group(
    platform: Platform, churn_contract: DatasetContract
) -> None:
    """In the VPC a job needs the group with egress (trainingSecurityGroupId); without it the request
    names the setting instead of starting a job that cannot reach S3 (issue 12 item 5)."""
    from pipelines.settings import SettingMissingError
    from pipelines.train import training_job_request

    platform.settings.private_subnet_ids = ["subnet-1", "subnet-2"]
    platform.settings.training_security_group_id = None
    args = (platform.clients, contract_path(churn_contract), "run-8", "s3://b/train/", "s3://b/src.tar.gz")
    with pytest.raises(SettingMissingError, match="trainingSecurityGroupId"):
        training_job_request(*args)
    platform.settings.training_security_group_id = "sg-train"
    assert training_job_request(*args)["VpcConfig"] == {
        "Subnets": ["subnet-1", "subnet-2"],
        "SecurityGroupIds": ["sg-train"],
    }
    platform.settings.private_subnet_ids = []
    assert "VpcConfig" not in training_job_request(*args)


def test_training_job_request(
    platform: Platform, churn_contract: DatasetContract, no_sleep: list[float]
) -> None:
    train_uri = f"s3://{platform.settings.features_bucket}/features/churn/ingest_date=2026-11-24/"
    platform.settings.private_subnet_ids = ["subnet-1", "subnet-2"]
    platform.settings.training_security_group_id = "sg-1"
    uri = start_training_job(platform.clients, contract_path(churn_contract), "run-7", train_uri, {"C": 0.5})
    artifacts = platform.settings.artifacts_bucket
    assert uri == f"s3://{artifacts}/models/churn/run-7/output/model.tar.gz"
    job = platform.clients.sagemaker.describe_training_job(TrainingJobName="run-7")
    assert job["AlgorithmSpecification"]["TrainingImage"].endswith(
        f"sagemaker-scikit-learn:{platform.settings.sklearn_image_version}-cpu-py3"
    )
    assert job["RoleArn"] == platform.settings.sagemaker_role_arn
    hps = job["HyperParameters"]
    assert json.loads(hps["C"]) == 0.5
    assert json.loads(hps["run_id"]) == "run-7"
    assert json.loads(hps["sagemaker_program"]) == "train_entry.py"
    source_uri = json.loads(hps["sagemaker_submit_directory"])
    assert source_uri == f"s3://{artifacts}/models/churn/run-7/source/sourcedir.tar.gz"
    channel = job["InputDataConfig"][0]
    assert channel["ChannelName"] == "train"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == train_uri
    assert job["OutputDataConfig"] == {
        "S3OutputPath": f"s3://{artifacts}/models/churn/",
        "KmsKeyId": platform.settings.ml_key_arn,
    }
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == platform.settings.ml_key_arn
    assert job["VpcConfig"] == {"Subnets": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}
    source = platform.s3.get_object(Bucket=artifacts, Key="models/churn/run-7/source/sourcedir.tar.gz")
    assert source["ServerSideEncryption"] == "aws:kms"
    with tarfile.open(fileobj=io.BytesIO(source["Body"].read())) as archive:
        names = set(archive.getnames())
    assert {
        "train_entry.py",
        "contract.yaml",
        "requirements.txt",
        "pipelines/train.py",
        "pipelines/contract.py",
        "pipelines/transforms.py",
    } <= names


def test_training_job_needs_a_role(platform: Platform, churn_contract: DatasetContract) -> None:
    platform.settings.sagemaker_role_arn = None
    with pytest.raises(SettingMissingError, match="MLOPS_SAGEMAKER_ROLE_ARN"):
        start_training_job(platform.clients, contract_path(churn_contract), "run-8", "s3://b/p/")


def test_training_job_failure_and_timeout(
    platform: Platform, no_sleep: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    states = iter(
        [{"TrainingJobStatus": "InProgress"}, {"TrainingJobStatus": "Failed", "FailureReason": "OOM"}]
    )
    monkeypatch.setattr(platform.clients.sagemaker, "describe_training_job", lambda **_: next(states))
    with pytest.raises(TrainingError, match="Failed: OOM"):
        wait_for_training_job(platform.clients, "x", poll_s=5)
    assert no_sleep.count(5) == 1  # other threads (e.g. the shared SparkSession) may sleep too
    monkeypatch.setattr(
        platform.clients.sagemaker, "describe_training_job", lambda **_: {"TrainingJobStatus": "InProgress"}
    )
    with pytest.raises(TrainingError, match="still InProgress"):
        wait_for_training_job(platform.clients, "x", timeout_s=0, poll_s=5)


@pytest.fixture
def virtual_cluster(platform: Platform) -> str:
    emr = boto3.client("emr-containers", region_name=REGION)
    cluster = emr.create_virtual_cluster(
        name="mlops-test",
        containerProvider={"id": "eks-1", "type": "EKS", "info": {"eksInfo": {"namespace": "spark"}}},
    )
    platform.settings.emr_virtual_cluster_id = cluster["id"]
    platform.settings.emr_log_group_name = "/mlops/emr"
    return cluster["id"]


def _backend_job(run_id: str) -> Any:
    return emrcontainers_backends[ACCOUNT][REGION].job_runs[run_id]


def test_emr_job_run_request(
    platform: Platform, churn_contract: DatasetContract, virtual_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = submit_features_job(platform.clients, churn_contract, "2026-11-24")
    job = platform.clients.client("emr-containers").describe_job_run(
        id=run.job_run_id, virtualClusterId=virtual_cluster
    )["jobRun"]
    settings = platform.settings
    assert job["executionRoleArn"] == settings.emr_job_role_arn
    assert job["releaseLabel"].startswith("emr-7.")
    driver = job["jobDriver"]["sparkSubmitJobDriver"]
    assert driver["entryPoint"].startswith(f"s3://{settings.artifacts_bucket}/code/features/")
    assert driver["entryPoint"].endswith("/spark_job.py")
    args = driver["entryPointArguments"]
    assert args[:4] == [
        "--input",
        f"s3://{settings.curated_bucket}/curated/churn/ingest_date=2026-11-24/",
        "--output",
        f"s3://{settings.features_bucket}/features/churn/ingest_date=2026-11-24/",
    ]
    assert json.loads(args[5])["dataset"] == "churn"
    assert "spark.executor.instances" in driver["sparkSubmitParameters"]
    overrides = job["configurationOverrides"]
    emrfs = next(c for c in overrides["applicationConfiguration"] if c["classification"] == "emrfs-site")
    assert emrfs["properties"]["fs.s3.serverSideEncryption.kms.keyId"] == settings.data_lake_key_arn
    monitoring = overrides["monitoringConfiguration"]
    assert (
        monitoring["s3MonitoringConfiguration"]["logUri"]
        == f"s3://{settings.artifacts_bucket}/logs/emr-on-eks/"
    )
    assert monitoring["cloudWatchMonitoringConfiguration"]["logGroupName"] == "/mlops/emr"
    script = platform.s3.head_object(
        Bucket=settings.artifacts_bucket, Key=driver["entryPoint"].split("/", 3)[3]
    )
    assert script["ServerSideEncryption"] == "aws:kms"

    # moto keeps job runs RUNNING: finish it from the "cluster" side while the waiter sleeps
    slept: list[float] = []

    def finish(seconds: float) -> None:
        if seconds != 10:  # a background thread of another fixture, not the waiter
            return
        slept.append(seconds)
        if len(slept) == 2:
            _backend_job(run.job_run_id).state = "COMPLETED"

    monkeypatch.setattr("time.sleep", finish)
    done = wait_for_job_run(platform.clients, run, timeout_s=600, poll_s=10)
    assert done["state"] == "COMPLETED"
    assert slept == [10, 10]


def test_emr_job_run_failure_and_timeout(
    platform: Platform, churn_contract: DatasetContract, virtual_cluster: str, no_sleep: list[float]
) -> None:
    run = submit_features_job(platform.clients, churn_contract, "2026-11-24")
    job = _backend_job(run.job_run_id)
    job.state, job.state_details = "FAILED", "executor lost"
    with pytest.raises(JobRunError, match="FAILED: executor lost"):
        wait_for_job_run(platform.clients, run)
    stuck = submit_features_job(platform.clients, churn_contract, "2026-11-25")
    with pytest.raises(JobRunError, match=r"still RUNNING after 0s \(cancelled\)"):
        wait_for_job_run(platform.clients, stuck, timeout_s=0)
    assert _backend_job(stuck.job_run_id).state == "CANCELLED"


def test_emr_needs_the_virtual_cluster(platform: Platform, churn_contract: DatasetContract) -> None:
    with pytest.raises(SettingMissingError, match="MLOPS_EMR_VIRTUAL_CLUSTER_ID"):
        submit_features_job(platform.clients, churn_contract, "2026-11-24")


def test_emr_start_job_run_throttling_is_retried(
    platform: Platform, churn_contract: DatasetContract, virtual_cluster: str, no_sleep: list[float]
) -> None:
    from tests.unit.pipelines.helpers import inject_errors

    calls = inject_errors(
        platform.clients.client("emr-containers"), "StartJobRun", 400, "ThrottlingException", 2
    )
    run = submit_features_job(platform.clients, churn_contract, "2026-11-24")
    assert len(calls) == 3
    assert _backend_job(run.job_run_id).state == "RUNNING"


def test_configuration_overrides_of_every_emr_job(platform: Platform) -> None:
    """The features, scoring and drift jobs share one configurationOverrides: UTC sessions, EMRFS
    writes under the given key (S3's default without one), S3 logs, CloudWatch only with a log group."""
    from pipelines.features.emr import configuration_overrides

    settings = platform.settings
    settings.emr_log_group_name = "/mlops/emr"
    keyed = configuration_overrides(settings, "score-churn", "arn:aws:kms:us-east-1:1:key/k")
    assert keyed["applicationConfiguration"] == [
        {"classification": "spark-defaults", "properties": {"spark.sql.session.timeZone": "UTC"}},
        {
            "classification": "emrfs-site",
            "properties": {
                "fs.s3.enableServerSideEncryption": "true",
                "fs.s3.serverSideEncryption.kms.keyId": "arn:aws:kms:us-east-1:1:key/k",
            },
        },
    ]
    assert keyed["monitoringConfiguration"]["cloudWatchMonitoringConfiguration"] == {
        "logGroupName": settings.emr_log_group_name,
        "logStreamNamePrefix": "score-churn",
    }
    settings.emr_log_group_name = None
    settings.emr_logs_s3_uri = "s3://logs/emr/"
    plain = configuration_overrides(settings, "drift-x", None)
    assert plain["applicationConfiguration"][1]["properties"] == {"fs.s3.enableServerSideEncryption": "true"}
    assert plain["monitoringConfiguration"] == {
        "persistentAppUI": "ENABLED",
        "s3MonitoringConfiguration": {"logUri": "s3://logs/emr/"},
    }
    settings.artifacts_bucket = None
    with pytest.raises(SettingMissingError):
        configuration_overrides(settings, "features-churn", None)
