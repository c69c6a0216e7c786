"""ModelRegistry under the recording mock: groups, the cross-account group policy, the SageMaker
execution role; and, for every ML services component in every stack, no admin-style IAM statement."""

from __future__ import annotations

from typing import Any

import pytest

from components.registry import CROSS_ACCOUNT_PACKAGE_ACTIONS, ModelRegistry, ModelRegistryArgs
from stacks.synth import SynthResult, run_program
from tests.conftest import BASE_CONFIG
from tests.unit.components._helpers import as_list, policy, statements

ARTIFACTS = "arn:aws:s3:::lake-artifacts"
FEATURES = "arn:aws:s3:::lake-features"
CAPTURE = "arn:aws:s3:::lake-capture"
ML_KEY = "arn:aws:kms:us-east-1:123456789012:key/ml"
LAKE_KEY = "arn:aws:kms:us-east-1:123456789012:key/lake"
ML_COMPONENTS = (
    "mlops:registry:ModelRegistry",
    "mlops:endpoint:ModelEndpoint",
    "mlops:airflow:Airflow",
    "mlops:observability:Observability",
    "mlops:delivery:Delivery",
)


def _args(**overrides: Any) -> ModelRegistryArgs:
    values: dict[str, Any] = {
        "name_prefix": "mlops-test",
        "region": "us-east-1",
        "groups": ["churn", "fraud"],
        "artifacts_bucket_arn": ARTIFACTS,
        "features_bucket_arn": FEATURES,
        "capture_bucket_arn": CAPTURE,
        "ml_key_arn": ML_KEY,
        "datalake_key_arn": LAKE_KEY,
        "tags": {"project": "mlops-platform"},
    }
    values.update(overrides)
    return ModelRegistryArgs(**values)


def _run(args: ModelRegistryArgs) -> SynthResult:
    def program() -> dict[str, Any]:
        reg = ModelRegistry("reg", args)
        return {"groups": reg.group_names, "role": reg.execution_role_arn}

    return run_program(program, BASE_CONFIG)


@pytest.fixture(scope="module")
def shared() -> SynthResult:
    return _run(_args(cross_account_ids=["210987654321", "111122223333"]))


def test_one_group_per_model(shared: SynthResult) -> None:
    groups = shared.of_type("aws:sagemaker/modelPackageGroup:ModelPackageGroup")
    assert sorted(g.inputs["modelPackageGroupName"] for g in groups) == [
        "mlops-test-churn",
        "mlops-test-fraud",
    ]
    assert shared.outputs["groups"] == {"churn": "mlops-test-churn", "fraud": "mlops-test-fraud"}
    assert all(g.inputs["tags"]["project"] == "mlops-platform" for g in groups)


def test_group_policy_names_exactly_the_configured_accounts(shared: SynthResult) -> None:
    policies = {p.inputs["modelPackageGroupName"]: p for p in shared.of_type(
        "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy")}  # fmt: skip
    assert set(policies) == {"mlops-test-churn", "mlops-test-fraud"}
    doc = policy(policies["mlops-test-churn"], "resourcePolicy")
    principals = {"AWS": ["arn:aws:iam::210987654321:root", "arn:aws:iam::111122223333:root"]}
    assert statements(doc) == [
        {
            "Sid": "DescribeGroup",
            "Effect": "Allow",
            "Principal": principals,
            "Action": "sagemaker:DescribeModelPackageGroup",
            "Resource": "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/mlops-test-churn",
        },
        {
            "Sid": "UsePackages",
            "Effect": "Allow",
            "Principal": principals,
            "Action": list(CROSS_ACCOUNT_PACKAGE_ACTIONS),
            "Resource": "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-test-churn/*",
        },
    ]
    assert "sagemaker:UpdateModelPackage" not in CROSS_ACCOUNT_PACKAGE_ACTIONS  # approval stays home


def test_no_group_policy_without_accounts() -> None:
    result = _run(_args())
    assert result.of_type("aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy") == []


def test_execution_role_trusts_only_sagemaker_of_this_account(shared: SynthResult) -> None:
    role = shared.named("reg-sagemaker-role")
    assert role.inputs["name"] == "mlops-test-sagemaker-execution"
    assert statements(policy(role, "assumeRolePolicy")) == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
        }
    ]
    assert shared.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []  # no *FullAccess


def test_execution_role_is_scoped_to_the_platform(shared: SynthResult) -> None:
    role_policy = shared.named("reg-sagemaker-policy")
    by_sid = {s["Sid"]: s for s in statements(policy(role_policy))}
    assert by_sid["ReadCodeAndModels"]["Resource"] == [
        f"{ARTIFACTS}/code/*",
        f"{ARTIFACTS}/models/*",
        f"{FEATURES}/features/*",
        f"{FEATURES}/predictions/*/input/*",
    ]
    assert by_sid["WriteModels"]["Resource"] == [f"{ARTIFACTS}/models/*"]
    assert by_sid["WriteBatchPredictions"]["Resource"] == [f"{FEATURES}/predictions/*/transform/*"]
    assert by_sid["WriteCapture"]["Resource"] == [f"{CAPTURE}/*"]
    assert by_sid["UseMlKey"]["Resource"] == [ML_KEY]
    assert by_sid["DecryptFeatures"] == {
        "Sid": "DecryptFeatures",
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": [LAKE_KEY],
    }
    assert by_sid["EncryptBatchPredictions"]["Resource"] == [LAKE_KEY]
    assert by_sid["GrantMlKeyToSageMakerVolumes"]["Condition"] == {
        "Bool": {"kms:GrantIsForAWSResource": "true"}
    }
    assert by_sid["WriteLogs"]["Resource"] == [
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/*"
    ]
    assert by_sid["PullImages"]["Resource"] == [
        "arn:aws:ecr:us-east-1:123456789012:repository/mlops-test*",
        "arn:aws:ecr:us-east-1:*:repository/sagemaker-scikit-learn",
    ]
    # nothing writes raw data, nothing is s3:* or sagemaker:*
    text = str(by_sid)
    assert "lake-raw" not in text
    assert "s3:*" not in text
    assert "sagemaker:*" not in text


def test_execution_role_serves_guardrails_and_encrypts_outputs() -> None:
    """Item 6: DescribeAlarms on the rollback alarms; kms:Encrypt for OutputDataConfig/VolumeKmsKeyId."""
    from fnmatch import fnmatchcase

    result = _run(_args(rollback_alarm_names=["team-p99-latency"]))
    (role_policy,) = result.of_type("aws:iam/rolePolicy:RolePolicy")
    by_sid = {s["Sid"]: s for s in statements(policy(role_policy))}
    assert "kms:Encrypt" in by_sid["UseMlKey"]["Action"]
    alarms = by_sid["DescribeRollbackAlarms"]
    assert alarms["Action"] == "cloudwatch:DescribeAlarms"
    alarm = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:"
    # the endpoint's own alarms (<prefix>-<endpoint>-5xx-errors, ...) and the configured extra one
    for name in ("mlops-test-churn-5xx-errors", "mlops-test-churn-model-latency", "team-p99-latency"):
        assert any(fnmatchcase(alarm + name, r) for r in alarms["Resource"]), name
    assert not any(fnmatchcase(alarm + "other-team-alarm", r) for r in alarms["Resource"])


def test_job_log_groups_only_where_the_stack_owns_them() -> None:
    """Item 18: per account and region, so declared only with a logs key (the owning stack)."""
    logs = "aws:cloudwatch/logGroup:LogGroup"
    assert _run(_args()).of_type(logs) == []
    owned = _run(_args(logs_key_arn="arn:aws:kms:us-east-1:123456789012:key/logs", log_retention_days=90))
    groups = {g.inputs["name"]: g.inputs for g in owned.of_type(logs)}
    assert sorted(groups) == [
        "/aws/sagemaker/ProcessingJobs",
        "/aws/sagemaker/TrainingJobs",
        "/aws/sagemaker/TransformJobs",
    ]
    assert {(g["kmsKeyId"], g["retentionInDays"]) for g in groups.values()} == {
        ("arn:aws:kms:us-east-1:123456789012:key/logs", 90)
    }


def test_args_validation() -> None:
    with pytest.raises(ValueError, match="12-digit"):
        _args(cross_account_ids=["12345"])
    with pytest.raises(ValueError, match="at least one"):
        _args(groups=[])


# --- every ML services component, every stack --------------------------------------------------


def _ml_policies(result: SynthResult) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for r in result.resources:
        if not any(f"::{c}" in r.urn or f"{c}$" in r.urn for c in ML_COMPONENTS):
            continue
        for key in ("policy", "assumeRolePolicy", "resourcePolicy"):
            if isinstance(r.inputs.get(key), str):
                found.append((f"{r.name}.{key}", policy(r, key)))
    return found


def test_no_star_action_on_star_resource_in_ml_components(each_stack: SynthResult) -> None:
    docs = _ml_policies(each_stack)
    assert len(docs) >= 12, "expected the ML components' roles and policies"
    for where, doc in docs:
        for s in statements(doc):
            actions = as_list(s.get("Action", []))
            resources = as_list(s.get("Resource", []))
            assert "*" not in actions, f"{where}: Action '*'"
            assert not any(a.endswith(":*") for a in actions), f"{where}: service-wide action {actions}"
            if s["Effect"] == "Allow" and "*" in resources:
                # only actions AWS offers no resource-level permissions for
                assert set(actions) <= {
                    "ecr:GetAuthorizationToken",
                    "cloudwatch:PutMetricData",
                    "logs:DescribeLogGroups",
                    "sagemaker:ListModelPackages",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                }, f"{where}: {actions} on '*'"
            principal = s.get("Principal")
            if s["Effect"] == "Allow" and principal is not None:
                assert principal not in ("*", {"AWS": "*"}), f"{where}: wildcard principal"


def test_all_ml_components_are_in_every_stack(each_stack: SynthResult) -> None:
    types = {r.type for r in each_stack.resources}
    for component in ("mlops:registry:ModelRegistry", "mlops:airflow:Airflow",
                      "mlops:observability:Observability", "mlops:delivery:Delivery"):  # fmt: skip
        assert component in types, f"{each_stack.stack}: {component} missing"
    outputs = each_stack.outputs
    assert outputs["modelPackageGroupName"] == f"mlops-{each_stack.stack}-churn"
    assert outputs["sagemakerExecutionRoleArn"] == (
        f"arn:aws:iam::123456789012:role/mlops-{each_stack.stack}-sagemaker-execution"
    )


def test_package_events_are_forwarded_to_the_downstream_accounts_buses(shared: SynthResult) -> None:
    """A downstream environment in another account starts its promotion on these events; SageMaker puts
    them on this account's bus only, so a rule forwards them through a role limited to those buses."""
    import json

    (rule,) = shared.of_type("aws:cloudwatch/eventRule:EventRule")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["detail"] == {"ModelPackageGroupName": ["mlops-test-churn", "mlops-test-fraud"]}
    buses = {f"arn:aws:events:us-east-1:{a}:event-bus/default" for a in ("210987654321", "111122223333")}
    targets = shared.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert {t.inputs["arn"] for t in targets} == buses
    role = shared.named("reg-forward-events-role")
    assert all(t.inputs["roleArn"] == role.outputs["arn"] for t in targets)
    trust = statements(policy(role, "assumeRolePolicy"))[0]
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    (grant,) = statements(policy(shared.named("reg-forward-events-policy")))
    assert grant["Action"] == "events:PutEvents"
    assert set(as_list(grant["Resource"])) == buses


def test_no_forwarding_without_other_accounts() -> None:
    result = _run(_args())
    assert result.of_type("aws:cloudwatch/eventRule:EventRule") == []
    assert result.of_type("aws:cloudwatch/eventTarget:EventTarget") == []
