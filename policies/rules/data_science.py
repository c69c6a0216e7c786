"""Data science: Studio domains, managed MLflow and Feature Store keep their data under customer keys.

(``sagemaker-no-direct-internet`` in :mod:`policies.rules.sagemaker` already requires a domain to be
``VpcOnly``.)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.core import Context, Resource, Stack, as_list, is_truthy, resource_rule, stack_rule

DOMAIN = "aws:sagemaker/domain:Domain"
FEATURE_GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
MLFLOW_APP = "aws:sagemaker/mlflowApp:MlflowApp"
MLFLOW_SERVER = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"


@resource_rule(
    "sagemaker-domain-kms",
    [DOMAIN],
    why="A domain's EFS home volume and space volumes hold notebooks and copies of the data users work on.",
    fix="Set kmsKeyId on the domain (the Experimentation component passes the ML key).",
)
def domain_kms(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """SageMaker AI domains encrypt their storage with a customer-managed KMS key.

    Mirrors: CKV_AWS_187
    """
    if not props.get("kmsKeyId"):
        yield "no kmsKeyId: the domain's EFS and EBS volumes use an AWS-owned key"


@resource_rule(
    "sagemaker-feature-group-kms",
    [FEATURE_GROUP],
    why="Feature groups hold the training data's features (and labels); without a customer key the offline "
    "files and online records escape the key policy.",
    fix="Set offlineStoreConfig.s3StorageConfig.kmsKeyId (lake key) and, with an online store, "
    "onlineStoreConfig.securityConfig.kmsKeyId (ML key).",
)
def feature_group_kms(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Feature groups encrypt their offline and online stores with customer-managed KMS keys.

    Mirrors: none (ML-specific; S3StorageConfig.KmsKeyId and OnlineStoreSecurityConfig in the CreateFeatureGroup API)
    """
    offline = props.get("offlineStoreConfig") or {}
    if offline and not (offline.get("s3StorageConfig") or {}).get("kmsKeyId"):
        yield "offline store without s3StorageConfig.kmsKeyId"
    online = props.get("onlineStoreConfig") or {}
    if is_truthy(online.get("enableOnlineStore")) and not (online.get("securityConfig") or {}).get(
        "kmsKeyId"
    ):
        yield "online store without securityConfig.kmsKeyId"


def _bucket_of(uri: Any) -> str:
    text = str(uri or "")
    for scheme in ("s3://", "https://"):
        if text.startswith(scheme):
            return text.removeprefix(scheme).split("/", 1)[0]
    return ""


def _kms_encrypted(stack: Stack, bucket: Resource) -> bool:
    for cfg in stack.referencing(SSE, "bucket", bucket):
        for rule in as_list(cfg.props.get("rules")):
            default = (rule or {}).get("applyServerSideEncryptionByDefault") or {}
            if default.get("sseAlgorithm") in ("aws:kms", "aws:kms:dsse") and default.get("kmsMasterKeyId"):
                return True
    return False


@stack_rule(
    "sagemaker-mlflow-artifacts-kms",
    why="MLflow's artifact store holds every run's models, datasets and reports; it must sit in a bucket the "
    "platform encrypts with a customer key.",
    fix="Point artifactStoreUri at the artifacts bucket (the Experimentation component does), which DataLake "
    "encrypts with the ML key.",
)
def mlflow_artifacts_kms(stack: Stack, ctx: Context) -> Iterator[tuple[Resource, str]]:
    """MLflow Apps and tracking servers store artifacts in a declared bucket with SSE-KMS (customer key).

    Mirrors: none (ML-specific; the MLflow App API has no artifact encryption setting of its own)
    """
    buckets = stack.of_type(BUCKET)
    for server in stack.of_type(MLFLOW_APP, MLFLOW_SERVER):
        name = _bucket_of(server.props.get("artifactStoreUri"))
        matches = [b for b in buckets if name and name in b.ids | {str(b.props.get("bucket", ""))}]
        if not matches:
            yield server, f"artifact store bucket {name or '(none)'!r} is not a bucket of this stack"
        elif not any(_kms_encrypted(stack, b) for b in matches):
            yield (
                server,
                f"artifact store bucket {name!r} has no SSE-KMS default encryption with a customer key",
            )
