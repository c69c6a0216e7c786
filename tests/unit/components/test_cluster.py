"""Cluster (EKS) under the recording mock: endpoint exposure, encryption, logs, nodes, IRSA, access."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from components.cluster import (
    CONTROL_PLANE_LOG_TYPES,
    Cluster,
    ClusterArgs,
    NodeGroupSpec,
    Taint,
    build_kubeconfig,
)
from stacks.synth import SynthResult
from tests.unit.components._helpers import as_list, policy, statements

SECRETS_KEY = "arn:aws:kms:us-east-1:123456789012:key/secrets"
LOGS_KEY = "arn:aws:kms:us-east-1:123456789012:key/logs"
SUBNETS = ["subnet-private-a", "subnet-private-b"]
ADMIN = "arn:aws:iam::123456789012:role/platform-admin"
ISSUER_HOST_PREFIX = "oidc.eks.us-east-1.amazonaws.com/id/"


def _args(**overrides: Any) -> ClusterArgs:
    values: dict[str, Any] = {
        "kubernetes_version": "1.35",
        "subnet_ids": SUBNETS,
        "secrets_key_arn": SECRETS_KEY,
        "log_key_arn": LOGS_KEY,
        "region": "us-east-1",
        "log_retention_days": 90,
        "node_groups": [
            NodeGroupSpec(
                name="system", instance_types=["m6i.large"], min_size=2, desired_size=2, max_size=3
            ),
            NodeGroupSpec(
                name="spark",
                instance_types=["m6i.xlarge", "m6a.xlarge"],
                capacity_type="SPOT",
                min_size=0,
                desired_size=1,
                max_size=5,
                disk_size_gib=80,
                labels={"workload": "spark"},
                taints=[Taint(key="dedicated", value="spark", effect="NO_SCHEDULE")],
            ),
        ],
        "admin_role_arns": [ADMIN],
        "tags": {"project": "mlops-platform"},
    }
    values.update(overrides)
    return ClusterArgs(**values)


@pytest.fixture(scope="module")
def cluster_run() -> tuple[SynthResult, dict[str, Any]]:
    from stacks.synth import run_program
    from tests.conftest import BASE_CONFIG

    holder: dict[str, Any] = {}

    def program() -> dict[str, Any]:
        cluster = Cluster("mlops-test", _args())
        holder["cluster"] = cluster
        return {
            "kubeconfig": cluster.kubeconfig,
            "issuer": cluster.oidc_issuer_url,
            "oidc": cluster.oidc_provider_arn,
            "endpoint": cluster.endpoint,
            "name": cluster.cluster_name,
        }

    return run_program(program, BASE_CONFIG), holder


@pytest.fixture
def result(cluster_run: tuple[SynthResult, dict[str, Any]]) -> SynthResult:
    return cluster_run[0]


def _cluster(result: SynthResult) -> dict[str, Any]:
    return result.of_type("aws:eks/cluster:Cluster")[0].inputs


def test_private_endpoint_by_default_api_auth_and_standard_support(result: SynthResult) -> None:
    inputs = _cluster(result)
    assert inputs["name"] == "mlops-test"
    assert inputs["version"] == "1.35"
    vpc = inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is False
    assert not vpc.get("publicAccessCidrs")
    assert vpc["subnetIds"] == SUBNETS
    assert inputs["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": True,
    }
    assert inputs["bootstrapSelfManagedAddons"] is False
    assert inputs["upgradePolicy"] == {"supportType": "STANDARD"}
    # no aws-auth ConfigMap is managed anywhere
    assert not [r for r in result.resources if r.type.startswith("kubernetes:core/v1:ConfigMap")]


def test_public_endpoint_only_with_named_cidrs(pulumi_mock: Callable[..., SynthResult]) -> None:
    with pytest.raises(ValueError, match="needs public_access_cidrs"):
        _args(endpoint_public_access=True)
    with pytest.raises(ValueError, match="needs endpoint_public_access=True"):
        _args(public_access_cidrs=["198.51.100.0/24"])
    with pytest.raises(ValueError, match="opens the API to the internet"):
        _args(endpoint_public_access=True, public_access_cidrs=["198.51.100.0/24", "0.0.0.0/0"])

    run = pulumi_mock(
        lambda: {
            "n": Cluster(
                "pub", _args(endpoint_public_access=True, public_access_cidrs=["198.51.100.0/24"])
            ).cluster_name
        }
    )
    vpc = _cluster(run)["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["publicAccessCidrs"] == ["198.51.100.0/24"]


def test_secrets_encryption_and_all_control_plane_logs(result: SynthResult) -> None:
    inputs = _cluster(result)
    assert inputs["encryptionConfig"] == {"provider": {"keyArn": SECRETS_KEY}, "resources": ["secrets"]}
    assert inputs["enabledClusterLogTypes"] == list(CONTROL_PLANE_LOG_TYPES)
    assert set(CONTROL_PLANE_LOG_TYPES) == {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    group = result.named("mlops-test-control-plane-logs").inputs
    assert group["name"] == "/aws/eks/mlops-test/cluster"  # the name EKS writes to
    assert group["retentionInDays"] == 90
    assert group["kmsKeyId"] == LOGS_KEY
    # the control plane role may use the secrets key, and only it, for envelope encryption
    doc = policy(result.named("mlops-test-cluster-encryption"))
    assert statements(doc) == [
        {
            "Sid": "SecretsEnvelopeEncryption",
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
            "Resource": SECRETS_KEY,
        }
    ]


def test_node_groups_in_private_subnets_from_spec(result: SynthResult) -> None:
    groups = {g.name: g.inputs for g in result.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert set(groups) == {"mlops-test-system", "mlops-test-spark"}
    for g in groups.values():
        assert g["subnetIds"] == SUBNETS
        assert g["clusterName"] == "mlops-test"
        assert g["amiType"] == "AL2023_x86_64_STANDARD"
        assert g["launchTemplate"]["version"] == "1"
    spark = groups["mlops-test-spark"]
    assert spark["capacityType"] == "SPOT"
    assert spark["instanceTypes"] == ["m6i.xlarge", "m6a.xlarge"]
    assert spark["scalingConfig"] == {"minSize": 0, "desiredSize": 1, "maxSize": 5}
    assert spark["labels"] == {"workload": "spark"}
    assert spark["taints"] == [{"key": "dedicated", "value": "spark", "effect": "NO_SCHEDULE"}]
    system = groups["mlops-test-system"]
    assert system["capacityType"] == "ON_DEMAND"
    assert system["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 3}
    assert not system.get("taints")


def test_launch_templates_enforce_imdsv2_and_encrypted_root(result: SynthResult) -> None:
    templates = {t.name: t.inputs for t in result.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    assert set(templates) == {"mlops-test-system-lt", "mlops-test-spark-lt"}
    for t in templates.values():
        assert t["metadataOptions"]["httpTokens"] == "required"
        # issue 12 item 14: pods use IRSA, so one hop (the node itself) by default
        assert t["metadataOptions"]["httpPutResponseHopLimit"] == 1
        [root] = t["blockDeviceMappings"]
        assert root["deviceName"] == "/dev/xvda"
        assert root["ebs"]["encrypted"] == "true"
        assert root["ebs"]["volumeType"] == "gp3"
    assert templates["mlops-test-spark-lt"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] == 80
    node_groups = {g.name: g.inputs for g in result.of_type("aws:eks/nodeGroup:NodeGroup")}
    lt_ids = {t.name: t.outputs["id"] for t in result.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    assert node_groups["mlops-test-spark"]["launchTemplate"]["id"] == lt_ids["mlops-test-spark-lt"]


def _role_policy_arns(result: SynthResult, role_name: str) -> set[str]:
    role = result.named(role_name)
    return {
        a.inputs["policyArn"]
        for a in result.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role.outputs["name"]
    }


def test_roles_have_only_the_managed_policies_they_need(result: SynthResult) -> None:
    assert _role_policy_arns(result, "mlops-test-node-role") == {
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
    }
    assert _role_policy_arns(result, "mlops-test-cluster-role") == {
        "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
    }
    assert _role_policy_arns(result, "mlops-test-vpc-cni-role") == {
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
    }
    assert _role_policy_arns(result, "mlops-test-ebs-csi-role") == {
        "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
    }
    attached = {
        a.inputs["policyArn"] for a in result.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    }
    assert not [arn for arn in attached if "FullAccess" in arn or arn.endswith("/AdministratorAccess")]


def test_service_trust_policies_name_exactly_their_service(result: SynthResult) -> None:
    for role, service in (
        ("mlops-test-cluster-role", "eks.amazonaws.com"),
        ("mlops-test-node-role", "ec2.amazonaws.com"),
    ):
        doc = policy(result.named(role), "assumeRolePolicy")
        assert statements(doc) == [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ]


def test_oidc_provider_and_irsa_trusts(result: SynthResult) -> None:
    issuer = result.outputs["issuer"]
    assert issuer.startswith("https://" + ISSUER_HOST_PREFIX)
    provider = result.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")[0]
    assert provider.inputs["url"] == issuer
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    provider_arn = result.outputs["oidc"]
    assert provider_arn == provider.outputs["arn"]
    host = issuer.removeprefix("https://")
    for role, subject in (
        ("mlops-test-vpc-cni-role", "system:serviceaccount:kube-system:aws-node"),
        ("mlops-test-ebs-csi-role", "system:serviceaccount:kube-system:ebs-csi-controller-sa"),
    ):
        doc = policy(result.named(role), "assumeRolePolicy")
        assert statements(doc) == [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{host}:sub": subject, f"{host}:aud": "sts.amazonaws.com"}},
            }
        ]


def test_core_addons_with_their_own_roles(result: SynthResult) -> None:
    addons = {a.inputs["addonName"]: a.inputs for a in result.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver"}
    assert (
        addons["vpc-cni"]["serviceAccountRoleArn"] == result.named("mlops-test-vpc-cni-role").outputs["arn"]
    )
    assert (
        addons["aws-ebs-csi-driver"]["serviceAccountRoleArn"]
        == result.named("mlops-test-ebs-csi-role").outputs["arn"]
    )
    assert "serviceAccountRoleArn" not in addons["coredns"]
    assert all(a["clusterName"] == "mlops-test" for a in addons.values())


def test_admin_roles_get_cluster_admin_access_entries(result: SynthResult) -> None:
    [entry] = result.of_type("aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["principalArn"] == ADMIN
    assert entry.inputs["type"] == "STANDARD"
    [assoc] = result.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert assoc.inputs == {
        "clusterName": "mlops-test",
        "principalArn": ADMIN,
        "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
        "accessScope": {"type": "cluster"},
    }


def test_kubeconfig_is_a_secret_using_aws_eks_get_token(
    cluster_run: tuple[SynthResult, dict[str, Any]],
) -> None:
    result, holder = cluster_run
    cluster: Cluster = holder["cluster"]
    assert cluster.kubeconfig._data.result().is_secret is True  # resolved when the program finished
    import json

    config = json.loads(result.outputs["kubeconfig"])
    [user] = config["users"]
    assert user["user"]["exec"]["command"] == "aws"
    assert user["user"]["exec"]["args"] == [
        "--region", "us-east-1", "eks", "get-token", "--cluster-name", "mlops-test", "--output", "json"
    ]  # fmt: skip
    assert config["clusters"][0]["cluster"]["server"] == result.outputs["endpoint"]
    assert config["clusters"][0]["cluster"]["certificate-authority-data"]
    # the Kubernetes provider is built from that kubeconfig
    [provider] = result.of_type("pulumi:providers:kubernetes")
    assert json.loads(provider.inputs["kubeconfig"]) == config
    assert "token" not in json.dumps(config["users"]).replace("get-token", "")


def test_inline_policies_have_no_wildcards(result: SynthResult) -> None:
    for rp in result.of_type("aws:iam/rolePolicy:RolePolicy"):
        for s in statements(policy(rp)):
            assert not any("*" in a for a in as_list(s["Action"])), rp.name
            assert "*" not in as_list(s["Resource"]), rp.name


def test_args_validation_names_field_and_fix() -> None:
    with pytest.raises(ValueError, match="at least two AZs"):
        _args(subnet_ids=["subnet-a"])
    with pytest.raises(ValueError, match="add at least one node group"):
        _args(node_groups=[])
    with pytest.raises(ValueError, match="min_size <= desired_size <= max_size"):
        _args(node_groups=[NodeGroupSpec(name="x", min_size=3, desired_size=1, max_size=4)])
    with pytest.raises(ValueError, match="duplicate names"):
        _args(node_groups=[NodeGroupSpec(name="x"), NodeGroupSpec(name="x")])


def test_build_kubeconfig_is_pure() -> None:
    text = build_kubeconfig("c", "https://e", "Q0E=", "eu-west-1")
    assert '"--region", "eu-west-1"' in text
    assert isinstance(pulumi.Output.secret("x"), pulumi.Output)


def test_imds_hop_limit_two_only_where_a_group_asks(pulumi_mock: Callable[..., SynthResult]) -> None:
    groups = [
        NodeGroupSpec(name="system", instance_types=["m6i.large"]),
        NodeGroupSpec(name="legacy", instance_types=["m6i.large"], imds_hop_limit=2),
    ]
    result = pulumi_mock(lambda: {"name": Cluster("hops", _args(node_groups=groups)).cluster_name})
    hops = {
        t.name: t.inputs["metadataOptions"]["httpPutResponseHopLimit"]
        for t in result.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    }
    assert hops == {"hops-system-lt": 1, "hops-legacy-lt": 2}


def test_in_vpc_deployers_get_a_security_group_the_cluster_admits_on_443(
    pulumi_mock: Callable[..., SynthResult],
) -> None:
    # issue 12 item 1: once bootstrap closes the public endpoint, later applies run inside the VPC and
    # the EKS cluster security group admits only itself unless told otherwise.
    def program() -> dict[str, Any]:
        cluster = Cluster("vpc", _args(vpc_id="vpc-123"))
        return {
            "clients": cluster.api_client_security_group_id,
            "cluster_sg": cluster.cluster_security_group_id,
        }

    result = pulumi_mock(program)
    [clients] = [
        s for s in result.of_type("aws:ec2/securityGroup:SecurityGroup") if s.name == "vpc-api-clients-sg"
    ]
    [rule] = result.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule.inputs["referencedSecurityGroupId"] == clients.outputs["id"] == result.outputs["clients"]
    assert rule.inputs["securityGroupId"] == result.outputs["cluster_sg"]
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", 443, 443)
    assert not clients.inputs.get("ingress")
    without = pulumi_mock(lambda: {"c": Cluster("novpc", _args()).cluster_name})
    assert not without.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
