"""Experimentation under the recording mock: VPC-only domain with KMS, least privilege, MLflow App."""

from __future__ import annotations

from typing import Any

import pytest

from components.experimentation import (
    TRACKING_SERVER_CLIENT_ACTIONS,
    Experimentation,
    ExperimentationArgs,
    MlflowSpec,
)
from policies import iam_data
from stacks.synth import SynthResult, run_program
from tests.conftest import BASE_CONFIG
from tests.unit.components._helpers import as_list, policy, statements

ACCOUNT = "123456789012"
ML_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/ml"
LAKE_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/lake"
ARTIFACTS = "arn:aws:s3:::lake-artifacts"
CURATED = "arn:aws:s3:::lake-curated"
AIRFLOW_ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlops-test-airflow-execution"
TRAINING_ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlops-test-sagemaker"


def _args(**overrides: Any) -> ExperimentationArgs:
    values: dict[str, Any] = {
        "name_prefix": "mlops-test",
        "region": "us-east-1",
        "vpc_id": "vpc-123",
        "subnet_ids": ["subnet-a", "subnet-b"],
        "vpc_cidr": "10.20.0.0/16",
        "kms_key_arn": ML_KEY,
        "artifacts_bucket_name": "lake-artifacts",
        "artifacts_bucket_arn": ARTIFACTS,
        "artifacts_key_arn": ML_KEY,
        "s3_prefix_list_id": "pl-63a5400a",
        "user_profiles": ["alice", "bob"],
        "idle_timeout_minutes": 90,
        "read_locations": [(CURATED, "curated/"), (ARTIFACTS, "models/")],
        "write_locations": [(ARTIFACTS, "experiments/")],
        "data_key_arns": [LAKE_KEY, ML_KEY],
        "model_package_group_names": ["mlops-test-churn"],
        "mlflow": MlflowSpec(client_role_arns={"airflow": AIRFLOW_ROLE, "training": TRAINING_ROLE}),
        "tags": {"project": "mlops-platform"},
    }
    values.update(overrides)
    return ExperimentationArgs(**values)


def _run(args: ExperimentationArgs) -> SynthResult:
    def program() -> dict[str, Any]:
        exp = Experimentation("mlops-test", args)
        return {"mlflow": exp.mlflow_arn, "domain": exp.domain_id, "role": exp.studio_role_arn}

    return run_program(program, BASE_CONFIG)


@pytest.fixture(scope="module")
def result() -> SynthResult:
    return _run(_args())


def _all_statements(result: SynthResult, *names: str) -> list[dict[str, Any]]:
    return [s for n in names for s in statements(policy(result.named(n)))]


def test_domain_is_current_studio_vpc_only_with_kms(result: SynthResult) -> None:
    [domain] = result.of_type("aws:sagemaker/domain:Domain")
    sg = result.named("mlops-test-studio-sg")
    inputs = domain.inputs
    assert inputs["appNetworkAccessType"] == "VpcOnly"
    assert inputs["authMode"] == "IAM"
    assert inputs["subnetIds"] == ["subnet-a", "subnet-b"]
    assert inputs["kmsKeyId"] == ML_KEY
    users = inputs["defaultUserSettings"]
    assert users["executionRole"] == result.named("mlops-test-studio-role").outputs["arn"]
    assert users["securityGroups"] == [sg.outputs["id"]]
    assert (users["studioWebPortal"], users["defaultLandingUri"]) == ("ENABLED", "studio::")
    assert set(users["studioWebPortalSettings"]["hiddenAppTypes"]) == {"JupyterServer", "KernelGateway"}
    assert users["sharingSettings"]["notebookOutputOption"] == "Disabled"
    for app in ("jupyterLabAppSettings", "codeEditorAppSettings"):
        idle = users[app]["appLifecycleManagement"]["idleSettings"]
        assert idle["lifecycleManagement"] == "ENABLED"
        assert idle["idleTimeoutInMinutes"] == 90
        assert idle["maxIdleTimeoutInMinutes"] == 480
    assert inputs["defaultSpaceSettings"]["securityGroups"] == [sg.outputs["id"]]
    assert result.outputs["domain"].startswith("d-")


def test_security_group_has_no_open_egress(result: SynthResult) -> None:
    sg = result.named("mlops-test-studio-sg")
    assert sg.inputs["namePrefix"] == "mlops-test-studio-"
    assert not sg.inputs.get("ingress")
    assert not sg.inputs.get("egress")
    egress = result.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    ingress = result.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    for rule in [*egress, *ingress]:
        assert rule.inputs["securityGroupId"] == sg.outputs["id"]
        assert rule.inputs.get("cidrIpv4") != "0.0.0.0/0", rule.name
        assert rule.inputs["ipProtocol"] == "tcp"
    for rule in ingress:  # ingress only from the group itself
        assert rule.inputs["referencedSecurityGroupId"] == sg.outputs["id"]
    https = {r.name: r.inputs for r in egress if r.inputs["fromPort"] == 443}
    assert https["mlops-test-studio-https-vpc"]["cidrIpv4"] == "10.20.0.0/16"
    assert https["mlops-test-studio-https-s3"]["prefixListId"] == "pl-63a5400a"


def test_user_profiles_from_args(result: SynthResult) -> None:
    [domain] = result.of_type("aws:sagemaker/domain:Domain")
    profiles = {
        p.inputs["userProfileName"]: p for p in result.of_type("aws:sagemaker/userProfile:UserProfile")
    }
    assert set(profiles) == {"alice", "bob"}
    assert all(p.inputs["domainId"] == domain.outputs["id"] for p in profiles.values())


def test_roles_trust_sagemaker_of_this_account_and_have_no_managed_policies(result: SynthResult) -> None:
    for role in result.of_type("aws:iam/role:Role"):
        [trust] = statements(policy(role, "assumeRolePolicy"))
        assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
        assert not role.inputs.get("managedPolicyArns")
    assert not result.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")


def test_studio_role_is_least_privilege(result: SynthResult) -> None:
    stmts = _all_statements(result, "mlops-test-studio-data", "mlops-test-studio-apps")
    by_sid = {s["Sid"]: s for s in stmts}
    assert by_sid["ReadData"]["Resource"] == [f"{CURATED}/curated/*", f"{ARTIFACTS}/models/*"]
    assert by_sid["WriteExperiments"]["Resource"] == [f"{ARTIFACTS}/experiments/*"]
    assert by_sid["ReadRegistry"]["Action"] == [
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:ListModelPackages",
        "sagemaker:DescribeModelPackage",
    ]
    domain_id = result.of_type("aws:sagemaker/domain:Domain")[0].outputs["id"]
    for resource in by_sid["StudioAppsAndSpaces"]["Resource"]:
        assert f"/{domain_id}/" in resource
    for s in stmts:
        for action in as_list(s["Action"]):
            assert action != "*", s["Sid"]
            assert not action.endswith(":*"), s["Sid"]
            assert not action.startswith("iam:"), s["Sid"]
            assert iam_data.actions_matching(action), (
                f"{action} is not in the Service Authorization Reference"
            )
        if as_list(s["Resource"]) == ["*"]:
            assert all(not i.arn_formats for a in as_list(s["Action"]) for i in iam_data.actions_matching(a))
    assert "sagemaker:UpdateModelPackage" not in str(stmts)


def test_mlflow_app_artifact_store_in_the_artifacts_bucket(result: SynthResult) -> None:
    [app] = result.of_type("aws:sagemaker/mlflowApp:MlflowApp")
    role = result.named("mlops-test-mlflow-role")
    assert app.inputs["artifactStoreUri"] == "s3://lake-artifacts/mlflow/"
    assert app.inputs["roleArn"] == role.outputs["arn"]
    assert app.inputs["modelRegistrationMode"] == "AutoModelRegistrationDisabled"
    assert result.named("mlops-test-mlflow-permissions").urn in app.dependencies
    by_sid = {s["Sid"]: s for s in statements(policy(result.named("mlops-test-mlflow-permissions")))}
    assert by_sid["ArtifactStoreObjects"]["Resource"] == f"{ARTIFACTS}/mlflow/*"
    assert by_sid["ArtifactStoreList"]["Condition"] == {"StringLike": {"s3:prefix": ["mlflow/*"]}}
    assert by_sid["ArtifactStoreKey"]["Resource"] == ML_KEY
    assert ":mlflow-app/" in result.outputs["mlflow"]


def test_the_roles_that_may_call_mlflow(result: SynthResult) -> None:
    app_arn = result.of_type("aws:sagemaker/mlflowApp:MlflowApp")[0].outputs["arn"]
    callers: dict[str, list[str]] = {}
    for rp in result.of_type("aws:iam/rolePolicy:RolePolicy"):
        for s in statements(policy(rp)):
            if "sagemaker:CallMlflowAppApi" in as_list(s["Action"]):
                assert s["Resource"] == app_arn
                callers[str(rp.inputs["role"])] = as_list(s["Action"])
    studio_role = result.named("mlops-test-studio-role").outputs["id"]
    assert set(callers) == {"mlops-test-airflow-execution", "mlops-test-sagemaker", studio_role}
    assert "sagemaker:CreatePresignedMlflowAppUrl" in callers[studio_role]
    assert "sagemaker:CreatePresignedMlflowAppUrl" not in callers["mlops-test-airflow-execution"]
    # An App is authorized by CallMlflowAppApi on mlflow-app/<id>; sagemaker-mlflow:* covers tracking servers.
    [info] = iam_data.actions_matching("sagemaker:CallMlflowAppApi")
    assert any(iam_data.arn_matches_format(app_arn, f) for f in info.arn_formats)
    assert "sagemaker-mlflow:" not in str(
        [policy(rp) for rp in result.of_type("aws:iam/rolePolicy:RolePolicy")]
    )


def test_tracking_server_kind_grants_tracking_actions_on_its_arn() -> None:
    result = _run(_args(mlflow=MlflowSpec(kind="tracking_server", tracking_server_size="Medium",
                                          client_role_arns={"training": TRAINING_ROLE})))  # fmt: skip
    assert not result.of_type("aws:sagemaker/mlflowApp:MlflowApp")
    [server] = result.of_type("aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer")
    assert server.inputs["trackingServerSize"] == "Medium"
    assert server.inputs["automaticModelRegistration"] is False
    [client] = [
        s
        for s in statements(policy(result.named("mlops-test-mlflow-training")))
        if s["Sid"] == "UseTrackingServer"
    ]
    assert client["Resource"] == server.outputs["arn"]
    assert ":mlflow-tracking-server/" in client["Resource"]
    assert client["Action"] == list(TRACKING_SERVER_CLIENT_ACTIONS)
    assert not any("Delete" in a for a in client["Action"])
    for action in client["Action"]:
        [info] = iam_data.actions_matching(action)
        assert any(iam_data.arn_matches_format(client["Resource"], f) for f in info.arn_formats), action


def test_mlflow_only_declares_no_domain() -> None:
    result = _run(_args(studio=False, user_profiles=()))
    assert not result.of_type("aws:sagemaker/domain:Domain")
    assert not result.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert result.of_type("aws:sagemaker/mlflowApp:MlflowApp")
    assert result.outputs["domain"] is None


def test_children_are_parented_and_tagged(result: SynthResult) -> None:
    [component] = result.of_type("mlops:experimentation:Experimentation")
    for r in result.resources:
        if r.custom:
            assert r.parent == component.urn, r.name
        if r.custom and "tags" in r.inputs:
            assert r.inputs["tags"]["project"] == "mlops-platform", r.name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"subnet_ids": []}, "1-16 private subnets"),
        ({"idle_timeout_minutes": 30}, "idle shutdown takes 60-525600"),
        ({"idle_timeout_minutes": 600, "max_idle_timeout_minutes": 480}, "must be >= idle_timeout_minutes"),
        ({"user_profiles": ["alice_smith"]}, "not valid user profile names"),
        ({"user_profiles": ["a", "a"]}, "listed twice"),
        ({"studio": False}, "user_profiles need studio=True"),
        ({"studio": False, "user_profiles": (), "mlflow": None}, "declare nothing"),
    ],
)
def test_bad_args_are_rejected_with_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _args(**overrides)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"artifact_prefix": "mlflow"}, "ending in '/'"),
        ({"tracking_server_size": "Huge"}, "Small, Medium, Large"),
        ({"maintenance_window": "Sunday 3am"}, "like Sun:03:00"),
        ({"client_role_arns": {"air flow": AIRFLOW_ROLE}}, "labels"),
    ],
)
def test_bad_mlflow_spec_is_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MlflowSpec(**kwargs)
