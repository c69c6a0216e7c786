"""Issue 12 item 12: with registry.crossAccountIds set, the artifacts bucket and the ML key admit those
accounts for what CreateModel from them needs (GetObject on models/, Decrypt through S3); unset: nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from stacks.config.load import parse_config
from stacks.foundation import build_foundation
from stacks.synth import SynthResult
from tests.unit.components._helpers import buckets_by_role, for_bucket, policy, statements

OTHER = ["210987654321", "111122223333"]


def _foundation(pulumi_mock: Callable[..., SynthResult], accounts: list[str]) -> SynthResult:
    raw: dict[str, Any] = {
        "environment": "dev",
        "region": "us-east-1",
        "owner": "team",
        "costCenter": "cc",
        "registry": {"crossAccountIds": accounts},
        "cluster": {"adminRoleArns": ["arn:aws:iam::123456789012:role/deployer"]},
    }
    config = parse_config(raw)
    return pulumi_mock(lambda: {"ok": build_foundation(config).datalake.bucket_arns["artifacts"]})


def _ml_key_policy(result: SynthResult) -> list[dict[str, Any]]:
    key = next(k for k in result.of_type("aws:kms/key:Key") if k.inputs["tags"]["data-domain"] == "ml")
    return statements(policy(key))


def _cross_account_statements(result: SynthResult, role: str) -> list[dict[str, Any]]:
    bucket = buckets_by_role(result)[role]
    doc = policy(for_bucket(result, "aws:s3/bucketPolicy:BucketPolicy", bucket))
    return [s for s in statements(doc) if s["Effect"] == "Allow"]


def test_other_accounts_read_only_model_objects(pulumi_mock) -> None:
    result = _foundation(pulumi_mock, OTHER)
    (grant,) = _cross_account_statements(result, "artifacts")
    artifacts_arn = buckets_by_role(result)["artifacts"].outputs["arn"]
    assert grant["Principal"] == {"AWS": sorted(f"arn:aws:iam::{a}:root" for a in OTHER)}
    assert grant["Action"] == "s3:GetObject"
    assert grant["Resource"] == f"{artifacts_arn}/models/*"
    for role in ("raw", "curated", "features", "capture"):
        assert _cross_account_statements(result, role) == [], role


def test_ml_key_decrypts_for_other_accounts_only_through_s3(pulumi_mock) -> None:
    result = _foundation(pulumi_mock, OTHER)
    (grant,) = [s for s in _ml_key_policy(result) if s.get("Sid") == "CrossAccountDecryptThroughS3"]
    assert grant["Principal"] == {"AWS": sorted(f"arn:aws:iam::{a}:root" for a in OTHER)}
    assert grant["Action"] == "kms:Decrypt"
    assert grant["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    for key in result.of_type("aws:kms/key:Key"):
        if key.inputs["tags"]["data-domain"] != "ml":
            assert "CrossAccount" not in key.inputs["policy"]


def test_nothing_is_shared_without_cross_account_ids(pulumi_mock) -> None:
    result = _foundation(pulumi_mock, [])
    assert _cross_account_statements(result, "artifacts") == []
    for key in result.of_type("aws:kms/key:Key"):
        principals = [json.dumps(s["Principal"]) for s in statements(policy(key))]
        assert all("210987654321" not in p for p in principals)
        assert all("CrossAccount" not in (s.get("Sid") or "") for s in statements(policy(key)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"role": "nope", "prefix": "models/", "account_ids": OTHER}, "no bucket with role 'nope'"),
        ({"role": "artifacts", "prefix": "models", "account_ids": OTHER}, "must end in '/'"),
        ({"role": "artifacts", "prefix": "models/", "account_ids": ["123"]}, "12-digit"),
    ],
)
def test_cross_account_read_validation(kwargs: dict[str, Any], message: str) -> None:
    from components.datalake import CrossAccountRead, DataLakeArgs

    with pytest.raises(ValueError, match=message):
        DataLakeArgs(key_arns={"datalake": "k", "ml": "k"}, cross_account_reads=[CrossAccountRead(**kwargs)])
