"""ML services layer: model registry, guarded endpoint, MWAA, observability and delivery.

Called once from :func:`stacks.platform.build` with the :class:`~stacks.foundation.Foundation` and
:class:`~stacks.compute.Compute` records; returns an :class:`MlServices` record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.airflow import Airflow
from components.delivery import Delivery
from components.endpoint import ModelEndpoint
from components.observability import Observability, WatchedEndpoint
from components.registry import ModelRegistry
from platform_contract.naming import ModelNames, delivery_pipeline_name, model_names
from stacks.compute import Compute
from stacks.config import PlatformConfig
from stacks.config.models import ModelConfig
from stacks.foundation import Foundation

NO_ENDPOINT_REASON = (
    "no endpoint: no approved model package configured for this environment; approve a package "
    "(the promotion pipeline sets mlops-platform:models.<i>.endpoint.modelPackageArn and updates the stack)"
)
"""The ``endpointStatus`` output while no model is configured."""


def no_endpoint_reason(model: ModelConfig) -> str:
    """Why ``model`` has no endpoint: its mode, or no approved package yet."""
    if model.endpoint.mode != "realtime":
        return f"no endpoint: model {model.name} has endpoint.mode {model.endpoint.mode}"
    return NO_ENDPOINT_REASON


@dataclass(frozen=True)
class ModelServices:
    """What the ML services layer declared for one model of the catalog."""

    config: ModelConfig
    """The model's catalog entry."""
    names: ModelNames
    """Every physical name derived from the entry."""
    group_name: pulumi.Output[str]
    """Its model package group."""
    endpoint: ModelEndpoint | None
    """Its guarded endpoint; None for batch/none modes and until an approved package is configured."""


@dataclass(frozen=True)
class MlServices:
    """What the ML services layer declared."""

    registry: ModelRegistry
    """Model package groups (one per model) and the SageMaker execution role."""
    observability: Observability
    """Alert topic, alarms and the dashboard."""
    models: Mapping[str, ModelServices]
    """One record per model of the catalog, by model name, in catalog order."""
    airflow: Airflow | None
    """The MWAA environment; None when ``airflow.enabled`` is false."""
    delivery: Delivery | None
    """The delivery and promotion pipelines; None when ``delivery.enabled`` is false."""

    @property
    def first(self) -> ModelServices:
        """The first (default) model: it fills the single-model outputs."""
        return next(iter(self.models.values()))

    @property
    def endpoint(self) -> ModelEndpoint | None:
        """The first model's endpoint (single-model outputs)."""
        return self.first.endpoint


def build_ml_services(config: PlatformConfig, foundation: Foundation, compute: Compute) -> MlServices:
    """Declare registry, observability, endpoint, MWAA and delivery from config."""
    prefix, tags, region = config.name_prefix, config.tags, config.region
    network, datalake, encryption = foundation.network, foundation.datalake, foundation.encryption
    names_, arns = datalake.bucket_names, datalake.bucket_arns
    ml_key, lake_key = encryption.key_arn("ml"), encryption.key_arn("datalake")
    catalog = [(m, config.model_names(m)) for m in config.models]

    registry = ModelRegistry(
        prefix,
        config.registry.to_args(
            name_prefix=prefix,
            region=region,
            group_contracts={names.slug: m.contract for m, names in catalog},
            artifacts_bucket_arn=arns["artifacts"],
            features_bucket_arn=arns["features"],
            capture_bucket_arn=arns["capture"],
            ml_key_arn=ml_key,
            datalake_key_arn=lake_key,
            rollback_alarm_names=[n for m, _ in catalog for n in m.endpoint.extra_rollback_alarm_names],
            logs_key_arn=encryption.key_arn("logs"),
            log_retention_days=config.retention.log_days,
            tags=tags,
        ),
    )

    observability = Observability(
        prefix,
        config.observability.to_args(
            name_prefix=prefix,
            environment=config.environment,
            region=region,
            topic_key_arn=ml_key,
            model_pipelines=[names.pipeline for _, names in catalog],
            endpoints=[
                WatchedEndpoint(
                    model=names.slug,
                    endpoint_name=names.endpoint,
                    variant_name=m.endpoint.variant_name,
                    drift_share_threshold=m.monitoring.drift_share_threshold,
                    missing_value_rate_threshold=m.monitoring.missing_value_rate_threshold,
                    quality_min=dict(config.contract_schema(m).quality_min),
                    quality_max=dict(config.contract_schema(m).quality_max),
                )
                for m, names in catalog
                if m.endpoint.has_model
            ],
            tags=tags,
        ),
    )

    s3_prefix_list_id: pulumi.Output[str] | None = None
    models: dict[str, ModelServices] = {}
    for m, names in catalog:
        ep_cfg = m.endpoint
        endpoint: ModelEndpoint | None = None
        if ep_cfg.has_model:
            in_vpc = ep_cfg.serverless is None
            if in_vpc and s3_prefix_list_id is None:
                s3_prefix_list_id = aws.ec2.get_prefix_list_output(name=f"com.amazonaws.{region}.s3").id
            endpoint = ModelEndpoint(
                names.endpoint,
                ep_cfg.to_args(
                    name_prefix=prefix,
                    endpoint_name=names.slug,
                    execution_role_arn=registry.execution_role_arn,
                    kms_key_arn=ml_key,
                    capture_bucket_name=names_["capture"],
                    capture_prefix=names.capture_prefix,
                    alarm_actions=[observability.topic_arn],
                    subnet_ids=network.private_subnet_ids,
                    vpc_id=network.vpc_id,
                    vpc_cidr=network.vpc_cidr,
                    s3_prefix_list_id=s3_prefix_list_id if in_vpc else None,
                    logs_key_arn=encryption.key_arn("logs"),
                    log_retention_days=config.retention.log_days,
                    tags={**tags, "mlops:model": names.slug, "mlops:contract": m.contract},
                ),
            )
        models[m.name] = ModelServices(
            config=m, names=names, group_name=registry.group_names[names.slug], endpoint=endpoint
        )

    airflow: Airflow | None = None
    if config.airflow.enabled:
        spark, analytics = compute.spark, compute.analytics
        airflow = Airflow(
            prefix,
            config.airflow.to_args(
                name_prefix=prefix,
                region=region,
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids[:2],
                source_bucket_arn=arns["artifacts"],
                kms_key_arn=ml_key,
                data_key_arns=[lake_key, ml_key],
                read_bucket_arns=[arns[r] for r in ("raw", "curated", "features", "capture")],
                # the artifacts bucket only below what the tasks read (MWAA's own folder is granted by the
                # component): models, monitoring reports, packaged code, Athena results
                read_locations=[
                    (arns["artifacts"], p)
                    for p in ("models/", "monitoring/", "code/", analytics.results_prefix)
                ],
                # What the DAG tasks write (docs/pipeline-contracts.md, S3 layout).
                write_locations=[
                    (arns["raw"], "raw/"),
                    (arns["curated"], "curated/"),
                    (arns["artifacts"], "models/"),
                    (arns["artifacts"], "monitoring/"),
                    # features step: the content-addressed Spark script, then the EMR job's output
                    (arns["artifacts"], "code/features/"),
                    # monitoring: the Spark drift job's content-addressed script (its plan and state
                    # go under monitoring/)
                    (arns["artifacts"], "code/monitoring/"),
                    (arns["features"], "features/"),
                    # batch inference: the rows to score and the Spark scoring output (pipelines.batch)
                    (arns["features"], "predictions/"),
                    # Athena writes query results as the caller (workgroup result location)
                    (arns["artifacts"], analytics.results_prefix),
                ],
                emr_virtual_cluster_ids=list(spark.virtual_cluster_ids.values()),
                emr_job_role_arns=list(spark.job_role_arns.values()),
                passable_role_arns={"sagemaker.amazonaws.com": [registry.execution_role_arn]},
                model_package_group_names=list(registry.group_names.values()),
                training_job_prefixes=[names.training_job_prefix for _, names in catalog],
                transform_job_prefixes=[names.transform_job_prefix for _, names in catalog],
                batch_table_names=[
                    t
                    for _, names in catalog
                    for t in (names.batch_predictions_table, names.spark_scores_table)
                ],
                tuning_job_prefixes=[names.tuning_job_prefix for _, names in catalog],
                startable_pipeline_names=[delivery_pipeline_name(prefix)] if config.delivery.enabled else [],
                glue_database_name=analytics.database_name,
                athena_workgroup_name=analytics.workgroup_name,
                # outside dev a person approves packages (promotion pipeline's manual step), never a DAG
                deny_package_approval=config.environment != "dev",
                tags=tags,
            ),
        )

    delivery: Delivery | None = None
    if config.delivery.enabled:
        delivery = Delivery(
            prefix,
            config.delivery.to_args(
                name_prefix=prefix,
                region=region,
                partition=foundation.partition,
                account_id=foundation.account_id,
                artifacts_bucket_name=names_["artifacts"],
                artifacts_bucket_arn=arns["artifacts"],
                artifacts_key_arn=ml_key,
                logs_key_arn=encryption.key_arn("logs"),
                log_retention_days=config.retention.log_days,
                airflow_prefix=config.airflow.artifacts_prefix,
                group_names=list(registry.group_names.values()),
                approval_topic_arn=observability.topic_arn,
                # the same models' groups in the environment this one imports from (copy + re-register)
                upstream_group_names=(
                    [
                        model_names(
                            f"mlops-{config.delivery.promote_from.environment}", m.name
                        ).model_package_group
                        for m in config.models
                    ]
                    if config.delivery.promote_from is not None
                    else []
                ),
                build_vpc_id=network.vpc_id,
                build_subnet_ids=network.private_subnet_ids,
                # the promote builds run `pulumi up`, which reaches this cluster's private API
                build_api_client_security_group_id=compute.cluster.api_client_security_group_id,
                tags=tags,
            ),
        )

    return MlServices(
        registry=registry, observability=observability, models=models, airflow=airflow, delivery=delivery
    )
