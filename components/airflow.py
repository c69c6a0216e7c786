"""Amazon MWAA (Managed Workflows for Apache Airflow): the environment, its security group and its
execution role.

The execution role follows the MWAA guide's customer-managed-key sample
(https://docs.aws.amazon.com/mwaa/latest/userguide/mwaa-create-role.html): trust for
``airflow.amazonaws.com`` and ``airflow-env.amazonaws.com``; ``airflow:PublishMetrics`` on the
environment; read of the source bucket (and a deny of ``s3:ListAllMyBuckets``); the environment's
``airflow-<name>-*`` log groups; SQS on ``arn:aws:sqs:<region>:*:airflow-celery-*`` (the Celery
queues live in an AWS-owned account, so the account is a wildcard by design); and the KMS key only
through SQS and S3 (``kms:ViaService``). On top of that, exactly what the platform's DAGs do: start
EMR on EKS job runs on the platform's virtual clusters, run SageMaker training/processing jobs and
register models in the platform's groups, query Athena/Glue on the platform database, read/write
the lake prefixes the steps use, publish the pipeline metrics, and pass only the platform roles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components._util import account_id, child_opts, partition, policy_document, service_trust_policy
from platform_contract.limits import MWAA_MAX_WORKERS
from platform_contract.versions import MWAA_AIRFLOW_VERSION

LOG_TYPES = ("dag_processing_logs", "scheduler_logs", "task_logs", "webserver_logs", "worker_logs")
"""Every MWAA log type; all go to CloudWatch (CKV_AWS_242..244 check scheduler, worker, webserver)."""


@dataclass(frozen=True, kw_only=True)
class AirflowArgs:
    """Arguments of :class:`Airflow`."""

    name_prefix: str
    """Prefix of physical names; the environment is ``<prefix>-airflow``."""
    region: str
    """Region (ARNs in the role policy)."""
    vpc_id: pulumi.Input[str]
    """VPC of the environment's security group."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Exactly two private subnets in different AZs (MWAA's requirement)."""
    source_bucket_arn: pulumi.Input[str]
    """The artifacts bucket (DAGs, requirements, plugins)."""
    kms_key_arn: pulumi.Input[str]
    """Customer managed key of the environment (its key policy must let the logs service use it for
    ``airflow-<name>-*`` log groups).
    """
    airflow_version: str = MWAA_AIRFLOW_VERSION
    """An Airflow 3 version MWAA offers (default: the line the DAGs are tested on)."""
    environment_class: str = "mw1.small"
    """``mw1.micro`` ... ``mw1.2xlarge``."""
    min_workers: int = 1
    """Minimum Celery workers."""
    max_workers: int = 2
    """Maximum Celery workers."""
    schedulers: int = 2
    """Scheduler count."""
    dags_path: str = "airflow/dags"
    """DAG folder key in it."""
    requirements_path: str | None = None
    """requirements.txt key, or None."""
    requirements_version: str | None = None
    """Its S3 object version (MWAA needs the object to exist)."""
    plugins_path: str | None = None
    """plugins.zip key, or None."""
    plugins_version: str | None = None
    """Its S3 object version."""
    startup_script_path: str | None = None
    """startup.sh key (creates the pipeline steps' virtualenv), or None."""
    startup_script_version: str | None = None
    """Its S3 object version."""
    read_locations: Sequence[tuple[pulumi.Input[str], str]] = ()
    """``(bucket ARN, prefix)`` pairs the DAGs read below (a prefix of a bucket they do not read whole)."""
    data_key_arns: Sequence[pulumi.Input[str]] = ()
    """Keys of the lake buckets the DAGs touch."""
    webserver_access_mode: Literal["PRIVATE_ONLY", "PUBLIC_ONLY"] = "PRIVATE_ONLY"
    """``PRIVATE_ONLY`` (default) or ``PUBLIC_ONLY``."""
    log_level: str = "INFO"
    """Level of every log type."""
    read_bucket_arns: Sequence[pulumi.Input[str]] = ()
    """Lake buckets the DAGs read (whole bucket)."""
    write_locations: Sequence[tuple[pulumi.Input[str], str]] = ()
    """``(bucket ARN, prefix)`` pairs the DAGs write."""
    emr_virtual_cluster_ids: Sequence[pulumi.Input[str]] = ()
    """EMR on EKS virtual clusters the DAGs start job runs on."""
    emr_job_role_arns: Sequence[pulumi.Input[str]] = ()
    """Job execution roles those job runs may use (the ``emr-containers:ExecutionRoleArn`` condition of
    ``StartJobRun``); required with ``emr_virtual_cluster_ids``.
    """
    passable_role_arns: Mapping[str, Sequence[pulumi.Input[str]]] = field(default_factory=dict)
    """``{service principal: [role ARNs]}`` the DAGs may pass, e.g. ``{"sagemaker.amazonaws.com": [...]}``.
    EMR on EKS job roles are not passed (see ``emr_job_role_arns``).
    """
    model_package_group_names: Sequence[pulumi.Input[str]] = ()
    """Groups the DAGs register packages in."""
    training_job_prefixes: Sequence[str] = ()
    """Name prefixes of the models' training jobs (``mlops-dev-churn-``); empty: ``<name_prefix>-``."""
    transform_job_prefixes: Sequence[str] = ()
    """Name prefixes of the models' batch transform jobs (``mlops-dev-churn-bt-``); empty: no transform grant."""
    batch_table_names: Sequence[str] = ()
    """Glue tables the batch DAGs create on first use and add run partitions to (``churn_batch_predictions``)."""
    tuning_job_prefixes: Sequence[str] = ()
    """Name prefixes of the models' hyperparameter tuning jobs (``churn-1a2b3c-``,
    ``platform_contract.naming``); their trials' training jobs carry the same prefix. Empty: no tuning."""
    startable_pipeline_names: Sequence[pulumi.Input[str]] = ()
    """CodePipeline pipelines the DAGs start (dev's promote step starts the delivery pipeline)."""
    glue_database_name: pulumi.Input[str] | None = None
    """Glue database of the platform."""
    athena_workgroup_name: pulumi.Input[str] | None = None
    """Athena workgroup the DAGs query through."""
    deny_package_approval: bool = False
    """Deny ``UpdateModelPackage`` to ``Approved`` (staging/prod: approval is a person's decision, not a
    DAG's; condition key ``sagemaker:ModelApprovalStatus``, Service Authorization Reference for SageMaker)."""
    weekly_maintenance_window_start: str = "SUN:03:00"
    """``DAY:HH:MM`` UTC."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child."""

    def __post_init__(self) -> None:
        if len(self.subnet_ids) != 2:
            raise ValueError(
                f"AirflowArgs.subnet_ids: MWAA needs exactly two private subnets in different AZs, got "
                f"{len(self.subnet_ids)}; pass the first two private subnets"
            )
        if not self.airflow_version.startswith("3."):
            raise ValueError(
                f"AirflowArgs.airflow_version={self.airflow_version!r}: the platform's DAGs need Airflow 3"
            )
        if self.requirements_path and not self.requirements_version:
            raise ValueError(
                "AirflowArgs.requirements_path needs requirements_version (the object must exist)"
            )
        if self.plugins_path and not self.plugins_version:
            raise ValueError("AirflowArgs.plugins_path needs plugins_version (the object must exist)")
        if self.startup_script_path and not self.startup_script_version:
            raise ValueError(
                "AirflowArgs.startup_script_path needs startup_script_version (the object must exist)"
            )
        for path in self._source_paths:
            if path.startswith("/") or path.endswith("/"):
                raise ValueError(f"AirflowArgs: {path!r}: S3 keys without leading or trailing '/'")
            if not path.startswith(self.source_prefix):
                raise ValueError(
                    f"AirflowArgs: {path!r} is outside {self.source_prefix!r}, the folder of dags_path that "
                    "the execution role may read; keep requirements, plugins and the startup script there"
                )
        if self.emr_virtual_cluster_ids and not self.emr_job_role_arns:
            raise ValueError(
                "AirflowArgs.emr_virtual_cluster_ids needs emr_job_role_arns: StartJobRun is granted only for "
                "the job execution roles the DAGs use"
            )
        if "emr-containers.amazonaws.com" in self.passable_role_arns:
            raise ValueError(
                "AirflowArgs.passable_role_arns: EMR on EKS does not take iam:PassRole for job roles; "
                "pass them as emr_job_role_arns (emr-containers:ExecutionRoleArn condition)"
            )
        if not 1 <= self.min_workers <= self.max_workers <= MWAA_MAX_WORKERS:
            raise ValueError(f"AirflowArgs: need 1 <= min_workers <= max_workers <= {MWAA_MAX_WORKERS}")

    @property
    def _source_paths(self) -> list[str]:
        paths = (self.dags_path, self.requirements_path, self.plugins_path, self.startup_script_path)
        return [p for p in paths if p is not None]

    @property
    def source_prefix(self) -> str:
        """The folder MWAA reads its DAGs, requirements, plugins and startup script from (the folder of
        ``dags_path``, e.g. ``airflow/``); the execution role reads nothing else of the source bucket."""
        return self.dags_path.rsplit("/", 1)[0] + "/" if "/" in self.dags_path else ""

    @property
    def environment_name(self) -> str:
        """The environment's name."""
        return f"{self.name_prefix}-airflow"


class Airflow(pulumi.ComponentResource):
    """An MWAA environment in two private subnets, with its own security group, every log type in
    CloudWatch, the platform's ML key, a private web server by default, and an execution role that
    follows the MWAA guide plus exactly the platform permissions the DAGs need.

    Outputs:
        environment_name: MWAA environment name.
        environment_arn: Its ARN.
        webserver_url: Airflow UI host name (reachable from the VPC when private).
        execution_role_arn: The execution role ARN.
        security_group_id: The environment's security group.
        dags_s3_uri: ``s3://<artifacts>/<dags_path>``: where the delivery pipeline puts DAGs.
    """

    environment_name: pulumi.Output[str]
    environment_arn: pulumi.Output[str]
    webserver_url: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    dags_s3_uri: pulumi.Output[str]

    def __init__(self, name: str, args: AirflowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:airflow:Airflow", name, None, opts)
        tags = dict(args.tags)
        env_name = args.environment_name
        account = account_id(self)
        part = partition(self)

        # MWAA's own components talk to each other through the security group (self-referencing
        # rule, "Security in your VPC on Amazon MWAA"); egress only for HTTPS and Postgres inside.
        # A prefix, not a fixed name: a replacement (vpc_id, description) creates the new group before
        # deleting the old, and two groups of one VPC cannot share a name (issue 12 item 22).
        sg = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name_prefix=f"{env_name}-",
            description=f"MWAA environment {env_name}: self-referencing, no other ingress",
            vpc_id=args.vpc_id,
            tags={**tags, "Name": env_name},
            opts=child_opts(self),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-sg-self-ingress",
            security_group_id=sg.id,
            referenced_security_group_id=sg.id,
            ip_protocol="-1",
            description="MWAA components (web server, schedulers, workers, database) reach each other",
            tags=tags,
            opts=child_opts(self),
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-sg-self-egress",
            security_group_id=sg.id,
            referenced_security_group_id=sg.id,
            ip_protocol="-1",
            description="MWAA components reach each other",
            tags=tags,
            opts=child_opts(self),
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-sg-https-egress",
            security_group_id=sg.id,
            cidr_ipv4="0.0.0.0/0",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS to AWS APIs (VPC endpoints or NAT) and package indexes",
            tags=tags,
            opts=child_opts(self),
        )

        role = aws.iam.Role(
            f"{name}-execution-role",
            name=f"{env_name}-execution",
            description=f"MWAA execution role of {env_name}",
            # Only on behalf of this account's environment (confused-deputy conditions,
            # https://docs.aws.amazon.com/mwaa/latest/userguide/cross-service-confused-deputy-prevention.html).
            assume_role_policy=service_trust_policy(
                ["airflow.amazonaws.com", "airflow-env.amazonaws.com"],
                source_account=account,
                source_arn_like=pulumi.Output.format(
                    "arn:{0}:airflow:{1}:{2}:environment/{3}", part, args.region, account, env_name
                ),
            ),
            tags=tags,
            opts=child_opts(self),
        )
        mwaa_policy = aws.iam.RolePolicy(
            f"{name}-execution-policy",
            role=role.id,
            policy=policy_document(self._mwaa_statements(args, env_name, account, part)),
            opts=child_opts(self),
        )
        platform_policy = aws.iam.RolePolicy(
            f"{name}-platform-policy",
            role=role.id,
            policy=policy_document(self._platform_statements(args, account, part)),
            opts=child_opts(self),
        )

        logging: Any = {log_type: {"enabled": True, "log_level": args.log_level} for log_type in LOG_TYPES}
        env = aws.mwaa.Environment(
            f"{name}-environment",
            name=env_name,
            airflow_version=args.airflow_version,
            environment_class=args.environment_class,
            min_workers=args.min_workers,
            max_workers=args.max_workers,
            schedulers=args.schedulers,
            execution_role_arn=role.arn,
            source_bucket_arn=args.source_bucket_arn,
            dag_s3_path=args.dags_path,
            requirements_s3_path=args.requirements_path,
            requirements_s3_object_version=args.requirements_version,
            plugins_s3_path=args.plugins_path,
            plugins_s3_object_version=args.plugins_version,
            startup_script_s3_path=args.startup_script_path,
            startup_script_s3_object_version=args.startup_script_version,
            kms_key=args.kms_key_arn,
            webserver_access_mode=args.webserver_access_mode,
            network_configuration={"security_group_ids": [sg.id], "subnet_ids": list(args.subnet_ids)},
            logging_configuration=logging,
            weekly_maintenance_window_start=args.weekly_maintenance_window_start,
            airflow_configuration_options={
                # DAGs must parse with no connections or network at import time (ARCHITECTURE.md).
                "core.load_examples": "False",
            },
            tags=tags,
            # MWAA checks the role's S3 and logs access when it creates the environment: the policies
            # must exist first, not only the role (issue 12 item 2).
            # The name must stay (the role's trust names the environment ARN), and UpdateEnvironment cannot
            # change the KMS key or the subnets, so those changes replace the environment: the old one goes
            # first, or the new one would collide with its name (issue 12 item 22;
            # https://docs.aws.amazon.com/mwaa/latest/API/API_UpdateEnvironment.html).
            opts=child_opts(
                self, depends_on=[role, mwaa_policy, platform_policy], delete_before_replace=True
            ),
        )

        self.environment_name = env.name
        self.environment_arn = env.arn
        self.webserver_url = env.webserver_url
        self.execution_role_arn = role.arn
        self.security_group_id = sg.id
        self.dags_s3_uri = pulumi.Output.from_input(args.source_bucket_arn).apply(
            lambda arn: f"s3://{str(arn).rsplit(':', 1)[-1]}/{args.dags_path}"
        )
        self.register_outputs(
            {
                "environment_name": self.environment_name,
                "environment_arn": self.environment_arn,
                "webserver_url": self.webserver_url,
                "execution_role_arn": self.execution_role_arn,
                "security_group_id": self.security_group_id,
                "dags_s3_uri": self.dags_s3_uri,
            }
        )

    @staticmethod
    def _mwaa_statements(
        args: AirflowArgs, env_name: str, account: pulumi.Output[str], part: pulumi.Output[str]
    ) -> list[dict[str, Any]]:
        """The MWAA guide's execution role policy for a customer managed key."""
        region, bucket = args.region, args.source_bucket_arn
        return [
            {
                "Sid": "PublishMetrics",
                "Effect": "Allow",
                "Action": "airflow:PublishMetrics",
                "Resource": pulumi.Output.format(
                    "arn:{0}:airflow:{1}:{2}:environment/{3}", part, region, account, env_name
                ),
            },
            {
                "Sid": "DenyListAllBuckets",
                "Effect": "Deny",
                "Action": "s3:ListAllMyBuckets",
                "Resource": [bucket, pulumi.Output.concat(bucket, "/*")],
            },
            {
                # MWAA checks the bucket (versioning, public access block) and lists the DAG folder...
                "Sid": "ReadSourceBucket",
                "Effect": "Allow",
                "Action": ["s3:GetBucket*", "s3:List*"],
                "Resource": bucket,
            },
            {
                # ...but reads objects only below its own folder, not the whole artifacts bucket
                # (issue 12 item 17).
                "Sid": "ReadSourceObjects",
                "Effect": "Allow",
                "Action": "s3:GetObject*",
                "Resource": pulumi.Output.concat(bucket, "/", args.source_prefix, "*"),
            },
            {
                "Sid": "EnvironmentLogs",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogStream",
                    "logs:CreateLogGroup",
                    "logs:PutLogEvents",
                    "logs:GetLogEvents",
                    "logs:GetLogRecord",
                    "logs:GetLogGroupFields",
                    "logs:GetQueryResults",
                ],
                "Resource": [
                    pulumi.Output.format(
                        "arn:{0}:logs:{1}:{2}:log-group:airflow-{3}-*", part, region, account, env_name
                    )
                ],
            },
            {
                "Sid": "DescribeLogGroups",
                "Effect": "Allow",
                "Action": "logs:DescribeLogGroups",
                "Resource": "*",
            },
            {
                # PutMetricData has no resource-level permissions; MWAA and the pipeline both publish.
                "Sid": "PutMetricData",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
            },
            {
                "Sid": "CeleryQueues",
                "Effect": "Allow",
                "Action": [
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                    "sqs:ReceiveMessage",
                    "sqs:SendMessage",
                ],
                "Resource": pulumi.Output.format("arn:{0}:sqs:{1}:*:airflow-celery-*", part, region),
            },
            {
                "Sid": "EnvironmentKeyThroughSqsAndS3",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:Encrypt"],
                "Resource": args.kms_key_arn,
                "Condition": {
                    "StringLike": {
                        "kms:ViaService": [f"sqs.{region}.amazonaws.com", f"s3.{region}.amazonaws.com"]
                    }
                },
            },
        ]

    @staticmethod
    def _platform_statements(
        args: AirflowArgs, account: pulumi.Output[str], part: pulumi.Output[str]
    ) -> list[dict[str, Any]]:
        """What the platform's DAGs call, scoped to the platform's resources."""
        region = args.region
        statements: list[dict[str, Any]] = []
        if args.read_bucket_arns:
            statements.append(
                {
                    "Sid": "ReadLake",
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObject",
                        "s3:GetObjectVersion",
                        "s3:ListBucket",
                        "s3:GetBucketLocation",
                    ],
                    "Resource": [
                        r for arn in args.read_bucket_arns for r in (arn, pulumi.Output.concat(arn, "/*"))
                    ],
                }
            )
        if args.read_locations:
            statements.append(
                {
                    "Sid": "ReadLakePrefixes",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                    "Resource": [
                        pulumi.Output.concat(arn, "/", prefix, "*") for arn, prefix in args.read_locations
                    ],
                }
            )
        if args.write_locations:
            statements.append(
                {
                    "Sid": "WriteLakePrefixes",
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"],
                    "Resource": [
                        pulumi.Output.concat(arn, "/", prefix, "*") for arn, prefix in args.write_locations
                    ],
                }
            )
        if args.data_key_arns:
            statements.append(
                {
                    "Sid": "UseLakeKeys",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    "Resource": list(args.data_key_arns),
                }
            )
        if args.emr_virtual_cluster_ids:
            clusters = [
                pulumi.Output.format(
                    "arn:{0}:emr-containers:{1}:{2}:/virtualclusters/{3}", part, region, account, vc
                )
                for vc in args.emr_virtual_cluster_ids
            ]
            statements += [
                {
                    # EMR on EKS authorizes the job role through this condition key on StartJobRun, not
                    # through iam:PassRole ("Using job execution roles with Amazon EMR on EKS",
                    # https://docs.aws.amazon.com/emr/latest/EMR-on-EKS-DevelopmentGuide/iam-execution-role.html).
                    "Sid": "StartSparkJobs",
                    "Effect": "Allow",
                    "Action": "emr-containers:StartJobRun",
                    "Resource": clusters,
                    "Condition": {
                        "ArnEquals": {"emr-containers:ExecutionRoleArn": list(args.emr_job_role_arns)}
                    },
                },
                {
                    "Sid": "DescribeSparkClusters",
                    "Effect": "Allow",
                    "Action": "emr-containers:DescribeVirtualCluster",
                    "Resource": clusters,
                },
                {
                    "Sid": "WatchSparkJobs",
                    "Effect": "Allow",
                    "Action": ["emr-containers:DescribeJobRun", "emr-containers:CancelJobRun"],
                    "Resource": [pulumi.Output.concat(c, "/jobruns/*") for c in clusters],
                },
            ]
        if args.startable_pipeline_names:
            # promote_dev -> pipelines.promote.start_deployment: StartPipelineExecution on the pipeline
            # (resource type "pipeline" in the Service Authorization Reference for CodePipeline)
            statements.append(
                {
                    "Sid": "StartDeliveryPipelines",
                    "Effect": "Allow",
                    "Action": "codepipeline:StartPipelineExecution",
                    "Resource": [
                        pulumi.Output.format("arn:{0}:codepipeline:{1}:{2}:{3}", part, region, account, p)
                        for p in args.startable_pipeline_names
                    ],
                }
            )
        sm = "arn:{0}:sagemaker:{1}:{2}:"
        statements.append(
            {
                "Sid": "SageMakerJobsAndModels",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:CreateModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:AddTags",
                ],
                "Resource": [
                    *(
                        pulumi.Output.format(sm + "training-job/{3}*", part, region, account, job_prefix)
                        for job_prefix in (args.training_job_prefixes or [f"{args.name_prefix}-"])
                    ),
                    pulumi.Output.format(
                        sm + "processing-job/{3}-*", part, region, account, args.name_prefix
                    ),
                    pulumi.Output.format(sm + "model/{3}-*", part, region, account, args.name_prefix),
                ],
            }
        )
        if args.transform_job_prefixes:
            # pipelines.batch: CreateTransformJob (resource type transform-job; the job runs as its model's
            # role, so no PassRole here: CreateModel passes it) and the waiter's Describe/Stop.
            statements.append(
                {
                    "Sid": "BatchTransformJobs",
                    "Effect": "Allow",
                    "Action": [
                        "sagemaker:CreateTransformJob",
                        "sagemaker:DescribeTransformJob",
                        "sagemaker:StopTransformJob",
                        "sagemaker:AddTags",
                    ],
                    "Resource": [
                        pulumi.Output.format(sm + "transform-job/{3}*", part, region, account, job_prefix)
                        for job_prefix in args.transform_job_prefixes
                    ],
                }
            )
        if args.tuning_job_prefixes:
            # The training DAG's tuning branch (SageMakerTuningOperator, pipelines.tuning.tuning_result):
            # resource type hyper-parameter-tuning-job for the tuning actions, training-job for the
            # trials it reads (named <tuning job>-<NNN>-<hex>); iam:PassRole of the training role is
            # the PassRole statement's. Service Authorization Reference for Amazon SageMaker:
            # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html
            statements.append(
                {
                    "Sid": "HyperparameterTuning",
                    "Effect": "Allow",
                    "Action": [
                        "sagemaker:CreateHyperParameterTuningJob",
                        "sagemaker:DescribeHyperParameterTuningJob",
                        "sagemaker:StopHyperParameterTuningJob",
                        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                        "sagemaker:AddTags",
                    ],
                    "Resource": [
                        pulumi.Output.format(
                            sm + "hyper-parameter-tuning-job/{3}*", part, region, account, job_prefix
                        )
                        for job_prefix in args.tuning_job_prefixes
                    ],
                }
            )
            statements.append(
                {
                    "Sid": "ReadTuningTrials",
                    "Effect": "Allow",
                    "Action": ["sagemaker:DescribeTrainingJob"],
                    "Resource": [
                        pulumi.Output.format(sm + "training-job/{3}*", part, region, account, job_prefix)
                        for job_prefix in args.tuning_job_prefixes
                    ],
                }
            )
        if args.model_package_group_names:
            statements.append(
                {
                    "Sid": "RegisterModels",
                    "Effect": "Allow",
                    "Action": [
                        "sagemaker:CreateModelPackage",
                        "sagemaker:DescribeModelPackage",
                        "sagemaker:UpdateModelPackage",
                        "sagemaker:DescribeModelPackageGroup",
                        "sagemaker:AddTags",
                    ],
                    "Resource": [
                        r
                        for g in args.model_package_group_names
                        for r in (
                            pulumi.Output.format(sm + "model-package-group/{3}", part, region, account, g),
                            pulumi.Output.format(sm + "model-package/{3}/*", part, region, account, g),
                        )
                    ],
                }
            )
            statements.append(
                {
                    # register.py creates each package's model card (<group>-<version>, Draft) and
                    # promote.py approves it with the package (pipelines/model_card.py).
                    "Sid": "ModelCards",
                    "Effect": "Allow",
                    "Action": [
                        "sagemaker:CreateModelCard",
                        "sagemaker:DescribeModelCard",
                        "sagemaker:UpdateModelCard",
                    ],
                    "Resource": [
                        pulumi.Output.format(sm + "model-card/{3}-*", part, region, account, g)
                        for g in args.model_package_group_names
                    ],
                }
            )
        statements += [
            {
                # ListModelPackages has no resource types (Service Authorization Reference, SageMaker):
                # only "*" works; register.py and packages.py page through it.
                "Sid": "ListModelPackages",
                "Effect": "Allow",
                "Action": "sagemaker:ListModelPackages",
                "Resource": "*",
            },
            {
                # promote.py reads the live endpoint (DescribeEndpoint -> its config -> its models).
                "Sid": "ReadEndpoints",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DescribeModel",
                ],
                "Resource": [
                    pulumi.Output.format(sm + "endpoint/{3}-*", part, region, account, args.name_prefix),
                    pulumi.Output.format(
                        sm + "endpoint-config/{3}-*", part, region, account, args.name_prefix
                    ),
                    pulumi.Output.format(sm + "model/*", part, region, account),
                ],
            },
            {
                # The monitoring DAG's retrain trigger calls InvokeRestApi on this environment as the
                # Airflow "User" role (enough to trigger a DAG run); the resource is the Airflow role
                # ARN (https://docs.aws.amazon.com/mwaa/latest/userguide/access-mwaa-apache-airflow-rest-api.html).
                "Sid": "TriggerDagRuns",
                "Effect": "Allow",
                "Action": "airflow:InvokeRestApi",
                "Resource": pulumi.Output.format(
                    "arn:{0}:airflow:{1}:{2}:role/{3}/User", part, region, account, args.environment_name
                ),
            },
        ]
        if args.deny_package_approval:
            statements.append(
                {
                    "Sid": "DenyPackageApproval",
                    "Effect": "Deny",
                    "Action": "sagemaker:UpdateModelPackage",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"sagemaker:ModelApprovalStatus": "Approved"}},
                }
            )
        if args.athena_workgroup_name is not None:
            statements.append(
                {
                    "Sid": "QueryAthena",
                    "Effect": "Allow",
                    "Action": [
                        "athena:StartQueryExecution",
                        "athena:GetQueryExecution",
                        "athena:GetQueryResults",
                        "athena:StopQueryExecution",
                        "athena:GetWorkGroup",
                    ],
                    "Resource": pulumi.Output.format(
                        "arn:{0}:athena:{1}:{2}:workgroup/{3}",
                        part,
                        region,
                        account,
                        args.athena_workgroup_name,
                    ),
                }
            )
        if args.glue_database_name is not None:
            glue = "arn:{0}:glue:{1}:{2}:"
            statements.append(
                {
                    "Sid": "ReadWriteCatalog",
                    "Effect": "Allow",
                    "Action": [
                        "glue:GetDatabase",
                        "glue:GetTable",
                        "glue:GetTables",
                        "glue:GetPartition",
                        "glue:GetPartitions",
                        "glue:BatchCreatePartition",
                        "glue:CreatePartition",
                        "glue:UpdateTable",
                    ],
                    "Resource": [
                        pulumi.Output.format(glue + "catalog", part, region, account),
                        pulumi.Output.format(
                            glue + "database/{3}", part, region, account, args.glue_database_name
                        ),
                        pulumi.Output.format(
                            glue + "table/{3}/*", part, region, account, args.glue_database_name
                        ),
                    ],
                }
            )
        if args.glue_database_name is not None and args.batch_table_names:
            statements.append(
                {
                    "Sid": "CreateBatchTables",
                    "Effect": "Allow",
                    "Action": "glue:CreateTable",
                    "Resource": [
                        pulumi.Output.format("arn:{0}:glue:{1}:{2}:catalog", part, region, account),
                        pulumi.Output.format(
                            "arn:{0}:glue:{1}:{2}:database/{3}",
                            part,
                            region,
                            account,
                            args.glue_database_name,
                        ),
                        *(
                            pulumi.Output.format(
                                "arn:{0}:glue:{1}:{2}:table/{3}/{4}",
                                part,
                                region,
                                account,
                                args.glue_database_name,
                                t,
                            )
                            for t in args.batch_table_names
                        ),
                    ],
                }
            )
        for i, (service, roles) in enumerate(sorted(args.passable_role_arns.items())):
            if roles:
                statements.append(
                    {
                        "Sid": f"PassPlatformRoles{i}",
                        "Effect": "Allow",
                        "Action": "iam:PassRole",
                        "Resource": list(roles),
                        "Condition": {"StringEquals": {"iam:PassedToService": service}},
                    }
                )
        return statements
