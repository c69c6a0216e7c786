"""EMR Studio (IAM auth mode) for interactive Spark work next to the platform's EMR on EKS.

A service role trusted by ``elasticmapreduce.amazonaws.com`` from this account only, workspace and
engine security groups (workspace egress to the engine on 18888 and HTTPS for Git; engine ingress
18888 from the workspace group only), and Workspace backups in a bucket under ``prefix``, encrypted
with ``key_arn``. Optional in the platform (``mlops-platform:spark.studio``).

Until this component existed its resources were children of :class:`~components.spark.SparkOnEks`;
:attr:`EmrStudioArgs.moved_from` aliases each child under that old parent so an existing stack keeps
them (same logical names, no replacement).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components._util import account_id, child_opts, partition, policy_document, service_trust_policy
from platform_contract.limits import EMR_STUDIO_MAX_SUBNETS

STUDIO_SG_TAG = {"for-use-with-amazon-emr-managed-policies": "true"}
"""Tag the EMR Studio service-role policy conditions on (EMR Studio guide, service role)."""

STUDIO_ENGINE_PORT = 18888
"""Workspaces reach the engine (Jupyter Enterprise Gateway / managed endpoint) on this port."""


@dataclass(frozen=True, kw_only=True)
class EmrStudioArgs:
    """Arguments of :class:`EmrStudio`."""

    region: str
    """Region of the Studio (ARNs in the service-role policy)."""
    vpc_id: pulumi.Input[str]
    """VPC of the Studio and its security groups."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets of the Studio (1-5, ``CreateStudio``)."""
    bucket_name: pulumi.Input[str]
    """Bucket for Workspace and notebook backups."""
    bucket_arn: pulumi.Input[str]
    """ARN of that bucket."""
    key_arn: pulumi.Input[str]
    """KMS key encrypting Workspace backups."""
    prefix: str = "emr-studio/"
    """Key prefix of the backups in the bucket (ends in ``/``)."""
    moved_from: pulumi.Input[str] | pulumi.Resource | None = None
    """The component that declared these resources before (the platform's ``SparkOnEks``); each child
    gets an alias under it, so moving to this component replaces nothing. None for a new Studio."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.subnet_ids) <= EMR_STUDIO_MAX_SUBNETS:
            raise ValueError(
                f"EmrStudioArgs.subnet_ids: EMR Studio takes 1-{EMR_STUDIO_MAX_SUBNETS} subnets, got "
                f"{len(self.subnet_ids)}; pass the first {EMR_STUDIO_MAX_SUBNETS} private subnets"
            )
        if not self.prefix.endswith("/") or self.prefix.startswith("/"):
            raise ValueError(f"EmrStudioArgs.prefix={self.prefix!r}: a key prefix ending in '/'")


class EmrStudio(pulumi.ComponentResource):
    """An EMR Studio with its own service role and security groups.

    Outputs:
        studio_id, studio_url, service_role_arn, workspace_security_group_id, engine_security_group_id.
    """

    studio_id: pulumi.Output[str]
    studio_url: pulumi.Output[str]
    service_role_arn: pulumi.Output[str]
    workspace_security_group_id: pulumi.Output[str]
    engine_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: EmrStudioArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:studio:EmrStudio", name, None, opts)
        tags = dict(args.tags)
        account = account_id(self)
        part = partition(self)
        # Moved from SparkOnEks: an alias under the old parent lets an existing stack keep each child.
        aliases = [pulumi.Alias(parent=args.moved_from)] if args.moved_from is not None else None

        def child() -> pulumi.ResourceOptions:
            return child_opts(self, aliases=aliases)

        sg_tags = {**tags, **STUDIO_SG_TAG}
        # Rules are separate resources: each group's rule references the other group.
        # https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-studio-security-groups.html
        engine_sg = aws.ec2.SecurityGroup(
            f"{name}-studio-engine-sg",
            vpc_id=args.vpc_id,
            description="EMR Studio engine: Workspace traffic on 18888 only",
            revoke_rules_on_delete=True,
            tags={**sg_tags, "Name": f"{name}-studio-engine"},
            opts=child(),
        )
        workspace_sg = aws.ec2.SecurityGroup(
            f"{name}-studio-workspace-sg",
            vpc_id=args.vpc_id,
            description="EMR Studio Workspaces: to the engine on 18888 and HTTPS for Git",
            revoke_rules_on_delete=True,
            tags={**sg_tags, "Name": f"{name}-studio-workspace"},
            opts=child(),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-studio-engine-from-workspace",
            security_group_id=engine_sg.id,
            referenced_security_group_id=workspace_sg.id,
            ip_protocol="tcp",
            from_port=STUDIO_ENGINE_PORT,
            to_port=STUDIO_ENGINE_PORT,
            description="Workspaces in the EMR Studio workspace security group",
            tags=tags,
            opts=child(),
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-studio-workspace-to-engine",
            security_group_id=workspace_sg.id,
            referenced_security_group_id=engine_sg.id,
            ip_protocol="tcp",
            from_port=STUDIO_ENGINE_PORT,
            to_port=STUDIO_ENGINE_PORT,
            description="Engines in the EMR Studio engine security group",
            tags=tags,
            opts=child(),
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-studio-workspace-https",
            security_group_id=workspace_sg.id,
            cidr_ipv4="0.0.0.0/0",  # egress only: linking publicly hosted Git repositories (EMR guide)
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS to Git repositories linked to Workspaces",
            tags=tags,
            opts=child(),
        )

        # Trust with the confused-deputy conditions of the EMR Studio guide:
        # https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-studio-service-role.html
        service_role = aws.iam.Role(
            f"{name}-studio-service-role",
            description=f"EMR Studio service role of {name}",
            assume_role_policy=service_trust_policy(
                ["elasticmapreduce.amazonaws.com"],
                source_account=account,
                source_arn_like=pulumi.Output.concat(
                    "arn:", part, ":elasticmapreduce:", args.region, ":", account, ":*"
                ),
            ),
            tags=tags,
            opts=child(),
        )
        service_policy = aws.iam.RolePolicy(
            f"{name}-studio-service-permissions",
            role=service_role.id,
            policy=policy_document(
                _studio_statements(args, account, part, [workspace_sg.arn, engine_sg.arn])
            ),
            opts=child(),
        )
        studio = aws.emr.Studio(
            f"{name}-studio",
            name=f"{name}-studio",
            description=f"EMR Studio of {name}",
            auth_mode="IAM",
            vpc_id=args.vpc_id,
            subnet_ids=list(args.subnet_ids),
            service_role=service_role.arn,
            workspace_security_group_id=workspace_sg.id,
            engine_security_group_id=engine_sg.id,
            default_s3_location=pulumi.Output.concat("s3://", args.bucket_name, "/", args.prefix),
            encryption_key_arn=args.key_arn,
            tags=tags,
            # the service role must hold its permissions when the Studio is created (issue 12 item 2)
            opts=pulumi.ResourceOptions.merge(child(), pulumi.ResourceOptions(depends_on=[service_policy])),
        )
        self.studio_id = studio.id
        self.studio_url = studio.url
        self.service_role_arn = service_role.arn
        self.workspace_security_group_id = workspace_sg.id
        self.engine_security_group_id = engine_sg.id
        self.register_outputs(
            {
                "studio_id": self.studio_id,
                "studio_url": self.studio_url,
                "service_role_arn": self.service_role_arn,
                "workspace_security_group_id": self.workspace_security_group_id,
                "engine_security_group_id": self.engine_security_group_id,
            }
        )


def _studio_statements(
    args: EmrStudioArgs,
    account: pulumi.Output[str],
    part: pulumi.Output[str],
    security_group_arns: list[pulumi.Output[str]],
) -> list[dict[str, Any]]:
    """The EMR Studio service-role policy of the EMR guide, narrowed to this account, region, VPC,
    subnets and security groups. Statements for the *default* security groups Studio would create
    are left out: this Studio is given its own groups.
    https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-studio-service-role.html
    """
    ec2 = pulumi.Output.concat("arn:", part, ":ec2:", args.region, ":", account)
    tag_condition = {"StringEquals": {"aws:ResourceTag/for-use-with-amazon-emr-managed-policies": "true"}}
    subnet_arns = [pulumi.Output.concat(ec2, ":subnet/", s) for s in args.subnet_ids]
    return [
        {
            "Sid": "AllowEMRReadOnlyActions",
            "Effect": "Allow",
            "Action": [
                "elasticmapreduce:ListInstances",
                "elasticmapreduce:DescribeCluster",
                "elasticmapreduce:ListSteps",
            ],
            "Resource": pulumi.Output.concat(
                "arn:", part, ":elasticmapreduce:", args.region, ":", account, ":cluster/*"
            ),
        },
        {
            "Sid": "AllowEC2ENIActionsWithEMRTags",
            "Effect": "Allow",
            "Action": ["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface"],
            "Resource": pulumi.Output.concat(ec2, ":network-interface/*"),
            "Condition": tag_condition,
        },
        {
            # The guide requires this statement unconditioned for tag-based access control to work.
            "Sid": "AllowEC2ENIAttributeAction",
            "Effect": "Allow",
            "Action": ["ec2:ModifyNetworkInterfaceAttribute"],
            "Resource": [
                pulumi.Output.concat(ec2, ":instance/*"),
                pulumi.Output.concat(ec2, ":network-interface/*"),
                pulumi.Output.concat(ec2, ":security-group/*"),
            ],
        },
        {
            "Sid": "AllowEC2SecurityGroupActionsWithEMRTags",
            "Effect": "Allow",
            "Action": [
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            "Resource": "*",
            "Condition": tag_condition,
        },
        {
            "Sid": "AllowEC2ENICreationWithEMRTags",
            "Effect": "Allow",
            "Action": ["ec2:CreateNetworkInterface"],
            "Resource": pulumi.Output.concat(ec2, ":network-interface/*"),
            "Condition": {
                "StringEquals": {"aws:RequestTag/for-use-with-amazon-emr-managed-policies": "true"}
            },
        },
        {
            # The guide conditions this on tags of the subnets; the platform's subnets are named
            # instead (their tags belong to the Network component).
            "Sid": "AllowEC2ENICreationInStudioSubnetsAndGroups",
            "Effect": "Allow",
            "Action": ["ec2:CreateNetworkInterface"],
            "Resource": [*subnet_arns, *security_group_arns],
        },
        {
            "Sid": "AllowAddingTagsDuringEC2ENICreation",
            "Effect": "Allow",
            "Action": ["ec2:CreateTags"],
            "Resource": pulumi.Output.concat(ec2, ":network-interface/*"),
            "Condition": {"StringEquals": {"ec2:CreateAction": "CreateNetworkInterface"}},
        },
        {
            "Sid": "AllowEC2ReadOnlyActions",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeTags",
                "ec2:DescribeInstances",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
            ],
            "Resource": "*",
        },
        {
            "Sid": "AllowSecretsManagerReadOnlyActionsWithEMRTags",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": pulumi.Output.concat(
                "arn:", part, ":secretsmanager:", args.region, ":", account, ":secret:*"
            ),
            "Condition": tag_condition,
        },
        {
            "Sid": "StudioWorkspaceStorage",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
            "Resource": pulumi.Output.concat(args.bucket_arn, "/", args.prefix, "*"),
        },
        {
            "Sid": "StudioWorkspaceBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetEncryptionConfiguration"],
            "Resource": args.bucket_arn,
        },
        {
            "Sid": "StudioWorkspaceKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            "Resource": args.key_arn,
        },
    ]
