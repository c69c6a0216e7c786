"""SageMaker model registry: model package groups, a cross-account group policy, the execution role."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components._util import (
    account_id,
    child_opts,
    partition,
    policy_document,
    policy_json,
    service_trust_policy,
)

CROSS_ACCOUNT_PACKAGE_ACTIONS = (
    "sagemaker:DescribeModelPackage",
    "sagemaker:ListModelPackages",
    "sagemaker:CreateModel",
)
"""What a named account may do with the group's package versions: read them and deploy them as a
model. Approval (``UpdateModelPackage``) stays with the owning account. Resource policy shape from
"Cross-account model registry": https://docs.aws.amazon.com/sagemaker/latest/dg/model-registry-ram.html
and the PutModelPackageGroupPolicy API reference."""


def group_resource_policy(
    group_arn: str, region: str, account: str, group: str, part: str, accounts: Sequence[str]
) -> str:
    """The model package group resource policy letting ``accounts`` describe and deploy its packages."""
    principals = [f"arn:{part}:iam::{a}:root" for a in accounts]
    principal: dict[str, Any] = {"AWS": principals if len(principals) > 1 else principals[0]}
    return policy_json(
        [
            {
                "Sid": "DescribeGroup",
                "Effect": "Allow",
                "Principal": principal,
                "Action": "sagemaker:DescribeModelPackageGroup",
                "Resource": group_arn,
            },
            {
                "Sid": "UsePackages",
                "Effect": "Allow",
                "Principal": principal,
                "Action": list(CROSS_ACCOUNT_PACKAGE_ACTIONS),
                "Resource": f"arn:{part}:sagemaker:{region}:{account}:model-package/{group}/*",
            },
        ]
    )


SAGEMAKER_JOB_LOG_GROUPS = ("TrainingJobs", "ProcessingJobs", "TransformJobs")
"""``/aws/sagemaker/<kind>`` log groups SageMaker writes job logs to."""


@dataclass(frozen=True, kw_only=True)
class ModelRegistryArgs:
    """Arguments of :class:`ModelRegistry`."""

    name_prefix: str
    """Prefix of physical names (``mlops-prod``); groups are ``<prefix>-<group>``."""
    region: str
    """Region (ARNs in policies)."""
    groups: Sequence[str]
    """Short names of the model package groups (one per model)."""
    group_contracts: Mapping[str, str] = field(default_factory=dict)
    """Dataset contract of each group (short name -> contract), written to the ``mlops:contract`` tag."""
    artifacts_bucket_arn: pulumi.Input[str]
    """Bucket of models and code (``models/``, ``code/``, ``evaluation``)."""
    features_bucket_arn: pulumi.Input[str]
    """Bucket of feature tables (training input, read-only)."""
    capture_bucket_arn: pulumi.Input[str]
    """Bucket endpoint data capture is written to."""
    ml_key_arn: pulumi.Input[str]
    """KMS key of the artifacts and capture buckets."""
    datalake_key_arn: pulumi.Input[str]
    """KMS key of the features bucket (decrypt only)."""
    cross_account_ids: Sequence[str] = ()
    """Accounts allowed to describe and deploy the packages. Empty: no policy."""
    ecr_repository_prefix: str | None = None
    """Repositories of this account the role may pull from (``<prefix>*``); SageMaker's own framework images
    are always allowed.
    """
    logs_key_arn: pulumi.Input[str] | None = None
    """Key of the pre-created SageMaker job log groups; None: the groups are not declared here (another
    stack in the same account and region owns them)."""
    log_retention_days: int = 30
    """Retention of those log groups."""
    rollback_alarm_names: Sequence[str] = ()
    """Alarms outside the platform's ``<prefix>-*`` names that roll endpoint updates back (the role
    describes them during a guarded update)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child."""

    def __post_init__(self) -> None:
        if not self.groups:
            raise ValueError("ModelRegistryArgs.groups: name at least one model package group")
        if len(set(self.groups)) != len(self.groups):
            raise ValueError(f"ModelRegistryArgs.groups: names must be unique, got {list(self.groups)}")
        bad = [a for a in self.cross_account_ids if not (len(a) == 12 and a.isdigit())]
        if bad:
            raise ValueError(f"ModelRegistryArgs.cross_account_ids: {bad} are not 12-digit account IDs")


class ModelRegistry(pulumi.ComponentResource):
    """Model package groups, an optional cross-account group policy, and the SageMaker execution role.

    The execution role (used by training and processing jobs and by the endpoint's model) is least
    privilege, never ``AmazonSageMakerFullAccess``: it reads ``code/`` and ``models/`` and writes
    ``models/`` in the artifacts bucket, reads ``features/``, writes the capture bucket, uses the
    ML key (and decrypts the lake key for features), pulls images, writes its logs and metrics, and
    manages the network interfaces a VPC job or model needs.

    Outputs:
        group_names: ``{short name: model package group name}``.
        group_arns: ``{short name: model package group ARN}``.
        execution_role_arn: The SageMaker execution role ARN.
        execution_role_name: Its name.
    """

    group_names: dict[str, pulumi.Output[str]]
    group_arns: dict[str, pulumi.Output[str]]
    execution_role_arn: pulumi.Output[str]
    execution_role_name: pulumi.Output[str]
    log_group_names: list[pulumi.Output[str]]

    def __init__(
        self, name: str, args: ModelRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:registry:ModelRegistry", name, None, opts)
        account = account_id(self)
        part = partition(self)
        tags = dict(args.tags)

        self.group_names, self.group_arns = {}, {}
        for group in args.groups:
            physical = f"{args.name_prefix}-{group}"
            mpg = aws.sagemaker.ModelPackageGroup(
                f"{name}-{group}-group",
                model_package_group_name=physical,
                model_package_group_description=f"{args.name_prefix}: versions of the {group} model",
                tags={
                    **tags,
                    "model": group,
                    **(
                        {"mlops:contract": args.group_contracts[group]}
                        if group in args.group_contracts
                        else {}
                    ),
                },
                opts=child_opts(self),
            )
            if args.cross_account_ids:
                accounts = list(args.cross_account_ids)
                aws.sagemaker.ModelPackageGroupPolicy(
                    f"{name}-{group}-group-policy",
                    model_package_group_name=mpg.model_package_group_name,
                    resource_policy=pulumi.Output.all(mpg.arn, account, part).apply(
                        lambda v, physical=physical, accounts=accounts: group_resource_policy(
                            str(v[0]), args.region, str(v[1]), physical, str(v[2]), accounts
                        )
                    ),
                    opts=child_opts(self),
                )
            self.group_names[group] = mpg.model_package_group_name
            self.group_arns[group] = mpg.arn
        if args.cross_account_ids:
            self._forward_package_events(name, args, account, part, tags)

        role = aws.iam.Role(
            f"{name}-sagemaker-role",
            name=f"{args.name_prefix}-sagemaker-execution",
            description="SageMaker training, processing and hosting for the ML platform",
            # Confused-deputy guard: only SageMaker acting for this account may assume the role.
            assume_role_policy=service_trust_policy(["sagemaker.amazonaws.com"], source_account=account),
            max_session_duration=3600,
            tags=tags,
            opts=child_opts(self),
        )
        aws.iam.RolePolicy(
            f"{name}-sagemaker-policy",
            role=role.id,
            policy=self._execution_policy(args, account, part),
            opts=child_opts(self),
        )
        # SageMaker would create its job log groups itself, unencrypted and kept forever; the role has
        # no logs:CreateLogGroup, so they exist first with the logs key and a retention (issue 12 item 18;
        # group names: https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html). They are
        # per account and region: with two stacks in one account, only one declares them.
        self.log_group_names = []
        if args.logs_key_arn is not None:
            for kind in SAGEMAKER_JOB_LOG_GROUPS:
                group = aws.cloudwatch.LogGroup(
                    f"{name}-{kind.lower()}-logs",
                    name=f"/aws/sagemaker/{kind}",
                    kms_key_id=args.logs_key_arn,
                    retention_in_days=args.log_retention_days,
                    tags=tags,
                    opts=child_opts(self),
                )
                self.log_group_names.append(group.name)
        self.execution_role_arn = role.arn
        self.execution_role_name = role.name
        self.register_outputs(
            {
                "group_names": self.group_names,
                "group_arns": self.group_arns,
                "execution_role_arn": self.execution_role_arn,
                "execution_role_name": self.execution_role_name,
            }
        )

    def _forward_package_events(
        self,
        name: str,
        args: ModelRegistryArgs,
        account: pulumi.Output[str],
        part: pulumi.Output[str],
        tags: Mapping[str, str],
    ) -> None:
        """Forward this registry's package state changes to each ``cross_account_ids`` default bus.

        SageMaker puts them on this account's bus only; a downstream environment in another account
        starts its promotion on them, so a rule here sends them on through a role that may put events on
        those buses only (EventBridge recommends a role for bus targets:
        https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html). The downstream
        stack admits this account on its bus (``Upstream.cross_account``).
        """
        groups = sorted(f"{args.name_prefix}-{g}" for g in args.groups)
        rule = aws.cloudwatch.EventRule(
            f"{name}-forward-events-rule",
            name=f"{args.name_prefix}-package-events-downstream",
            description=f"Forward {args.name_prefix} model package state changes to the downstream accounts",
            event_pattern=json.dumps(
                {
                    "source": ["aws.sagemaker"],
                    "detail-type": ["SageMaker Model Package State Change"],
                    "detail": {"ModelPackageGroupName": groups},
                }
            ),
            tags=tags,
            opts=child_opts(self),
        )
        buses = [
            pulumi.Output.format("arn:{0}:events:{1}:{2}:event-bus/default", part, args.region, other)
            for other in args.cross_account_ids
        ]
        role = aws.iam.Role(
            f"{name}-forward-events-role",
            name=f"{args.name_prefix}-package-events-downstream",
            description=f"EventBridge forwards {args.name_prefix} package events to the downstream buses",
            assume_role_policy=service_trust_policy(
                ["events.amazonaws.com"], source_account=account, source_arn_like=rule.arn
            ),
            tags=tags,
            opts=child_opts(self),
        )
        aws.iam.RolePolicy(
            f"{name}-forward-events-policy",
            role=role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "PutDownstreamEvents",
                        "Effect": "Allow",
                        "Action": "events:PutEvents",
                        "Resource": buses,
                    }
                ]
            ),
            opts=child_opts(self),
        )
        for other, bus in zip(args.cross_account_ids, buses, strict=True):
            aws.cloudwatch.EventTarget(
                f"{name}-forward-events-{other}",
                rule=rule.name,
                arn=bus,
                role_arn=role.arn,
                opts=child_opts(self),
            )

    @staticmethod
    def _execution_policy(
        args: ModelRegistryArgs, account: pulumi.Output[str], part: pulumi.Output[str]
    ) -> pulumi.Output[str]:
        region = args.region
        artifacts, features, capture = (
            args.artifacts_bucket_arn,
            args.features_bucket_arn,
            args.capture_bucket_arn,
        )
        ecr_prefix = args.ecr_repository_prefix or args.name_prefix
        repos = [
            pulumi.Output.format("arn:{0}:ecr:{1}:{2}:repository/{3}*", part, region, account, ecr_prefix),
            # SageMaker's prebuilt framework images (scikit-learn) live in AWS-owned accounts:
            # https://docs.aws.amazon.com/sagemaker/latest/dg-ecr-paths/sagemaker-algo-docker-registry-paths.html
            pulumi.Output.format("arn:{0}:ecr:{1}:*:repository/sagemaker-scikit-learn", part, region),
        ]
        statements: list[dict[str, Any]] = [
            {
                "Sid": "ReadCodeAndModels",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": [
                    pulumi.Output.concat(artifacts, "/code/*"),
                    pulumi.Output.concat(artifacts, "/models/*"),
                    pulumi.Output.concat(features, "/features/*"),
                    # batch transform reads the rows to score (pipelines.batch: predictions/<slug>/input/)
                    pulumi.Output.concat(features, "/predictions/*/input/*"),
                ],
            },
            {
                # ...and writes the joined predictions, SSE-KMS with the lake key (TransformOutput.KmsKeyId)
                "Sid": "WriteBatchPredictions",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                "Resource": [pulumi.Output.concat(features, "/predictions/*/transform/*")],
            },
            {
                "Sid": "WriteModels",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                "Resource": [pulumi.Output.concat(artifacts, "/models/*")],
            },
            {
                # The endpoint writes data capture with the model's execution role.
                "Sid": "WriteCapture",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                "Resource": [pulumi.Output.concat(capture, "/*")],
            },
            {
                "Sid": "ListPlatformBuckets",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": [artifacts, features, capture],
            },
            {
                # kms:Encrypt besides GenerateDataKey: SageMaker's OutputDataConfig.KmsKeyId and
                # VolumeKmsKeyId need it from the execution role
                # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_OutputDataConfig.html).
                "Sid": "UseMlKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                "Resource": [args.ml_key_arn],
            },
            {
                # Guardrail auto-rollback reads the rollback alarms as the endpoint's execution role
                # (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html).
                "Sid": "DescribeRollbackAlarms",
                "Effect": "Allow",
                "Action": "cloudwatch:DescribeAlarms",
                "Resource": [
                    pulumi.Output.format(
                        "arn:{0}:cloudwatch:{1}:{2}:alarm:{3}-*", part, region, account, args.name_prefix
                    ),
                    *(
                        pulumi.Output.format("arn:{0}:cloudwatch:{1}:{2}:alarm:{3}", part, region, account, n)
                        for n in args.rollback_alarm_names
                    ),
                ],
            },
            {
                # Encrypted training/processing volumes: SageMaker creates a grant on the key for the
                # instance, only ever for an AWS resource.
                "Sid": "GrantMlKeyToSageMakerVolumes",
                "Effect": "Allow",
                "Action": "kms:CreateGrant",
                "Resource": [args.ml_key_arn],
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
            {
                "Sid": "DecryptFeatures",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": [args.datalake_key_arn],
            },
            {
                # batch transform output goes to the lake encrypted with the lake key
                # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TransformOutput.html, KmsKeyId)
                "Sid": "EncryptBatchPredictions",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Encrypt", "kms:DescribeKey"],
                "Resource": [args.datalake_key_arn],
            },
            {
                # GetAuthorizationToken has no resource-level permissions (ECR service authorization).
                "Sid": "EcrToken",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
            {
                "Sid": "PullImages",
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                "Resource": repos,
            },
            {
                "Sid": "WriteLogs",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                "Resource": [
                    pulumi.Output.format(
                        "arn:{0}:logs:{1}:{2}:log-group:/aws/sagemaker/*", part, region, account
                    )
                ],
            },
            {
                "Sid": "PublishSageMakerMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {
                    "StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}
                },
            },
            {
                # Jobs and models in a VPC: SageMaker creates ENIs in the private subnets
                # (https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html, CreateModel API).
                "Sid": "VpcNetworkInterfaces",
                "Effect": "Allow",
                "Action": [
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                ],
                "Resource": [
                    pulumi.Output.format("arn:{0}:ec2:{1}:{2}:network-interface/*", part, region, account),
                    pulumi.Output.format("arn:{0}:ec2:{1}:{2}:subnet/*", part, region, account),
                    pulumi.Output.format("arn:{0}:ec2:{1}:{2}:security-group/*", part, region, account),
                ],
            },
            {
                # Describe* calls have no resource-level permissions.
                "Sid": "DescribeVpc",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                "Resource": "*",
            },
        ]
        return policy_document(statements)
