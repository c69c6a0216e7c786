"""EMR on EKS: per-job-class namespaces, RBAC, job execution roles and virtual clusters.

How a Spark job gets AWS permissions: ``StartJobRun`` names a *job execution role*. EMR creates a
service account in the job's namespace named
``emr-containers-sa-<component>-<id>-<account>-<base36(role name)>`` and the driver and executor
pods assume the role through the cluster's OIDC issuer (IRSA). The role's trust policy therefore
names the cluster's OIDC provider and a ``StringLike`` on that service-account pattern, exactly as
``aws emr-containers update-role-trust-policy`` writes it:
https://docs.aws.amazon.com/emr/latest/EMR-on-EKS-DevelopmentGuide/setting-up-trust-policy.html

**Cluster access for EMR.** EMR's service-linked role ``AWSServiceRoleForAmazonEMRContainers``
acts in the namespace as the Kubernetes user ``emr-containers``; each namespace gets the Role and
RoleBinding of the EMR guide's manual setup. The *access entry* for that service-linked role is not
declared here: EKS refuses ``CreateAccessEntry`` for a service-linked role from any caller
("The caller is not allowed to modify access entries with a principalArn value of a Service Linked
Role", https://github.com/hashicorp/terraform-provider-aws/issues/36447; EKS guide "Create access
entries": access entries do not support service-linked roles). EMR creates that entry itself when
the virtual cluster is created on a cluster with access entries enabled (EMR guide, "Enable cluster
access using EKS Access Entry"), which needs ``eks:CreateAccessEntry`` and
``eks:AssociateAccessPolicy`` on the deployer:
https://docs.aws.amazon.com/emr/latest/EMR-on-EKS-DevelopmentGuide/setting-up-cluster-access.html
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components._util import (
    account_id,
    child_opts,
    partition,
    policy_document,
    policy_json,
)

EMR_CONTAINERS_USER = "emr-containers"
"""Kubernetes user name EKS maps EMR's service-linked role to."""

_VERBS_ALL = [
    "get",
    "list",
    "watch",
    "describe",
    "create",
    "edit",
    "delete",
    "deletecollection",
    "annotate",
    "patch",
    "label",
]
_VERBS_NO_COLLECTION = [
    "get",
    "list",
    "watch",
    "describe",
    "create",
    "edit",
    "delete",
    "annotate",
    "patch",
    "label",
]

# The namespaced Role EMR on EKS needs, as in the EMR guide's manual setup (EKS 1.22 and later):
# https://docs.aws.amazon.com/emr/latest/EMR-on-EKS-DevelopmentGuide/setting-up-cluster-access.html
EMR_ROLE_RULES: tuple[dict[str, Any], ...] = (
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]},
    {
        "apiGroups": [""],
        "resources": ["serviceaccounts", "services", "configmaps", "events", "pods", "pods/log"],
        "verbs": _VERBS_ALL,
    },
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "patch", "delete", "watch"]},
    {"apiGroups": ["apps"], "resources": ["statefulsets", "deployments"], "verbs": _VERBS_NO_COLLECTION},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": _VERBS_NO_COLLECTION},
    {
        "apiGroups": ["extensions", "networking.k8s.io"],
        "resources": ["ingresses"],
        "verbs": _VERBS_NO_COLLECTION,
    },
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": _VERBS_ALL},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": _VERBS_ALL},
)


def base36_role_name(role_name: str) -> str:
    """Base36 of the role name read as a big-endian base-256 number, as the AWS CLI computes it for
    the EMR service-account name (``awscli/customizations/emrcontainers/base36.py``)."""
    number = 0
    for char in role_name:
        number = number * 256 + ord(char)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out or "0"


def emr_job_role_trust_policy(
    provider_arn: pulumi.Input[str],
    issuer_url: pulumi.Input[str],
    account: pulumi.Input[str],
    *,
    namespaces: Sequence[str],
    role_name: str,
) -> pulumi.Output[str]:
    """The IRSA trust of an EMR on EKS job execution role for the given namespaces."""

    def render(values: list[Any]) -> str:
        arn, issuer, acct = str(values[0]), str(values[1]).removeprefix("https://"), str(values[2])
        encoded = base36_role_name(role_name)
        subjects = [f"system:serviceaccount:{ns}:emr-containers-sa-*-*-{acct}-{encoded}" for ns in namespaces]
        statement = {
            "Effect": "Allow",
            "Principal": {"Federated": arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringLike": {f"{issuer}:sub": subjects[0] if len(subjects) == 1 else subjects}},
        }
        return policy_json([statement])

    return pulumi.Output.all(provider_arn, issuer_url, account).apply(render)


@dataclass(frozen=True, kw_only=True)
class S3Location:
    """A prefix in a lake bucket."""

    bucket_arn: pulumi.Input[str]
    """The bucket's ARN."""
    prefix: str
    """Key prefix ending in ``/`` (``curated/``); the grant covers keys below it only."""


@dataclass(frozen=True, kw_only=True)
class JobClass:
    """One team or job class: its namespace, virtual cluster, job role, log group and log prefix."""

    name: str
    """Short name used in resource names and outputs."""
    namespace: str
    """Kubernetes namespace its jobs run in."""
    read: Sequence[S3Location] = ()
    """Lake prefixes its jobs read."""
    write: Sequence[S3Location] = ()
    """Lake prefixes its jobs read and write."""


@dataclass(frozen=True, kw_only=True)
class SparkOnEksArgs:
    """Arguments of :class:`SparkOnEks`."""

    cluster_name: pulumi.Input[str]
    """EKS cluster name (from :class:`~components.cluster.Cluster`)."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider ARN."""
    oidc_issuer_url: pulumi.Input[str]
    """The cluster's OIDC issuer URL."""
    kubernetes_provider: k8s.Provider
    """Provider for the cluster (``Cluster.provider``)."""
    job_classes: Sequence[JobClass]
    """Job classes; the first is the platform default."""
    glue_database_name: pulumi.Input[str]
    """Glue database the jobs read and write tables of."""
    data_key_arns: Sequence[pulumi.Input[str]]
    """KMS keys of the buckets the jobs touch (decrypt / generate data keys)."""
    logs_bucket_arn: pulumi.Input[str]
    """Bucket (artifacts) for job logs, under ``logs_prefix``."""
    logs_bucket_name: pulumi.Input[str]
    """Name of that bucket (for the ``s3://`` URI output)."""
    log_key_arn: pulumi.Input[str]
    """KMS key of the job log groups."""
    region: str
    """Region (log-group ARNs)."""
    log_retention_days: int = 365
    """Job log group retention."""
    logs_prefix: str = "logs/emr-on-eks/"
    """``logUri`` prefix of job logs. EMR writes a job's logs under ``<logUri>/<virtual cluster id>/jobs/<job
    id>/``, so each class's role may write only below its own virtual cluster's ID.
    """
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child."""

    def __post_init__(self) -> None:
        if not self.job_classes:
            raise ValueError("SparkOnEksArgs.job_classes: add at least one job class")
        for attr in ("name", "namespace"):
            values = [getattr(j, attr) for j in self.job_classes]
            if len(set(values)) != len(values):
                raise ValueError(f"SparkOnEksArgs.job_classes: duplicate {attr}s {values}")
        for job in self.job_classes:
            for loc in (*job.read, *job.write):
                if not loc.prefix.endswith("/") or "*" in loc.prefix or loc.prefix.startswith("/"):
                    raise ValueError(
                        f"SparkOnEksArgs.job_classes[{job.name!r}]: prefix {loc.prefix!r} must end with '/', "
                        "not start with '/', and hold no '*'"
                    )
        if not self.logs_prefix.endswith("/"):
            raise ValueError("SparkOnEksArgs.logs_prefix must end with '/'")


class SparkOnEks(pulumi.ComponentResource):
    """EMR on EKS virtual clusters (one per job class) with least-privilege job roles.

    Per job class: a namespace; the ``emr-containers`` Role and RoleBinding; a job execution role
    trusted only by EMR's service accounts in that namespace (IRSA) and allowed only its lake
    prefixes, the Glue database, the data keys, its log group and its log prefix; a CloudWatch log
    group; and an ``aws.emrcontainers.VirtualCluster`` on the namespace.

    EMR Studio is its own component, :class:`components.studio.EmrStudio`.

    Outputs:
        namespaces, virtual_cluster_ids, virtual_cluster_arns, job_role_arns, log_group_names
        (each ``{job class: value}``), logs_s3_uri.
    """

    namespaces: dict[str, str]
    virtual_cluster_ids: dict[str, pulumi.Output[str]]
    virtual_cluster_arns: dict[str, pulumi.Output[str]]
    job_role_arns: dict[str, pulumi.Output[str]]
    log_group_names: dict[str, pulumi.Output[str]]
    logs_s3_uri: pulumi.Output[str]

    def __init__(self, name: str, args: SparkOnEksArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:spark:SparkOnEks", name, None, opts)
        tags = dict(args.tags)
        account = account_id(self)
        part = partition(self)
        self.namespaces, self.virtual_cluster_ids, self.virtual_cluster_arns = {}, {}, {}
        self.job_role_arns, self.log_group_names = {}, {}

        for job in args.job_classes:
            self._job_class(name, args, job, account, part, tags)
        self.logs_s3_uri = pulumi.Output.concat("s3://", args.logs_bucket_name, "/", args.logs_prefix)

        self.register_outputs(
            {
                "namespaces": self.namespaces,
                "virtual_cluster_ids": self.virtual_cluster_ids,
                "virtual_cluster_arns": self.virtual_cluster_arns,
                "job_role_arns": self.job_role_arns,
                "log_group_names": self.log_group_names,
                "logs_s3_uri": self.logs_s3_uri,
            }
        )

    # -- per job class -----------------------------------------------------------------------
    def _job_class(
        self,
        name: str,
        args: SparkOnEksArgs,
        job: JobClass,
        account: pulumi.Output[str],
        part: pulumi.Output[str],
        tags: dict[str, str],
    ) -> None:
        base = f"{name}-{job.name}"
        k8s_opts = child_opts(self, provider=args.kubernetes_provider)
        namespace = k8s.core.v1.Namespace(
            f"{base}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=job.namespace,
                labels={"app.kubernetes.io/managed-by": "pulumi", "mlops/job-class": job.name},
            ),
            opts=k8s_opts,
        )
        role = k8s.rbac.v1.Role(
            f"{base}-emr-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=EMR_CONTAINERS_USER, namespace=namespace.metadata.name),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=r["apiGroups"], resources=r["resources"], verbs=r["verbs"]
                )
                for r in EMR_ROLE_RULES
            ],
            opts=k8s_opts,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{base}-emr-rolebinding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=EMR_CONTAINERS_USER, namespace=namespace.metadata.name),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="User", name=EMR_CONTAINERS_USER, api_group="rbac.authorization.k8s.io"
                )
            ],
            role_ref=k8s.rbac.v1.RoleRefArgs(
                kind="Role", name=role.metadata.name, api_group="rbac.authorization.k8s.io"
            ),
            opts=k8s_opts,
        )

        log_group = aws.cloudwatch.LogGroup(
            f"{base}-job-logs",
            name=f"/mlops/{name}/emr/{job.name}",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.log_key_arn,
            tags=tags,
            opts=child_opts(self),
        )
        # An explicit name: the trust policy's subject pattern embeds base36(role name).
        role_name = f"{base}-emr-job"
        if len(role_name) > 64:
            raise ValueError(
                f"EMR job role name {role_name!r} exceeds IAM's 64 characters; shorten the names"
            )
        job_role = aws.iam.Role(
            f"{base}-job-role",
            name=role_name,
            description=f"EMR on EKS job execution role of job class {job.name} ({job.namespace})",
            assume_role_policy=emr_job_role_trust_policy(
                args.oidc_provider_arn,
                args.oidc_issuer_url,
                account,
                namespaces=[job.namespace],
                role_name=role_name,
            ),
            tags=tags,
            opts=child_opts(self),
        )
        virtual_cluster = aws.emrcontainers.VirtualCluster(
            f"{base}-vc",
            name=base,
            container_provider=aws.emrcontainers.VirtualClusterContainerProviderArgs(
                id=args.cluster_name,
                type="EKS",
                info=aws.emrcontainers.VirtualClusterContainerProviderInfoArgs(
                    eks_info=aws.emrcontainers.VirtualClusterContainerProviderInfoEksInfoArgs(
                        namespace=namespace.metadata.name
                    )
                ),
            ),
            tags=tags,
            opts=child_opts(self, depends_on=[role, binding]),
        )
        aws.iam.RolePolicy(
            f"{base}-job-permissions",
            role=job_role.id,
            policy=policy_document(
                _job_statements(args, job, log_group.arn, virtual_cluster.id, account, part)
            ),
            opts=child_opts(self),
        )
        self.namespaces[job.name] = job.namespace
        self.virtual_cluster_ids[job.name] = virtual_cluster.id
        self.virtual_cluster_arns[job.name] = virtual_cluster.arn
        self.job_role_arns[job.name] = job_role.arn
        self.log_group_names[job.name] = log_group.name


def _objects(bucket_arn: pulumi.Input[str], prefix: str) -> pulumi.Output[str]:
    return pulumi.Output.concat(bucket_arn, "/", prefix, "*")


def _job_statements(
    args: SparkOnEksArgs,
    job: JobClass,
    log_group_arn: pulumi.Output[str],
    virtual_cluster_id: pulumi.Output[str],
    account: pulumi.Output[str],
    part: pulumi.Output[str],
) -> list[dict[str, Any]]:
    """Least-privilege permissions of one job class's execution role."""
    statements: list[dict[str, Any]] = []
    readable = [*job.read, *job.write]
    if readable:
        statements.append(
            {
                "Sid": "ReadLakePrefixes",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [_objects(loc.bucket_arn, loc.prefix) for loc in readable],
            }
        )
    if job.write:
        statements.append(
            {
                "Sid": "WriteLakePrefixes",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                "Resource": [_objects(loc.bucket_arn, loc.prefix) for loc in job.write],
            }
        )
    statements.append(
        {
            # EMR writes <logUri>/<virtual cluster id>/jobs/<job id>/containers/...; the EMR on EKS
            # best-practices guide grants put, get and list on the log location:
            # https://aws.github.io/aws-emr-containers-best-practices/troubleshooting/docs/where-to-look-for-spark-logs
            "Sid": "WriteJobLogsToS3",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject"],
            "Resource": pulumi.Output.concat(
                args.logs_bucket_arn, "/", args.logs_prefix, virtual_cluster_id, "/*"
            ),
        }
    )
    statements.append(
        {
            "Sid": "ListJobLogs",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": args.logs_bucket_arn,
            "Condition": {
                "StringLike": {"s3:prefix": pulumi.Output.concat(args.logs_prefix, virtual_cluster_id, "/*")}
            },
        }
    )
    # Listing is granted per bucket, only below the granted prefixes (s3:prefix condition).
    by_bucket: dict[int, tuple[pulumi.Input[str], list[str]]] = {}
    for loc in readable:
        by_bucket.setdefault(id(loc.bucket_arn), (loc.bucket_arn, []))[1].append(loc.prefix)
    for i, (bucket_arn, prefixes) in enumerate(by_bucket.values()):
        statements.append(
            {
                "Sid": f"ListLakePrefixes{i}",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": bucket_arn,
                "Condition": {
                    "StringLike": {"s3:prefix": sorted({p for pre in prefixes for p in (pre, pre + "*")})}
                },
            }
        )
    if by_bucket:
        statements.append(
            {
                "Sid": "LocateLakeBuckets",
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation"],
                "Resource": [arn for arn, _ in by_bucket.values()],
            }
        )
    glue_base = pulumi.Output.concat("arn:", part, ":glue:", args.region, ":", account)
    statements += [
        {
            "Sid": "GlueCatalogDatabase",
            "Effect": "Allow",
            "Action": [
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:GetTables",
                "glue:GetPartition",
                "glue:GetPartitions",
                "glue:BatchGetPartition",
                "glue:CreateTable",
                "glue:UpdateTable",
                "glue:CreatePartition",
                "glue:BatchCreatePartition",
                "glue:UpdatePartition",
            ],
            "Resource": [
                pulumi.Output.concat(glue_base, ":catalog"),
                pulumi.Output.concat(glue_base, ":database/", args.glue_database_name),
                pulumi.Output.concat(glue_base, ":table/", args.glue_database_name, "/*"),
            ],
        },
        {
            # Spark's Glue catalog client looks up the `default` database when a session starts.
            "Sid": "GlueDefaultDatabaseLookup",
            "Effect": "Allow",
            "Action": ["glue:GetDatabase"],
            "Resource": [
                pulumi.Output.concat(glue_base, ":catalog"),
                pulumi.Output.concat(glue_base, ":database/default"),
            ],
        },
        {
            "Sid": "UseLakeKeys",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            "Resource": list(args.data_key_arns),
        },
        {
            "Sid": "WriteJobLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [log_group_arn, pulumi.Output.concat(log_group_arn, ":*")],
        },
        {
            "Sid": "FindJobLogGroup",
            "Effect": "Allow",
            "Action": ["logs:DescribeLogGroups"],
            "Resource": pulumi.Output.concat(
                "arn:", part, ":logs:", args.region, ":", account, ":log-group:*"
            ),
        },
    ]
    return statements
