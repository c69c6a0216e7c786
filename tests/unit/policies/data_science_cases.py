"""Compliant and non-compliant cases of the data science rules (policies/rules/data_science.py);
tests/unit/policies/test_rules.py runs them with every other rule's cases."""

from __future__ import annotations

from typing import Any

from policies.core import Resource

ACCT = "123456789012"
KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/abc"

_OFFLINE = {"s3StorageConfig": {"s3Uri": "s3://features/feature-store/churn", "kmsKeyId": KEY}}
_ONLINE = {"enableOnlineStore": True, "securityConfig": {"kmsKeyId": KEY}}

RESOURCE_CASES: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "sagemaker-domain-kms",
        "aws:sagemaker/domain:Domain",
        "prod",
        {"appNetworkAccessType": "VpcOnly", "kmsKeyId": KEY},
        {"appNetworkAccessType": "VpcOnly"},
    ),
    (
        "sagemaker-feature-group-kms",
        "aws:sagemaker/featureGroup:FeatureGroup",
        "prod",
        {"offlineStoreConfig": _OFFLINE, "onlineStoreConfig": _ONLINE},
        {"offlineStoreConfig": _OFFLINE, "onlineStoreConfig": {"enableOnlineStore": True}},
    ),
    (
        "sagemaker-feature-group-kms",
        "aws:sagemaker/featureGroup:FeatureGroup",
        "dev",
        {"offlineStoreConfig": _OFFLINE},
        {"offlineStoreConfig": {"s3StorageConfig": {"s3Uri": "s3://features/x"}}},
    ),
]


def _bucket(name: str) -> Resource:
    return Resource(f"urn:{name}", "aws:s3/bucket:Bucket", name, {"bucket": name}, ids=frozenset({name}))


def _sse(bucket: str, algorithm: str, key: str | None) -> Resource:
    default: dict[str, Any] = {"sseAlgorithm": algorithm, **({"kmsMasterKeyId": key} if key else {})}
    return Resource(
        f"urn:sse-{bucket}",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        f"sse-{bucket}",
        {"bucket": bucket, "rules": [{"applyServerSideEncryptionByDefault": default}]},
    )


def _app(uri: str, kind: str = "mlflowApp:MlflowApp") -> Resource:
    return Resource(f"urn:mlflow-{uri}", f"aws:sagemaker/{kind}", "mlflow", {"artifactStoreUri": uri})


STACK_CASES: list[tuple[str, list[Resource], list[Resource]]] = [
    (
        "sagemaker-mlflow-artifacts-kms",
        [_bucket("artifacts"), _sse("artifacts", "aws:kms", KEY), _app("s3://artifacts/mlflow/")],
        [_bucket("artifacts"), _sse("artifacts", "AES256", None), _app("s3://artifacts/mlflow/")],
    ),
    (
        "sagemaker-mlflow-artifacts-kms",
        [
            _bucket("artifacts"),
            _sse("artifacts", "aws:kms", KEY),
            _app("s3://artifacts/mlflow/", "mlflowTrackingServer:MlflowTrackingServer"),
        ],
        # a bucket the stack does not declare (and so cannot vouch for)
        [_bucket("artifacts"), _sse("artifacts", "aws:kms", KEY), _app("s3://someone-elses-bucket/mlflow/")],
    ),
]
