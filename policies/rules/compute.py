"""EKS and EMR: private API endpoint, secrets encryption, control-plane logs, supported version,
no node SSH from anywhere, encrypted EMR security configurations and studios."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from typing import Any

from policies.core import Context, Level, as_list, is_truthy, resource_rule

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
EMR_SECURITY_CONFIGURATION = "aws:emr/securityConfiguration:SecurityConfiguration"
EMR_STUDIO = "aws:emr/studio:Studio"

CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")

# End of standard support per Kubernetes minor version, from the Amazon EKS version calendar
# (https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html), as of 2026-12-01.
STANDARD_SUPPORT_END = {
    "1.32": dt.date(2026, 3, 23),
    "1.33": dt.date(2026, 7, 29),
    "1.34": dt.date(2026, 12, 2),
    "1.35": dt.date(2027, 3, 27),
}


@resource_rule(
    "eks-endpoint-private",
    [CLUSTER],
    why="A public Kubernetes API endpoint open to 0.0.0.0/0 is one stolen token away from cluster takeover.",
    fix="Set cluster.endpointPublicAccess: false, or list the office/CI CIDRs in publicAccessCidrs.",
)
def endpoint_private(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """The EKS API endpoint is private, or public only from named CIDRs.

    Mirrors: CKV_AWS_39, CKV_AWS_38, aws-eks-cluster-disallow-api-endpoint-public-access
    """
    vpc = props.get("vpcConfig") or {}
    public = vpc.get("endpointPublicAccess", True)
    if public is not False:
        cidrs = as_list(vpc.get("publicAccessCidrs"))
        if not cidrs or "0.0.0.0/0" in cidrs:
            yield f"public API endpoint open to {', '.join(cidrs) or '0.0.0.0/0 (default)'}"


@resource_rule(
    "eks-secrets-encryption",
    [CLUSTER],
    why="Kubernetes secrets are only base64 in etcd unless envelope-encrypted with a KMS key.",
    fix="Set encryptionConfig {resources: [secrets], provider.keyArn: <platform key>}.",
)
def secrets_encryption(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """EKS secrets are envelope-encrypted with a KMS key.

    Mirrors: CKV_AWS_58, aws-eks-cluster-enable-cluster-encryption-config
    """
    cfg = props.get("encryptionConfig") or {}
    if "secrets" not in as_list(cfg.get("resources")) or not (cfg.get("provider") or {}).get("keyArn"):
        yield "no encryptionConfig for secrets with a KMS key"


@resource_rule(
    "eks-control-plane-logging",
    [CLUSTER],
    why="The audit and authenticator logs are the record of who did what in the cluster.",
    fix="Enable all control-plane log types: api, audit, authenticator, controllerManager, scheduler.",
)
def control_plane_logging(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """All EKS control-plane log types are enabled.

    Mirrors: CKV_AWS_37
    """
    enabled = set(as_list(props.get("enabledClusterLogTypes")))
    missing = [t for t in CONTROL_PLANE_LOGS if t not in enabled]
    if missing:
        yield f"control-plane log types not enabled: {', '.join(missing)}"


@resource_rule(
    "eks-supported-version",
    [CLUSTER],
    level=Level.ADVISORY,
    prod=Level.MANDATORY,
    why="A version past standard support costs extended-support fees and stops getting fixes; prod must not drift there.",
    fix="Set cluster.kubernetesVersion to a version in standard support (see the EKS version calendar).",
)
def supported_version(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """The EKS Kubernetes version is in standard support.

    Mirrors: CKV_AWS_339
    """
    version = str(props.get("version") or "")
    if not version:
        return  # EKS creates the newest version
    end = STANDARD_SUPPORT_END.get(version)
    if end is None:
        if _version_key(version) > max(map(_version_key, STANDARD_SUPPORT_END)):
            return  # newer than this calendar
        yield f"Kubernetes {version} is not in standard support (supported: {', '.join(STANDARD_SUPPORT_END)})"
    elif end <= dt.date.today():
        yield f"Kubernetes {version} left standard support on {end.isoformat()}"


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return (0,)


@resource_rule(
    "eks-nodegroup-no-open-ssh",
    [NODE_GROUP],
    why="Node SSH without a source security group is open to 0.0.0.0/0.",
    fix="Drop remoteAccess (use SSM), or set remoteAccess.sourceSecurityGroupIds.",
)
def nodegroup_ssh(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Managed node groups never allow SSH from anywhere.

    Mirrors: CKV_AWS_100
    """
    remote = props.get("remoteAccess")
    if isinstance(remote, Mapping) and remote.get("ec2SshKey") and not remote.get("sourceSecurityGroupIds"):
        yield "remoteAccess with an SSH key and no source security groups"


@resource_rule(
    "emr-security-configuration-encryption",
    [EMR_SECURITY_CONFIGURATION],
    why="Spark jobs read and write the lake; their S3 output, local disks and shuffle traffic must be encrypted.",
    fix="Set EnableAtRestEncryption (S3 SSE-KMS, local disk with EBS) and EnableInTransitEncryption.",
)
def emr_encryption(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """EMR security configurations encrypt at rest (S3, local disk, EBS) and in transit.

    Mirrors: CKV_AWS_171, CKV_AWS_349, CKV_AWS_350, CKV_AWS_351
    """
    raw = props.get("configuration")
    try:
        doc = json.loads(raw) if isinstance(raw, str) else (raw or {})
    except json.JSONDecodeError:
        yield "configuration is not valid JSON"
        return
    enc = doc.get("EncryptionConfiguration") or {}
    if not is_truthy(enc.get("EnableAtRestEncryption")):
        yield "EnableAtRestEncryption is not true"
    else:
        at_rest = enc.get("AtRestEncryptionConfiguration") or {}
        if not (at_rest.get("S3EncryptionConfiguration") or {}).get("EncryptionMode", "").endswith("KMS"):
            yield "S3 encryption mode is not SSE-KMS/CSE-KMS"
        local = at_rest.get("LocalDiskEncryptionConfiguration") or {}
        if not local:
            yield "no local disk encryption"
        elif not is_truthy(local.get("EnableEbsEncryption")):
            yield "EBS encryption is not enabled"
    if not is_truthy(enc.get("EnableInTransitEncryption")):
        yield "EnableInTransitEncryption is not true"


@resource_rule(
    "emr-studio-encrypted",
    [EMR_STUDIO],
    level=Level.ADVISORY,
    why="Studio workspaces and notebooks are stored in S3; a customer key keeps them under the platform's key policy.",
    fix="Set encryptionKeyArn to the platform's KMS key.",
)
def studio_encrypted(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """EMR Studio encrypts workspaces with a customer-managed key.

    Mirrors: none (EMR Studio encryptionKeyArn)
    """
    if not props.get("encryptionKeyArn"):
        yield "no encryptionKeyArn"
