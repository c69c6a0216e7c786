"""Security invariants of Encryption, Network and DataLake, asserted on every environment's synth."""

from __future__ import annotations

import ipaddress

import pytest

from components.datalake import DataLakeArgs
from components.network import NetworkArgs, subnet_plan
from stacks.synth import SynthResult, is_taggable
from tests.unit.components._helpers import as_list, buckets_by_role, for_bucket, policy, statements

DATA_ROLES = ("raw", "curated", "features", "artifacts", "capture")
KEY_OF_ROLE = {
    "raw": "dataLakeKeyArn",
    "curated": "dataLakeKeyArn",
    "features": "dataLakeKeyArn",
    "artifacts": "mlKeyArn",
    "capture": "mlKeyArn",
}


# --- Encryption ---------------------------------------------------------------------------------


def test_one_rotating_key_per_domain_with_alias(each_stack: SynthResult) -> None:
    keys = each_stack.of_type("aws:kms/key:Key")
    assert {k.inputs["tags"]["data-domain"] for k in keys} == {"datalake", "logs", "ml", "compute"}
    for key in keys:
        assert key.inputs["enableKeyRotation"] is True
        assert key.inputs.get("bypassPolicyLockoutSafetyCheck") in (False, None)
    aliases = {a.inputs["name"] for a in each_stack.of_type("aws:kms/alias:Alias")}
    env = each_stack.stack
    assert aliases == {f"alias/mlops-{env}/{d}" for d in ("datalake", "logs", "ml", "compute")}


def test_eks_secrets_use_the_compute_key_not_the_ml_key(each_stack: SynthResult) -> None:
    # issue 12 item 21: the ML key is shared by SageMaker, MWAA, SNS, artifacts and CI
    keys = {k.inputs["tags"]["data-domain"]: k.outputs["arn"] for k in each_stack.of_type("aws:kms/key:Key")}
    [cluster] = each_stack.of_type("aws:eks/cluster:Cluster")
    [config] = (
        cluster.inputs["encryptionConfig"]
        if isinstance(cluster.inputs["encryptionConfig"], list)
        else [cluster.inputs["encryptionConfig"]]
    )
    assert config["provider"]["keyArn"] == keys["compute"]
    [encryption_policy] = [
        p
        for p in each_stack.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.name.endswith("-cluster-encryption")
    ]
    assert keys["compute"] in encryption_policy.inputs["policy"]
    assert keys["ml"] not in encryption_policy.inputs["policy"]


def test_key_policies_grant_root_and_name_their_services(each_stack: SynthResult) -> None:
    for key in each_stack.of_type("aws:kms/key:Key"):
        stmts = statements(policy(key))
        root = [s for s in stmts if s["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}]
        assert len(root) == 1
        assert root[0]["Effect"] == "Allow"
        for s in stmts:
            assert s["Principal"] not in ("*", {"AWS": "*"}), "wildcard principal in key policy"
        if key.inputs["tags"]["data-domain"] == "logs":
            svc = [s for s in stmts if "Service" in s["Principal"]]
            assert [s["Principal"]["Service"] for s in svc] == ["logs.us-east-1.amazonaws.com"]
            assert svc[0]["Condition"]["ArnLike"] == {
                "kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:log-group:*"
            }


def test_deletion_window_follows_config(synth_stack) -> None:
    assert {k.inputs["deletionWindowInDays"] for k in synth_stack("dev").of_type("aws:kms/key:Key")} == {7}
    assert {k.inputs["deletionWindowInDays"] for k in synth_stack("prod").of_type("aws:kms/key:Key")} == {30}


# --- Network ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "azs", "nats"), [("dev", 2, 1), ("staging", 2, 2), ("prod", 3, 3)])
def test_az_and_nat_count_per_environment(synth_stack, stack: str, azs: int, nats: int) -> None:
    result = synth_stack(stack)
    subnets = result.of_type("aws:ec2/subnet:Subnet")
    private = [s for s in subnets if s.inputs["tags"]["tier"] == "private"]
    public = [s for s in subnets if s.inputs["tags"]["tier"] == "public"]
    assert len(private) == len(public) == azs
    assert len({s.inputs["availabilityZone"] for s in private}) == azs
    assert len(result.of_type("aws:ec2/natGateway:NatGateway")) == nats
    assert all(s.inputs.get("mapPublicIpOnLaunch") is False for s in public)
    # every private route table's default route goes to a NAT gateway, one per AZ when per_az
    routes = [r for r in result.of_type("aws:ec2/route:Route") if "natGatewayId" in r.inputs]
    assert len(routes) == azs
    assert len({r.inputs["natGatewayId"] for r in routes}) == nats


def test_subnets_do_not_overlap_and_fit_the_vpc() -> None:
    for azs in (2, 3, 4):
        private, public = subnet_plan("10.0.0.0/16", azs)
        nets = [ipaddress.IPv4Network(c) for c in private + public]
        assert all(n.subnet_of(ipaddress.IPv4Network("10.0.0.0/16")) for n in nets)
        for i, a in enumerate(nets):
            for b in nets[i + 1 :]:
                assert not a.overlaps(b)


def test_endpoints_and_their_security_group(each_stack: SynthResult) -> None:
    endpoints = each_stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    by_service = {e.inputs["serviceName"].removeprefix("com.amazonaws.us-east-1."): e for e in endpoints}
    assert set(by_service) == {
        "s3",
        "sagemaker.api",
        "sagemaker.runtime",
        "sts",
        "ecr.api",
        "ecr.dkr",
        "logs",
        "glue",
        "athena",
    }
    assert by_service["s3"].inputs["vpcEndpointType"] == "Gateway"
    sg = each_stack.of_type("aws:ec2/securityGroup:SecurityGroup")
    endpoint_sg = next(s for s in sg if s.name.endswith("-endpoints-sg"))
    vpc_cidr = each_stack.of_type("aws:ec2/vpc:Vpc")[0].inputs["cidrBlock"]
    assert endpoint_sg.inputs["ingress"] == [
        {
            "cidrBlocks": [vpc_cidr],
            "description": "HTTPS from the VPC",
            "fromPort": 443,
            "protocol": "tcp",
            "toPort": 443,
        }
    ]
    assert not endpoint_sg.inputs.get("egress")
    for name, e in by_service.items():
        if name != "s3":
            assert e.inputs["privateDnsEnabled"] is True
            assert e.inputs["securityGroupIds"] == [endpoint_sg.outputs["id"]]
            assert len(e.inputs["subnetIds"]) == len(each_stack.outputs["privateSubnetIds"])
            assert set(e.inputs["subnetIds"]) == set(each_stack.outputs["privateSubnetIds"])


def test_training_jobs_get_their_own_security_group_with_https_egress(each_stack: SynthResult) -> None:
    # issue 12 item 5: the endpoints' group has no egress, so a job using it reaches neither S3 nor APIs
    groups = {s.name: s for s in each_stack.of_type("aws:ec2/securityGroup:SecurityGroup")}
    [training] = [s for n, s in groups.items() if n.endswith("-training-sg")]
    [endpoint_sg] = [s for n, s in groups.items() if n.endswith("-endpoints-sg")]
    assert not training.inputs.get("ingress")
    egress = training.inputs["egress"]
    assert all((e["protocol"], e["fromPort"], e["toPort"]) == ("tcp", 443, 443) for e in egress)
    assert {"pl-63a5400a"} == {p for e in egress for p in e.get("prefixLists", e.get("prefixListIds", []))}
    assert [endpoint_sg.outputs["id"]] in [e.get("securityGroups") for e in egress]
    assert each_stack.outputs["trainingSecurityGroupId"] == training.outputs["id"]
    assert each_stack.outputs["trainingSecurityGroupId"] != each_stack.outputs["endpointSecurityGroupId"]


def test_training_security_group_can_stay_off_the_internet(pulumi_mock) -> None:
    from components.network import Network, NetworkArgs

    args = NetworkArgs(
        cidr="10.0.0.0/16",
        availability_zones=["us-east-1a", "us-east-1b"],
        region="us-east-1",
        flow_log_key_arn="arn:aws:kms:us-east-1:123456789012:key/logs",
        training_internet_egress=False,
    )
    result = pulumi_mock(lambda: {"sg": Network("n", args).training_security_group_id})
    [training] = [
        s for s in result.of_type("aws:ec2/securityGroup:SecurityGroup") if s.name == "n-training-sg"
    ]
    assert all("cidrBlocks" not in e for e in training.inputs["egress"])
    assert len(training.inputs["egress"]) == 2


def test_default_security_group_has_no_rules(each_stack: SynthResult) -> None:
    (default,) = each_stack.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert not default.inputs.get("ingress")
    assert not default.inputs.get("egress")


def test_flow_logs_go_to_a_log_group_encrypted_with_the_logs_key(each_stack: SynthResult) -> None:
    (flow,) = each_stack.of_type("aws:ec2/flowLog:FlowLog")
    group = next(
        g
        for g in each_stack.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.outputs["arn"] == flow.inputs["logDestination"]
    )
    assert group.inputs["kmsKeyId"] == each_stack.outputs["logsKeyArn"]
    assert flow.inputs["trafficType"] == "ALL"
    assert flow.inputs["vpcId"] == each_stack.outputs["vpcId"]
    role = next(
        r for r in each_stack.of_type("aws:iam/role:Role") if r.outputs["arn"] == flow.inputs["iamRoleArn"]
    )
    (trust,) = statements(policy(role, "assumeRolePolicy"))
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert trust["Condition"]["ArnLike"] == {
        "aws:SourceArn": "arn:aws:ec2:us-east-1:123456789012:vpc-flow-log/*"
    }
    (perm,) = [
        p for p in each_stack.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("flow-logs-write")
    ]
    (stmt,) = statements(policy(perm))
    assert "*" not in as_list(stmt["Resource"])
    assert all(r.startswith(group.outputs["arn"]) for r in stmt["Resource"])


def test_network_args_validation() -> None:
    with pytest.raises(ValueError, match=r"availability_zones has 1: need at least 2"):
        NetworkArgs(
            cidr="10.0.0.0/16", availability_zones=["us-east-1a"], region="us-east-1", flow_log_key_arn="arn"
        )


# --- DataLake -----------------------------------------------------------------------------------


def test_every_bucket_is_versioned_private_owner_enforced_and_lifecycled(each_stack: SynthResult) -> None:
    buckets = buckets_by_role(each_stack)
    assert set(buckets) == {*DATA_ROLES, "access-logs"}
    for role, bucket in buckets.items():
        versioning = for_bucket(each_stack, "aws:s3/bucketVersioning:BucketVersioning", bucket)
        assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled", role
        pab = for_bucket(each_stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
        for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
            assert pab.inputs[flag] is True, f"{role}: {flag}"
        own = for_bucket(each_stack, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket)
        assert own.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
        life = for_bucket(
            each_stack, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket
        )
        rules = {r["id"]: r for r in life.inputs["rules"]}
        assert (
            rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"][
                "daysAfterInitiation"
            ]
            == 7
        )
        assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] >= 1
        assert all(r["status"] == "Enabled" for r in rules.values())


def test_data_buckets_use_the_right_platform_key_with_bucket_keys(each_stack: SynthResult) -> None:
    buckets = buckets_by_role(each_stack)
    for role in DATA_ROLES:
        sse = for_bucket(
            each_stack,
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            buckets[role],
        )
        (rule,) = sse.inputs["rules"]
        assert rule["applyServerSideEncryptionByDefault"] == {
            "sseAlgorithm": "aws:kms",
            "kmsMasterKeyId": each_stack.outputs[KEY_OF_ROLE[role]],
        }, role
        assert rule["bucketKeyEnabled"] is True
    # the access-log bucket: SSE-S3, the encryption S3 supports for log destinations
    sse = for_bucket(
        each_stack,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        buckets["access-logs"],
    )
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}


def test_every_bucket_policy_denies_insecure_transport(each_stack: SynthResult) -> None:
    for role, bucket in buckets_by_role(each_stack).items():
        stmts = statements(policy(for_bucket(each_stack, "aws:s3/bucketPolicy:BucketPolicy", bucket)))
        arn = bucket.outputs["arn"]
        deny = [s for s in stmts if s.get("Sid") == "DenyInsecureTransport"]
        assert deny == [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ], role
        for s in stmts:
            if s["Effect"] == "Allow":
                assert s["Principal"] != "*", f"{role}: Allow with wildcard principal"


def test_access_logging_goes_to_the_log_bucket_except_itself(each_stack: SynthResult) -> None:
    buckets = buckets_by_role(each_stack)
    logs = buckets["access-logs"]
    logging = each_stack.of_type("aws:s3/bucketLogging:BucketLogging")
    assert {entry.inputs["bucket"] for entry in logging} == {buckets[r].outputs["bucket"] for r in DATA_ROLES}
    for entry in logging:
        assert entry.inputs["targetBucket"] == logs.outputs["bucket"]
    stmts = statements(policy(for_bucket(each_stack, "aws:s3/bucketPolicy:BucketPolicy", logs)))
    (delivery,) = [s for s in stmts if s["Effect"] == "Allow"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == "s3:PutObject"
    assert sorted(delivery["Condition"]["ArnLike"]["aws:SourceArn"]) == sorted(
        buckets[r].outputs["arn"] for r in DATA_ROLES
    )
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}


@pytest.mark.parametrize(("stack", "protected"), [("dev", False), ("staging", True), ("prod", True)])
def test_data_protection_per_environment(synth_stack, stack: str, protected: bool) -> None:
    result = synth_stack(stack)
    for bucket in result.of_type("aws:s3/bucket:Bucket"):
        assert bucket.protect is protected, bucket.name
        assert bucket.retain_on_delete is protected, bucket.name
        assert bucket.inputs["forceDestroy"] is (not protected), bucket.name
    for key in result.of_type("aws:kms/key:Key"):
        assert key.protect is protected


def test_datalake_args_reject_contradictions() -> None:
    with pytest.raises(ValueError, match="protect=True and force_destroy=True"):
        DataLakeArgs(key_arns={"datalake": "a", "ml": "b"}, protect=True, force_destroy=True)
    with pytest.raises(ValueError, match=r"missing keys for domains \['ml'\]"):
        DataLakeArgs(key_arns={"datalake": "a"})


# --- cross-cutting ------------------------------------------------------------------------------


def test_every_taggable_resource_carries_the_platform_tags(each_stack: SynthResult) -> None:
    expected = {
        "project": "mlops-platform",
        "environment": each_stack.stack,
        "owner": "ml-platform",
        "managed-by": "pulumi",
    }
    checked = 0
    for r in each_stack.custom():
        if r.type.startswith("aws:") and is_taggable(r.type):
            tags = r.inputs.get("tags") or {}
            assert expected.items() <= tags.items(), f"{r.type} {r.name} is missing platform tags"
            assert tags.get("cost-center"), r.name
            checked += 1
    assert checked > 30


def test_every_child_is_parented_to_a_component(each_stack: SynthResult) -> None:
    components = {r.urn for r in each_stack.resources if not r.custom}
    for r in each_stack.custom():
        assert r.parent in components, f"{r.type} {r.name} has parent {r.parent}"


OWN_SECURITY_GROUPS = (
    "-endpoints-sg",
    "-training-sg",
    "-api-clients-sg",
    "-studio-engine-sg",
    "-studio-workspace-sg",
)


def test_platform_security_groups_are_auto_named(each_stack: SynthResult) -> None:
    # issue 12 item 22: a fixed GroupName collides when a replacement is created before the old one is
    # deleted; without `name` Pulumi auto-names the group (random suffix), so replacement is safe.
    groups = [
        s
        for s in each_stack.of_type("aws:ec2/securityGroup:SecurityGroup")
        if s.name.endswith(OWN_SECURITY_GROUPS)
    ]
    assert {g.name.rsplit("-", 2)[-2] for g in groups} >= {"endpoints", "training"}
    for group in groups:
        assert "name" not in group.inputs, f"{group.name} has the fixed name {group.inputs['name']!r}"
