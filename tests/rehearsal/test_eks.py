"""EKS add-ons and access entries: stored on the cluster, validated as EKS validates them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rehearsal.eks import EksExtension, iam_principal
from rehearsal.emulator import Emulator

ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"


@pytest.fixture
def emu() -> Iterator[tuple[Emulator, Any, dict[str, str]]]:
    with Emulator(extensions=[EksExtension()]) as emulator:
        iam = emulator.client("iam")
        roles = {
            name: iam.create_role(
                RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
            )["Role"]["Arn"]
            for name in ("cluster", "admin", "ebs")
        }
        eks = emulator.client("eks")
        eks.create_cluster(
            name="c",
            roleArn=roles["cluster"],
            resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
            accessConfig={"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True},
        )
        yield emulator, eks, roles


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_addon_lifecycle_and_health(emu: tuple[Emulator, Any, dict[str, str]]) -> None:
    _, eks, roles = emu
    created = eks.create_addon(
        clusterName="c",
        addonName="aws-ebs-csi-driver",
        serviceAccountRoleArn=roles["ebs"],
        resolveConflicts="OVERWRITE",
    )["addon"]
    assert created["status"] == "CREATING"
    assert created["addonArn"].startswith("arn:aws:eks:us-east-1:123456789012:addon/c/aws-ebs-csi-driver/")
    eks.create_addon(clusterName="c", addonName="vpc-cni")
    assert eks.describe_addon(clusterName="c", addonName="vpc-cni")["addon"]["status"] == "ACTIVE"
    degraded = eks.describe_addon(clusterName="c", addonName="aws-ebs-csi-driver")["addon"]
    assert degraded["status"] == "DEGRADED"  # its controller Deployment has no node to run on
    assert degraded["health"]["issues"][0]["code"] == "InsufficientNumberOfReplicas"
    assert degraded["serviceAccountRoleArn"] == roles["ebs"]
    assert eks.list_addons(clusterName="c")["addons"] == ["aws-ebs-csi-driver", "vpc-cni"]
    update = eks.update_addon(clusterName="c", addonName="vpc-cni", addonVersion="v1.19.3-eksbuild.1")[
        "update"
    ]
    assert update["params"] == [{"type": "AddonVersion", "value": "v1.19.3-eksbuild.1"}]
    assert (
        eks.describe_addon(clusterName="c", addonName="vpc-cni")["addon"]["addonVersion"]
        == "v1.19.3-eksbuild.1"
    )
    assert eks.delete_addon(clusterName="c", addonName="vpc-cni")["addon"]["status"] == "DELETING"
    with pytest.raises(ClientError) as missing:
        eks.describe_addon(clusterName="c", addonName="vpc-cni")
    assert _code(missing) == "ResourceNotFoundException"


def test_addon_validation(emu: tuple[Emulator, Any, dict[str, str]]) -> None:
    _, eks, _ = emu
    eks.create_addon(clusterName="c", addonName="coredns")
    with pytest.raises(ClientError) as duplicate:
        eks.create_addon(clusterName="c", addonName="coredns")
    assert _code(duplicate) == "ResourceInUseException"
    with pytest.raises(ClientError) as unknown:
        eks.create_addon(clusterName="c", addonName="not-an-addon")
    assert _code(unknown) == "InvalidParameterException"
    with pytest.raises(ClientError) as no_cluster:
        eks.create_addon(clusterName="nope", addonName="coredns")
    assert _code(no_cluster) == "ResourceNotFoundException"
    with pytest.raises(ClientError, match="does not exist") as no_role:
        eks.create_addon(
            clusterName="c",
            addonName="aws-ebs-csi-driver",
            serviceAccountRoleArn="arn:aws:iam::123456789012:role/x",
        )
    assert _code(no_role) == "InvalidParameterException"


def test_access_entries_and_policies(emu: tuple[Emulator, Any, dict[str, str]]) -> None:
    _, eks, roles = emu
    creator = eks.list_access_entries(clusterName="c")["accessEntries"]
    assert creator == ["arn:aws:iam::123456789012:user/moto"]  # bootstrapClusterCreatorAdminPermissions
    assert (
        eks.list_associated_access_policies(clusterName="c", principalArn=creator[0])[
            "associatedAccessPolicies"
        ][0]["policyArn"]
        == ADMIN
    )
    entry = eks.create_access_entry(clusterName="c", principalArn=roles["admin"], type="STANDARD")[
        "accessEntry"
    ]
    assert entry["username"] == "arn:aws:sts::123456789012:assumed-role/admin/{{SessionName}}"
    with pytest.raises(ClientError) as duplicate:
        eks.create_access_entry(clusterName="c", principalArn=roles["admin"])
    assert _code(duplicate) == "ResourceInUseException"
    eks.associate_access_policy(
        clusterName="c", principalArn=roles["admin"], policyArn=ADMIN, accessScope={"type": "cluster"}
    )
    eks.associate_access_policy(
        clusterName="c",
        principalArn=roles["admin"],
        policyArn=VIEW,
        accessScope={"type": "namespace", "namespaces": ["emr"]},
    )
    listed = eks.list_associated_access_policies(clusterName="c", principalArn=roles["admin"])
    assert {p["policyArn"] for p in listed["associatedAccessPolicies"]} == {ADMIN, VIEW}
    assert eks.list_access_entries(clusterName="c", associatedPolicyArn=VIEW)["accessEntries"] == [
        roles["admin"]
    ]
    eks.disassociate_access_policy(clusterName="c", principalArn=roles["admin"], policyArn=VIEW)
    with pytest.raises(ClientError) as gone:
        eks.disassociate_access_policy(clusterName="c", principalArn=roles["admin"], policyArn=VIEW)
    assert _code(gone) == "ResourceNotFoundException"
    eks.delete_access_entry(clusterName="c", principalArn=roles["admin"])
    with pytest.raises(ClientError) as deleted:
        eks.describe_access_entry(clusterName="c", principalArn=roles["admin"])
    assert _code(deleted) == "ResourceNotFoundException"


def test_access_entry_validation(emu: tuple[Emulator, Any, dict[str, str]]) -> None:
    _, eks, roles = emu
    bad: list[dict[str, Any]] = [
        {"principalArn": "arn:aws:iam::123456789012:role/nobody"},
        {"principalArn": "arn:aws:iam::123456789012:role/aws-service-role/emr-containers.amazonaws.com/X"},
        {"principalArn": roles["admin"], "kubernetesGroups": ["system:masters"]},
        {"principalArn": roles["admin"], "type": "EC2_LINUX", "username": "me"},
    ]
    for request in bad:
        with pytest.raises(ClientError) as error:
            eks.create_access_entry(clusterName="c", **request)
        assert _code(error) == "InvalidParameterException", request
    eks.create_access_entry(clusterName="c", principalArn=roles["admin"])
    for scope, policy in (
        ({"type": "cluster", "namespaces": ["a"]}, ADMIN),
        ({"type": "namespace"}, VIEW),
        ({"type": "cluster"}, "arn:aws:eks::aws:cluster-access-policy/NoSuchPolicy"),
    ):
        with pytest.raises(ClientError) as error:
            eks.associate_access_policy(
                clusterName="c", principalArn=roles["admin"], policyArn=policy, accessScope=scope
            )
        assert _code(error) == "InvalidParameterException"
    with pytest.raises(ClientError) as no_entry:
        eks.associate_access_policy(
            clusterName="c", principalArn=roles["ebs"], policyArn=VIEW, accessScope={"type": "cluster"}
        )
    assert _code(no_entry) == "ResourceNotFoundException"


def test_config_map_clusters_refuse_access_entries_and_deletion_clears_state(
    emu: tuple[Emulator, Any, dict[str, str]],
) -> None:
    _, eks, roles = emu
    eks.create_cluster(
        name="legacy", roleArn=roles["cluster"], resourcesVpcConfig={"subnetIds": ["subnet-1"]}
    )
    assert (
        eks.describe_cluster(name="legacy")["cluster"]["accessConfig"]["authenticationMode"] == "CONFIG_MAP"
    )
    with pytest.raises(ClientError) as refused:
        eks.create_access_entry(clusterName="legacy", principalArn=roles["admin"])
    assert _code(refused) == "InvalidRequestException"
    eks.create_access_entry(clusterName="c", principalArn=roles["admin"])
    eks.create_addon(clusterName="c", addonName="vpc-cni")
    eks.delete_cluster(name="c")
    eks.create_cluster(
        name="c",
        roleArn=roles["cluster"],
        resourcesVpcConfig={"subnetIds": ["subnet-1"]},
        accessConfig={
            "authenticationMode": "API_AND_CONFIG_MAP",
            "bootstrapClusterCreatorAdminPermissions": False,
        },
    )
    assert eks.list_access_entries(clusterName="c")["accessEntries"] == []
    assert eks.list_addons(clusterName="c")["addons"] == []


def test_iam_principal_of_a_session() -> None:
    assert (
        iam_principal("arn:aws:sts::123456789012:assumed-role/deployer/ci")
        == "arn:aws:iam::123456789012:role/deployer"
    )
    assert iam_principal("arn:aws:iam::123456789012:role/x") == "arn:aws:iam::123456789012:role/x"
