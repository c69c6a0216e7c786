"""Fixtures for monitoring tests: the fixture model artifact and a moto account."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.unit.serving.model_fixture import write_artifact

REGION = "us-east-1"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Artifact + baseline files written per the contract (fixture model, 1,500 training rows)."""
    return write_artifact(tmp_path_factory.mktemp("model"), rows=3000)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto S3 + CloudWatch + KMS with a capture and an artifacts bucket."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        kms = boto3.client("kms", region_name=REGION)
        key_arn = kms.create_key(Description="ml key")["KeyMetadata"]["Arn"]
        for bucket in ("capture-bucket-test", "artifacts-bucket-test"):
            s3.create_bucket(Bucket=bucket)
        yield {
            "s3": s3,
            "cloudwatch": boto3.client("cloudwatch", region_name=REGION),
            "key_arn": key_arn,
            "capture_bucket": "capture-bucket-test",
            "artifacts_bucket": "artifacts-bucket-test",
        }
