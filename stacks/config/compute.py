"""Config sections of the compute and analytics layer: ``cluster``, ``spark`` and ``analytics``.

They plug into :class:`stacks.config.PlatformConfig` (one field each) and follow its rules:
camelCase keys in YAML, unknown keys rejected, and every bad value reported with its full key
(``mlops-platform:cluster.publicAccessCidrs``), the value and the rule it broke. Example::

    mlops-platform:cluster:
      kubernetesVersion: "1.35"
      endpointPublicAccess: false
      adminRoleArns: [arn:aws:iam::123456789012:role/platform-admin]
      nodeGroups:
        - name: system
          instanceTypes: [m6i.large]
          minSize: 2
          desiredSize: 2
          maxSize: 4
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from platform_contract.limits import ATHENA_MIN_BYTES_SCANNED_CUTOFF_MB
from platform_contract.naming import ModelNames
from platform_contract.versions import EKS_DEFAULT_KUBERNETES_VERSION, EKS_MIN_KUBERNETES_VERSION
from stacks.config.base import _Section
from stacks.config.contracts import ContractColumn, ContractSchema

if TYPE_CHECKING:  # component args are built lazily in to_args(): importing this module needs no Pulumi
    import pulumi
    import pulumi_kubernetes as k8s

    from components.analytics import AnalyticsArgs
    from components.cluster import ClusterArgs, NodeGroupSpec
    from components.spark import SparkOnEksArgs
    from components.studio import EmrStudioArgs

MIN_KUBERNETES_VERSION = EKS_MIN_KUBERNETES_VERSION
"""Oldest Kubernetes minor accepted (see :data:`platform_contract.versions.EKS_MIN_KUBERNETES_VERSION`)."""

LAKE_BUCKETS = ("raw", "curated", "features", "artifacts", "capture")
"""Bucket roles of the data lake a Spark job class may be granted prefixes in."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_NODE_GROUP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_GLUE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,127}$")
_PREFIX = re.compile(r"^([A-Za-z0-9!_.'()=-]+/)+$")
# Private, shared, loopback and link-local space: never a client of the *public* endpoint.
_NON_PUBLIC = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
    )
)


class NodeTaintConfig(_Section):
    """A Kubernetes taint put on every node of a node group."""

    key: str = Field(description="Taint key, e.g. `workload`.")
    value: str = Field(default="", description="Taint value.")
    effect: Literal["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"] = Field(
        default="NO_SCHEDULE", description="EKS taint effect."
    )


class NodeGroupConfig(_Section):
    """One EKS managed node group (in the private subnets)."""

    name: str = Field(description="Short name (lowercase letters, digits, `-`; up to 31 characters).")
    instance_types: list[str] = Field(
        default_factory=lambda: ["m6i.xlarge"],
        description="EC2 instance types; several types widen Spot capacity pools.",
    )
    capacity_type: Literal["ON_DEMAND", "SPOT"] = Field(default="ON_DEMAND", description="On-demand or Spot.")
    min_size: int = Field(default=1, description="Minimum node count.")
    desired_size: int = Field(
        default=2, description="Initial node count (the autoscaler owns it afterwards)."
    )
    max_size: int = Field(default=4, description="Maximum node count.")
    disk_size_gib: int = Field(
        default=50, description="Root EBS volume (gp3, encrypted) size in GiB (20-2048)."
    )
    ami_type: Literal["AL2023_x86_64_STANDARD", "AL2023_ARM_64_STANDARD", "AL2023_x86_64_NVIDIA"] = Field(
        default="AL2023_x86_64_STANDARD",
        description="EKS-optimized Amazon Linux 2023 AMI; ARM needs Graviton instance types, NVIDIA (with "
        "GPU drivers) GPU instance types.",
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Kubernetes node labels.")
    taints: list[NodeTaintConfig] = Field(default_factory=list, description="Kubernetes node taints.")
    imds_hop_limit: Literal[1, 2] = Field(
        default=1,
        description="IMDSv2 response hop limit of the nodes. 1 (default): pods cannot reach the node role "
        "(they use IRSA); 2 only for a group whose pods must read instance metadata themselves.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NODE_GROUP_NAME.match(value):
            raise ValueError("must start with a letter and hold up to 31 lowercase letters, digits or '-'")
        return value

    @field_validator("instance_types")
    @classmethod
    def _instance_types(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one EC2 instance type, e.g. [m6i.xlarge]")
        bad = [t for t in value if not _INSTANCE_TYPE.match(t)]
        if bad:
            raise ValueError(f"{bad} are not EC2 instance type names like m6i.xlarge")
        return value

    @field_validator("disk_size_gib")
    @classmethod
    def _disk(cls, value: int) -> int:
        if not 20 <= value <= 2048:
            raise ValueError("must be between 20 and 2048 GiB (AL2023 nodes need at least 20)")
        return value

    @model_validator(mode="after")
    def _sizes(self) -> NodeGroupConfig:
        if not 0 <= self.min_size <= self.desired_size <= self.max_size or self.max_size < 1:
            raise ValueError(
                f"node group {self.name!r}: need 0 <= minSize <= desiredSize <= maxSize and maxSize >= 1 "
                f"(got minSize={self.min_size}, desiredSize={self.desired_size}, maxSize={self.max_size})"
            )
        return self

    def to_spec(self) -> NodeGroupSpec:
        """The :class:`~components.cluster.NodeGroupSpec` of this node group."""
        from components.cluster import NodeGroupSpec, Taint

        return NodeGroupSpec(
            name=self.name,
            instance_types=self.instance_types,
            capacity_type=self.capacity_type,
            min_size=self.min_size,
            desired_size=self.desired_size,
            max_size=self.max_size,
            disk_size_gib=self.disk_size_gib,
            ami_type=self.ami_type,
            labels=self.labels,
            taints=[Taint(key=t.key, value=t.value, effect=t.effect) for t in self.taints],
            imds_hop_limit=self.imds_hop_limit,
        )


def _default_node_groups() -> list[NodeGroupConfig]:
    return [NodeGroupConfig(name="system", min_size=2, desired_size=2, max_size=4)]


class ClusterConfig(_Section):
    """The EKS cluster: version, API endpoint exposure, administrators and node groups."""

    kubernetes_version: str = Field(
        default=EKS_DEFAULT_KUBERNETES_VERSION, description="Kubernetes minor version, e.g. `1.35`."
    )
    bootstrap: bool = Field(
        default=False,
        description="First-deploy phase: open the public API endpoint to `publicAccessCidrs` only, so a "
        "deployer outside the VPC can create the in-cluster objects; the next apply with `bootstrap: "
        "false` closes it again (docs/first-deploy.md).",
    )
    endpoint_public_access: bool = Field(
        default=False,
        description="Expose the Kubernetes API endpoint publicly (the private endpoint is always on). "
        "Needs `publicAccessCidrs`.",
    )
    public_access_cidrs: list[str] = Field(
        default_factory=list,
        description="Public IPv4 CIDRs allowed to reach a public endpoint; never 0.0.0.0/0.",
    )
    admin_role_arns: list[str] = Field(
        default_factory=list,
        description="IAM role ARNs given cluster-admin through EKS access entries: the deployer roles "
        "(the workstation/CI role running `pulumi up` and the in-VPC delivery build role). Required "
        "with `bootstrap: true`; see docs/first-deploy.md.",
    )
    node_groups: list[NodeGroupConfig] = Field(
        default_factory=_default_node_groups, description="Managed node groups."
    )
    api_client_security_group: bool = Field(
        default=False,
        description="Create a security group the cluster admits on 443 (`clusterApiClientSecurityGroupId`) "
        "for in-VPC deployers, which run every apply after the bootstrap phase (docs/first-deploy.md).",
    )

    @model_validator(mode="before")
    @classmethod
    def _cidrs_present(cls, data: object) -> object:
        # A public endpoint with no CIDR list must fail on `publicAccessCidrs` itself, so the key is
        # made explicit before field validation (a default is otherwise reported by field name).
        if isinstance(data, dict) and "publicAccessCidrs" not in data and "public_access_cidrs" not in data:
            flags = [
                data.get(k, False) for k in ("endpointPublicAccess", "endpoint_public_access", "bootstrap")
            ]
            if any(flag is True or str(flag).lower() == "true" for flag in flags):
                return {**data, "publicAccessCidrs": []}
        return data

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, value: str) -> str:
        match = re.fullmatch(r"1\.(\d{2})", value)
        if not match:
            raise ValueError('must be a Kubernetes minor version such as "1.35" (quote it in YAML)')
        if (1, int(match.group(1))) < MIN_KUBERNETES_VERSION:
            oldest = ".".join(map(str, MIN_KUBERNETES_VERSION))
            raise ValueError(f"is older than {oldest}, the oldest minor this blueprint accepts")
        return value

    @field_validator("public_access_cidrs")
    @classmethod
    def _public_cidrs(cls, value: list[str], info: ValidationInfo) -> list[str]:
        bootstrap = bool(info.data.get("bootstrap", False))
        public = bool(info.data.get("endpoint_public_access", False)) or bootstrap
        if public and not value:
            flag = "bootstrap" if bootstrap else "endpointPublicAccess"
            raise ValueError(
                f"{flag} is true but no CIDRs are listed: name the public ranges allowed to "
                "reach the API (e.g. your office or VPN egress /32s), or set endpointPublicAccess to false"
            )
        if value and not public:
            raise ValueError(
                "has CIDRs but endpointPublicAccess is false: set endpointPublicAccess to true, or remove them"
            )
        for cidr in value:
            try:
                net = ipaddress.IPv4Network(cidr, strict=True)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not an IPv4 network like 203.0.113.0/24 ({exc})") from None
            if net.prefixlen == 0:
                raise ValueError(
                    f"{cidr} opens the Kubernetes API to the whole internet (CKV_AWS_38); list your own "
                    "egress ranges instead"
                )
            if any(net.overlaps(private) for private in _NON_PUBLIC):
                raise ValueError(
                    f"{cidr} is not a public range; private networks reach the API through the private endpoint"
                )
        return value

    @field_validator("admin_role_arns")
    @classmethod
    def _admin_arns(cls, value: list[str]) -> list[str]:
        bad = [arn for arn in value if not _ROLE_ARN.match(arn)]
        if bad:
            raise ValueError(f"{bad} are not IAM role ARNs like arn:aws:iam::123456789012:role/name")
        return value

    @model_validator(mode="after")
    def _bootstrap_needs_deployers(self) -> ClusterConfig:
        if self.bootstrap and not self.admin_role_arns:
            raise ValueError(
                "bootstrap is true but adminRoleArns is empty: list the deployer roles (the role running "
                "`pulumi up` now and the in-VPC delivery build role that runs every later apply), or the "
                "cluster cannot be administered once bootstrap is turned off (docs/first-deploy.md)"
            )
        return self

    @property
    def public_endpoint(self) -> bool:
        """Whether the API endpoint is public (asked for, or opened for the bootstrap phase)."""
        return self.endpoint_public_access or self.bootstrap

    @field_validator("node_groups")
    @classmethod
    def _node_groups(cls, value: list[NodeGroupConfig]) -> list[NodeGroupConfig]:
        if not value:
            raise ValueError("needs at least one node group (core add-ons such as CoreDNS run on nodes)")
        names = [g.name for g in value]
        if len(set(names)) != len(names):
            raise ValueError(f"node group names must be unique, got {names}")
        return value

    def to_args(
        self,
        *,
        subnet_ids: Sequence[pulumi.Input[str]],
        secrets_key_arn: pulumi.Input[str],
        log_key_arn: pulumi.Input[str],
        region: str,
        log_retention_days: int,
        deletion_protection: bool,
        tags: Mapping[str, str],
        vpc_id: pulumi.Input[str] | None = None,
    ) -> ClusterArgs:
        """The :class:`~components.cluster.ClusterArgs` of this section, wired to the given inputs."""
        from components.cluster import ClusterArgs

        return ClusterArgs(
            kubernetes_version=self.kubernetes_version,
            subnet_ids=subnet_ids,
            secrets_key_arn=secrets_key_arn,
            log_key_arn=log_key_arn,
            region=region,
            log_retention_days=log_retention_days,
            endpoint_public_access=self.public_endpoint,
            public_access_cidrs=self.public_access_cidrs,
            admin_role_arns=self.admin_role_arns,
            # EKS's automatic creator entry and an explicit entry for the same role collide
            # (CreateAccessEntry: ResourceInUseException); with deployer roles listed, they get the entries.
            bootstrap_creator_admin=not self.admin_role_arns,
            deletion_protection=deletion_protection,
            node_groups=[g.to_spec() for g in self.node_groups],
            vpc_id=vpc_id,
            tags=tags,
        )


class S3GrantConfig(_Section):
    """A prefix in one lake bucket."""

    bucket: Literal["raw", "curated", "features", "artifacts", "capture"] = Field(
        description="Lake bucket role."
    )
    prefix: str = Field(description="Key prefix ending in `/`, e.g. `curated/`; no wildcards.")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError(
                "must be a key prefix of path segments ending in '/', e.g. features/ (no leading '/', no '*')"
            )
        return value


class JobClassConfig(_Section):
    """A team or job class: its own namespace, virtual cluster and job execution role."""

    name: str = Field(description="Short name (DNS label), used in resource names.")
    namespace: str = Field(description="Kubernetes namespace the jobs run in (DNS label).")
    read: list[S3GrantConfig] = Field(default_factory=list, description="Lake prefixes the jobs read.")
    write: list[S3GrantConfig] = Field(
        default_factory=list, description="Lake prefixes the jobs read and write."
    )

    @field_validator("name", "namespace")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not _DNS_LABEL.match(value) or len(value) > 40:
            raise ValueError("must be a DNS label: up to 40 lowercase letters, digits or '-'")
        if value in ("default", "kube-system", "kube-public", "kube-node-lease"):
            raise ValueError("must not be a Kubernetes system namespace; give the jobs their own")
        return value


def _default_job_classes() -> list[JobClassConfig]:
    return [
        JobClassConfig(
            name="features",
            namespace="spark-features",
            read=[
                S3GrantConfig(bucket="curated", prefix="curated/"),
                S3GrantConfig(bucket="artifacts", prefix="code/"),
                S3GrantConfig(bucket="artifacts", prefix="models/"),  # Spark scoring loads the model
                S3GrantConfig(bucket="capture", prefix="datacapture/"),  # Spark drift reads the capture
            ],
            write=[
                S3GrantConfig(bucket="features", prefix="features/"),
                S3GrantConfig(bucket="features", prefix="predictions/"),  # Spark scoring output
                S3GrantConfig(bucket="artifacts", prefix="monitoring/"),  # Spark drift: plan in, state out
            ],
        )
    ]


class SparkConfig(_Section):
    """EMR on EKS job classes and EMR Studio."""

    job_classes: list[JobClassConfig] = Field(
        default_factory=_default_job_classes,
        description="Job classes; the first is the platform default (stack outputs `emrVirtualClusterId`...).",
    )
    studio: bool = Field(default=True, description="Create an EMR Studio (IAM auth) for interactive work.")

    @field_validator("job_classes")
    @classmethod
    def _job_classes(cls, value: list[JobClassConfig]) -> list[JobClassConfig]:
        if not value:
            raise ValueError("needs at least one job class")
        for attr in ("name", "namespace"):
            seen = [getattr(j, attr) for j in value]
            if len(set(seen)) != len(seen):
                raise ValueError(f"job class {attr}s must be unique, got {seen}")
        return value

    def to_args(
        self,
        *,
        cluster_name: pulumi.Input[str],
        oidc_provider_arn: pulumi.Input[str],
        oidc_issuer_url: pulumi.Input[str],
        kubernetes_provider: k8s.Provider,
        bucket_arns: Mapping[str, pulumi.Input[str]],
        glue_database_name: pulumi.Input[str],
        data_key_arns: Sequence[pulumi.Input[str]],
        logs_bucket_arn: pulumi.Input[str],
        logs_bucket_name: pulumi.Input[str],
        log_key_arn: pulumi.Input[str],
        log_retention_days: int,
        region: str,
        tags: Mapping[str, str],
    ) -> SparkOnEksArgs:
        """The :class:`~components.spark.SparkOnEksArgs` of the job classes; ``bucket_arns`` maps each
        lake bucket role to its ARN."""
        from components.spark import JobClass, S3Location, SparkOnEksArgs

        def grants(locations: list[S3GrantConfig]) -> list[S3Location]:
            return [S3Location(bucket_arn=bucket_arns[g.bucket], prefix=g.prefix) for g in locations]

        return SparkOnEksArgs(
            cluster_name=cluster_name,
            oidc_provider_arn=oidc_provider_arn,
            oidc_issuer_url=oidc_issuer_url,
            kubernetes_provider=kubernetes_provider,
            job_classes=[
                JobClass(name=j.name, namespace=j.namespace, read=grants(j.read), write=grants(j.write))
                for j in self.job_classes
            ],
            glue_database_name=glue_database_name,
            data_key_arns=data_key_arns,
            logs_bucket_arn=logs_bucket_arn,
            logs_bucket_name=logs_bucket_name,
            log_key_arn=log_key_arn,
            log_retention_days=log_retention_days,
            region=region,
            tags=tags,
        )

    def to_studio_args(
        self,
        *,
        region: str,
        vpc_id: pulumi.Input[str],
        subnet_ids: Sequence[pulumi.Input[str]],
        bucket_name: pulumi.Input[str],
        bucket_arn: pulumi.Input[str],
        key_arn: pulumi.Input[str],
        moved_from: pulumi.Input[str] | pulumi.Resource | None,
        tags: Mapping[str, str],
    ) -> EmrStudioArgs | None:
        """The :class:`~components.studio.EmrStudioArgs` of the Studio, or None when ``studio`` is false.
        ``subnet_ids`` beyond the fifth are left out (EMR Studio takes at most five)."""
        if not self.studio:
            return None
        from components.studio import EmrStudioArgs
        from platform_contract.limits import EMR_STUDIO_MAX_SUBNETS

        return EmrStudioArgs(
            region=region,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids[:EMR_STUDIO_MAX_SUBNETS],
            bucket_name=bucket_name,
            bucket_arn=bucket_arn,
            key_arn=key_arn,
            moved_from=moved_from,
            tags=tags,
        )


class AnalyticsConfig(_Section):
    """Glue catalog and Athena: the query guardrails. The tables come from the model catalog (each
    model's contract file and its capture prefix)."""

    bytes_scanned_cutoff_mb: int = Field(
        default=1024,
        description="Athena cancels any query of the workgroup that scans more than this (MB, >= 10).",
    )
    owns_catalog_encryption: bool | None = Field(
        default=None,
        description="This stack owns the account's Glue Data Catalog encryption settings (catalog and "
        "connection passwords encrypted with the lake key). Account- and region-wide: set it in exactly one "
        "stack per account and region. Default: true in prod, false elsewhere.",
    )

    def catalog_encryption_owned(self, environment: str) -> bool:
        """Whether this stack manages the catalog encryption settings (config, else prod only)."""
        if self.owns_catalog_encryption is None:
            return environment == "prod"
        return self.owns_catalog_encryption

    @field_validator("bytes_scanned_cutoff_mb")
    @classmethod
    def _cutoff(cls, value: int) -> int:
        if value < ATHENA_MIN_BYTES_SCANNED_CUTOFF_MB:
            raise ValueError(f"Athena's smallest per-query cutoff is {ATHENA_MIN_BYTES_SCANNED_CUTOFF_MB} MB")
        return value

    def to_args(
        self,
        *,
        name_prefix: str,
        curated_bucket: pulumi.Input[str],
        features_bucket: pulumi.Input[str],
        capture_bucket: pulumi.Input[str],
        results_bucket: pulumi.Input[str],
        results_key_arn: pulumi.Input[str],
        expected_bucket_owner: pulumi.Input[str],
        force_destroy: bool,
        models: Sequence[tuple[ModelNames, ContractSchema]],
        tags: Mapping[str, str],
        catalog_key_arn: pulumi.Input[str] | None = None,
    ) -> AnalyticsArgs:
        """The :class:`~components.analytics.AnalyticsArgs` of this section: database
        ``<prefix>_lake`` (``-`` -> ``_``), workgroup ``<prefix>-analytics``, and per model (its names and
        its contract's schema) the curated, features and capture tables."""
        from components.analytics import AnalyticsArgs, Column, DatasetSchema, ModelTables

        def columns(cols: Sequence[ContractColumn]) -> list[Column]:
            return [Column(name=c.name, type=c.type) for c in cols]

        return AnalyticsArgs(
            database_name=name_prefix.replace("-", "_") + "_lake",
            workgroup_name=f"{name_prefix}-analytics",
            curated_bucket=curated_bucket,
            features_bucket=features_bucket,
            capture_bucket=capture_bucket,
            results_bucket=results_bucket,
            results_key_arn=results_key_arn,
            expected_bucket_owner=expected_bucket_owner,
            models=[
                ModelTables(
                    model=names.slug,
                    capture_table=names.glue_capture_table,
                    capture_prefix=names.capture_prefix,
                    dataset=DatasetSchema(
                        name=schema.name,
                        columns=columns(schema.columns),
                        feature_columns=columns(schema.feature_columns),
                        model_inputs=list(schema.model_inputs),
                    ),
                )
                for names, schema in models
            ],
            bytes_scanned_cutoff=self.bytes_scanned_cutoff_mb * 1024 * 1024,
            force_destroy=force_destroy,
            catalog_key_arn=catalog_key_arn,
            tags=tags,
        )
