"""Compute and analytics layer: EKS cluster, EMR on EKS, EMR Studio (optional), Glue catalog + Athena.

Called once from :func:`stacks.platform.build` with the :class:`~stacks.foundation.Foundation`
record; returns a :class:`Compute` record that the ML services layer takes.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.analytics import Analytics
from components.cluster import Cluster
from components.spark import SparkOnEks
from components.studio import EmrStudio
from stacks.config import PlatformConfig
from stacks.foundation import Foundation


@dataclass(frozen=True)
class Compute:
    """What the compute layer declared."""

    cluster: Cluster
    """The EKS cluster and its node groups."""
    spark: SparkOnEks
    """EMR on EKS virtual clusters and job roles, one per job class."""
    studio: EmrStudio | None
    """EMR Studio; None when ``spark.studio`` is false."""
    analytics: Analytics
    """The Glue database and tables and the Athena workgroup."""


def build_compute(config: PlatformConfig, foundation: Foundation) -> Compute:
    """Declare the cluster, Spark and analytics components from config."""
    prefix, tags, region = config.name_prefix, config.tags, config.region
    network, datalake, encryption = foundation.network, foundation.datalake, foundation.encryption
    names, arns = datalake.bucket_names, datalake.bucket_arns

    cluster = Cluster(
        prefix,
        config.cluster.to_args(
            subnet_ids=network.private_subnet_ids,
            vpc_id=network.vpc_id if config.cluster.api_client_security_group else None,
            # Kubernetes secrets get the compute domain's own key (issue 12 item 21), not the ML key.
            secrets_key_arn=encryption.key_arn("compute"),
            log_key_arn=encryption.key_arn("logs"),
            region=region,
            log_retention_days=config.retention.log_days,
            deletion_protection=config.data_protection.protect_data,
            tags=tags,
        ),
    )

    analytics = Analytics(
        prefix,
        config.analytics.to_args(
            name_prefix=prefix,
            curated_bucket=names["curated"],
            features_bucket=names["features"],
            capture_bucket=names["capture"],
            results_bucket=names["artifacts"],
            results_key_arn=encryption.key_arn("ml"),
            expected_bucket_owner=foundation.account_id,
            force_destroy=config.data_protection.force_destroy_buckets,
            catalog_key_arn=encryption.key_arn("datalake")
            if config.analytics.catalog_encryption_owned(config.environment)
            else None,
            models=[(config.model_names(m), config.contract_schema(m)) for m in config.models],
            tags=tags,
        ),
    )

    spark = SparkOnEks(
        prefix,
        config.spark.to_args(
            cluster_name=cluster.cluster_name,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer_url=cluster.oidc_issuer_url,
            kubernetes_provider=cluster.provider,
            bucket_arns=arns,
            glue_database_name=analytics.database_name,
            data_key_arns=[encryption.key_arn("datalake"), encryption.key_arn("ml")],
            logs_bucket_arn=arns["artifacts"],
            logs_bucket_name=names["artifacts"],
            log_key_arn=encryption.key_arn("logs"),
            log_retention_days=config.retention.log_days,
            region=region,
            tags=tags,
        ),
    )
    studio_args = config.spark.to_studio_args(
        region=region,
        vpc_id=network.vpc_id,
        subnet_ids=network.private_subnet_ids,
        bucket_name=names["artifacts"],
        bucket_arn=arns["artifacts"],
        key_arn=encryption.key_arn("ml"),
        # Its resources were children of SparkOnEks until the Studio became its own component.
        moved_from=spark,
        tags=tags,
    )
    studio = EmrStudio(prefix, studio_args) if studio_args is not None else None
    return Compute(cluster=cluster, spark=spark, studio=studio, analytics=analytics)
