"""Foundation layer: KMS keys, the VPC and the data lake, plus the account and partition lookups.

The first layer :func:`stacks.platform.build` declares; every later layer takes its
:class:`Foundation` record as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.datalake import CrossAccountRead, DataLake, DataLakeArgs, default_bucket_specs
from components.encryption import Encryption, EncryptionArgs, ServiceGrant
from components.network import Network
from stacks.config import PlatformConfig


@dataclass(frozen=True)
class Foundation:
    """What the foundation layer declared."""

    encryption: Encryption
    """Customer-managed keys by domain (``datalake``, ``logs``, ``ml``, ``compute``)."""
    network: Network
    """The VPC, its subnets and endpoints."""
    datalake: DataLake
    """The lake buckets by role (``raw``, ``curated``, ``features``, ``artifacts``, ``capture``)."""
    account_id: pulumi.Output[str]
    """The deploying account (looked up once, ``sts:GetCallerIdentity``)."""
    partition: pulumi.Output[str]
    """The AWS partition (``aws``, ``aws-cn``, ``aws-us-gov``), looked up once."""


def ml_key_service_grants(config: PlatformConfig) -> list[ServiceGrant]:
    """Services that use the ML key on their own behalf: CloudWatch Logs for the MWAA log groups
    (MWAA guide, customer managed keys) and CloudWatch alarms publishing to the encrypted alert topic
    (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services)."""
    env_name = f"{config.name_prefix}-airflow"
    grants = [
        ServiceGrant(
            service="cloudwatch.amazonaws.com",
            actions=("kms:Decrypt", "kms:GenerateDataKey*"),
            # only for alarms of this account (confused-deputy guard, issue 12 item 13)
            source_account_condition=True,
        )
    ]
    if config.airflow.enabled:
        grants.append(
            ServiceGrant(
                service="logs.{region}.amazonaws.com",
                encryption_context_arn_like=f"arn:{{partition}}:logs:{{region}}:{{account}}:log-group:airflow-{env_name}-*",
            )
        )
    return grants


SHARED_MODEL_PREFIX = "models/"
"""What other accounts may read of the artifacts bucket: model data and the evaluation/baseline files a
package's metrics point at (``models/<contract>/<run>/...``), never code, DAGs or query results."""


def shared_model_reads(config: PlatformConfig) -> list[CrossAccountRead]:
    """``s3:GetObject`` on ``artifacts/models/`` for ``registry.crossAccountIds``: what CreateModel from those
    accounts (and their promotion copy) needs of a package of this environment; empty when unset."""
    accounts = config.registry.cross_account_ids
    if not accounts:
        return []
    return [CrossAccountRead(role="artifacts", prefix=SHARED_MODEL_PREFIX, account_ids=accounts)]


def build_foundation(config: PlatformConfig) -> Foundation:
    """Declare the keys, the network and the lake for one environment."""
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
            # the accounts allowed to use this environment's packages (registry.crossAccountIds) read the
            # model data through S3 with the ML key (issue 12 item 12); nothing when the list is empty
            cross_account_s3_decrypt=(
                {"ml": config.registry.cross_account_ids} if config.registry.cross_account_ids else {}
            ),
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
        config.network.to_args(
            availability_zones=sorted(zones.names)[: config.network.az_count],
            region=config.region,
            flow_log_key_arn=encryption.key_arn("logs"),
            flow_log_retention_days=config.retention.log_days,
            tags=tags,
        ),
    )

    # The lake spans two sections (retention and data protection), so it is wired here.
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
            cross_account_reads=shared_model_reads(config),
            version_erasure_role_arns=config.data_protection.dataset_erasure_role_arns,
            # an S3 delivery source is started by an EventBridge rule on its upload (issue 12 item 11)
            eventbridge_roles=(
                ["artifacts"] if config.delivery.enabled and config.delivery.source.kind == "s3" else []
            ),
        ),
    )

    return Foundation(
        encryption=encryption,
        network=network,
        datalake=datalake,
        account_id=aws.get_caller_identity_output().account_id,
        partition=aws.get_partition_output().partition,
    )
