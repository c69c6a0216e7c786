"""Compute and analytics layer: EKS cluster, EMR on EKS + EMR Studio, Glue catalog + Athena.

Called once from :func:`stacks.platform.build`; adds ``cluster``, ``analytics`` and ``spark`` to
``platform.layers`` and its keys (documented in :data:`stacks.platform.OUTPUT_KEYS`) to
``platform.outputs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi

from components.analytics import Analytics, AnalyticsArgs, Column, DatasetSchema
from components.cluster import Cluster, ClusterArgs, NodeGroupSpec, Taint
from components.spark import JobClass, S3Location, SparkOnEks, SparkOnEksArgs

if TYPE_CHECKING:
    from stacks.config.compute import ColumnConfig
    from stacks.platform import Platform

COMPUTE_OUTPUT_KEYS: dict[str, str] = {
    "clusterName": "EKS cluster name.",
    "clusterEndpoint": "EKS Kubernetes API endpoint (private unless cluster.endpointPublicAccess).",
    "clusterOidcIssuerUrl": "OIDC issuer URL of the EKS cluster (IRSA).",
    "clusterOidcProviderArn": "IAM OIDC identity provider ARN of the EKS cluster (IRSA trust policies).",
    "kubeconfig": "Kubeconfig for the EKS cluster using `aws eks get-token` (secret output).",
    "emrVirtualClusterId": "EMR on EKS virtual cluster ID of the default (first) Spark job class.",
    "emrJobExecutionRoleArn": "EMR on EKS job execution role ARN of the default Spark job class.",
    "emrLogGroupName": "CloudWatch log group for EMR job logs of the default Spark job class.",
    "emrLogsS3Uri": "S3 `logUri` for EMR jobs (artifacts bucket); logs land under `<virtual cluster id>/jobs/<job id>/`.",
    "emrVirtualClusterIds": "EMR on EKS virtual cluster IDs by Spark job class.",
    "emrJobExecutionRoleArns": "EMR on EKS job execution role ARNs by Spark job class.",
    "emrStudioId": "EMR Studio ID (null when spark.studio is false).",
    "emrStudioUrl": "EMR Studio URL (null when spark.studio is false).",
    "glueDatabaseName": "Glue database of the lake tables and the data-capture table.",
    "glueCuratedTable": "Glue table of curated data (null without analytics.dataset).",
    "glueFeaturesTable": "Glue table of features (null without analytics.dataset.featureColumns).",
    "glueCaptureTable": "Glue table of endpoint data capture.",
    "athenaWorkgroup": "Athena workgroup (enforced settings, SSE-KMS results, bytes-scanned cutoff).",
}
"""Output keys this layer adds; merged into :data:`stacks.platform.OUTPUT_KEYS`."""


def _columns(columns: list[ColumnConfig]) -> list[Column]:
    return [Column(name=c.name, type=c.type) for c in columns]


def build_compute(platform: Platform) -> None:
    """Declare the cluster, Spark and analytics components from config and publish their outputs."""
    config = platform.config
    prefix = config.name_prefix
    tags = config.tags
    network, datalake, encryption = platform.network, platform.datalake, platform.encryption
    cluster_cfg, spark_cfg, analytics_cfg = config.cluster, config.spark, config.analytics

    cluster = Cluster(
        prefix,
        ClusterArgs(
            kubernetes_version=cluster_cfg.kubernetes_version,
            subnet_ids=network.private_subnet_ids,
            # No dedicated compute key domain exists yet; the ML key covers the ML platform's compute.
            secrets_key_arn=encryption.key_arn("ml"),
            log_key_arn=encryption.key_arn("logs"),
            region=config.region,
            log_retention_days=config.retention.log_days,
            endpoint_public_access=cluster_cfg.endpoint_public_access,
            public_access_cidrs=cluster_cfg.public_access_cidrs,
            admin_role_arns=cluster_cfg.admin_role_arns,
            deletion_protection=config.data_protection.protect_data,
            node_groups=[
                NodeGroupSpec(
                    name=g.name,
                    instance_types=g.instance_types,
                    capacity_type=g.capacity_type,
                    min_size=g.min_size,
                    desired_size=g.desired_size,
                    max_size=g.max_size,
                    disk_size_gib=g.disk_size_gib,
                    ami_type=g.ami_type,
                    labels=g.labels,
                    taints=[Taint(key=t.key, value=t.value, effect=t.effect) for t in g.taints],
                )
                for g in cluster_cfg.node_groups
            ],
            tags=tags,
        ),
    )

    dataset = analytics_cfg.dataset
    analytics = Analytics(
        prefix,
        AnalyticsArgs(
            database_name=prefix.replace("-", "_") + "_lake",
            workgroup_name=f"{prefix}-analytics",
            curated_bucket=datalake.bucket_names["curated"],
            features_bucket=datalake.bucket_names["features"],
            capture_bucket=datalake.bucket_names["capture"],
            results_bucket=datalake.bucket_names["artifacts"],
            results_key_arn=encryption.key_arn("ml"),
            expected_bucket_owner=platform.account_id,
            dataset=None
            if dataset is None
            else DatasetSchema(
                name=dataset.name,
                columns=_columns(dataset.columns),
                feature_columns=_columns(dataset.feature_columns),
                model_inputs=dataset.model_inputs,
            ),
            capture_prefix=analytics_cfg.capture_s3_prefix,
            bytes_scanned_cutoff=analytics_cfg.bytes_scanned_cutoff_mb * 1024 * 1024,
            force_destroy=config.data_protection.force_destroy_buckets,
            tags=tags,
        ),
    )

    arns = datalake.bucket_arns
    spark = SparkOnEks(
        prefix,
        SparkOnEksArgs(
            cluster_name=cluster.cluster_name,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer_url=cluster.oidc_issuer_url,
            kubernetes_provider=cluster.provider,
            job_classes=[
                JobClass(
                    name=j.name,
                    namespace=j.namespace,
                    read=[S3Location(bucket_arn=arns[g.bucket], prefix=g.prefix) for g in j.read],
                    write=[S3Location(bucket_arn=arns[g.bucket], prefix=g.prefix) for g in j.write],
                )
                for j in spark_cfg.job_classes
            ],
            glue_database_name=analytics.database_name,
            data_key_arns=[encryption.key_arn("datalake"), encryption.key_arn("ml")],
            logs_bucket_arn=arns["artifacts"],
            logs_bucket_name=datalake.bucket_names["artifacts"],
            log_key_arn=encryption.key_arn("logs"),
            log_retention_days=config.retention.log_days,
            region=config.region,
            studio=spark_cfg.studio,
            vpc_id=network.vpc_id,
            studio_subnet_ids=network.private_subnet_ids[:5],
            studio_bucket_name=datalake.bucket_names["artifacts"],
            studio_bucket_arn=arns["artifacts"],
            studio_key_arn=encryption.key_arn("ml"),
            tags=tags,
        ),
    )

    platform.layers.update(cluster=cluster, analytics=analytics, spark=spark)
    default = spark_cfg.job_classes[0].name
    outputs: dict[str, Any] = {
        "clusterName": cluster.cluster_name,
        "clusterEndpoint": cluster.endpoint,
        "clusterOidcIssuerUrl": cluster.oidc_issuer_url,
        "clusterOidcProviderArn": cluster.oidc_provider_arn,
        "kubeconfig": pulumi.Output.secret(cluster.kubeconfig),
        "emrVirtualClusterId": spark.virtual_cluster_ids[default],
        "emrJobExecutionRoleArn": spark.job_role_arns[default],
        "emrLogGroupName": spark.log_group_names[default],
        "emrLogsS3Uri": spark.logs_s3_uri,
        "emrVirtualClusterIds": spark.virtual_cluster_ids,
        "emrJobExecutionRoleArns": spark.job_role_arns,
        "emrStudioId": spark.studio_id,
        "emrStudioUrl": spark.studio_url,
        "glueDatabaseName": analytics.database_name,
        "glueCuratedTable": analytics.curated_table_name,
        "glueFeaturesTable": analytics.features_table_name,
        "glueCaptureTable": analytics.capture_table_name,
        "athenaWorkgroup": analytics.workgroup_name,
    }
    platform.outputs.update(outputs)
