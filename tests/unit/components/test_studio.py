"""EmrStudio under the recording mock: security groups, service role and Studio, the move alias, args."""

from __future__ import annotations

from typing import Any

import pytest

from components.studio import EmrStudio, EmrStudioArgs
from stacks.synth import SynthResult, run_program
from tests.conftest import BASE_CONFIG
from tests.unit.components._helpers import as_list, policy, statements

ACCOUNT = "123456789012"
ARTIFACTS = "arn:aws:s3:::lake-artifacts"
ML_KEY = "arn:aws:kms:us-east-1:123456789012:key/ml"


def _args(**overrides: Any) -> EmrStudioArgs:
    values: dict[str, Any] = {
        "region": "us-east-1",
        "vpc_id": "vpc-123",
        "subnet_ids": ["subnet-a", "subnet-b"],
        "bucket_name": "lake-artifacts",
        "bucket_arn": ARTIFACTS,
        "key_arn": ML_KEY,
        "tags": {"project": "mlops-platform"},
    }
    values.update(overrides)
    return EmrStudioArgs(**values)


@pytest.fixture(scope="module")
def result() -> SynthResult:
    def program() -> dict[str, Any]:
        studio = EmrStudio("mlops-test", _args())
        return {"studio": studio.studio_url}

    return run_program(program, BASE_CONFIG)


def test_studio_security_groups_follow_the_emr_studio_rules(result: SynthResult) -> None:
    sgs = {s.name: s for s in result.of_type("aws:ec2/securityGroup:SecurityGroup")}
    engine, workspace = sgs["mlops-test-studio-engine-sg"], sgs["mlops-test-studio-workspace-sg"]
    for sg in (engine, workspace):
        assert sg.inputs["tags"]["for-use-with-amazon-emr-managed-policies"] == "true"
        assert not sg.inputs.get("ingress")
        assert not sg.inputs.get("egress")
        assert sg.inputs["vpcId"] == "vpc-123"
    [ingress] = result.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert ingress.inputs["securityGroupId"] == engine.outputs["id"]
    assert ingress.inputs["referencedSecurityGroupId"] == workspace.outputs["id"]
    assert (ingress.inputs["ipProtocol"], ingress.inputs["fromPort"], ingress.inputs["toPort"]) == (
        "tcp",
        18888,
        18888,
    )
    assert "cidrIpv4" not in ingress.inputs
    egress = {
        e.name: e.inputs for e in result.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    }
    assert set(egress) == {"mlops-test-studio-workspace-to-engine", "mlops-test-studio-workspace-https"}
    to_engine = egress["mlops-test-studio-workspace-to-engine"]
    assert to_engine["securityGroupId"] == workspace.outputs["id"]
    assert to_engine["referencedSecurityGroupId"] == engine.outputs["id"]
    assert (to_engine["fromPort"], to_engine["toPort"]) == (18888, 18888)
    https = egress["mlops-test-studio-workspace-https"]
    assert (https["securityGroupId"], https["fromPort"], https["toPort"]) == (
        workspace.outputs["id"],
        443,
        443,
    )


def test_studio_service_role_and_studio(result: SynthResult) -> None:
    role = result.named("mlops-test-studio-service-role")
    assert statements(policy(role, "assumeRolePolicy")) == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "elasticmapreduce.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                "ArnLike": {"aws:SourceArn": f"arn:aws:elasticmapreduce:us-east-1:{ACCOUNT}:*"},
            },
        }
    ]
    stmts = {s["Sid"]: s for s in statements(policy(result.named("mlops-test-studio-service-permissions")))}
    assert stmts["StudioWorkspaceStorage"]["Resource"] == f"{ARTIFACTS}/emr-studio/*"
    assert stmts["StudioWorkspaceBucket"]["Resource"] == ARTIFACTS
    for s in stmts.values():
        assert not any("*" in a for a in as_list(s["Action"])), s["Sid"]
        if "*" in as_list(s["Resource"]):
            # only non-restrictable Describe calls, or tag-conditioned ones as in the EMR guide
            describe_only = all(a.startswith("ec2:Describe") for a in s["Action"])
            tag_conditioned = "aws:ResourceTag/for-use-with-amazon-emr-managed-policies" in str(
                s.get("Condition")
            )
            assert describe_only or tag_conditioned, s["Sid"]
    [studio] = result.of_type("aws:emr/studio:Studio")
    sgs = {s.name: s.outputs["id"] for s in result.of_type("aws:ec2/securityGroup:SecurityGroup")}
    assert studio.inputs["authMode"] == "IAM"
    assert studio.inputs["defaultS3Location"] == "s3://lake-artifacts/emr-studio/"
    assert studio.inputs["encryptionKeyArn"] == ML_KEY
    assert studio.inputs["serviceRole"] == role.outputs["arn"]
    assert studio.inputs["subnetIds"] == ["subnet-a", "subnet-b"]
    assert studio.inputs["engineSecurityGroupId"] == sgs["mlops-test-studio-engine-sg"]
    assert studio.inputs["workspaceSecurityGroupId"] == sgs["mlops-test-studio-workspace-sg"]
    assert result.outputs["studio"].startswith("https://")


def test_studio_waits_for_its_service_role_policy(result: SynthResult) -> None:
    """Item 2: EMR checks the service role when the Studio is created."""
    (studio,) = result.of_type("aws:emr/studio:Studio")
    assert result.named("mlops-test-studio-service-permissions").urn in studio.dependencies


def test_children_are_parented_to_the_studio_component(result: SynthResult) -> None:
    [component] = result.of_type("mlops:studio:EmrStudio")
    children = [r for r in result.resources if r.parent == component.urn]
    assert len(children) == 8
    assert {r.name for r in children} >= {"mlops-test-studio", "mlops-test-studio-service-role"}


def test_moved_from_aliases_every_child_under_the_old_parent() -> None:
    from stacks import synth

    aliases: dict[str, str] = {}
    register = synth.RecordingMonitor.RegisterResource

    def spy(self: Any, request: Any) -> Any:
        aliases[request.name] = str(request.aliases)
        return register(self, request)

    def program() -> dict[str, Any]:
        import pulumi

        old = pulumi.ComponentResource("mlops:spark:SparkOnEks", "mlops-test")
        EmrStudio("mlops-test", _args(moved_from=old))
        return {}

    synth.RecordingMonitor.RegisterResource = spy  # type: ignore[method-assign]
    try:
        run_program(program, BASE_CONFIG)
    finally:
        synth.RecordingMonitor.RegisterResource = register  # type: ignore[method-assign]
    studio_children = [n for n in aliases if n.startswith("mlops-test-studio")]
    assert len(studio_children) == 8
    for name in studio_children:
        assert "mlops:spark:SparkOnEks::mlops-test" in aliases[name], name
    assert "SparkOnEks" not in aliases["mlops-test"]  # the component itself is new, not aliased


def test_args_validation_names_field_and_fix() -> None:
    with pytest.raises(ValueError, match="EMR Studio takes 1-5 subnets"):
        _args(subnet_ids=[])
    with pytest.raises(ValueError, match="EMR Studio takes 1-5 subnets"):
        _args(subnet_ids=[f"subnet-{i}" for i in range(6)])
    with pytest.raises(ValueError, match="a key prefix ending in '/'"):
        _args(prefix="emr-studio")
