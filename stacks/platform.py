"""Composition: build one environment's platform from its validated config.

``pulumi up`` runs ``__main__.py`` -> :func:`build`; the offline synth runs the same function
under the mock engine. Environments differ only through :class:`~stacks.config.PlatformConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.datalake import DataLake, DataLakeArgs, default_bucket_specs
from components.encryption import Encryption, EncryptionArgs
from components.network import Network, NetworkArgs
from stacks.compute import COMPUTE_OUTPUT_KEYS, build_compute
from stacks.config import PlatformConfig
from stacks.ml_services import ML_SERVICES_OUTPUT_KEYS, build_ml_services, ml_key_service_grants

# Stack output keys are a public contract: pipeline settings, CI and other stacks read them.
# Add keys freely; never rename or remove one without a major version and an upgrade note.
OUTPUT_KEYS: dict[str, str] = {
    "environment": "Environment name (dev, staging, prod).",
    "region": "AWS region of the platform.",
    "accountId": "AWS account the platform is deployed in.",
    "vpcId": "VPC ID.",
    "vpcCidr": "VPC IPv4 CIDR.",
    "privateSubnetIds": "Private subnet IDs, one per AZ (workloads, endpoints, MWAA, SageMaker).",
    "publicSubnetIds": "Public subnet IDs, one per AZ (NAT gateways, internet-facing load balancers).",
    "endpointSecurityGroupId": "Security group of the interface VPC endpoints (HTTPS from the VPC).",
    "flowLogGroupName": "CloudWatch log group receiving VPC flow logs.",
    "dataLakeKeyArn": "KMS key ARN for lake data (raw, curated, features).",
    "logsKeyArn": "KMS key ARN for CloudWatch log groups.",
    "mlKeyArn": "KMS key ARN for ML artifacts, endpoints and data capture.",
    "rawBucket": "Bucket name: landed raw batches.",
    "curatedBucket": "Bucket name: validated datasets.",
    "featuresBucket": "Bucket name: feature tables.",
    "artifactsBucket": "Bucket name: models, reports, code, DAGs, query results.",
    "captureBucket": "Bucket name: endpoint data capture.",
    "accessLogsBucket": "Bucket name: S3 server access logs.",
    "rawBucketArn": "Bucket ARN of rawBucket.",
    "curatedBucketArn": "Bucket ARN of curatedBucket.",
    "featuresBucketArn": "Bucket ARN of featuresBucket.",
    "artifactsBucketArn": "Bucket ARN of artifactsBucket.",
    "captureBucketArn": "Bucket ARN of captureBucket.",
    "accessLogsBucketArn": "Bucket ARN of accessLogsBucket.",
    **COMPUTE_OUTPUT_KEYS,  # cluster, EMR on EKS, EMR Studio, Glue, Athena (stacks/compute.py)
    **ML_SERVICES_OUTPUT_KEYS,  # registry, endpoint, MWAA, observability, delivery (stacks/ml_services.py)
}


@dataclass
class Platform:
    """The built platform: its components and the stack outputs (keys in :data:`OUTPUT_KEYS`)."""

    config: PlatformConfig
    encryption: Encryption
    network: Network
    datalake: DataLake
    account_id: pulumi.Output[str]
    """The deploying account (looked up once, ``sts:GetCallerIdentity``)."""
    partition: pulumi.Output[str]
    """The AWS partition (``aws``, ``aws-cn``, ``aws-us-gov``), looked up once."""
    outputs: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, Any] = field(default_factory=dict)
    """Components of later layers by name (e.g. ``cluster``, ``analytics``, ``registry``)."""


def _bucket_output_key(role: str) -> str:
    head, *rest = role.split("-")
    return head + "".join(p.capitalize() for p in rest) + "Bucket"


def build(config: PlatformConfig) -> Platform:
    """Declare the whole platform for one environment and return its components and outputs."""
    prefix = config.name_prefix
    tags = config.tags
    protect = config.data_protection.protect_data

    encryption = Encryption(
        prefix,
        EncryptionArgs(
            name_prefix=prefix,
            region=config.region,
            tags=tags,
            deletion_window_days=config.retention.kms_deletion_window_days,
            protect=protect,
            extra_service_grants={"ml": ml_key_service_grants(config)},
        ),
    )

    zones = aws.get_availability_zones(
        state="available",
        # Exclude Local Zones and Wavelength Zones: the platform's services are not offered there.
        filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
    )
    if len(zones.names) < config.network.az_count:
        raise ValueError(
            f"mlops-platform:network.azCount = {config.network.az_count}, but {config.region} has only "
            f"{len(zones.names)} available AZs; lower azCount"
        )
    network = Network(
        prefix,
        NetworkArgs(
            cidr=config.network.cidr,
            availability_zones=sorted(zones.names)[: config.network.az_count],
            region=config.region,
            nat_strategy=config.network.nat_strategy,
            flow_log_key_arn=encryption.key_arn("logs"),
            flow_log_retention_days=config.retention.log_days,
            flow_log_traffic=config.network.flow_log_traffic,
            tags=tags,
        ),
    )

    datalake = DataLake(
        prefix,
        DataLakeArgs(
            key_arns={"datalake": encryption.key_arn("datalake"), "ml": encryption.key_arn("ml")},
            buckets=default_bucket_specs(capture_days=config.retention.capture_days),
            noncurrent_version_days=config.retention.noncurrent_version_days,
            access_log_days=config.retention.access_log_days,
            protect=protect,
            force_destroy=config.data_protection.force_destroy_buckets,
            tags=tags,
        ),
    )

    account_id = aws.get_caller_identity_output().account_id
    outputs: dict[str, Any] = {
        "environment": config.environment,
        "region": config.region,
        "accountId": account_id,
        "vpcId": network.vpc_id,
        "vpcCidr": network.vpc_cidr,
        "privateSubnetIds": network.private_subnet_ids,
        "publicSubnetIds": network.public_subnet_ids,
        "endpointSecurityGroupId": network.endpoint_security_group_id,
        "flowLogGroupName": network.flow_log_group_name,
        "dataLakeKeyArn": encryption.key_arn("datalake"),
        "logsKeyArn": encryption.key_arn("logs"),
        "mlKeyArn": encryption.key_arn("ml"),
    }
    for role, bucket_name in datalake.bucket_names.items():
        outputs[_bucket_output_key(role)] = bucket_name
        outputs[_bucket_output_key(role) + "Arn"] = datalake.bucket_arns[role]
    platform = Platform(
        config=config,
        encryption=encryption,
        network=network,
        datalake=datalake,
        account_id=account_id,
        partition=aws.get_partition_output().partition,
        outputs=outputs,
    )
    # --- later layers: one call each to stacks/<layer>.py, which adds its components to
    # `platform.layers` and its keys to `platform.outputs` (and documents them in OUTPUT_KEYS) ---
    build_compute(platform)
    build_ml_services(platform)
    return platform
