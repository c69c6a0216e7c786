"""Delivery: CodePipeline + CodeBuild for the code, and the model promotion path.

Two pipelines (type V2), both with the artifacts bucket as their KMS-encrypted artifact store:

* **delivery** (code): Source (a CodeConnections connection or an S3 object) -> Test -> Package
  (pipeline wheel, training/inference code, DAGs, requirements) -> Deploy (to the artifacts-bucket
  paths MWAA and the jobs read).
* **promotion** (models): started by an EventBridge rule when a model package in one of the watched
  groups changes to ``Approved``. Source -> for each target stack in order: an optional manual
  approval, then a CodeBuild run of ``pulumi up`` with the approved package ARN (a stack update is
  the only deployment path; SageMaker's guardrails shift the traffic).

Build specs are files in the repository (``delivery/buildspecs/*.yml``) read here, so a buildspec
change is reviewed like code and shows in ``pulumi preview``. Every CodeBuild project has its own
least-privilege role; the promote project's only AWS power is assuming the target's deploy role.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import yaml

from components._util import account_id, child_opts, partition, policy_document, service_trust_policy
from platform_contract.naming import delivery_pipeline_name

BUILDSPEC_DIR = Path(__file__).resolve().parent.parent / "delivery" / "buildspecs"
"""Where the build specs live in the repository."""

MODEL_PACKAGE_EVENT = "SageMaker Model Package State Change"
"""EventBridge detail-type of model package changes:
https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html#eventbridge-model-package"""


def read_buildspec(stage: str, directory: Path = BUILDSPEC_DIR) -> str:
    """The text of ``<directory>/<stage>.yml``, checked to be a CodeBuild buildspec (``version: 0.2``)."""
    path = directory / f"{stage}.yml"
    if not path.is_file():
        raise FileNotFoundError(f"buildspec {path} is missing; every delivery stage needs its file")
    text = path.read_text()
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or str(doc.get("version")) != "0.2" or "phases" not in doc:
        raise ValueError(f"{path}: not a CodeBuild buildspec (needs `version: 0.2` and `phases`)")
    return text


ARTIFACT_FOLDER_CHARS = 20
"""CodePipeline stores a pipeline's artifacts under the first 20 characters of the pipeline's name
(https://repost.aws/questions/QUI91tw7A9SUOMohJurNqmgA: "the pipeline name is truncated to just 20
characters for the folder"; e.g. ``mlops-staging-delivery`` -> ``mlops-staging-delive/``)."""


def _has_reports(buildspec: str) -> bool:
    """Whether a buildspec declares CodeBuild test reports (a top-level ``reports`` section)."""
    import yaml

    loaded = yaml.safe_load(buildspec)
    return isinstance(loaded, dict) and bool(loaded.get("reports"))


def artifact_store_folder(pipeline_name: str) -> str:
    """The folder of ``pipeline_name``'s artifacts in its S3 artifact store."""
    return pipeline_name[:ARTIFACT_FOLDER_CHARS]


def approval_event_pattern(group_names: Sequence[str]) -> str:
    """The EventBridge pattern matching only ``Approved`` packages in ``group_names``."""
    return json.dumps(
        {
            "source": ["aws.sagemaker"],
            "detail-type": [MODEL_PACKAGE_EVENT],
            "detail": {"ModelPackageGroupName": sorted(group_names), "ModelApprovalStatus": ["Approved"]},
        }
    )


SourceKind = Literal["s3", "codeconnections", "codecommit"]
"""Where the pipelines get the repository."""


@dataclass(frozen=True, kw_only=True)
class Source:
    """The repository the pipelines build, and what starts the delivery pipeline when it changes.

    * ``s3``: ``object_key`` in the (versioned) artifacts bucket. The S3 source action does not poll
      (``PollForSourceChanges: false``); an EventBridge rule on the bucket's ``Object Created`` events for
      that key starts the pipeline (the bucket sends events to EventBridge: ``DataLakeArgs.eventbridge_roles``).
    * ``codeconnections``: GitHub, GitLab or Bitbucket through a CodeConnections connection; the
      connection starts the pipeline on a push to ``branch`` (``DetectChanges``).
    * ``codecommit``: a CodeCommit repository; an EventBridge rule on its ``referenceUpdated`` events for
      ``branch`` starts the pipeline (CodePipeline's recommended change detection).
    """

    kind: SourceKind = "s3"
    """``s3``, ``codeconnections`` or ``codecommit``."""
    connection_arn: str | None = None
    """The CodeConnections connection ARN (codeconnections)."""
    repository: str | None = None
    """``owner/repo`` (codeconnections) or the repository name (codecommit)."""
    branch: str = "main"
    """Branch (codeconnections, codecommit)."""
    object_key: str = "delivery/source.zip"
    """Key of the source zip in the artifacts bucket (s3; the bucket is versioned)."""

    def __post_init__(self) -> None:
        if self.kind == "codeconnections" and not (self.connection_arn and self.repository):
            raise ValueError("Source: kind='codeconnections' needs connection_arn and repository")
        if self.kind == "codecommit" and not self.repository:
            raise ValueError("Source: kind='codecommit' needs repository (the CodeCommit repository name)")
        if self.kind == "codecommit" and "/" in (self.repository or ""):
            raise ValueError(f"Source: a CodeCommit repository is a name, not {self.repository!r}")


def s3_source_event_pattern(bucket: str, key: str) -> str:
    """EventBridge pattern of an S3 ``Object Created`` event for exactly ``key`` in ``bucket``
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html)."""
    return json.dumps(
        {
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [bucket]}, "object": {"key": [key]}},
        }
    )


def codecommit_event_pattern(repository_arn: str, branch: str) -> str:
    """EventBridge pattern of a push to ``branch`` of a CodeCommit repository
    (https://docs.aws.amazon.com/codepipeline/latest/userguide/triggering.html)."""
    return json.dumps(
        {
            "source": ["aws.codecommit"],
            "detail-type": ["CodeCommit Repository State Change"],
            "resources": [repository_arn],
            "detail": {
                "event": ["referenceCreated", "referenceUpdated"],
                "referenceType": ["branch"],
                "referenceName": [branch],
            },
        }
    )


@dataclass(frozen=True, kw_only=True)
class Upstream:
    """The environment this stack's promotion imports approved, deployed packages from (copy and
    re-register: the package's artifacts are copied into this environment's artifacts bucket under the
    same keys and registered in this environment's group with the same metadata and lineage)."""

    group_names: Sequence[str]
    """The upstream environment's model package groups (one per model, e.g. ``mlops-staging-churn``)."""
    account_id: pulumi.Input[str]
    """Its account (this account when the environments share one)."""
    artifacts_bucket_name: str
    """Its artifacts bucket (stack output ``artifactsBucket``)."""
    ml_key_arn: str
    """The KMS key of that bucket (stack output ``mlKeyArn``)."""
    cross_account: bool = False
    """The upstream is another account: this account's default event bus admits its forwarded package
    events (the upstream registry forwards them to its ``cross_account_ids``), and the build lists its
    packages by group ARN, through the upstream group policy."""

    def __post_init__(self) -> None:
        if not self.group_names:
            raise ValueError("Upstream.group_names: name the upstream groups to import from")
        if not self.artifacts_bucket_name or not self.ml_key_arn.startswith("arn:"):
            raise ValueError("Upstream: artifacts_bucket_name and ml_key_arn (an ARN) are required")


@dataclass(frozen=True, kw_only=True)
class PromotionTarget:
    """One stack the promotion pipeline updates."""

    stack: str
    """Pulumi stack name."""
    deploy_role_arn: pulumi.Input[str]
    """Role the promote build assumes to run ``pulumi up`` on that stack."""
    manual_approval: bool = False
    """A person approves before this stack is updated."""


@dataclass(frozen=True, kw_only=True)
class BuildVpc:
    """Where the promotion builds run: private subnets of the platform VPC.

    The promote build runs ``pulumi up``, which creates Kubernetes objects through the EKS API;
    with the cluster's private-only endpoint that API is reachable only from inside the VPC.
    """

    vpc_id: pulumi.Input[str]
    """The VPC."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets with a NAT route (the build still needs the internet for pip and the Pulumi backend)."""
    api_client_security_group_id: pulumi.Input[str] | None = None
    """The cluster's API client security group (``Cluster.api_client_security_group_id``), which the cluster
    security group admits on 443: attached to the promote builds so ``pulumi up`` reaches the private EKS
    endpoint (https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html)."""


@dataclass(frozen=True, kw_only=True)
class DeliveryArgs:
    """Arguments of :class:`Delivery`."""

    name_prefix: str
    """Prefix of physical names."""
    region: str
    """Region (ARNs)."""
    source: Source
    """The repository."""
    artifacts_bucket_name: pulumi.Input[str]
    """Artifact store and deployment target bucket."""
    artifacts_bucket_arn: pulumi.Input[str]
    """Its ARN."""
    artifacts_key_arn: pulumi.Input[str]
    """KMS key of that bucket (artifact store encryption)."""
    logs_key_arn: pulumi.Input[str]
    """KMS key of the CodeBuild log groups."""
    log_retention_days: int = 30
    """CodeBuild log retention."""
    code_prefix: str = "code/"
    """Where packaged code goes in the artifacts bucket (``code/``)."""
    airflow_prefix: str = "airflow/"
    """Where DAGs, requirements and plugins go (``airflow/``)."""
    promotion_targets: Sequence[PromotionTarget] = ()
    """Stacks updated in order when a package is approved; empty: no promotion pipeline."""
    watched_group_names: Sequence[pulumi.Input[str]] = ()
    """Model package groups whose approvals start a promotion."""
    approval_topic_arn: pulumi.Input[str] | None = None
    """SNS topic notified of pending manual approvals."""
    pulumi_backend_url: str = ""
    """Backend URL for the promote build (empty: Pulumi Cloud)."""
    pulumi_token_secret_arn: str | None = None
    """Secrets Manager secret with ``PULUMI_ACCESS_TOKEN``, or None."""
    build_image: str = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
    """CodeBuild image."""
    build_compute_type: str = "BUILD_GENERAL1_SMALL"
    """CodeBuild compute type."""
    build_vpc: BuildVpc | None = None
    """Run the promotion builds in these private subnets (None: CodeBuild's own network, which cannot reach a
    private EKS endpoint).
    """
    buildspec_dir: Path = BUILDSPEC_DIR
    """Directory of the build spec files."""
    upstream: Upstream | None = None
    """Import approved packages that were deployed upstream (e.g. staging imports dev's), then deploy them
    here; None: promote only this environment's own approvals."""
    own_group_names: Sequence[pulumi.Input[str]] = ()
    """This environment's groups (imports are registered here); default: ``watched_group_names``."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child."""

    def __post_init__(self) -> None:
        for attr in ("code_prefix", "airflow_prefix"):
            value = getattr(self, attr)
            if not value.endswith("/") or value.startswith("/") or "*" in value:
                raise ValueError(f"DeliveryArgs.{attr}={value!r}: a key prefix ending in '/', without '*'")
        if self.promotion_targets and not self.watched_group_names:
            raise ValueError(
                "DeliveryArgs: promotion_targets need watched_group_names (whose approvals to act on)"
            )
        stacks = [t.stack for t in self.promotion_targets]
        if len(set(stacks)) != len(stacks):
            raise ValueError(f"DeliveryArgs.promotion_targets: stacks must be unique, got {stacks}")
        for target in self.promotion_targets:
            if target.stack.split("/")[-1] == "prod" and not target.manual_approval:
                raise ValueError(f"DeliveryArgs: promotion to {target.stack!r} needs manual_approval=True")


STAGES = ("test", "package", "deploy")
"""CodeBuild stages of the delivery (code) pipeline, in order."""


class Delivery(pulumi.ComponentResource):
    """The delivery pipeline (code) and the model promotion pipeline with its EventBridge trigger.

    Outputs:
        pipeline_name: The delivery (code) pipeline's name.
        promotion_pipeline_name: The promotion pipeline's name (None without targets).
        project_names: ``{stage: CodeBuild project name}``.
        approval_rule_name: EventBridge rule starting a promotion (None without targets).
        source_rule_name: EventBridge rule starting the delivery on a source change (None for
            CodeConnections, which starts the pipeline itself).
        upstream_rule_name: EventBridge rule starting a promotion when an upstream package was deployed
            (None without an upstream).
    """

    pipeline_name: pulumi.Output[str]
    promotion_pipeline_name: pulumi.Output[str] | None
    project_names: dict[str, pulumi.Output[str]]
    approval_rule_name: pulumi.Output[str] | None
    source_rule_name: pulumi.Output[str] | None
    upstream_rule_name: pulumi.Output[str] | None

    def __init__(self, name: str, args: DeliveryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:delivery:Delivery", name, None, opts)
        self._name, self._args = name, args
        self._tags = dict(args.tags)
        self._account = account_id(self)
        self._part = partition(self)
        bucket_arn = args.artifacts_bucket_arn
        code_pipeline = delivery_pipeline_name(args.name_prefix)
        self._code_pipeline = code_pipeline
        promo_pipeline = f"{args.name_prefix}-promotion"
        # CodePipeline writes each pipeline's artifacts under the first 20 characters of its name.
        pipelines = [code_pipeline] + ([promo_pipeline] if args.promotion_targets else [])
        store_prefixes = [artifact_store_folder(p) for p in pipelines]
        if len(set(store_prefixes)) != len(store_prefixes):
            raise ValueError(
                f"DeliveryArgs.name_prefix={args.name_prefix!r}: pipelines {pipelines} share the artifact "
                f"folder {store_prefixes[0]!r} (CodePipeline keeps the first {ARTIFACT_FOLDER_CHARS} "
                "characters of the name); use a shorter prefix"
            )
        self._store_objects = [pulumi.Output.concat(bucket_arn, "/", p, "/*") for p in store_prefixes]

        self.project_names = {}
        projects: dict[str, aws.codebuild.Project] = {}
        for stage in STAGES:
            extra: list[dict[str, Any]] = []
            env: dict[str, pulumi.Input[str]] = {}
            if stage == "deploy":
                env = {
                    "ARTIFACTS_BUCKET": args.artifacts_bucket_name,
                    "CODE_PREFIX": args.code_prefix,
                    "AIRFLOW_PREFIX": args.airflow_prefix,
                    # the copies name the key: "--sse aws:kms" alone means the aws/s3 managed key
                    "ARTIFACTS_KEY_ARN": args.artifacts_key_arn,
                }
                extra.append(
                    {
                        "Sid": "DeployCodeAndDags",
                        "Effect": "Allow",
                        "Action": ["s3:PutObject", "s3:DeleteObject", "s3:GetObject", "s3:GetObjectVersion"],
                        "Resource": [
                            pulumi.Output.concat(bucket_arn, "/", args.code_prefix, "*"),
                            pulumi.Output.concat(bucket_arn, "/", args.airflow_prefix, "*"),
                        ],
                    }
                )
                extra.append(
                    {
                        "Sid": "ListForSync",
                        "Effect": "Allow",
                        "Action": "s3:ListBucket",
                        "Resource": bucket_arn,
                        "Condition": {
                            "StringLike": {"s3:prefix": [f"{args.code_prefix}*", f"{args.airflow_prefix}*"]}
                        },
                    }
                )
            projects[stage] = self._project(stage, env, extra)
            self.project_names[stage] = projects[stage].name

        pipeline_role = self._pipeline_role(
            "pipeline", code_pipeline, [projects[s].arn for s in STAGES], approvals=False
        )
        stages: list[Any] = [{"name": "Source", "actions": [self._source_action(detect_changes=True)]}]
        previous = "source"
        for stage in STAGES:
            output = [f"{stage}_output"] if stage in ("package",) else []
            stages.append(
                {
                    "name": stage.capitalize(),
                    "actions": [
                        {
                            "name": stage.capitalize(),
                            "category": "Build",
                            "owner": "AWS",
                            "provider": "CodeBuild",
                            "version": "1",
                            "input_artifacts": [previous],
                            "output_artifacts": output,
                            "configuration": {"ProjectName": projects[stage].name},
                            "run_order": 1,
                        }
                    ],
                }
            )
            if stage == "package":
                previous = "package_output"
        pipeline = aws.codepipeline.Pipeline(
            f"{name}-pipeline",
            name=code_pipeline,
            pipeline_type="V2",
            execution_mode="SUPERSEDED",
            role_arn=pipeline_role.arn,
            artifact_stores=[self._artifact_store()],
            stages=stages,
            tags=self._tags,
            opts=child_opts(self),
        )
        self.pipeline_name = pipeline.name
        trigger = self._source_trigger(pipeline)
        self.source_rule_name = trigger.name if trigger is not None else None

        self.promotion_pipeline_name = None
        self.approval_rule_name = None
        self.upstream_rule_name = None
        if args.promotion_targets:
            self._promotion(promo_pipeline, self._source_action(detect_changes=False))

        self.register_outputs(
            {
                "pipeline_name": self.pipeline_name,
                "promotion_pipeline_name": self.promotion_pipeline_name,
                "project_names": self.project_names,
                "approval_rule_name": self.approval_rule_name,
                "source_rule_name": self.source_rule_name,
                "upstream_rule_name": self.upstream_rule_name,
            }
        )

    # -- pieces ------------------------------------------------------------------------------
    def _artifact_store(self) -> Any:
        # CKV_AWS_219: artifact store encrypted with a customer managed key.
        return {
            "location": self._args.artifacts_bucket_name,
            "type": "S3",
            "encryption_key": {"id": self._args.artifacts_key_arn, "type": "KMS"},
        }

    def _source_action(self, *, detect_changes: bool) -> dict[str, Any]:
        """The Source action (https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference.html).

        ``detect_changes``: whether a change of the source starts this pipeline. The delivery pipeline
        is started by the source; the promotion pipeline only by an approval, never by a push.
        """
        src = self._args.source
        action: dict[str, Any] = {
            "name": "Source",
            "category": "Source",
            "owner": "AWS",
            "version": "1",
            "output_artifacts": ["source"],
        }
        if src.kind == "codeconnections":
            # https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-CodestarConnectionSource.html
            return {
                **action,
                "provider": "CodeStarSourceConnection",
                "configuration": {
                    "ConnectionArn": src.connection_arn,
                    "FullRepositoryId": src.repository,
                    "BranchName": src.branch,
                    "OutputArtifactFormat": "CODE_ZIP",
                    "DetectChanges": "true" if detect_changes else "false",
                },
            }
        if src.kind == "codecommit":
            # https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-CodeCommit.html;
            # no polling: an EventBridge rule starts the delivery pipeline (_source_trigger).
            return {
                **action,
                "provider": "CodeCommit",
                "configuration": {
                    "RepositoryName": src.repository,
                    "BranchName": src.branch,
                    "PollForSourceChanges": "false",
                    "OutputArtifactFormat": "CODE_ZIP",
                },
            }
        # https://docs.aws.amazon.com/codepipeline/latest/userguide/action-reference-S3.html; the action
        # does not poll, an EventBridge rule on the object's creation starts the pipeline (_source_trigger)
        return {
            **action,
            "provider": "S3",
            "configuration": {
                "S3Bucket": self._args.artifacts_bucket_name,
                "S3ObjectKey": src.object_key,
                "PollForSourceChanges": "false",
            },
        }

    def _codecommit_arn(self) -> pulumi.Output[str]:
        return pulumi.Output.format(
            "arn:{0}:codecommit:{1}:{2}:{3}",
            self._part,
            self._args.region,
            self._account,
            self._args.source.repository,
        )

    def _upstream_group_arns(self) -> pulumi.Output[str]:
        """The upstream groups' ARNs, space-separated in catalog order (``UPSTREAM_GROUPS``)."""
        up = self._args.upstream
        assert up is not None
        arns = [
            pulumi.Output.format(
                "arn:{0}:sagemaker:{1}:{2}:model-package-group/{3}",
                self._part,
                self._args.region,
                up.account_id,
                g,
            )
            for g in up.group_names
        ]
        return pulumi.Output.all(*arns).apply(lambda values: " ".join(str(v) for v in values))

    def _admit_upstream_events(self, up: Upstream) -> None:
        """Let the upstream account put its forwarded package events on this account's default bus.

        The default bus only takes events of its own account until its resource policy admits another
        (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html).
        ``EventPermission`` adds one statement (``PutPermission``) instead of owning the whole bus policy.
        """
        aws.cloudwatch.EventPermission(
            f"{self._name}-upstream-events-permission",
            principal=up.account_id,
            statement_id=f"{self._args.name_prefix}-upstream-package-events",
            action="events:PutEvents",
            event_bus_name="default",
            opts=child_opts(self),
        )

    def _start_rule(
        self,
        role_name: str,
        rule_name: str,
        description: str,
        pattern: pulumi.Input[str],
        pipeline: aws.codepipeline.Pipeline,
        pipeline_name: str,
    ) -> aws.cloudwatch.EventRule:
        """An EventBridge rule starting ``pipeline``, through a role that may start only that pipeline and
        that only EventBridge, for this rule, may assume
        (https://docs.aws.amazon.com/codepipeline/latest/userguide/create-cloudtrail-S3-source-cfn.html)."""
        args = self._args
        rule = aws.cloudwatch.EventRule(
            f"{self._name}-{role_name}-rule",
            name=f"{args.name_prefix}-{rule_name}",
            description=description,
            event_pattern=pattern,
            tags=self._tags,
            opts=child_opts(self),
        )
        events_role = aws.iam.Role(
            f"{self._name}-{role_name}-events-role",
            name=f"{args.name_prefix}-{role_name}",
            description=f"EventBridge rule {args.name_prefix}-{rule_name} starts {pipeline_name}",
            assume_role_policy=service_trust_policy(
                ["events.amazonaws.com"], source_account=self._account, source_arn_like=rule.arn
            ),
            tags=self._tags,
            opts=child_opts(self),
        )
        aws.iam.RolePolicy(
            f"{self._name}-{role_name}-events-policy",
            role=events_role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "StartPipeline",
                        "Effect": "Allow",
                        "Action": "codepipeline:StartPipelineExecution",
                        "Resource": pipeline.arn,
                    }
                ]
            ),
            opts=child_opts(self),
        )
        aws.cloudwatch.EventTarget(
            f"{self._name}-{role_name}-target",
            rule=rule.name,
            arn=pipeline.arn,
            role_arn=events_role.arn,
            opts=child_opts(self),
        )
        return rule

    def _source_trigger(self, pipeline: aws.codepipeline.Pipeline) -> aws.cloudwatch.EventRule | None:
        """What starts the delivery pipeline on a source change (issue 12 item 11): EventBridge rules for S3
        and CodeCommit, which do not poll; CodeConnections starts it by itself (None)."""
        src = self._args.source
        if src.kind == "s3":
            pattern = pulumi.Output.from_input(self._args.artifacts_bucket_name).apply(
                lambda b: s3_source_event_pattern(str(b), src.object_key)
            )
            return self._start_rule(
                "start-delivery",
                "source-uploaded",
                f"{src.object_key} was uploaded: run the delivery",
                pattern,
                pipeline,
                self._code_pipeline,
            )
        if src.kind == "codecommit":
            pattern = self._codecommit_arn().apply(lambda arn: codecommit_event_pattern(arn, src.branch))
            return self._start_rule(
                "start-delivery",
                "source-pushed",
                f"{src.repository}@{src.branch} changed: run the delivery",
                pattern,
                pipeline,
                self._code_pipeline,
            )
        return None

    def _log_group(self, stage: str) -> aws.cloudwatch.LogGroup:
        return aws.cloudwatch.LogGroup(
            f"{self._name}-{stage}-logs",
            name=f"/aws/codebuild/{self._args.name_prefix}-{stage}",
            retention_in_days=self._args.log_retention_days,
            kms_key_id=self._args.logs_key_arn,
            tags=self._tags,
            opts=child_opts(self),
        )

    def _project(
        self,
        stage: str,
        env: Mapping[str, pulumi.Input[str]],
        extra: list[dict[str, Any]],
        *,
        buildspec: str | None = None,
        secrets: Mapping[str, str] | None = None,
        description: str | None = None,
        timeout_minutes: int = 60,
        in_vpc: bool = False,
    ) -> aws.codebuild.Project:
        """A CodeBuild project with its own log group and least-privilege role (+ ``extra`` statements)."""
        args = self._args
        logs = self._log_group(stage)
        role = aws.iam.Role(
            f"{self._name}-{stage}-build-role",
            name=f"{args.name_prefix}-build-{stage}",
            description=f"CodeBuild project {args.name_prefix}-{stage}",
            assume_role_policy=service_trust_policy(
                ["codebuild.amazonaws.com"], source_account=self._account
            ),
            tags=self._tags,
            opts=child_opts(self),
        )
        statements: list[dict[str, Any]] = [
            {
                "Sid": "WriteBuildLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [pulumi.Output.concat(logs.arn, ":*")],
            },
            {
                "Sid": "PipelineArtifacts",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
                "Resource": self._store_objects,
            },
            {
                "Sid": "ArtifactKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                "Resource": [args.artifacts_key_arn],
            },
            *extra,
        ]
        spec = read_buildspec(buildspec or stage, args.buildspec_dir)
        if _has_reports(spec):
            # CodeBuild test reports, only for a buildspec with a reports section
            # (https://docs.aws.amazon.com/codebuild/latest/userguide/test-report-permissions.html)
            statements.append(
                {
                    "Sid": "TestReports",
                    "Effect": "Allow",
                    "Action": [
                        "codebuild:CreateReportGroup",
                        "codebuild:CreateReport",
                        "codebuild:UpdateReport",
                        "codebuild:BatchPutTestCases",
                    ],
                    "Resource": [
                        pulumi.Output.format(
                            "arn:{0}:codebuild:{1}:{2}:report-group/{3}-{4}-*",
                            self._part,
                            args.region,
                            self._account,
                            args.name_prefix,
                            stage,
                        )
                    ],
                }
            )
        vpc_config: Any = None
        if in_vpc and args.build_vpc is not None:
            statements += self._vpc_statements(args.build_vpc)
            vpc_config = {
                "vpc_id": args.build_vpc.vpc_id,
                "subnets": list(args.build_vpc.subnet_ids),
                "security_group_ids": [
                    self._build_security_group().id,
                    *(
                        [args.build_vpc.api_client_security_group_id]
                        if args.build_vpc.api_client_security_group_id is not None
                        else []
                    ),
                ],
            }
        build_policy = aws.iam.RolePolicy(
            f"{self._name}-{stage}-build-policy",
            role=role.id,
            policy=policy_document(statements),
            opts=child_opts(self),
        )
        variables = [{"name": k, "value": v, "type": "PLAINTEXT"} for k, v in env.items()]
        variables += [{"name": k, "value": v, "type": "SECRETS_MANAGER"} for k, v in (secrets or {}).items()]
        environment: Any = {
            "compute_type": args.build_compute_type,
            "image": args.build_image,
            "type": "LINUX_CONTAINER",
            "image_pull_credentials_type": "CODEBUILD",
            "privileged_mode": False,
            "environment_variables": variables,
        }
        return aws.codebuild.Project(
            f"{self._name}-{stage}-project",
            name=f"{args.name_prefix}-{stage}",
            description=description or f"{stage} stage of the {args.name_prefix} delivery",
            service_role=role.arn,
            build_timeout=timeout_minutes,
            encryption_key=args.artifacts_key_arn,
            source={
                "type": "CODEPIPELINE",
                "buildspec": spec,
            },
            artifacts={"type": "CODEPIPELINE"},
            environment=environment,
            logs_config={"cloudwatch_logs": {"group_name": logs.name, "status": "ENABLED"}},
            vpc_config=vpc_config,
            tags=self._tags,
            # CodeBuild checks the role's EC2 permissions when a VPC project is created, so the
            # policy must exist first (the race aws-cdk#2652 describes).
            opts=child_opts(self, depends_on=[role, build_policy]),
        )

    def _build_security_group(self) -> aws.ec2.SecurityGroup:
        """One security group for the in-VPC builds: no ingress, HTTPS out (AWS APIs, pip, Pulumi)."""
        if getattr(self, "_build_sg", None) is None:
            assert self._args.build_vpc is not None
            self._build_sg = aws.ec2.SecurityGroup(
                f"{self._name}-build-sg",
                vpc_id=self._args.build_vpc.vpc_id,
                description="Promotion builds: no ingress; HTTPS out to AWS APIs, the EKS endpoint, package indexes",
                egress=[
                    aws.ec2.SecurityGroupEgressArgs(
                        description="HTTPS",
                        protocol="tcp",
                        from_port=443,
                        to_port=443,
                        cidr_blocks=["0.0.0.0/0"],
                    )
                ],
                tags=self._tags,
                opts=child_opts(self),
            )
        return self._build_sg

    def _vpc_statements(self, vpc: BuildVpc) -> list[dict[str, Any]]:
        """The permissions CodeBuild needs to attach a build to the VPC.

        From "Allow CodeBuild access to AWS services required to create a VPC network interface":
        https://docs.aws.amazon.com/codebuild/latest/userguide/auth-and-access-control-iam-identity-based-access-control.html#customer-managed-policies-example-create-vpc-network-interface
        Describe calls are granted on ``*`` (they have no resource-level permissions); creating and
        deleting interfaces only in the build subnets and security group; the interface permission
        only for CodeBuild in those subnets.
        """
        args = self._args
        subnet_arns = [
            pulumi.Output.format(
                "arn:{0}:ec2:{1}:{2}:subnet/{3}", self._part, args.region, self._account, sid
            )
            for sid in vpc.subnet_ids
        ]
        enis = pulumi.Output.format(
            "arn:{0}:ec2:{1}:{2}:network-interface/*", self._part, args.region, self._account
        )
        return [
            {
                # Describe calls have no resource-level permissions.
                "Sid": "BuildNetworkDescribe",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeVpcs",
                ],
                "Resource": "*",
            },
            {
                # Narrower than the guide's "*": CreateNetworkInterface is authorized on the
                # interface, the subnet and the security group; DeleteNetworkInterface on the interface.
                "Sid": "BuildNetworkInterfaces",
                "Effect": "Allow",
                "Action": ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"],
                "Resource": [
                    enis,
                    *subnet_arns,
                    self._build_security_group().arn,
                ],
            },
            {
                "Sid": "BuildNetworkInterfacePermission",
                "Effect": "Allow",
                "Action": "ec2:CreateNetworkInterfacePermission",
                "Resource": enis,
                "Condition": {
                    "StringEquals": {
                        "ec2:Subnet": subnet_arns,
                        "ec2:AuthorizedService": "codebuild.amazonaws.com",
                    }
                },
            },
        ]

    def _pipeline_role(
        self, role_name: str, pipeline: str, project_arns: Sequence[pulumi.Input[str]], *, approvals: bool
    ) -> aws.iam.Role:
        args = self._args
        role = aws.iam.Role(
            f"{self._name}-{role_name}-role",
            name=f"{args.name_prefix}-{role_name}",
            description=f"CodePipeline {pipeline}",
            assume_role_policy=service_trust_policy(
                ["codepipeline.amazonaws.com"], source_account=self._account
            ),
            tags=self._tags,
            opts=child_opts(self),
        )
        statements: list[dict[str, Any]] = [
            {
                "Sid": "ArtifactStore",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
                "Resource": [
                    pulumi.Output.concat(
                        args.artifacts_bucket_arn, "/", artifact_store_folder(pipeline), "/*"
                    )
                ],
            },
            {
                "Sid": "ArtifactStoreBucket",
                "Effect": "Allow",
                "Action": ["s3:GetBucketVersioning", "s3:GetBucketLocation"],
                "Resource": args.artifacts_bucket_arn,
            },
            {
                "Sid": "ArtifactKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                "Resource": [args.artifacts_key_arn],
            },
            {
                "Sid": "RunBuilds",
                "Effect": "Allow",
                "Action": ["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
                "Resource": list(project_arns),
            },
        ]
        src = args.source
        if src.kind == "codeconnections":
            statements.append(
                {
                    "Sid": "UseConnection",
                    "Effect": "Allow",
                    "Action": ["codeconnections:UseConnection", "codestar-connections:UseConnection"],
                    "Resource": src.connection_arn,
                }
            )
        elif src.kind == "codecommit":
            # The CodeCommit source action's permissions (CodePipeline service role reference:
            # https://docs.aws.amazon.com/codepipeline/latest/userguide/security-iam.html#how-to-custom-role)
            statements.append(
                {
                    "Sid": "ReadRepository",
                    "Effect": "Allow",
                    "Action": [
                        "codecommit:GetBranch",
                        "codecommit:GetCommit",
                        "codecommit:GetRepository",
                        "codecommit:UploadArchive",
                        "codecommit:GetUploadArchiveStatus",
                        "codecommit:CancelUploadArchive",
                    ],
                    "Resource": self._codecommit_arn(),
                }
            )
        else:
            statements.append(
                {
                    "Sid": "ReadSourceObject",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                    "Resource": pulumi.Output.concat(args.artifacts_bucket_arn, "/", src.object_key),
                }
            )
        if approvals and args.approval_topic_arn is not None:
            statements.append(
                {
                    "Sid": "NotifyApprovers",
                    "Effect": "Allow",
                    "Action": "sns:Publish",
                    "Resource": args.approval_topic_arn,
                }
            )
        aws.iam.RolePolicy(
            f"{self._name}-{role_name}-policy",
            role=role.id,
            policy=policy_document(statements),
            opts=child_opts(self),
        )
        return role

    def _own_groups(self) -> list[pulumi.Input[str]]:
        return list(self._args.own_group_names or self._args.watched_group_names)

    def _import_statements(self) -> list[dict[str, Any]]:
        """What the promote build needs to find packages, mark the one it deployed, and, with an upstream,
        copy an upstream package's artifacts here and re-register it in this environment's group
        (issue 12 item 8: a package always points at its own environment's bucket and key)."""
        args = self._args
        sm = "arn:{0}:sagemaker:{1}:{2}:"
        own = self._own_groups()
        own_packages = [
            pulumi.Output.format(sm + "model-package/{3}/*", self._part, args.region, self._account, g)
            for g in own
        ]
        statements: list[dict[str, Any]] = [
            {
                # mark what was deployed (pipelines.promotion mark: DescribeModelPackage, UpdateModelPackage)
                "Sid": "MarkOwnPackages",
                "Effect": "Allow",
                "Action": ["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"],
                "Resource": own_packages,
            }
        ]
        if args.upstream is None:
            return statements
        up = args.upstream
        statements += [
            {
                # register the imported copy in this environment's group: CreateModelPackage's resource
                # type is model-package (the new version's ARN), not the group (Service Authorization
                # Reference, Amazon SageMaker)
                "Sid": "RegisterOwnPackages",
                "Effect": "Allow",
                "Action": "sagemaker:CreateModelPackage",
                "Resource": list(own_packages),
            },
            {
                # the copies, and the imported card's exports beside the copied evaluation; read back:
                # the copied evaluation a card is rebuilt from when the upstream card is unreadable
                "Sid": "WritePromotedModels",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject"],
                "Resource": pulumi.Output.concat(args.artifacts_bucket_arn, "/models/*"),
            },
            {
                # the copy's own model card, <group>-<version>, Draft then Approved with the copy
                # (pipelines.model_card.import_card); encrypted with this environment's key, which
                # ArtifactKey grants (kms:GenerateDataKey to write it, kms:Decrypt to read it)
                "Sid": "ImportedModelCards",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:CreateModelCard",
                    "sagemaker:DescribeModelCard",
                    "sagemaker:UpdateModelCard",
                ],
                "Resource": [
                    pulumi.Output.format(sm + "model-card/{3}-*", self._part, args.region, self._account, g)
                    for g in own
                ],
            },
            {
                # the upstream card, carried into the copy's card when readable: same account, or shared
                # through AWS RAM (https://docs.aws.amazon.com/sagemaker/latest/dg/model-cards-xaccount.html);
                # otherwise the card is rebuilt from the package
                "Sid": "ReadUpstreamModelCards",
                "Effect": "Allow",
                "Action": "sagemaker:DescribeModelCard",
                "Resource": [
                    pulumi.Output.format(sm + "model-card/{3}-*", self._part, args.region, up.account_id, g)
                    for g in up.group_names
                ],
            },
            {
                # reading an upstream card decrypts it with the upstream key, through SageMaker
                "Sid": "DecryptUpstreamModelCards",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": up.ml_key_arn,
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"sagemaker.{args.region}.amazonaws.com"},
                    "StringLike": {
                        "kms:EncryptionContext:aws:sagemaker:model-card-arn": [
                            pulumi.Output.format(
                                sm + "model-card/{3}-*", self._part, args.region, up.account_id, g
                            )
                            for g in up.group_names
                        ]
                    },
                },
            },
            {
                "Sid": "DescribeUpstreamPackages",
                "Effect": "Allow",
                "Action": ["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"],
                "Resource": [
                    r
                    for g in up.group_names
                    for r in (
                        pulumi.Output.format(
                            sm + "model-package-group/{3}", self._part, args.region, up.account_id, g
                        ),
                        pulumi.Output.format(
                            sm + "model-package/{3}/*", self._part, args.region, up.account_id, g
                        ),
                    )
                ],
            },
            {
                # the upstream model data and the files its metrics point at (models/<contract>/<run>/...)
                "Sid": "ReadUpstreamModels",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": pulumi.Output.format(
                    "arn:{0}:s3:::{1}/models/*", self._part, up.artifacts_bucket_name
                ),
            },
            {
                "Sid": "DecryptUpstreamModels",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": up.ml_key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{args.region}.amazonaws.com"}},
            },
        ]
        return statements

    def _promotion(self, pipeline_name: str, source_action: dict[str, Any]) -> None:
        args = self._args
        secret = (
            {"PULUMI_ACCESS_TOKEN": args.pulumi_token_secret_arn} if args.pulumi_token_secret_arn else None
        )
        groups_env = pulumi.Output.all(*args.watched_group_names).apply(
            lambda gs: " ".join(str(g) for g in gs)
        )
        stages: list[Any] = [{"name": "Source", "actions": [source_action]}]
        project_arns: list[pulumi.Output[str]] = []
        for target in args.promotion_targets:
            slug = target.stack.replace("/", "-").replace(".", "-").replace("_", "-")
            extra: list[dict[str, Any]] = [
                {
                    "Sid": "AssumeDeployRole",
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Resource": target.deploy_role_arn,
                },
                {
                    # ListModelPackages has no resource-level permissions (SageMaker service authorization).
                    "Sid": "FindApprovedPackage",
                    "Effect": "Allow",
                    "Action": "sagemaker:ListModelPackages",
                    "Resource": "*",
                },
                *self._import_statements(),
            ]
            if args.pulumi_token_secret_arn:
                extra.append(
                    {
                        "Sid": "ReadPulumiToken",
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": args.pulumi_token_secret_arn,
                    }
                )
            project = self._project(
                f"promote-{slug}",
                {
                    "TARGET_STACK": target.stack,
                    "DEPLOY_ROLE_ARN": target.deploy_role_arn,
                    "MODEL_PACKAGE_GROUPS": groups_env,
                    "OWN_MODEL_PACKAGE_GROUPS": pulumi.Output.all(*self._own_groups()).apply(
                        lambda gs: " ".join(str(g) for g in gs)
                    ),
                    "PULUMI_BACKEND_URL": args.pulumi_backend_url,
                    # copy + re-register of upstream packages (pipelines.promotion): into this bucket and key
                    "ARTIFACTS_BUCKET": args.artifacts_bucket_name,
                    "ARTIFACTS_KEY_ARN": args.artifacts_key_arn,
                    # group ARNs: a name resolves in the caller's account; another account's group is its ARN
                    # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListModelPackages.html)
                    "UPSTREAM_GROUPS": self._upstream_group_arns() if args.upstream else "",
                },
                extra,
                buildspec="promote",
                secrets=secret,
                description=f"Deploy the approved model to stack {target.stack}",
                timeout_minutes=120,
                in_vpc=True,
            )
            project_arns.append(project.arn)
            self.project_names[f"promote-{slug}"] = project.name
            actions: list[dict[str, Any]] = []
            if target.manual_approval:
                approval: dict[str, Any] = {
                    "name": f"Approve-{slug}",
                    "category": "Approval",
                    "owner": "AWS",
                    "provider": "Manual",
                    "version": "1",
                    "configuration": {
                        "CustomData": f"Deploy the newly approved model package to {target.stack}?",
                    },
                    "run_order": 1,
                }
                if args.approval_topic_arn is not None:
                    approval["configuration"]["NotificationArn"] = args.approval_topic_arn
                stages.append({"name": f"Approve-{slug}", "actions": [approval]})
            actions.append(
                {
                    "name": f"Deploy-{slug}",
                    "category": "Build",
                    "owner": "AWS",
                    "provider": "CodeBuild",
                    "version": "1",
                    "input_artifacts": ["source"],
                    "configuration": {"ProjectName": project.name},
                    "run_order": 1,
                }
            )
            stages.append({"name": f"Deploy-{slug}", "actions": actions})

        role = self._pipeline_role("promotion", pipeline_name, project_arns, approvals=True)
        pipeline = aws.codepipeline.Pipeline(
            f"{self._name}-promotion",
            name=pipeline_name,
            pipeline_type="V2",
            # One promotion at a time, in order: a newer approval waits instead of superseding one
            # that is waiting for a person.
            execution_mode="QUEUED",
            role_arn=role.arn,
            artifact_stores=[self._artifact_store()],
            stages=stages,
            tags=self._tags,
            opts=child_opts(self),
        )
        rule = aws.cloudwatch.EventRule(
            f"{self._name}-approved-rule",
            name=f"{args.name_prefix}-model-approved",
            description="A model package of the platform's groups was Approved: promote it",
            event_pattern=pulumi.Output.all(*args.watched_group_names).apply(
                lambda gs: approval_event_pattern([str(g) for g in gs])
            ),
            tags=self._tags,
            opts=child_opts(self),
        )
        events_role = aws.iam.Role(
            f"{self._name}-events-role",
            name=f"{args.name_prefix}-start-promotion",
            description="EventBridge starts the promotion pipeline",
            assume_role_policy=service_trust_policy(
                ["events.amazonaws.com"], source_account=self._account, source_arn_like=rule.arn
            ),
            tags=self._tags,
            opts=child_opts(self),
        )
        aws.iam.RolePolicy(
            f"{self._name}-events-policy",
            role=events_role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "StartPromotion",
                        "Effect": "Allow",
                        "Action": "codepipeline:StartPipelineExecution",
                        "Resource": pipeline.arn,
                    }
                ]
            ),
            opts=child_opts(self),
        )
        aws.cloudwatch.EventTarget(
            f"{self._name}-approved-target",
            rule=rule.name,
            arn=pipeline.arn,
            role_arn=events_role.arn,
            opts=child_opts(self),
        )
        self.promotion_pipeline_name = pipeline.name
        self.approval_rule_name = rule.name
        if args.upstream is not None:
            upstream_rule = self._start_rule(
                "start-import",
                "upstream-package-changed",
                "A package of the upstream environment changed (approved or deployed there): import and deploy it",
                approval_event_pattern(list(args.upstream.group_names)),
                pipeline,
                pipeline_name,
            )
            self.upstream_rule_name = upstream_rule.name
            if args.upstream.cross_account:
                self._admit_upstream_events(args.upstream)
