"""Experimentation: a SageMaker AI domain (current Studio) in VPC-only mode, and managed MLflow.

The domain runs only in the private subnets (``AppNetworkAccessType=VpcOnly``: no SageMaker-managed
internet path) with its own security group, its EFS home volume and space EBS volumes encrypted with
``kms_key_arn``, the current Studio as the landing experience (Studio Classic hidden: it is closed to
new onboarding), idle shutdown of JupyterLab and Code Editor apps, and user profiles from config.
Its default execution role reads the platform's data prefixes and the model registry, writes only
under the experiment prefixes, and calls the MLflow server; never a ``*FullAccess`` managed policy.

Managed MLflow is an MLflow **App** by default (``aws.sagemaker.MlflowApp``: MLflow 3.x, no instance
size to pick, no start/stop) or, with ``MlflowSpec.kind="tracking_server"``, the older
``MlflowTrackingServer``. Its artifact store is a prefix of the artifacts bucket, written by its own
role; the roles in ``MlflowSpec.client_role_arns`` (Airflow, training) and the Studio role get the
data-plane actions on its ARN. The two kinds are authorized differently (Service Authorization
Reference, https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html
and list_amazonsagemakerwithmlflow.html): an App's REST API is the single action
``sagemaker:CallMlflowAppApi`` on ``mlflow-app/<id>``; a tracking server's is the
``sagemaker-mlflow:<Operation>`` actions on ``mlflow-tracking-server/<name>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components._util import account_id, child_opts, partition, policy_document, service_trust_policy
from platform_contract.limits import (
    DOMAIN_MAX_SUBNETS,
    MLFLOW_MAINTENANCE_WINDOW,
    MLFLOW_TRACKING_SERVER_SIZES,
    STUDIO_IDLE_TIMEOUT_MINUTES,
    USER_PROFILE_NAME,
    within,
)

NFS_PORT = 2049
"""Apps mount the domain's EFS home volume over NFS."""
APP_PORTS = (8192, 65535)
"""Ports Studio apps in the domain use to reach each other (VPC-only requirements:
https://docs.aws.amazon.com/sagemaker/latest/dg/studio-updated-and-internet-access.html)."""

CLASSIC_APP_TYPES = ("JupyterServer", "KernelGateway")
"""Studio Classic's app types, hidden from the Studio web portal."""

TRACKING_SERVER_CLIENT_ACTIONS = tuple(
    f"sagemaker-mlflow:{a}"
    for a in (
        "CreateExperiment",
        "GetExperiment",
        "GetExperimentByName",
        "SearchExperiments",
        "SetExperimentTag",
        "CreateRun",
        "UpdateRun",
        "GetRun",
        "SearchRuns",
        "LogBatch",
        "LogMetric",
        "LogParam",
        "LogInputs",
        "LogOutputs",
        "LogModel",
        "SetTag",
        "GetMetricHistory",
        "ListArtifacts",
        "FinalizeLoggedModel",
        "GetLoggedModel",
        "LogLoggedModelParams",
        "SearchLoggedModels",
        "SetLoggedModelTags",
        "ListLoggedModelArtifacts",
        "CreateRegisteredModel",
        "GetRegisteredModel",
        "SearchRegisteredModels",
        "SetRegisteredModelTag",
        "SetRegisteredModelAlias",
        "CreateModelVersion",
        "GetModelVersion",
        "GetModelVersionByAlias",
        "GetLatestModelVersions",
        "SearchModelVersions",
        "UpdateModelVersion",
        "SetModelVersionTag",
        "GetDownloadURIForModelVersionArtifacts",
    )
)
"""What a client of a tracking server may do: track runs and register models, never delete them."""


@dataclass(frozen=True, kw_only=True)
class MlflowSpec:
    """Managed MLflow: which kind, where its artifacts go, who may call it."""

    kind: Literal["app", "tracking_server"] = "app"
    """``app``: an MLflow App (MLflow 3.x, serverless); ``tracking_server``: a sized tracking server."""
    artifact_prefix: str = "mlflow/"
    """Key prefix of the artifact store in the artifacts bucket (ends in ``/``)."""
    tracking_server_size: str = "Small"
    """``tracking_server`` only: ``Small``, ``Medium`` or ``Large``."""
    maintenance_window: str = "Sun:03:00"
    """Weekly maintenance start (UTC), ``Ddd:HH:MM``."""
    client_role_arns: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Roles that log runs (label -> role ARN: ``airflow``, ``training``); each gets an inline policy."""

    def __post_init__(self) -> None:
        if not self.artifact_prefix.endswith("/") or self.artifact_prefix.startswith("/"):
            raise ValueError(
                f"MlflowSpec.artifact_prefix={self.artifact_prefix!r}: a key prefix ending in '/'"
            )
        if self.tracking_server_size not in MLFLOW_TRACKING_SERVER_SIZES:
            raise ValueError(
                f"MlflowSpec.tracking_server_size: one of {', '.join(MLFLOW_TRACKING_SERVER_SIZES)}"
            )
        if not MLFLOW_MAINTENANCE_WINDOW.match(self.maintenance_window):
            raise ValueError(
                f"MlflowSpec.maintenance_window={self.maintenance_window!r}: like Sun:03:00 (UTC)"
            )
        bad = [k for k in self.client_role_arns if not k.replace("-", "").isalnum()]
        if bad:
            raise ValueError(f"MlflowSpec.client_role_arns: labels {bad} must be letters, digits and '-'")


@dataclass(frozen=True, kw_only=True)
class ExperimentationArgs:
    """Arguments of :class:`Experimentation`."""

    name_prefix: str
    """Prefix of physical names (``mlops-<env>``)."""
    region: str
    """Region of the domain and the MLflow server (ARNs in the policies)."""
    vpc_id: pulumi.Input[str]
    """VPC of the domain."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets of the domain (1-16; VPC-only mode refuses public subnets)."""
    vpc_cidr: pulumi.Input[str]
    """VPC CIDR: Studio's HTTPS egress goes to the interface endpoints inside it."""
    kms_key_arn: pulumi.Input[str]
    """Key of the domain's storage (EFS home volume, space EBS volumes)."""
    artifacts_bucket_name: pulumi.Input[str]
    """Bucket of the MLflow artifact store and of the experiment outputs."""
    artifacts_bucket_arn: pulumi.Input[str]
    """ARN of that bucket."""
    artifacts_key_arn: pulumi.Input[str]
    """Key the artifacts bucket encrypts with (MLflow artifacts are written through it)."""
    s3_prefix_list_id: pulumi.Input[str] | None = None
    """S3 gateway endpoint prefix list: Studio's HTTPS egress to S3; None if S3 goes through the VPC CIDR."""
    studio: bool = True
    """Declare the domain (Studio); False declares only MLflow."""
    user_profiles: Sequence[str] = ()
    """Studio user profile names (IAM auth; each signs in through ``CreatePresignedDomainUrl``)."""
    idle_timeout_minutes: int = 60
    """JupyterLab and Code Editor apps shut down after this long idle (60-525600)."""
    max_idle_timeout_minutes: int = 480
    """Longest idle timeout a user may choose for their own apps (60-525600)."""
    read_locations: Sequence[tuple[pulumi.Input[str], str]] = ()
    """``(bucket ARN, prefix)`` pairs the Studio role reads (curated data, features, models)."""
    write_locations: Sequence[tuple[pulumi.Input[str], str]] = ()
    """``(bucket ARN, prefix)`` pairs the Studio role writes (experiment outputs)."""
    data_key_arns: Sequence[pulumi.Input[str]] = ()
    """Keys of the data the Studio role reads and writes."""
    model_package_group_names: Sequence[pulumi.Input[str]] = ()
    """Registry groups the Studio role may read (never approve)."""
    mlflow: MlflowSpec | None = field(default_factory=MlflowSpec)
    """Managed MLflow; None declares none."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child."""

    def __post_init__(self) -> None:
        if self.studio and not 1 <= len(self.subnet_ids) <= DOMAIN_MAX_SUBNETS:
            raise ValueError(
                f"ExperimentationArgs.subnet_ids: a domain takes 1-{DOMAIN_MAX_SUBNETS} private subnets, "
                f"got {len(self.subnet_ids)}"
            )
        for label, value in (("idle_timeout_minutes", self.idle_timeout_minutes),
                             ("max_idle_timeout_minutes", self.max_idle_timeout_minutes)):  # fmt: skip
            if not within(value, STUDIO_IDLE_TIMEOUT_MINUTES):
                raise ValueError(
                    f"ExperimentationArgs.{label}={value}: idle shutdown takes {{}}-{{}} minutes".format(
                        *STUDIO_IDLE_TIMEOUT_MINUTES
                    )
                )
        if self.max_idle_timeout_minutes < self.idle_timeout_minutes:
            raise ValueError("ExperimentationArgs.max_idle_timeout_minutes must be >= idle_timeout_minutes")
        bad = [u for u in self.user_profiles if not USER_PROFILE_NAME.match(u)]
        if bad:
            raise ValueError(
                f"ExperimentationArgs.user_profiles: {bad} are not valid user profile names (letters, digits "
                "and '-', at most 63 characters)"
            )
        if len(set(self.user_profiles)) != len(self.user_profiles):
            raise ValueError("ExperimentationArgs.user_profiles: a user profile is listed twice")
        if self.user_profiles and not self.studio:
            raise ValueError("ExperimentationArgs.user_profiles need studio=True")
        if not self.studio and self.mlflow is None:
            raise ValueError("ExperimentationArgs: studio=False and mlflow=None declare nothing")


def _role_name(arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """The name of a role from its ARN (the last path segment)."""
    return pulumi.Output.from_input(arn).apply(lambda a: a.rsplit("/", 1)[-1])


class Experimentation(pulumi.ComponentResource):
    """A VPC-only SageMaker AI domain with user profiles, and a managed MLflow server.

    Outputs:
        domain_id, domain_arn, domain_url, security_group_id, studio_role_arn, user_profile_arns
        (None/empty without Studio); mlflow_arn, mlflow_kind, mlflow_artifact_uri, mlflow_role_arn
        (None without MLflow).
    """

    domain_id: pulumi.Output[str] | None
    domain_arn: pulumi.Output[str] | None
    domain_url: pulumi.Output[str] | None
    security_group_id: pulumi.Output[str] | None
    studio_role_arn: pulumi.Output[str] | None
    user_profile_arns: dict[str, pulumi.Output[str]]
    mlflow_arn: pulumi.Output[str] | None
    mlflow_kind: str | None
    mlflow_artifact_uri: pulumi.Output[str] | None
    mlflow_role_arn: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: ExperimentationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:experimentation:Experimentation", name, None, opts)
        self._args = args
        self._tags = dict(args.tags)
        self._account = account_id(self)
        self._partition = partition(self)
        self.domain_id = self.domain_arn = self.domain_url = None
        self.security_group_id = self.studio_role_arn = None
        self.user_profile_arns = {}
        self.mlflow_arn = self.mlflow_artifact_uri = self.mlflow_role_arn = None
        self.mlflow_kind = None

        if args.mlflow is not None:
            self._mlflow(name, args.mlflow)
        if args.studio:
            self._studio(name)
        if args.mlflow is not None:
            for label, role_arn in args.mlflow.client_role_arns.items():
                aws.iam.RolePolicy(
                    f"{name}-mlflow-{label}",
                    role=_role_name(role_arn),
                    policy=policy_document(self._mlflow_client_statements(ui=False)),
                    opts=child_opts(self),
                )

        self.register_outputs(
            {
                "domain_id": self.domain_id,
                "domain_arn": self.domain_arn,
                "domain_url": self.domain_url,
                "security_group_id": self.security_group_id,
                "studio_role_arn": self.studio_role_arn,
                "user_profile_arns": self.user_profile_arns,
                "mlflow_arn": self.mlflow_arn,
                "mlflow_kind": self.mlflow_kind,
                "mlflow_artifact_uri": self.mlflow_artifact_uri,
                "mlflow_role_arn": self.mlflow_role_arn,
            }
        )

    # -- MLflow ---------------------------------------------------------------------------------
    def _mlflow(self, name: str, spec: MlflowSpec) -> None:
        args, tags = self._args, self._tags
        objects = pulumi.Output.concat(args.artifacts_bucket_arn, "/", spec.artifact_prefix, "*")
        role = aws.iam.Role(
            f"{name}-mlflow-role",
            name=f"{args.name_prefix}-mlflow",
            description="Managed MLflow: reads and writes its artifact store",
            assume_role_policy=service_trust_policy(
                ["sagemaker.amazonaws.com"], source_account=self._account
            ),
            tags=tags,
            opts=child_opts(self),
        )
        policy = aws.iam.RolePolicy(
            f"{name}-mlflow-permissions",
            role=role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "ArtifactStoreObjects",
                        "Effect": "Allow",
                        "Action": [
                            "s3:GetObject",
                            "s3:PutObject",
                            "s3:DeleteObject",
                            "s3:AbortMultipartUpload",
                        ],
                        "Resource": objects,
                    },
                    {
                        "Sid": "ArtifactStoreList",
                        "Effect": "Allow",
                        "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                        "Resource": args.artifacts_bucket_arn,
                        "Condition": {"StringLike": {"s3:prefix": [f"{spec.artifact_prefix}*"]}},
                    },
                    {
                        "Sid": "ArtifactStoreKey",
                        "Effect": "Allow",
                        "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                        "Resource": args.artifacts_key_arn,
                    },
                ]
            ),
            opts=child_opts(self),
        )
        uri = pulumi.Output.concat("s3://", args.artifacts_bucket_name, "/", spec.artifact_prefix)
        server_name = f"{args.name_prefix}-mlflow"
        # The server checks its role can reach the artifact store when it is created.
        server_opts = child_opts(self, depends_on=[policy])
        if spec.kind == "app":
            app = aws.sagemaker.MlflowApp(
                f"{name}-mlflow",
                name=server_name,
                artifact_store_uri=uri,
                role_arn=role.arn,
                # Models are registered by the pipeline's gated register step, never automatically.
                model_registration_mode="AutoModelRegistrationDisabled",
                account_default_status="DISABLED",
                weekly_maintenance_window_start=spec.maintenance_window,
                tags=tags,
                opts=server_opts,
            )
            self.mlflow_arn = app.arn
        else:
            server = aws.sagemaker.MlflowTrackingServer(
                f"{name}-mlflow",
                tracking_server_name=server_name,
                artifact_store_uri=uri,
                role_arn=role.arn,
                tracking_server_size=spec.tracking_server_size,
                automatic_model_registration=False,
                weekly_maintenance_window_start=spec.maintenance_window,
                tags=tags,
                opts=server_opts,
            )
            self.mlflow_arn = server.arn
        self.mlflow_kind = spec.kind
        self.mlflow_artifact_uri = uri
        self.mlflow_role_arn = role.arn

    def _mlflow_client_statements(self, *, ui: bool) -> list[dict[str, Any]]:
        """Data-plane access to the MLflow server plus its artifact prefix (clients upload artifacts to S3
        directly with their own credentials); ``ui`` adds the presigned UI URL (Studio users)."""
        args, spec = self._args, self._args.mlflow
        assert spec is not None
        assert self.mlflow_arn is not None
        if spec.kind == "app":
            actions = ["sagemaker:CallMlflowAppApi", "sagemaker:DescribeMlflowApp"]
            actions += ["sagemaker:CreatePresignedMlflowAppUrl"] if ui else []
            tracking = [
                {"Sid": "UseMlflowApp", "Effect": "Allow", "Action": actions, "Resource": self.mlflow_arn}
            ]
        else:
            tracking = [
                {
                    "Sid": "UseTrackingServer",
                    "Effect": "Allow",
                    "Action": list(TRACKING_SERVER_CLIENT_ACTIONS),
                    "Resource": self.mlflow_arn,
                },
                {
                    "Sid": "DescribeTrackingServer",
                    "Effect": "Allow",
                    "Action": ["sagemaker:DescribeMlflowTrackingServer"]
                    + (["sagemaker:CreatePresignedMlflowTrackingServerUrl"] if ui else []),
                    "Resource": self.mlflow_arn,
                },
            ]
        return [
            *tracking,
            {
                "Sid": "MlflowArtifacts",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": pulumi.Output.concat(args.artifacts_bucket_arn, "/", spec.artifact_prefix, "*"),
            },
            {
                "Sid": "MlflowArtifactsList",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": args.artifacts_bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": [f"{spec.artifact_prefix}*"]}},
            },
            {
                "Sid": "MlflowArtifactsKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": args.artifacts_key_arn,
            },
        ]

    # -- Studio ---------------------------------------------------------------------------------
    def _security_group(self, name: str) -> aws.ec2.SecurityGroup:
        args, tags = self._args, self._tags
        sg = aws.ec2.SecurityGroup(
            f"{name}-studio-sg",
            name_prefix=f"{args.name_prefix}-studio-",
            description="SageMaker Studio apps: NFS and app traffic inside the group, HTTPS to the VPC endpoints",
            vpc_id=args.vpc_id,
            tags={**tags, "Name": f"{args.name_prefix}-studio"},
            opts=child_opts(self),
        )
        for port_name, (low, high) in (("nfs", (NFS_PORT, NFS_PORT)), ("apps", APP_PORTS)):
            for direction, rule in (
                ("ingress", aws.vpc.SecurityGroupIngressRule),
                ("egress", aws.vpc.SecurityGroupEgressRule),
            ):
                rule(
                    f"{name}-studio-{port_name}-{direction}",
                    security_group_id=sg.id,
                    referenced_security_group_id=sg.id,
                    ip_protocol="tcp",
                    from_port=low,
                    to_port=high,
                    description=f"Studio {port_name} traffic within the domain's security group",
                    tags=tags,
                    opts=child_opts(self),
                )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-studio-https-vpc",
            security_group_id=sg.id,
            cidr_ipv4=args.vpc_cidr,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS to the interface VPC endpoints (SageMaker API/runtime, STS, Logs...)",
            tags=tags,
            opts=child_opts(self),
        )
        if args.s3_prefix_list_id is not None:
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-studio-https-s3",
                security_group_id=sg.id,
                prefix_list_id=args.s3_prefix_list_id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description="HTTPS to S3 through the gateway endpoint",
                tags=tags,
                opts=child_opts(self),
            )
        return sg

    def _studio(self, name: str) -> None:
        args, tags = self._args, self._tags
        sg = self._security_group(name)
        role = aws.iam.Role(
            f"{name}-studio-role",
            name=f"{args.name_prefix}-studio",
            description="Default execution role of the SageMaker AI domain's users and spaces",
            assume_role_policy=service_trust_policy(
                ["sagemaker.amazonaws.com"], source_account=self._account
            ),
            tags=tags,
            opts=child_opts(self),
        )
        data_policy = aws.iam.RolePolicy(
            f"{name}-studio-data",
            role=role.id,
            policy=policy_document(self._studio_data_statements()),
            opts=child_opts(self),
        )
        idle_settings = {
            "lifecycle_management": "ENABLED",
            "idle_timeout_in_minutes": args.idle_timeout_minutes,
            "min_idle_timeout_in_minutes": STUDIO_IDLE_TIMEOUT_MINUTES[0],
            "max_idle_timeout_in_minutes": args.max_idle_timeout_minutes,
        }
        jupyter_lab = aws.sagemaker.DomainDefaultUserSettingsJupyterLabAppSettingsArgs(
            app_lifecycle_management=aws.sagemaker.DomainDefaultUserSettingsJupyterLabAppSettingsAppLifecycleManagementArgs(
                idle_settings=aws.sagemaker.DomainDefaultUserSettingsJupyterLabAppSettingsAppLifecycleManagementIdleSettingsArgs(
                    **idle_settings
                )
            )
        )
        code_editor = aws.sagemaker.DomainDefaultUserSettingsCodeEditorAppSettingsArgs(
            app_lifecycle_management=aws.sagemaker.DomainDefaultUserSettingsCodeEditorAppSettingsAppLifecycleManagementArgs(
                idle_settings=aws.sagemaker.DomainDefaultUserSettingsCodeEditorAppSettingsAppLifecycleManagementIdleSettingsArgs(
                    **idle_settings
                )
            )
        )
        domain = aws.sagemaker.Domain(
            f"{name}-domain",
            domain_name=f"{args.name_prefix}-studio",
            auth_mode="IAM",
            vpc_id=args.vpc_id,
            subnet_ids=list(args.subnet_ids),
            app_network_access_type="VpcOnly",
            kms_key_id=args.kms_key_arn,
            tag_propagation="ENABLED",
            domain_settings=aws.sagemaker.DomainDomainSettingsArgs(security_group_ids=[sg.id]),
            default_user_settings=aws.sagemaker.DomainDefaultUserSettingsArgs(
                execution_role=role.arn,
                security_groups=[sg.id],
                # The current Studio, not Studio Classic (closed to new onboarding).
                studio_web_portal="ENABLED",
                default_landing_uri="studio::",
                studio_web_portal_settings=aws.sagemaker.DomainDefaultUserSettingsStudioWebPortalSettingsArgs(
                    hidden_app_types=list(CLASSIC_APP_TYPES)
                ),
                jupyter_lab_app_settings=jupyter_lab,
                code_editor_app_settings=code_editor,
                # Notebook sharing would copy outputs to an unmanaged location.
                sharing_settings=aws.sagemaker.DomainDefaultUserSettingsSharingSettingsArgs(
                    notebook_output_option="Disabled"
                ),
            ),
            default_space_settings=aws.sagemaker.DomainDefaultSpaceSettingsArgs(
                execution_role=role.arn, security_groups=[sg.id]
            ),
            # Users' home directories outlive the domain (deleting a domain keeps its EFS volume).
            retention_policy=aws.sagemaker.DomainRetentionPolicyArgs(home_efs_file_system="Retain"),
            tags=tags,
            opts=child_opts(self, depends_on=[data_policy]),
        )
        aws.iam.RolePolicy(
            f"{name}-studio-apps",
            role=role.id,
            policy=policy_document(self._studio_app_statements(domain.id)),
            opts=child_opts(self),
        )
        for user in args.user_profiles:
            profile = aws.sagemaker.UserProfile(
                f"{name}-user-{user}",
                domain_id=domain.id,
                user_profile_name=user,
                tags={**tags, "mlops:user": user},
                opts=child_opts(self),
            )
            self.user_profile_arns[user] = profile.arn
        self.domain_id, self.domain_arn, self.domain_url = domain.id, domain.arn, domain.url
        self.security_group_id = sg.id
        self.studio_role_arn = role.arn

    def _studio_data_statements(self) -> list[dict[str, Any]]:
        """What notebooks read and write: named prefixes, their keys, the registry (read), MLflow."""
        args, region, account, part = self._args, self._args.region, self._account, self._partition
        statements: list[dict[str, Any]] = [
            {
                "Sid": "StudioLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": pulumi.Output.format(
                    "arn:{0}:logs:{1}:{2}:log-group:/aws/sagemaker/studio:*", part, region, account
                ),
            }
        ]
        if args.read_locations:
            statements.append(
                {
                    "Sid": "ReadData",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                    "Resource": [pulumi.Output.concat(b, "/", p, "*") for b, p in args.read_locations],
                }
            )
        if args.write_locations:
            statements.append(
                {
                    "Sid": "WriteExperiments",
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                    "Resource": [pulumi.Output.concat(b, "/", p, "*") for b, p in args.write_locations],
                }
            )
        by_bucket: dict[int, tuple[pulumi.Input[str], list[str]]] = {}
        for bucket, prefix in [*args.read_locations, *args.write_locations]:
            by_bucket.setdefault(id(bucket), (bucket, []))[1].append(f"{prefix}*")
        for i, (bucket, prefixes) in enumerate(by_bucket.values()):
            statements.append(
                {
                    "Sid": f"ListData{i}",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": bucket,
                    "Condition": {"StringLike": {"s3:prefix": sorted(set(prefixes))}},
                }
            )
        if args.data_key_arns:
            statements.append(
                {
                    "Sid": "UseDataKeys",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    "Resource": list(args.data_key_arns),
                }
            )
        if args.model_package_group_names:
            groups = "arn:{0}:sagemaker:{1}:{2}:model-package-group/{3}"
            packages = "arn:{0}:sagemaker:{1}:{2}:model-package/{3}/*"
            statements.append(
                {
                    "Sid": "ReadRegistry",
                    "Effect": "Allow",
                    "Action": [
                        "sagemaker:DescribeModelPackageGroup",
                        "sagemaker:ListModelPackages",
                        "sagemaker:DescribeModelPackage",
                    ],
                    "Resource": [
                        pulumi.Output.format(fmt, part, region, account, g)
                        for g in args.model_package_group_names
                        for fmt in (groups, packages)
                    ],
                }
            )
        if args.mlflow is not None:
            statements += self._mlflow_client_statements(ui=True)
        return statements

    def _studio_app_statements(self, domain_id: pulumi.Output[str]) -> list[dict[str, Any]]:
        """Studio itself, scoped to this domain: users' apps and spaces (the role runs them)."""
        region, account, part = self._args.region, self._account, self._partition
        arn = "arn:{0}:sagemaker:{1}:{2}:{3}/{4}"

        def scoped(kind: str, suffix: str = "") -> pulumi.Output[str]:
            return pulumi.Output.format(arn + suffix, part, region, account, kind, domain_id)

        return [
            {
                "Sid": "StudioAppsAndSpaces",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:CreateApp",
                    "sagemaker:DeleteApp",
                    "sagemaker:DescribeApp",
                    "sagemaker:CreateSpace",
                    "sagemaker:UpdateSpace",
                    "sagemaker:DeleteSpace",
                    "sagemaker:DescribeSpace",
                    "sagemaker:AddTags",
                ],
                "Resource": [scoped("app", "/*"), scoped("space", "/*")],
            },
            {
                "Sid": "StudioDomain",
                "Effect": "Allow",
                "Action": ["sagemaker:DescribeDomain", "sagemaker:DescribeUserProfile"],
                "Resource": [scoped("domain"), scoped("user-profile", "/*")],
            },
            {
                "Sid": "StudioLists",
                "Effect": "Allow",
                # List calls support no resource-level permissions (Service Authorization Reference).
                "Action": ["sagemaker:ListApps", "sagemaker:ListSpaces", "sagemaker:ListUserProfiles"],
                "Resource": "*",
            },
        ]
