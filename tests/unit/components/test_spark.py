"""SparkOnEks under the recording mock: RBAC, job-role trust and scope, virtual clusters."""

from __future__ import annotations

from typing import Any

import numpy as np
import pulumi_kubernetes as k8s
import pytest

from components.spark import (
    EMR_ROLE_RULES,
    JobClass,
    S3Location,
    SparkOnEks,
    SparkOnEksArgs,
    base36_role_name,
)
from stacks.synth import SynthResult, run_program
from tests.conftest import BASE_CONFIG
from tests.unit.components._helpers import as_list, policy, statements

ACCOUNT = "123456789012"
ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/ABCDEF0123456789ABCDEF0123456789"
HOST = ISSUER.removeprefix("https://")
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{HOST}"
CURATED = "arn:aws:s3:::lake-curated"
FEATURES = "arn:aws:s3:::lake-features"
ARTIFACTS = "arn:aws:s3:::lake-artifacts"
RAW = "arn:aws:s3:::lake-raw"
DATA_KEYS = ["arn:aws:kms:us-east-1:123456789012:key/data", "arn:aws:kms:us-east-1:123456789012:key/ml"]
LOGS_KEY = "arn:aws:kms:us-east-1:123456789012:key/logs"


def _args(provider: k8s.Provider, **overrides: Any) -> SparkOnEksArgs:
    values: dict[str, Any] = {
        "cluster_name": "mlops-test",
        "oidc_provider_arn": PROVIDER_ARN,
        "oidc_issuer_url": ISSUER,
        "kubernetes_provider": provider,
        "job_classes": [
            JobClass(
                name="features",
                namespace="spark-features",
                read=[
                    S3Location(bucket_arn=CURATED, prefix="curated/"),
                    S3Location(bucket_arn=ARTIFACTS, prefix="code/"),
                ],
                write=[S3Location(bucket_arn=FEATURES, prefix="features/")],
            ),
            JobClass(
                name="adhoc",
                namespace="spark-adhoc",
                read=[S3Location(bucket_arn=CURATED, prefix="curated/")],
            ),
        ],
        "glue_database_name": "mlops_test_lake",
        "data_key_arns": DATA_KEYS,
        "logs_bucket_arn": ARTIFACTS,
        "logs_bucket_name": "lake-artifacts",
        "log_key_arn": LOGS_KEY,
        "region": "us-east-1",
        "log_retention_days": 30,
        "tags": {"project": "mlops-platform"},
    }
    values.update(overrides)
    return SparkOnEksArgs(**values)


@pytest.fixture(scope="module")
def result() -> SynthResult:
    def program() -> dict[str, Any]:
        provider = k8s.Provider("k8s", kubeconfig="{}")
        spark = SparkOnEks("mlops-test", _args(provider))
        return {"vcs": spark.virtual_cluster_ids, "roles": spark.job_role_arns}

    return run_program(program, BASE_CONFIG)


def test_base36_matches_the_aws_cli_encoding() -> None:
    assert base36_role_name("a") == "2p"  # 97 = 2*36 + 25
    for name in ("mlops-prod-features-emr-job", "x", "EMR_Role+=,.@-"):
        expected = np.base_repr(int.from_bytes(name.encode(), "big"), 36).lower()
        assert base36_role_name(name) == expected


def test_job_role_trust_is_the_documented_irsa_pattern(result: SynthResult) -> None:
    for job, namespace in (("features", "spark-features"), ("adhoc", "spark-adhoc")):
        role = result.named(f"mlops-test-{job}-job-role")
        name = role.inputs["name"]
        assert name == f"mlops-test-{job}-emr-job"
        doc = policy(role, "assumeRolePolicy")
        assert statements(doc) == [
            {
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER_ARN},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringLike": {
                        f"{HOST}:sub": f"system:serviceaccount:{namespace}:emr-containers-sa-*-*-{ACCOUNT}-"
                        + base36_role_name(name)
                    }
                },
            }
        ]


def test_namespaces_and_emr_rbac(result: SynthResult) -> None:
    namespaces = {n.inputs["metadata"]["name"] for n in result.of_type("kubernetes:core/v1:Namespace")}
    assert namespaces == {"spark-features", "spark-adhoc"}
    roles = result.of_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
    bindings = result.of_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
    assert {r.inputs["metadata"]["namespace"] for r in roles} == namespaces
    assert {b.inputs["metadata"]["namespace"] for b in bindings} == namespaces
    for role in roles:
        assert role.inputs["metadata"]["name"] == "emr-containers"
        assert role.inputs["rules"] == [dict(r) for r in EMR_ROLE_RULES]
        # EMR on EKS guide: these resources must be manageable by EMR in the namespace
        covered = {res for r in role.inputs["rules"] for res in r["resources"]}
        assert {"pods", "pods/log", "serviceaccounts", "configmaps", "secrets", "persistentvolumeclaims",
                "jobs", "ingresses", "roles", "rolebindings", "namespaces"} <= covered  # fmt: skip
        assert not any("*" in r["verbs"] or "*" in r["resources"] for r in role.inputs["rules"])
    for binding in bindings:
        assert binding.inputs["subjects"] == [
            {"kind": "User", "name": "emr-containers", "apiGroup": "rbac.authorization.k8s.io"}
        ]
        assert binding.inputs["roleRef"] == {
            "kind": "Role",
            "name": "emr-containers",
            "apiGroup": "rbac.authorization.k8s.io",
        }
    # all in-cluster objects go through the cluster's provider
    for r in [*roles, *bindings, *result.of_type("kubernetes:core/v1:Namespace")]:
        assert r.provider is not None
        assert "::k8s::" in r.provider


def test_no_access_entry_for_the_service_linked_role(result: SynthResult) -> None:
    # EKS rejects CreateAccessEntry for service-linked roles; EMR creates that entry itself when
    # the virtual cluster is created (see components/spark.py).
    assert result.of_type("aws:eks/accessEntry:AccessEntry") == []
    assert not [r for r in result.resources if "AWSServiceRoleForAmazonEMRContainers" in str(r.inputs)]


def test_virtual_clusters_wired_to_cluster_and_namespace(result: SynthResult) -> None:
    vcs = {
        v.inputs["name"]: v.inputs for v in result.of_type("aws:emrcontainers/virtualCluster:VirtualCluster")
    }
    assert set(vcs) == {"mlops-test-features", "mlops-test-adhoc"}
    assert vcs["mlops-test-features"]["containerProvider"] == {
        "id": "mlops-test",
        "type": "EKS",
        "info": {"eksInfo": {"namespace": "spark-features"}},
    }
    assert vcs["mlops-test-adhoc"]["containerProvider"]["info"]["eksInfo"]["namespace"] == "spark-adhoc"


def _job_policy(result: SynthResult, job: str) -> list[dict[str, Any]]:
    return statements(policy(result.named(f"mlops-test-{job}-job-permissions")))


def test_job_role_reaches_only_its_lake_prefixes(result: SynthResult) -> None:
    vc_id = result.named("mlops-test-features-vc").outputs["id"]
    allowed_objects = {
        f"{CURATED}/curated/*",
        f"{ARTIFACTS}/code/*",
        f"{FEATURES}/features/*",
        f"{ARTIFACTS}/logs/emr-on-eks/{vc_id}/*",
    }
    stmts = {s["Sid"]: s for s in _job_policy(result, "features")}
    s3 = [s for s in stmts.values() if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    for s in s3:
        for resource in as_list(s["Resource"]):
            if "/" in resource.removeprefix("arn:aws:s3:::"):
                assert resource in allowed_objects, resource
            else:  # bucket-level actions: listing is prefix-conditioned, location is harmless
                assert set(as_list(s["Action"])) <= {"s3:ListBucket", "s3:GetBucketLocation"}
                assert resource in {CURATED, ARTIFACTS, FEATURES}
    assert as_list(stmts["WriteLakePrefixes"]["Resource"]) == [f"{FEATURES}/features/*"]
    assert set(stmts["WriteLakePrefixes"]["Action"]) == {
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
    }
    assert stmts["WriteJobLogsToS3"]["Resource"] == f"{ARTIFACTS}/logs/emr-on-eks/{vc_id}/*"
    assert stmts["ListJobLogs"]["Condition"] == {"StringLike": {"s3:prefix": f"logs/emr-on-eks/{vc_id}/*"}}
    listing = [s for s in s3 if s["Action"] == ["s3:ListBucket"] and s["Sid"] != "ListJobLogs"]
    assert {s["Resource"]: s["Condition"]["StringLike"]["s3:prefix"] for s in listing} == {
        CURATED: ["curated/", "curated/*"],
        ARTIFACTS: ["code/", "code/*"],
        FEATURES: ["features/", "features/*"],
    }
    assert not [r for s in s3 for r in as_list(s["Resource"]) if RAW in r]  # raw data is out of reach
    # the read-only class cannot write the lake at all
    adhoc = {s["Sid"]: s for s in _job_policy(result, "adhoc")}
    assert "WriteLakePrefixes" not in adhoc
    assert adhoc["ReadLakePrefixes"]["Resource"] == [f"{CURATED}/curated/*"]


def test_job_role_glue_kms_and_logs_are_scoped(result: SynthResult) -> None:
    stmts = {s["Sid"]: s for s in _job_policy(result, "features")}
    assert stmts["GlueCatalogDatabase"]["Resource"] == [
        f"arn:aws:glue:us-east-1:{ACCOUNT}:catalog",
        f"arn:aws:glue:us-east-1:{ACCOUNT}:database/mlops_test_lake",
        f"arn:aws:glue:us-east-1:{ACCOUNT}:table/mlops_test_lake/*",
    ]
    assert not [a for a in stmts["GlueCatalogDatabase"]["Action"] if a.startswith("glue:Delete")]
    assert stmts["GlueDefaultDatabaseLookup"]["Action"] == ["glue:GetDatabase"]
    assert stmts["UseLakeKeys"]["Resource"] == DATA_KEYS
    log_group = result.named("mlops-test-features-job-logs")
    assert log_group.inputs["name"] == "/mlops/mlops-test/emr/features"
    assert log_group.inputs["kmsKeyId"] == LOGS_KEY
    assert log_group.inputs["retentionInDays"] == 30
    arn = log_group.outputs["arn"]
    assert stmts["WriteJobLogs"]["Resource"] == [arn, f"{arn}:*"]
    for s in stmts.values():
        assert not any("*" in a for a in as_list(s["Action"])), s["Sid"]
        assert "*" not in as_list(s["Resource"]), s["Sid"]


def test_args_validation_names_field_and_fix() -> None:
    provider: Any = None  # validation happens before any resource is created
    with pytest.raises(ValueError, match="add at least one job class"):
        _args(provider, job_classes=[])
    with pytest.raises(ValueError, match="must end with '/'"):
        _args(
            provider,
            job_classes=[JobClass(name="a", namespace="a", read=[S3Location(bucket_arn=RAW, prefix="raw")])],
        )
    with pytest.raises(ValueError, match="hold no"):
        _args(
            provider,
            job_classes=[
                JobClass(name="a", namespace="a", write=[S3Location(bucket_arn=RAW, prefix="a/*/")])
            ],
        )
    with pytest.raises(ValueError, match="duplicate namespaces"):
        _args(provider, job_classes=[JobClass(name="a", namespace="n"), JobClass(name="b", namespace="n")])
