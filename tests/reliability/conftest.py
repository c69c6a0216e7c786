"""Fixtures for the reliability suite: an emulated account with a fault injector and the platform's buckets.

Every case drives the platform's own pipeline code (``pipelines/``) against the emulator, injects a
fault at the API or in a service the emulator runs (:mod:`rehearsal.faults`), and asserts the state
the account is left in, not only the error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipelines.aws import AwsClients
from pipelines.settings import PipelineSettings
from rehearsal.emulator import Emulator, Extension
from rehearsal.faults import FaultInjector

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "contracts" / "churn.yaml"
DAY = "2026-11-24"
BUCKETS = ("raw", "curated", "features", "artifacts", "capture", "logs")
GROUP = "churn-models"
SAGEMAKER_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@dataclass
class Account:
    """A running emulator with the platform's data lake, and the pipeline's clients against it."""

    emu: Emulator
    faults: FaultInjector
    clients: AwsClients
    key_arn: str

    @property
    def s3(self) -> Any:
        """The emulator's own S3 client (not the pipeline's: its calls are inspected, not judged)."""
        return self.emu.client("s3")

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` in ``bucket``, sorted."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def packages(self, group: str = GROUP) -> list[dict[str, Any]]:
        """The model packages in ``group``."""
        sm = self.emu.client("sagemaker")
        return list(sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"])

    def new_clients(self) -> AwsClients:
        """Another pipeline process's clients (own session and client cache)."""
        session = boto3.Session(region_name=self.emu.region, **self.emu.credentials)
        return AwsClients(self.clients.settings, session=session)


def platform_settings(emu: Emulator, key_arn: str, **overrides: Any) -> PipelineSettings:
    """Pipeline settings for the emulated data lake (standard retries, as on AWS)."""
    values: dict[str, Any] = {
        "environment": "dev",
        "region": emu.region,
        "raw_bucket": "raw",
        "curated_bucket": "curated",
        "features_bucket": "features",
        "artifacts_bucket": "artifacts",
        "capture_bucket": "capture",
        "data_lake_key_arn": key_arn,
        "ml_key_arn": key_arn,
        "model_package_group_name": GROUP,
        "sagemaker_role_arn": f"arn:aws:iam::{emu.account_id}:role/sagemaker-exec",
        "emr_job_role_arn": f"arn:aws:iam::{emu.account_id}:role/emr-job",
        "emr_logs_s3_uri": "s3://logs/emr/",
        "endpoint_url": emu.endpoint_url,
        "code_version": "abc123",
        "read_timeout": 30.0,
    }
    values.update(overrides)
    return PipelineSettings(**values)


@contextmanager
def account(root: Path, *extensions: Extension, seed: int = 0) -> Iterator[Account]:
    """Start an emulator with a fault injector and the platform's lake (retry backoff shortened to 10 ms)."""
    faults = FaultInjector(seed=seed)
    with Emulator(extensions=[faults, *extensions], workdir=root / "emu") as emu, short_backoff():
        s3 = emu.client("s3")
        for bucket in BUCKETS:
            s3.create_bucket(Bucket=bucket)
        key_arn = emu.client("kms").create_key(Description="lake")["KeyMetadata"]["Arn"]
        iam = emu.client("iam")
        iam.create_role(RoleName="sagemaker-exec", AssumeRolePolicyDocument=json.dumps(SAGEMAKER_TRUST))
        iam.create_role(
            RoleName="emr-job",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )
        emu.client("sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)
        session = boto3.Session(region_name=emu.region, **emu.credentials)
        clients = AwsClients(platform_settings(emu, key_arn), session=session)
        yield Account(emu, faults, clients, key_arn)


@contextmanager
def short_backoff() -> Iterator[list[float]]:
    """botocore's standard-mode backoff, shortened to 10 ms; yields the delays botocore asked for."""
    from botocore.retries import standard

    asked: list[float] = []
    real = standard.ExponentialBackoff.delay_amount

    def delay_amount(self: Any, context: Any) -> float:
        asked.append(float(real(self, context)))
        return 0.01

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(standard.ExponentialBackoff, "delay_amount", delay_amount)
        yield asked
