"""EKS with plain pulumi-aws resources: control plane, managed node groups, IRSA, add-ons, access.

Plain resources (not the ``pulumi-eks`` remote component) so every child is visible to the mock
engine and the policy pack, and every security-relevant input is asserted in tests.

**Workload identity: IRSA, not EKS Pod Identity.** The cluster registers its OIDC issuer as an IAM
identity provider and pods get roles through ``sts:AssumeRoleWithWebIdentity`` (IAM roles for
service accounts). Pod Identity would need the ``eks-pod-identity-agent`` add-on and per-service-
account associations; IRSA needs neither and is what the EMR on EKS job-execution-role trust is
documented for (``emr-containers-sa-*`` subjects, see :mod:`components.spark`), so one mechanism
serves the add-ons and the Spark jobs alike.
https://docs.aws.amazon.com/eks/latest/userguide/iam-roles-for-service-accounts.html
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components._util import child_opts, partition, policy_document, policy_json, service_trust_policy

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
"""All EKS control-plane log types (CKV_AWS_37)."""

# Managed policies a managed-node-group node needs, and nothing more. The VPC CNI's
# AmazonEKS_CNI_Policy goes to the CNI's own IRSA role instead of the node role, as AWS recommends.
# https://docs.aws.amazon.com/eks/latest/userguide/create-node-role.html
NODE_MANAGED_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")

CLUSTER_ADMIN_ACCESS_POLICY = "AmazonEKSClusterAdminPolicy"
"""EKS access policy given to the admin roles (``arn:aws:eks::aws:cluster-access-policy/...``)."""


@dataclass(frozen=True, kw_only=True)
class Taint:
    """A Kubernetes taint on every node of a node group (EKS effect names)."""

    key: str
    value: str = ""
    effect: Literal["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"] = "NO_SCHEDULE"


@dataclass(frozen=True, kw_only=True)
class NodeGroupSpec:
    """One managed node group."""

    name: str
    """Short name, used in resource names."""
    instance_types: Sequence[str] = ("m6i.xlarge",)
    """EC2 instance types (several widen Spot capacity pools)."""
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    """``ON_DEMAND`` or ``SPOT``."""
    min_size: int = 1
    """Minimum nodes."""
    desired_size: int = 2
    """Initial nodes; later changes by an autoscaler are not reverted by Pulumi."""
    max_size: int = 4
    """Maximum nodes."""
    disk_size_gib: int = 50
    """Root volume size (gp3, always encrypted)."""
    ami_type: Literal["AL2023_x86_64_STANDARD", "AL2023_ARM_64_STANDARD", "AL2023_x86_64_NVIDIA"] = (
        "AL2023_x86_64_STANDARD"
    )
    """EKS AMI type (Amazon Linux 2023); ``AL2023_x86_64_NVIDIA`` carries the NVIDIA drivers GPU instance
    types need (``amiType``: https://docs.aws.amazon.com/eks/latest/APIReference/API_Nodegroup.html)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Kubernetes node labels."""
    taints: Sequence[Taint] = ()
    """Kubernetes node taints."""
    imds_hop_limit: Literal[1, 2] = 1
    """Instance metadata (IMDSv2) response hop limit. 1 (default) keeps pods, one network hop further
    than the node, away from the node role's credentials: pods use IRSA. 2 only for a group whose pods
    must read IMDS themselves (e.g. a controller without region/instance configuration).
    https://docs.aws.amazon.com/eks/latest/best-practices/identity-and-access-management.html
    (restrict access to the instance profile assigned to the worker node)."""


@dataclass(frozen=True, kw_only=True)
class ClusterArgs:
    """Arguments of :class:`Cluster`."""

    kubernetes_version: str
    """Kubernetes minor version, e.g. ``"1.35"``."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets (two AZs at least) for the control-plane ENIs and the nodes."""
    secrets_key_arn: pulumi.Input[str]
    """KMS key for envelope encryption of Kubernetes secrets."""
    log_key_arn: pulumi.Input[str]
    """KMS key of the control-plane log group (the platform's logs key)."""
    region: str
    """Region, written into the kubeconfig's ``aws eks get-token`` call."""
    node_groups: Sequence[NodeGroupSpec]
    """Managed node groups; at least one (CoreDNS needs nodes)."""
    log_retention_days: int = 365
    """Control-plane log retention."""
    endpoint_public_access: bool = False
    """Also expose a public API endpoint (the private one is always on)."""
    public_access_cidrs: Sequence[str] = ()
    """The only public ranges allowed to reach a public endpoint; required with
    ``endpoint_public_access=True`` and never ``0.0.0.0/0``.
    """
    admin_role_arns: Sequence[str] = ()
    """IAM roles given ``AmazonEKSClusterAdminPolicy`` through access entries."""
    bootstrap_creator_admin: bool = True
    """Give the identity that creates the cluster (the deployer) an admin access entry; Pulumi needs it to
    create the in-cluster objects of later layers.
    """
    deletion_protection: bool = False
    """Refuse ``DeleteCluster`` (prod)."""
    vpc_id: pulumi.Input[str] | None = None
    """The cluster's VPC. When set, an *API clients* security group is created that the cluster security
    group admits on 443: in-VPC deployers (the delivery builds) attach it to reach the private endpoint
    once the bootstrap phase has closed the public one (docs/first-deploy.md).
    https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html"""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child."""

    def __post_init__(self) -> None:
        if self.public_access_cidrs and not self.endpoint_public_access:
            raise ValueError("ClusterArgs.public_access_cidrs needs endpoint_public_access=True")
        if self.endpoint_public_access and not self.public_access_cidrs:
            raise ValueError(
                "ClusterArgs.endpoint_public_access=True needs public_access_cidrs: name the ranges allowed "
                "to reach the public API endpoint"
            )
        for cidr in self.public_access_cidrs:
            if cidr.strip().endswith("/0"):
                raise ValueError(
                    f"ClusterArgs.public_access_cidrs contains {cidr}: that opens the API to the internet; "
                    "list your own egress ranges"
                )
        if len(self.subnet_ids) < 2:
            raise ValueError("ClusterArgs.subnet_ids: EKS needs subnets in at least two AZs")
        if not self.node_groups:
            raise ValueError("ClusterArgs.node_groups: add at least one node group (CoreDNS runs on nodes)")
        names = [g.name for g in self.node_groups]
        if len(set(names)) != len(names):
            raise ValueError(f"ClusterArgs.node_groups: duplicate names {names}")
        for g in self.node_groups:
            if not 0 <= g.min_size <= g.desired_size <= g.max_size or g.max_size < 1:
                raise ValueError(
                    f"ClusterArgs.node_groups[{g.name!r}]: need 0 <= min_size <= desired_size <= max_size"
                )
            if g.imds_hop_limit not in (1, 2):
                raise ValueError(f"ClusterArgs.node_groups[{g.name!r}].imds_hop_limit must be 1 or 2")
            if not g.instance_types:
                raise ValueError(f"ClusterArgs.node_groups[{g.name!r}].instance_types is empty")


def irsa_trust_policy(
    provider_arn: pulumi.Input[str],
    issuer_url: pulumi.Input[str],
    *,
    namespace: str,
    service_account: str,
) -> pulumi.Output[str]:
    """Trust policy letting exactly one Kubernetes service account assume a role through IRSA.

    The ``sub`` and ``aud`` conditions are the ones EKS documents for IRSA:
    https://docs.aws.amazon.com/eks/latest/userguide/associate-service-account-role.html
    """

    def render(values: list[Any]) -> str:
        arn, url = str(values[0]), str(values[1])
        issuer = url.removeprefix("https://")
        statement = {
            "Effect": "Allow",
            "Principal": {"Federated": arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                    f"{issuer}:aud": "sts.amazonaws.com",
                }
            },
        }
        return policy_json([statement])

    return pulumi.Output.all(provider_arn, issuer_url).apply(render)


def build_kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig (JSON) that authenticates with ``aws eks get-token`` (no static credentials)."""
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": [
                "--region",
                region,
                "eks",
                "get-token",
                "--cluster-name",
                cluster_name,
                "--output",
                "json",
            ],
        }
    }
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}
            ],
            "users": [{"name": cluster_name, "user": user}],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
        }
    )


class Cluster(pulumi.ComponentResource):
    """An EKS cluster, private by default, with encrypted secrets, full control-plane logs, managed
    node groups, IRSA, core add-ons and access entries; plus a Kubernetes provider for it.

    * Authentication mode ``API``: access is granted through EKS access entries only; the
      ``aws-auth`` ConfigMap is never read or edited. Managed node groups get their node access
      entry from EKS automatically.
    * The control-plane log group ``/aws/eks/<cluster>/cluster`` is created first (KMS-encrypted,
      with retention) so EKS writes into it instead of creating an unencrypted, never-expiring one.
    * Add-ons ``vpc-cni`` and ``kube-proxy`` are installed before the nodes (nodes need a CNI to
      become Ready); ``coredns`` and ``aws-ebs-csi-driver`` (Deployments) after them. EKS does not
      bootstrap unmanaged copies of them (``bootstrap_self_managed_addons=False``).
    * ``vpc-cni`` and ``aws-ebs-csi-driver`` each run under their own IRSA role with only their
      managed policy; the node role has only what kubelet needs.
    * Nodes: launch templates enforce IMDSv2 and an encrypted gp3 root volume.

    Outputs:
        cluster_name, cluster_arn, endpoint, certificate_authority_data, oidc_issuer_url,
        oidc_provider_arn, kubeconfig (secret), node_role_arn, cluster_security_group_id,
        api_client_security_group_id (None without ``vpc_id``), log_group_name.
    """

    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    certificate_authority_data: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    api_client_security_group_id: pulumi.Output[str] | None
    log_group_name: pulumi.Output[str]
    provider: k8s.Provider
    """A ``pulumi_kubernetes`` provider for this cluster (a handle, not an output)."""

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:cluster:Cluster", name, None, opts)
        tags = dict(args.tags)
        part = partition(self)

        def managed(policy: str) -> pulumi.Output[str]:
            return pulumi.Output.concat("arn:", part, ":iam::aws:policy/", policy)

        # --- control plane ------------------------------------------------------------------
        cluster_role = aws.iam.Role(
            f"{name}-cluster-role",
            description=f"EKS control plane of {name}",
            # https://docs.aws.amazon.com/eks/latest/userguide/cluster-iam-role.html
            assume_role_policy=service_trust_policy(["eks.amazonaws.com"]),
            tags=tags,
            opts=child_opts(self),
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=cluster_role.name,
            policy_arn=managed("AmazonEKSClusterPolicy"),
            opts=child_opts(self),
        )
        # Envelope encryption: the control plane uses the key through its role. Same actions as
        # terraform-aws-modules/eks's cluster encryption policy; the key policy's root statement
        # lets IAM grant them. https://docs.aws.amazon.com/eks/latest/userguide/envelope-encryption.html
        encryption_policy = aws.iam.RolePolicy(
            f"{name}-cluster-encryption",
            role=cluster_role.id,
            policy=policy_document(
                [
                    {
                        "Sid": "SecretsEnvelopeEncryption",
                        "Effect": "Allow",
                        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                        "Resource": args.secrets_key_arn,
                    }
                ]
            ),
            opts=child_opts(self),
        )
        # EKS writes control-plane logs to exactly this group name.
        # https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{name}/cluster",
            retention_in_days=args.log_retention_days,
            kms_key_id=args.log_key_arn,
            tags=tags,
            opts=child_opts(self),
        )
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(args.subnet_ids),
                endpoint_private_access=True,
                endpoint_public_access=args.endpoint_public_access,
                public_access_cidrs=list(args.public_access_cidrs) if args.endpoint_public_access else None,
            ),
            # https://docs.aws.amazon.com/eks/latest/userguide/grant-k8s-access.html (authentication modes)
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=args.bootstrap_creator_admin,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=args.secrets_key_arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            # The managed add-ons below replace the unmanaged copies EKS would otherwise install.
            bootstrap_self_managed_addons=False,
            # Standard support only: extended support is billed per cluster-hour.
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type="STANDARD"),
            deletion_protection=args.deletion_protection,
            tags=tags,
            opts=child_opts(self, depends_on=[cluster_policy, encryption_policy, log_group]),
        )
        issuer_url = cluster.identities.apply(_issuer)

        # --- IRSA: the cluster's OIDC issuer as an IAM identity provider -----------------------
        # IAM obtains the issuer's certificate thumbprint itself for EKS issuers; none is pinned.
        # https://docs.aws.amazon.com/eks/latest/userguide/enable-iam-roles-for-service-accounts.html
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer_url,
            client_id_lists=["sts.amazonaws.com"],
            tags=tags,
            opts=child_opts(self),
        )

        # --- nodes ------------------------------------------------------------------------------
        node_role = aws.iam.Role(
            f"{name}-node-role",
            description=f"EKS managed nodes of {name}",
            assume_role_policy=service_trust_policy(["ec2.amazonaws.com"]),
            tags=tags,
            opts=child_opts(self),
        )
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=node_role.name,
                policy_arn=managed(policy),
                opts=child_opts(self),
            )
            for policy in NODE_MANAGED_POLICIES
        ]

        cni_role = self._irsa_role(
            name,
            "vpc-cni",
            oidc,
            issuer_url,
            "kube-system",
            "aws-node",
            managed("AmazonEKS_CNI_Policy"),
            tags,
        )
        # https://docs.aws.amazon.com/eks/latest/userguide/ebs-csi.html (IAM role for the driver)
        ebs_role = self._irsa_role(
            name,
            "ebs-csi",
            oidc,
            issuer_url,
            "kube-system",
            "ebs-csi-controller-sa",
            managed("service-role/AmazonEBSCSIDriverPolicy"),
            tags,
        )

        before_nodes = [
            self._addon(name, cluster, "vpc-cni", cni_role.arn, tags),
            self._addon(name, cluster, "kube-proxy", None, tags),
        ]
        node_groups = [
            self._node_group(name, args, ng, cluster, node_role, [*node_policies, *before_nodes], tags)
            for ng in args.node_groups
        ]
        self._addon(name, cluster, "coredns", None, tags, depends_on=node_groups)
        self._addon(name, cluster, "aws-ebs-csi-driver", ebs_role.arn, tags, depends_on=node_groups)

        # --- access entries -------------------------------------------------------------------
        admin_associations: list[pulumi.Resource] = []
        for i, role_arn in enumerate(args.admin_role_arns):
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{i}",
                cluster_name=cluster.name,
                principal_arn=role_arn,
                type="STANDARD",
                tags=tags,
                opts=child_opts(self),
            )
            admin_associations.append(
                aws.eks.AccessPolicyAssociation(
                    f"{name}-admin-{i}-cluster-admin",
                    cluster_name=cluster.name,
                    principal_arn=entry.principal_arn,
                    # https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html
                    policy_arn=pulumi.Output.concat(
                        "arn:", part, ":eks::aws:cluster-access-policy/", CLUSTER_ADMIN_ACCESS_POLICY
                    ),
                    access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                    opts=child_opts(self),
                )
            )

        # --- kubeconfig and provider -----------------------------------------------------------
        ca_data = cluster.certificate_authority.apply(lambda ca: str(_field(ca, "data") or ""))
        kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(cluster.name, cluster.endpoint, ca_data).apply(
                lambda v: build_kubeconfig(str(v[0]), str(v[1]), str(v[2]), args.region)
            )
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=kubeconfig,
            opts=child_opts(self, depends_on=admin_associations),
        )

        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.endpoint = cluster.endpoint
        self.certificate_authority_data = ca_data
        self.oidc_issuer_url = issuer_url
        self.oidc_provider_arn = oidc.arn
        self.kubeconfig = kubeconfig
        self.node_role_arn = node_role.arn
        self.cluster_security_group_id = cluster.vpc_config.apply(
            lambda vpc: str(_field(vpc, "cluster_security_group_id") or "")
        )
        self.api_client_security_group_id = None
        if args.vpc_id is not None:
            self.api_client_security_group_id = self._api_clients(name, args, tags)
        self.log_group_name = log_group.name
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "cluster_arn": self.cluster_arn,
                "endpoint": self.endpoint,
                "certificate_authority_data": self.certificate_authority_data,
                "oidc_issuer_url": self.oidc_issuer_url,
                "oidc_provider_arn": self.oidc_provider_arn,
                "kubeconfig": self.kubeconfig,
                "node_role_arn": self.node_role_arn,
                "cluster_security_group_id": self.cluster_security_group_id,
                "api_client_security_group_id": self.api_client_security_group_id,
                "log_group_name": self.log_group_name,
            }
        )

    def _api_clients(self, name: str, args: ClusterArgs, tags: Mapping[str, str]) -> pulumi.Output[str]:
        """A security group for in-VPC API clients, admitted by the cluster security group on 443.

        EKS's cluster security group admits only itself by default, so a build in the private subnets
        cannot reach the private endpoint without such a rule.
        https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html (accessing a private-only
        API server)"""
        assert args.vpc_id is not None
        clients = aws.ec2.SecurityGroup(
            f"{name}-api-clients-sg",
            vpc_id=args.vpc_id,
            description=f"Clients of the {name} Kubernetes API (in-VPC deployers): HTTPS to the API only",
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    description="HTTPS to the EKS API endpoint",
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    security_groups=[self.cluster_security_group_id],
                )
            ],
            tags={**tags, "Name": f"{name}-api-clients"},
            opts=child_opts(self),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-api-from-clients",
            security_group_id=self.cluster_security_group_id,
            referenced_security_group_id=clients.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="Kubernetes API from the in-VPC deployers",
            tags=dict(tags),
            opts=child_opts(self),
        )
        return clients.id

    def _irsa_role(
        self,
        name: str,
        role: str,
        oidc: aws.iam.OpenIdConnectProvider,
        issuer_url: pulumi.Output[str],
        namespace: str,
        service_account: str,
        policy_arn: pulumi.Input[str],
        tags: Mapping[str, str],
    ) -> aws.iam.Role:
        iam_role = aws.iam.Role(
            f"{name}-{role}-role",
            description=f"IRSA role of {namespace}/{service_account} in {name}",
            assume_role_policy=irsa_trust_policy(
                oidc.arn, issuer_url, namespace=namespace, service_account=service_account
            ),
            tags=dict(tags),
            opts=child_opts(self),
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-{role}-policy", role=iam_role.name, policy_arn=policy_arn, opts=child_opts(self)
        )
        return iam_role

    def _addon(
        self,
        name: str,
        cluster: aws.eks.Cluster,
        addon: str,
        role_arn: pulumi.Input[str] | None,
        tags: Mapping[str, str],
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> aws.eks.Addon:
        # No version pin: EKS picks the default version for the cluster's Kubernetes version.
        return aws.eks.Addon(
            f"{name}-addon-{addon}",
            cluster_name=cluster.name,
            addon_name=addon,
            service_account_role_arn=role_arn,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            tags=dict(tags),
            opts=child_opts(self, depends_on=list(depends_on)),
        )

    def _node_group(
        self,
        name: str,
        args: ClusterArgs,
        spec: NodeGroupSpec,
        cluster: aws.eks.Cluster,
        node_role: aws.iam.Role,
        depends_on: Sequence[pulumi.Resource],
        tags: Mapping[str, str],
    ) -> aws.eks.NodeGroup:
        group_tags = {**tags, "node-group": spec.name}
        template = aws.ec2.LaunchTemplate(
            f"{name}-{spec.name}-lt",
            description=f"{name} node group {spec.name}: IMDSv2, encrypted root volume",
            update_default_version=True,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=spec.imds_hop_limit,
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",  # root device of the EKS AL2023 AMIs
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=spec.disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=group_tags)
                for kind in ("instance", "volume")
            ],
            tags=group_tags,
            opts=child_opts(self),
        )
        return aws.eks.NodeGroup(
            f"{name}-{spec.name}",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=list(args.subnet_ids),
            instance_types=list(spec.instance_types),
            capacity_type=spec.capacity_type,
            ami_type=spec.ami_type,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=spec.min_size, desired_size=spec.desired_size, max_size=spec.max_size
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            labels=dict(spec.labels) or None,
            taints=[
                aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value, effect=t.effect) for t in spec.taints
            ]
            or None,
            tags=group_tags,
            # The cluster autoscaler owns the node count after creation.
            opts=child_opts(self, depends_on=list(depends_on), ignore_changes=["scalingConfig.desiredSize"]),
        )


def _field(value: Any, name: str) -> Any:
    """An attribute of a typed output object, or a key of its plain-dict form."""
    if value is None:
        return None
    if isinstance(value, Mapping) and not hasattr(type(value), name):
        camel = name.split("_")[0] + "".join(p.capitalize() for p in name.split("_")[1:])
        return value.get(name, value.get(camel))
    return getattr(value, name, None)


def _issuer(identities: Any) -> str:
    """The OIDC issuer URL from an EKS cluster's ``identities`` output."""
    for identity in identities or []:
        for oidc in _field(identity, "oidcs") or []:
            issuer = _field(oidc, "issuer")
            if issuer:
                return str(issuer)
    return ""
