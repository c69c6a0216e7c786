"""Every rule against a compliant and a non-compliant resource (or small stack)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policies.core import REGISTRY, Context, Level, Resource
from policies.engine import all_rules, check_resource, evaluate
from tests.unit.policies.data_science_cases import RESOURCE_CASES as DS_RESOURCE_CASES
from tests.unit.policies.data_science_cases import STACK_CASES as DS_STACK_CASES

ACCT = "123456789012"
KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/abc"
TAGS = {"owner": "team", "environment": "prod", "cost-center": "cc"}


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def trust(principal: Any, **extra: Any) -> str:
    return doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra})


SRC = {"Condition": {"StringEquals": {"aws:SourceAccount": ACCT}}}
OIDC = {"Federated": f"arn:aws:iam::{ACCT}:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X"}
ENDPOINT_VARIANT = {"variantName": "primary", "instanceType": "ml.m5.xlarge", "initialInstanceCount": 2}

# (rule id, resource type, environment, compliant props, non-compliant props)
RESOURCE_CASES: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "s3-no-public-policy",
        "aws:s3/bucketPolicy:BucketPolicy",
        "prod",
        {
            "policy": doc(
                allow("s3:GetObject", "arn:aws:s3:::b/*", Principal={"AWS": f"arn:aws:iam::{ACCT}:root"})
            )
        },
        {"policy": doc(allow("s3:GetObject", "arn:aws:s3:::b/*", Principal="*"))},
    ),
    ("s3-no-public-acl", "aws:s3/bucketAcl:BucketAcl", "prod", {"acl": "private"}, {"acl": "public-read"}),
    (
        "s3-prod-no-force-destroy",
        "aws:s3/bucket:Bucket",
        "prod",
        {"forceDestroy": False},
        {"forceDestroy": True},
    ),
    (
        "kms-key-rotation",
        "aws:kms/key:Key",
        "prod",
        {"enableKeyRotation": True},
        {"enableKeyRotation": False},
    ),
    ("kms-key-policy-defined", "aws:kms/key:Key", "prod", {"policy": doc()}, {}),
    (
        "kms-no-wildcard-principal",
        "aws:kms/key:Key",
        "prod",
        {"policy": doc(allow("kms:*", "*", Principal={"AWS": f"arn:aws:iam::{ACCT}:root"}))},
        {"policy": doc(allow("kms:Decrypt", "*", Principal={"AWS": "*"}))},
    ),
    ("kms-no-lockout-bypass", "aws:kms/key:Key", "prod", {}, {"bypassPolicyLockoutSafetyCheck": True}),
    (
        "kms-prod-deletion-window",
        "aws:kms/key:Key",
        "prod",
        {"deletionWindowInDays": 30},
        {"deletionWindowInDays": 7},
    ),
    (
        "iam-no-admin",
        "aws:iam/rolePolicy:RolePolicy",
        "prod",
        {"policy": doc(allow("s3:GetObject", "arn:aws:s3:::b/*"))},
        {"policy": doc(allow("*", "*"))},
    ),
    (
        "iam-no-wildcard-action",
        "aws:iam/policy:Policy",
        "prod",
        {"policy": doc(allow("s3:GetObject", "arn:aws:s3:::b/*"))},
        {"policy": doc(allow("s3:*", "arn:aws:s3:::b/*"))},
    ),
    (
        "iam-no-passrole-star",
        "aws:iam/rolePolicy:RolePolicy",
        "prod",
        {"policy": doc(allow("iam:PassRole", f"arn:aws:iam::{ACCT}:role/sagemaker"))},
        {"policy": doc(allow("iam:PassRole", "*"))},
    ),
    (
        "iam-no-privilege-escalation",
        "aws:iam/rolePolicy:RolePolicy",
        "prod",
        {"policy": doc(allow("iam:GetRole", f"arn:aws:iam::{ACCT}:role/x"))},
        {"policy": doc(allow(["iam:PutRolePolicy"], "*"))},
    ),
    (
        "iam-no-full-access-managed-policy",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "prod",
        {"policyArn": "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"},
        {"policyArn": "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"},
    ),
    (
        "iam-trust-no-wildcard-principal",
        "aws:iam/role:Role",
        "prod",
        {"assumeRolePolicy": trust({"Service": "sagemaker.amazonaws.com"}, **SRC)},
        {"assumeRolePolicy": trust({"AWS": "*"})},
    ),
    (
        "iam-trust-confused-deputy",
        "aws:iam/role:Role",
        "prod",
        {"assumeRolePolicy": trust({"Service": "codebuild.amazonaws.com"}, **SRC)},
        {"assumeRolePolicy": trust({"Service": "codebuild.amazonaws.com"})},
    ),
    (
        "iam-trust-oidc-scoped",
        "aws:iam/role:Role",
        "prod",
        {
            "assumeRolePolicy": trust(
                OIDC,
                Condition={
                    "StringEquals": {"oidc.eks.us-east-1.amazonaws.com/id/X:sub": "system:serviceaccount:a:b"}
                },
            )
        },
        {
            "assumeRolePolicy": trust(
                OIDC,
                Condition={
                    "StringEquals": {"oidc.eks.us-east-1.amazonaws.com/id/X:aud": "sts.amazonaws.com"}
                },
            )
        },
    ),
    (
        "iam-action-exists",
        "aws:iam/rolePolicy:RolePolicy",
        "prod",
        {"policy": doc(allow(["sagemaker:CreateEndpoint", "s3:Get*"], "*"))},
        {"policy": doc(allow(["sagemaker:CreateEndpoints"], "*"))},
    ),
    (
        "iam-resource-arn-matches-action",
        "aws:iam/rolePolicy:RolePolicy",
        "prod",
        {"policy": doc(allow(["s3:GetObject", "s3:ListBucket"], ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]))},
        {"policy": doc(allow(["s3:GetObject"], ["arn:aws:s3:::b"]))},
    ),
    (
        "iam-restrictable-resource-star",
        "aws:iam/rolePolicy:RolePolicy",
        "dev",
        {"policy": doc(allow("ecr:GetAuthorizationToken", "*"))},
        {"policy": doc(allow("s3:GetObject", "*"))},
    ),
    (
        "iam-s3-data-access-scoped",
        "aws:iam/rolePolicy:RolePolicy",
        "prod",
        {"policy": doc(allow("s3:PutObject", "arn:aws:s3:::features/features/*"))},
        {"policy": doc(allow("s3:PutObject", "arn:aws:s3:::*/*"))},
    ),
    (
        "sg-no-world-ingress",
        "aws:ec2/securityGroup:SecurityGroup",
        "prod",
        {"ingress": [{"fromPort": 443, "toPort": 443, "protocol": "tcp", "cidrBlocks": ["10.0.0.0/16"]}]},
        {"ingress": [{"fromPort": 22, "toPort": 22, "protocol": "tcp", "cidrBlocks": ["0.0.0.0/0"]}]},
    ),
    (
        "vpc-default-sg-closed",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "prod",
        {"vpcId": "vpc-1"},
        {"vpcId": "vpc-1", "ingress": [{"protocol": "-1", "self": True}]},
    ),
    (
        "subnet-no-public-ip-on-launch",
        "aws:ec2/subnet:Subnet",
        "prod",
        {"mapPublicIpOnLaunch": False},
        {"mapPublicIpOnLaunch": True},
    ),
    (
        "ec2-imdsv2-required",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "prod",
        {"metadataOptions": {"httpTokens": "required"}},
        {"metadataOptions": {"httpTokens": "optional"}},
    ),
    (
        "ec2-ebs-encrypted",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "prod",
        {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "true"}}]},
        {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"encrypted": "false"}}]},
    ),
    (
        "eks-endpoint-private",
        "aws:eks/cluster:Cluster",
        "prod",
        {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}},
        {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}},
    ),
    (
        "eks-secrets-encryption",
        "aws:eks/cluster:Cluster",
        "prod",
        {"encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": KEY}}},
        {},
    ),
    (
        "eks-control-plane-logging",
        "aws:eks/cluster:Cluster",
        "prod",
        {"enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"]},
        {"enabledClusterLogTypes": ["api"]},
    ),
    ("eks-supported-version", "aws:eks/cluster:Cluster", "prod", {"version": "1.35"}, {"version": "1.29"}),
    (
        "eks-nodegroup-no-open-ssh",
        "aws:eks/nodeGroup:NodeGroup",
        "prod",
        {"remoteAccess": {"ec2SshKey": "k", "sourceSecurityGroupIds": ["sg-1"]}},
        {"remoteAccess": {"ec2SshKey": "k"}},
    ),
    (
        "emr-security-configuration-encryption",
        "aws:emr/securityConfiguration:SecurityConfiguration",
        "prod",
        {
            "configuration": json.dumps(
                {
                    "EncryptionConfiguration": {
                        "EnableAtRestEncryption": True,
                        "EnableInTransitEncryption": True,
                        "AtRestEncryptionConfiguration": {
                            "S3EncryptionConfiguration": {"EncryptionMode": "SSE-KMS", "AwsKmsKey": KEY},
                            "LocalDiskEncryptionConfiguration": {
                                "EncryptionKeyProviderType": "AwsKms",
                                "EnableEbsEncryption": True,
                            },
                        },
                    }
                }
            )
        },
        {"configuration": json.dumps({"EncryptionConfiguration": {"EnableAtRestEncryption": False}})},
    ),
    ("emr-studio-encrypted", "aws:emr/studio:Studio", "prod", {"encryptionKeyArn": KEY}, {}),
    (
        "athena-workgroup-enforced",
        "aws:athena/workgroup:Workgroup",
        "prod",
        {"configuration": {"enforceWorkgroupConfiguration": True}},
        {"configuration": {}},
    ),
    (
        "athena-workgroup-encrypted",
        "aws:athena/workgroup:Workgroup",
        "prod",
        {
            "configuration": {
                "resultConfiguration": {
                    "encryptionConfiguration": {"encryptionOption": "SSE_KMS", "kmsKeyArn": KEY}
                }
            }
        },
        {
            "configuration": {
                "resultConfiguration": {"encryptionConfiguration": {"encryptionOption": "SSE_S3"}}
            }
        },
    ),
    (
        "athena-bytes-scanned-cutoff",
        "aws:athena/workgroup:Workgroup",
        "prod",
        {"configuration": {"bytesScannedCutoffPerQuery": 10485760}},
        {"configuration": {}},
    ),
    (
        "athena-database-encrypted",
        "aws:athena/database:Database",
        "prod",
        {"encryptionConfiguration": {"encryptionOption": "SSE_KMS", "kmsKey": KEY}},
        {},
    ),
    ("glue-security-configuration", "aws:glue/crawler:Crawler", "prod", {"securityConfiguration": "sc"}, {}),
    (
        "mwaa-private-webserver",
        "aws:mwaa/environment:Environment",
        "prod",
        {"webserverAccessMode": "PRIVATE_ONLY"},
        {"webserverAccessMode": "PUBLIC_ONLY"},
    ),
    (
        "mwaa-logging",
        "aws:mwaa/environment:Environment",
        "prod",
        {
            "loggingConfiguration": {
                t: {"enabled": True}
                for t in ("dagProcessingLogs", "schedulerLogs", "taskLogs", "webserverLogs", "workerLogs")
            }
        },
        {"loggingConfiguration": {"taskLogs": {"enabled": True}}},
    ),
    ("mwaa-kms", "aws:mwaa/environment:Environment", "prod", {"kmsKey": KEY}, {}),
    (
        "sagemaker-endpoint-config-kms",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "prod",
        {"productionVariants": [ENDPOINT_VARIANT], "kmsKeyArn": KEY},
        {"productionVariants": [ENDPOINT_VARIANT]},
    ),
    (
        "sagemaker-data-capture",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "staging",
        {"dataCaptureConfig": {"enableCapture": True, "kmsKeyId": KEY}},
        {"dataCaptureConfig": {"enableCapture": False}},
    ),
    (
        "sagemaker-prod-multi-instance",
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        "prod",
        {"productionVariants": [ENDPOINT_VARIANT]},
        {"productionVariants": [{**ENDPOINT_VARIANT, "initialInstanceCount": 1}]},
    ),
    (
        "sagemaker-model-isolation-or-vpc",
        "aws:sagemaker/model:Model",
        "prod",
        {"enableNetworkIsolation": True},
        {"enableNetworkIsolation": False},
    ),
    (
        "sagemaker-no-direct-internet",
        "aws:sagemaker/notebookInstance:NotebookInstance",
        "prod",
        {"directInternetAccess": "Disabled"},
        {"directInternetAccess": "Enabled"},
    ),
    (
        "sagemaker-package-group-policy-named-accounts",
        "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy",
        "prod",
        {
            "resourcePolicy": doc(
                allow(
                    "sagemaker:DescribeModelPackage", "*", Principal={"AWS": "arn:aws:iam::210987654321:root"}
                )
            )
        },
        {"resourcePolicy": doc(allow("sagemaker:DescribeModelPackage", "*", Principal={"AWS": "*"}))},
    ),
    (
        "sagemaker-prod-deployment-guardrails",
        "aws:sagemaker/endpoint:Endpoint",
        "prod",
        {
            "deploymentConfig": {
                "blueGreenUpdatePolicy": {"trafficRoutingConfiguration": {"type": "CANARY"}},
                "autoRollbackConfiguration": {"alarms": [{"alarmName": "errors"}]},
            }
        },
        {
            "deploymentConfig": {
                "blueGreenUpdatePolicy": {"trafficRoutingConfiguration": {"type": "ALL_AT_ONCE"}}
            }
        },
    ),
    ("logs-kms", "aws:cloudwatch/logGroup:LogGroup", "prod", {"kmsKeyId": KEY}, {}),
    (
        "logs-retention",
        "aws:cloudwatch/logGroup:LogGroup",
        "prod",
        {"retentionInDays": 365},
        {"retentionInDays": 30},
    ),
    ("sns-kms", "aws:sns/topic:Topic", "prod", {"kmsMasterKeyId": KEY}, {"kmsMasterKeyId": "alias/aws/sns"}),
    (
        "codebuild-encrypted-artifacts",
        "aws:codebuild/project:Project",
        "prod",
        {"artifacts": {"type": "CODEPIPELINE"}, "encryptionKey": KEY},
        {"artifacts": {"type": "S3", "encryptionDisabled": True}, "encryptionKey": KEY},
    ),
    (
        "codebuild-no-privileged-mode",
        "aws:codebuild/project:Project",
        "prod",
        {"environment": {"privilegedMode": True}, "tags": {"privileged-reason": "builds the serving image"}},
        {"environment": {"privilegedMode": True}},
    ),
    (
        "codepipeline-artifact-kms",
        "aws:codepipeline/pipeline:Pipeline",
        "prod",
        {"artifactStores": [{"location": "b", "type": "S3", "encryptionKey": {"id": KEY, "type": "KMS"}}]},
        {"artifactStores": [{"location": "b", "type": "S3"}]},
    ),
    (
        "ecr-immutable-tags",
        "aws:ecr/repository:Repository",
        "prod",
        {"imageTagMutability": "IMMUTABLE"},
        {"imageTagMutability": "MUTABLE"},
    ),
    (
        "ecr-scan-on-push",
        "aws:ecr/repository:Repository",
        "prod",
        {"imageScanningConfiguration": {"scanOnPush": True}},
        {},
    ),
    (
        "ecr-kms",
        "aws:ecr/repository:Repository",
        "prod",
        {"encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY}]},
        {"encryptionConfigurations": [{"encryptionType": "AES256"}]},
    ),
    ("tags-required", "aws:sns/topic:Topic", "prod", {"tags": TAGS}, {"tags": {"owner": "team"}}),
]
RESOURCE_CASES += DS_RESOURCE_CASES  # the data science rules' cases (their own module)


@pytest.mark.parametrize(
    ("rule_id", "rtype", "env", "good", "bad"), RESOURCE_CASES, ids=[c[0] for c in RESOURCE_CASES]
)
def test_resource_rule(rule_id: str, rtype: str, env: str, good: dict[str, Any], bad: dict[str, Any]) -> None:
    rule = REGISTRY[rule_id]
    assert rule.check_resource is not None
    assert rule.applies_to(rtype)
    ctx = Context(env)
    assert check_resource(rule, Resource("urn:good", rtype, "good", good), ctx) == []
    messages = check_resource(rule, Resource("urn:bad", rtype, "bad", bad), ctx)
    assert messages, f"{rule_id} accepted a non-compliant {rtype}"
    assert all(isinstance(m, str) and m for m in messages)


# -- stack rules: a small stack per case -----------------------------------------------------

BUCKET = Resource("urn:b", "aws:s3/bucket:Bucket", "data", {}, ids=frozenset({"data-1"}))
LOGS = Resource("urn:l", "aws:s3/bucket:Bucket", "logs", {}, ids=frozenset({"logs-1"}))


def cfg(type_token: str, name: str, bucket: str = "data-1", **props: Any) -> Resource:
    return Resource(f"urn:{name}", type_token, name, {"bucket": bucket, **props})


def sse(algorithm: str, key: str | None = KEY, bucket: str = "data-1", bucket_key: bool = True) -> Resource:
    default: dict[str, Any] = {"sseAlgorithm": algorithm}
    if key:
        default["kmsMasterKeyId"] = key
    rule = {"applyServerSideEncryptionByDefault": default, "bucketKeyEnabled": bucket_key}
    return cfg(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "sse",
        bucket,
        rules=[rule],
    )


PAB: dict[str, Any] = dict.fromkeys(
    ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True
)
TLS = doc(
    {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
)
VPC = Resource("urn:vpc", "aws:ec2/vpc:Vpc", "vpc", {}, ids=frozenset({"vpc-1"}))
GLUE_DB = Resource("urn:db", "aws:glue/catalogDatabase:CatalogDatabase", "db", {"name": "lake"})
CATALOG = Resource(
    "urn:cat",
    "aws:glue/dataCatalogEncryptionSettings:DataCatalogEncryptionSettings",
    "cat",
    {
        "dataCatalogEncryptionSettings": {
            "encryptionAtRest": {"catalogEncryptionMode": "SSE-KMS", "sseAwsKmsKeyId": KEY},
            "connectionPasswordEncryption": {"returnConnectionPasswordEncrypted": True, "awsKmsKeyId": KEY},
        }
    },
)

# (rule id, compliant stack, non-compliant stack)
STACK_CASES: list[tuple[str, list[Resource], list[Resource]]] = [
    ("s3-bucket-encryption-kms", [BUCKET, sse("aws:kms")], [BUCKET, sse("AES256", None)]),
    ("s3-bucket-key-enabled", [BUCKET, sse("aws:kms")], [BUCKET, sse("aws:kms", bucket_key=False)]),
    (
        "s3-bucket-versioning",
        [
            BUCKET,
            cfg(
                "aws:s3/bucketVersioning:BucketVersioning", "v", versioningConfiguration={"status": "Enabled"}
            ),
        ],
        [
            BUCKET,
            cfg(
                "aws:s3/bucketVersioning:BucketVersioning",
                "v",
                versioningConfiguration={"status": "Suspended"},
            ),
        ],
    ),
    (
        "s3-public-access-block",
        [BUCKET, cfg("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "p", **PAB)],
        [
            BUCKET,
            cfg(
                "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                "p",
                **{**PAB, "restrictPublicBuckets": False},
            ),
        ],
    ),
    (
        "s3-ownership-controls",
        [
            BUCKET,
            cfg(
                "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
                "o",
                rule={"objectOwnership": "BucketOwnerEnforced"},
            ),
        ],
        [
            BUCKET,
            cfg(
                "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
                "o",
                rule={"objectOwnership": "ObjectWriter"},
            ),
        ],
    ),
    (
        "s3-tls-only-policy",
        [BUCKET, cfg("aws:s3/bucketPolicy:BucketPolicy", "pol", policy=TLS)],
        [BUCKET, cfg("aws:s3/bucketPolicy:BucketPolicy", "pol", policy=doc())],
    ),
    (
        "s3-access-logging",
        [BUCKET, LOGS, cfg("aws:s3/bucketLogging:BucketLogging", "lg", targetBucket="logs-1")],
        [BUCKET, LOGS],
    ),
    (
        "s3-lifecycle-abort-multipart",
        [
            BUCKET,
            cfg(
                "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                "lc",
                rules=[{"status": "Enabled", "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7}}],
            ),
        ],
        [BUCKET],
    ),
    ("vpc-flow-logs", [VPC, Resource("urn:fl", "aws:ec2/flowLog:FlowLog", "fl", {"vpcId": "vpc-1"})], [VPC]),
    ("glue-catalog-encryption", [GLUE_DB, CATALOG], [GLUE_DB]),
]
STACK_CASES += DS_STACK_CASES  # the data science rules' cases (their own module)


@pytest.mark.parametrize(("rule_id", "good", "bad"), STACK_CASES, ids=[c[0] for c in STACK_CASES])
def test_stack_rule(rule_id: str, good: list[Resource], bad: list[Resource]) -> None:
    rule = REGISTRY[rule_id]
    assert rule.check_stack is not None
    assert evaluate(good, "prod", [rule]) == []
    found = evaluate(bad, "prod", [rule])
    assert found
    assert all(v.rule is rule for v in found)


def test_every_rule_has_a_case() -> None:
    covered = {c[0] for c in RESOURCE_CASES} | {c[0] for c in STACK_CASES}
    assert covered == set(REGISTRY), f"rules without a test case: {sorted(set(REGISTRY) - covered)}"
    assert len(REGISTRY) >= 40


def test_access_log_target_may_use_sse_s3() -> None:
    """The server access log target may use SSE-S3 (log delivery needs no key grant then)."""
    rule = REGISTRY["s3-bucket-encryption-kms"]
    stack = [
        BUCKET,
        LOGS,
        sse("aws:kms"),
        sse("AES256", None, bucket="logs-1"),
        cfg("aws:s3/bucketLogging:BucketLogging", "lg", targetBucket="logs-1"),
    ]
    assert evaluate(stack, "prod", [rule]) == []


def test_levels_are_stricter_in_prod() -> None:
    for rule in all_rules():
        if rule.level("dev") is Level.MANDATORY:
            assert rule.level("prod") is Level.MANDATORY, rule.id
    assert REGISTRY["sagemaker-data-capture"].level("dev") is Level.ADVISORY
    assert REGISTRY["sagemaker-data-capture"].level("staging") is Level.MANDATORY


def test_environment_dependent_check_passes_outside_prod() -> None:
    rule = REGISTRY["logs-retention"]
    res = Resource("urn:lg", "aws:cloudwatch/logGroup:LogGroup", "lg", {"retentionInDays": 30})
    assert check_resource(rule, res, Context("dev")) == []
    assert check_resource(rule, res, Context("prod"))


def test_world_ingress_allowed_for_tagged_load_balancer() -> None:
    rule = REGISTRY["sg-no-world-ingress"]
    props = {
        "tags": {"exposure": "public-load-balancer"},
        "ingress": [{"fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}],
    }
    assert (
        check_resource(
            rule, Resource("urn:sg", "aws:ec2/securityGroup:SecurityGroup", "lb", props), Context("prod")
        )
        == []
    )


def test_rule_docstrings_name_what_they_mirror() -> None:
    for rule in all_rules():
        fn = rule.check_resource or rule.check_stack
        assert fn is not None, rule.id
        assert "Mirrors:" in (fn.__doc__ or ""), rule.id
        assert rule.why, rule.id
        assert rule.fix, rule.id
        assert rule.title, rule.id
