"""Dataset-version objects cannot be deleted: the lake bucket policy's DenyDatasetVersionDeletes (shared
mock), its config-named erasure exception, and how the emulator's IAM evaluates it."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from components.datalake import DataLake, DataLakeArgs, version_delete_statement
from pipelines.datasets import split_dataset, validated_dataset, version_prefix
from rehearsal.iam.evaluate import evaluate
from rehearsal.iam.policy import Policy, Principal
from stacks.config import ConfigError, parse_config
from stacks.synth import SynthResult
from tests.unit.components._helpers import buckets_by_role, for_bucket, policy, statements

ERASER = "arn:aws:iam::123456789012:role/gdpr-erasure"
KEYS = {
    "datalake": "arn:aws:kms:us-east-1:123456789012:key/datalake",
    "ml": "arn:aws:kms:us-east-1:123456789012:key/ml",
}


def _by_sid(result: SynthResult, sid: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for role, bucket in buckets_by_role(result).items():
        for statement in statements(policy(for_bucket(result, "aws:s3/bucketPolicy:BucketPolicy", bucket))):
            if statement.get("Sid") == sid:
                found[role] = {**statement, "arn": bucket.outputs["arn"]}
    return found


def test_every_stack_denies_deleting_version_objects_on_the_write_once_prefixes(
    each_stack: SynthResult,
) -> None:
    deletes = _by_sid(each_stack, "DenyDatasetVersionDeletes")
    write_once = _by_sid(each_stack, "DenyOverwritableDatasetWrites")
    assert set(deletes) == set(write_once) == {"curated", "features"}
    for role, statement in deletes.items():
        assert statement["Effect"] == "Deny"
        assert statement["Principal"] == "*"
        assert statement["Action"] == ["s3:DeleteObject", "s3:DeleteObjectVersion"]
        # the same prefixes as the write-once statement, and no exception: no stack names an eraser
        assert statement["Resource"] == write_once[role]["Resource"]
        assert "Condition" not in statement
        patterns = [r[len(statement["arn"]) + 1 :] for r in statement["Resource"]]
        protected = {
            "curated": version_prefix("curated", validated_dataset("churn"), "v1") + "data.parquet",
            "features": version_prefix("features", split_dataset("churn", "test"), "v1") + "_lineage.json",
        }[role]
        working = f"{role}/churn/ingest_date=2026-11-24/part-00000.parquet"
        assert any(fnmatch.fnmatchcase(protected, p) for p in patterns)
        assert not any(fnmatch.fnmatchcase(working, p) for p in patterns)


def test_no_platform_role_may_change_a_lake_lifecycle_or_bucket_policy(each_stack: SynthResult) -> None:
    """Lifecycle rules can expire any object (bucket policies do not apply to them), and a bucket policy
    can drop the deny: both stay with the deployer."""
    for token in ("aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"):
        for resource in each_stack.of_type(token):
            for statement in statements(policy(resource)):
                if statement.get("Effect") != "Allow":
                    continue
                actions = statement.get("Action", [])
                for action in actions if isinstance(actions, list) else [actions]:
                    for refused in (
                        "s3:PutLifecycleConfiguration",
                        "s3:PutBucketPolicy",
                        "s3:DeleteBucketPolicy",
                    ):
                        assert not fnmatch.fnmatchcase(refused.lower(), str(action).lower()), (
                            resource.name,
                            action,
                        )


def test_a_named_erasure_role_is_the_only_exception(pulumi_mock: Callable[..., SynthResult]) -> None:
    def program() -> dict[str, Any]:
        lake = DataLake("t", DataLakeArgs(key_arns=KEYS, version_erasure_role_arns=[ERASER, ERASER]))
        return {"names": lake.bucket_names}

    deletes = _by_sid(pulumi_mock(program), "DenyDatasetVersionDeletes")
    assert set(deletes) == {"curated", "features"}
    for statement in deletes.values():
        assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [ERASER]}}


@pytest.mark.parametrize(
    "arn", ["*", "arn:aws:iam::123456789012:role/*", "arn:aws:iam::123456789012:user/alice", "admin"]
)
def test_a_wildcard_or_non_role_eraser_is_refused_naming_the_field(arn: str) -> None:
    with pytest.raises(ValueError, match="version_erasure_role_arns") as info:
        DataLakeArgs(key_arns=KEYS, version_erasure_role_arns=[arn])
    assert "no wildcards" in str(info.value)
    with pytest.raises(ConfigError) as config:
        parse_config(
            {
                "environment": "dev",
                "region": "us-east-1",
                "owner": "ml",
                "costCenter": "cc",
                "dataProtection": {"datasetErasureRoleArns": [arn]},
            }
        )
    assert "mlops-platform:dataProtection.datasetErasureRoleArns" in str(config.value)


def test_the_config_list_reaches_the_bucket_policies() -> None:
    """``dataProtection.datasetErasureRoleArns`` of a stack file becomes the statement's exception."""
    from stacks.config import load_config
    from stacks.platform import build
    from stacks.synth import read_stack_config, run_program, stack_config_file

    config = read_stack_config(stack_config_file("dev"))
    config["mlops-platform:dataProtection"] = json.dumps(
        {"protectData": False, "forceDestroyBuckets": True, "datasetErasureRoleArns": [ERASER]}
    )
    result = run_program(lambda: build(load_config()).outputs, config, stack="dev")
    deletes = _by_sid(result, "DenyDatasetVersionDeletes")
    assert {role: s["Condition"] for role, s in deletes.items()} == {
        role: {"ArnNotEquals": {"aws:PrincipalArn": [ERASER]}} for role in ("curated", "features")
    }


def _policy_document(erasers: tuple[str, ...]) -> Policy:
    arn = "arn:aws:s3:::lake-features"
    statement = version_delete_statement(pulumi.Output.from_input(arn), ["features/*/versions/"], erasers)
    # the Output resources, resolved the way the emulator reads a deployed policy
    statement = {**statement, "Resource": [f"{arn}/features/*/versions/*"]}
    allow = {"Effect": "Allow", "Principal": {"AWS": "123456789012"}, "Action": "s3:*", "Resource": "*"}
    return Policy.parse(
        "bucket policy of lake-features", json.dumps({"Statement": [allow, statement]}), "resource"
    )


def _role(name: str) -> Principal:
    arn = f"arn:aws:iam::123456789012:role/{name}"
    return Principal("AWS", arn, "123456789012", f"arn:aws:sts::123456789012:assumed-role/{name}/s")


def _context(principal: Principal) -> dict[str, Any]:
    return {"aws:PrincipalArn": principal.arn, "aws:PrincipalAccount": principal.account}


@pytest.mark.parametrize("action", ["s3:DeleteObject", "s3:DeleteObjectVersion"])
def test_the_emulator_denies_a_version_delete_to_all_but_the_eraser(action: str) -> None:
    version_key = "arn:aws:s3:::lake-features/features/churn/versions/3f2a/part-00000.parquet"
    working_key = "arn:aws:s3:::lake-features/features/churn/ingest_date=2026-01-01/part-0.parquet"
    identity = [
        Policy.parse(
            "role policy",
            {
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:Delete*", "Resource": "arn:aws:s3:::lake-features/*"}
                ]
            },
        )
    ]
    pipeline, eraser = _role("mlops-dev-airflow"), _role("gdpr-erasure")
    for erasers in ((), (eraser.arn,)):
        bucket = _policy_document(erasers)
        denied = evaluate(pipeline, action, version_key, _context(pipeline), identity, bucket)
        assert not denied.allowed
        assert denied.explicit_deny is not None
        assert denied.explicit_deny.label == "DenyDatasetVersionDeletes"
        assert evaluate(pipeline, action, working_key, _context(pipeline), identity, bucket).allowed
        by_eraser = evaluate(eraser, action, version_key, _context(eraser), identity, bucket)
        assert by_eraser.allowed is bool(erasers)


class _NoManifestYet:
    """What the IAM mapping reads of S3 for a HeadObject: the manifest of a new version is not there."""

    def object_exists(self, bucket: str, key: str) -> bool | None:
        return False


def test_the_publishing_role_may_head_every_version_manifest(each_stack: SynthResult) -> None:
    """pipelines.datasets.publish_dataset looks for a version's manifest with HeadObject before any PUT;
    the DAG tasks publish as the MWAA role. For a new version the manifest is missing, and S3 answers
    that with 404 only to a caller who may also s3:ListBucket the bucket (403 otherwise), so the
    mapping (rehearsal/iam/actions.py) checks s3:GetObject and s3:ListBucket: both must be allowed."""
    from rehearsal.iam.actions import checks_for
    from rehearsal.iam.requests import ApiRequest

    role = next(
        r
        for r in each_stack.of_type("aws:iam/role:Role")
        if str(r.inputs.get("name", "")).endswith("-airflow-execution")
    )
    identity = [
        Policy.parse(p.name, policy(p))
        for p in each_stack.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs.get("role") == role.inputs["name"]
    ]
    assert identity, "no inline policies found on the MWAA execution role"
    principal = Principal("AWS", str(role.outputs["arn"]), "123456789012", "")
    buckets = buckets_by_role(each_stack)
    for kind, dataset in (
        ("curated", validated_dataset("churn")),
        ("features", split_dataset("churn", "test")),
    ):
        bucket = str(buckets[kind].outputs["bucket"])
        key = version_prefix(kind, dataset, "0" * 20) + "_lineage.json"
        head = ApiRequest("s3", "HeadObject", {"Bucket": bucket, "Key": key}, "us-east-1")
        checks = checks_for(head, _NoManifestYet())  # pyright: ignore[reportArgumentType]
        assert [c.action for c in checks] == ["s3:GetObject", "s3:ListBucket"]
        for check in checks:
            decision = evaluate(principal, check.action, check.resource, _context(principal), identity)
            assert decision.allowed, (kind, check.action, decision.reason)
