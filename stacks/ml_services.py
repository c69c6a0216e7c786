"""ML services layer: model registry, guarded endpoint, MWAA, observability and delivery.

Called once from :func:`stacks.platform.build`; adds ``registry``, ``observability``, ``endpoint``
(only with an approved model), ``airflow`` and ``delivery`` to ``platform.layers`` and its keys
(documented in :data:`ML_SERVICES_OUTPUT_KEYS`, merged into :data:`stacks.platform.OUTPUT_KEYS`) to
``platform.outputs``. :func:`ml_key_service_grants` names the services that use the ML key directly;
the platform passes them to :class:`~components.encryption.Encryption`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from components.airflow import Airflow, AirflowArgs
from components.delivery import BuildVpc, Delivery, DeliveryArgs, PromotionTarget, Source
from components.encryption import ServiceGrant
from components.endpoint import (
    AutoScaling,
    Guardrails,
    ModelEndpoint,
    ModelEndpointArgs,
    ServerlessCapacity,
    ShadowVariant,
)
from components.observability import Observability, ObservabilityArgs, PipelineSteps
from components.registry import ModelRegistry, ModelRegistryArgs

if TYPE_CHECKING:
    from stacks.config import PlatformConfig
    from stacks.platform import Platform

ML_SERVICES_OUTPUT_KEYS: dict[str, str] = {
    "modelPackageGroupName": "Model package group of the first (default) model; pipeline settings read it.",
    "modelPackageGroupNames": "Model package group names by model.",
    "sagemakerExecutionRoleArn": "SageMaker execution role ARN (training, processing, hosting).",
    "endpointName": "SageMaker endpoint name (null until an approved model package is configured).",
    "endpointStatus": "`deployed` with the served package, or why no endpoint is declared yet.",
    "endpointConfigName": "Current endpoint config name (changes with its content; null without endpoint).",
    "endpointRollbackAlarmNames": "CloudWatch alarms that roll an endpoint update back (empty without endpoint).",
    "airflowEnvironmentName": "MWAA environment name (null when airflow.enabled is false).",
    "airflowWebserverUrl": "MWAA web UI host name (private: reachable from the VPC).",
    "airflowExecutionRoleArn": "MWAA execution role ARN.",
    "airflowDagsS3Uri": "`s3://` folder MWAA reads DAGs from (in the artifacts bucket).",
    "alertTopicArn": "SNS topic of platform alerts (KMS-encrypted).",
    "dashboardName": "CloudWatch dashboard of the platform.",
    "deliveryPipelineName": "CodePipeline that tests, packages and deploys the code (null when disabled).",
    "promotionPipelineName": "CodePipeline that promotes approved models (null without promotion targets).",
}
"""Output keys this layer adds; merged into :data:`stacks.platform.OUTPUT_KEYS`."""


def ml_key_service_grants(config: PlatformConfig) -> list[ServiceGrant]:
    """Services that use the ML key on their own behalf: CloudWatch Logs for the MWAA log groups
    (MWAA guide, customer managed keys) and CloudWatch alarms publishing to the encrypted alert topic
    (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services)."""
    env_name = f"{config.name_prefix}-airflow"
    grants = [
        ServiceGrant(
            service="cloudwatch.amazonaws.com",
            actions=("kms:Decrypt", "kms:GenerateDataKey*"),
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


def _no_endpoint_reason(config: PlatformConfig) -> str:
    return (
        "no endpoint: no approved model package configured for this environment; approve a package "
        "(the promotion pipeline sets mlops-platform:endpoint.modelPackageArn and updates the stack)"
    )


def build_ml_services(platform: Platform) -> None:
    """Declare registry, observability, endpoint, MWAA and delivery from config; publish outputs."""
    config = platform.config
    prefix, tags, region = config.name_prefix, config.tags, config.region
    network, datalake, encryption = platform.network, platform.datalake, platform.encryption
    names, arns = datalake.bucket_names, datalake.bucket_arns
    ml_key, lake_key = encryption.key_arn("ml"), encryption.key_arn("datalake")
    ep_cfg = config.endpoint

    registry = ModelRegistry(
        prefix,
        ModelRegistryArgs(
            name_prefix=prefix,
            region=region,
            groups=config.registry.model_package_groups,
            cross_account_ids=config.registry.cross_account_ids,
            artifacts_bucket_arn=arns["artifacts"],
            features_bucket_arn=arns["features"],
            capture_bucket_arn=arns["capture"],
            ml_key_arn=ml_key,
            datalake_key_arn=lake_key,
            tags=tags,
        ),
    )

    endpoint_full_name = f"{prefix}-{ep_cfg.name}" if ep_cfg.has_model else None
    observability = Observability(
        prefix,
        ObservabilityArgs(
            name_prefix=prefix,
            environment=config.environment,
            region=region,
            topic_key_arn=ml_key,
            alert_emails=config.observability.alert_emails,
            pipelines=[
                PipelineSteps(pipeline=p.pipeline, steps=p.steps) for p in config.observability.pipelines
            ],
            endpoint_name=endpoint_full_name,
            variant_name=ep_cfg.variant_name,
            drift_share_threshold=config.observability.drift_share_threshold,
            missing_value_rate_threshold=config.observability.missing_value_rate_threshold,
            tags=tags,
        ),
    )

    endpoint: ModelEndpoint | None = None
    if ep_cfg.has_model:
        serverless = ep_cfg.serverless
        endpoint = ModelEndpoint(
            f"{prefix}-{ep_cfg.name}",
            ModelEndpointArgs(
                name_prefix=prefix,
                endpoint_name=ep_cfg.name,
                execution_role_arn=registry.execution_role_arn,
                model_package_arn=ep_cfg.model_package_arn or None,
                image_uri=ep_cfg.image_uri or None,
                model_data_url=ep_cfg.model_data_url or None,
                variant_name=ep_cfg.variant_name,
                instance_type=ep_cfg.instance_type,
                instance_count=ep_cfg.instance_count,
                serverless=None
                if serverless is None
                else ServerlessCapacity(
                    memory_size_mb=serverless.memory_size_mb, max_concurrency=serverless.max_concurrency
                ),
                shadow=None
                if ep_cfg.shadow is None
                else ShadowVariant(
                    model_package_arn=ep_cfg.shadow.model_package_arn,
                    instance_type=ep_cfg.shadow.instance_type,
                    instance_count=ep_cfg.shadow.instance_count,
                    traffic_percent=ep_cfg.shadow.traffic_percent,
                ),
                network_isolation=ep_cfg.network_isolation,
                subnet_ids=network.private_subnet_ids if serverless is None else (),
                vpc_id=network.vpc_id if serverless is None else None,
                vpc_cidr=network.vpc_cidr if serverless is None else None,
                s3_prefix_list_id=aws.ec2.get_prefix_list_output(name=f"com.amazonaws.{region}.s3").id
                if serverless is None
                else None,
                kms_key_arn=ml_key,
                encrypt_storage=ep_cfg.encrypt_storage,
                capture_enabled=ep_cfg.capture_enabled,
                capture_sampling_percent=ep_cfg.capture_sampling_percent,
                capture_bucket_name=names["capture"],
                capture_prefix=config.analytics.capture_s3_prefix,
                guardrails=Guardrails(
                    strategy=ep_cfg.strategy,
                    canary_size_percent=ep_cfg.canary_size_percent,
                    linear_step_percent=ep_cfg.linear_step_percent,
                    wait_interval_seconds=ep_cfg.wait_interval_seconds,
                    termination_wait_seconds=ep_cfg.termination_wait_seconds,
                    maximum_execution_timeout_seconds=ep_cfg.maximum_execution_timeout_seconds,
                    extra_alarm_names=ep_cfg.extra_rollback_alarm_names,
                ),
                latency_threshold_ms=ep_cfg.latency_threshold_ms,
                error_threshold=ep_cfg.error_threshold,
                alarm_actions=[observability.topic_arn],
                autoscaling=AutoScaling(
                    min_instances=ep_cfg.min_instances,
                    max_instances=ep_cfg.max_instances,
                    target_invocations_per_instance=ep_cfg.target_invocations_per_instance,
                )
                if ep_cfg.autoscaling and serverless is None
                else None,
                retain_replaced=ep_cfg.retain_replaced_configs,
                tags=tags,
            ),
        )

    airflow: Airflow | None = None
    af_cfg = config.airflow
    if af_cfg.enabled:
        spark = platform.layers.get("spark")
        analytics = platform.layers.get("analytics")
        emr_roles = list(spark.job_role_arns.values()) if spark is not None else []
        airflow = Airflow(
            prefix,
            AirflowArgs(
                name_prefix=prefix,
                region=region,
                airflow_version=af_cfg.airflow_version,
                environment_class=af_cfg.environment_class,
                min_workers=af_cfg.min_workers,
                max_workers=af_cfg.max_workers,
                schedulers=af_cfg.schedulers,
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids[:2],
                source_bucket_arn=arns["artifacts"],
                dags_path=af_cfg.dags_path,
                requirements_path=af_cfg.requirements_path if af_cfg.requirements_version else None,
                requirements_version=af_cfg.requirements_version or None,
                plugins_path=af_cfg.plugins_path if af_cfg.plugins_version else None,
                plugins_version=af_cfg.plugins_version or None,
                kms_key_arn=ml_key,
                data_key_arns=[lake_key, ml_key],
                webserver_access_mode=af_cfg.webserver_access_mode,
                log_level=af_cfg.log_level,
                read_bucket_arns=[arns[r] for r in ("raw", "curated", "features", "artifacts", "capture")],
                # What the DAG tasks write (docs/pipeline-contracts.md, S3 layout).
                write_locations=[
                    (arns["raw"], "raw/"),
                    (arns["curated"], "curated/"),
                    (arns["artifacts"], "models/"),
                    (arns["artifacts"], "monitoring/"),
                ],
                emr_virtual_cluster_ids=list(spark.virtual_cluster_ids.values()) if spark is not None else [],
                passable_role_arns={
                    "sagemaker.amazonaws.com": [registry.execution_role_arn],
                    "emr-containers.amazonaws.com": emr_roles,
                },
                model_package_group_names=list(registry.group_names.values()),
                glue_database_name=analytics.database_name if analytics is not None else None,
                athena_workgroup_name=analytics.workgroup_name if analytics is not None else None,
                weekly_maintenance_window_start=af_cfg.weekly_maintenance_window_start,
                tags=tags,
            ),
        )

    delivery: Delivery | None = None
    dl_cfg = config.delivery
    if dl_cfg.enabled:
        part = platform.partition
        src = dl_cfg.source
        delivery = Delivery(
            prefix,
            DeliveryArgs(
                name_prefix=prefix,
                region=region,
                source=Source(
                    kind=src.kind,
                    connection_arn=src.connection_arn or None,
                    repository=src.repository or None,
                    branch=src.branch,
                    object_key=src.object_key,
                ),
                artifacts_bucket_name=names["artifacts"],
                artifacts_bucket_arn=arns["artifacts"],
                artifacts_key_arn=ml_key,
                logs_key_arn=encryption.key_arn("logs"),
                log_retention_days=config.retention.log_days,
                airflow_prefix=af_cfg.dags_path.rsplit("/", 1)[0] + "/"
                if "/" in af_cfg.dags_path
                else "airflow/",
                promotion_targets=[
                    PromotionTarget(
                        stack=t.stack,
                        deploy_role_arn=pulumi.Output.format(
                            "arn:{0}:iam::{1}:role/{2}",
                            part,
                            t.account_id or platform.account_id,
                            t.deploy_role_name,
                        ),
                        manual_approval=t.manual_approval,
                    )
                    for t in dl_cfg.promotion_targets
                ],
                watched_group_names=[*registry.group_names.values(), *dl_cfg.watch_model_package_groups],
                approval_topic_arn=observability.topic_arn,
                pulumi_backend_url=dl_cfg.pulumi_backend_url,
                pulumi_token_secret_arn=dl_cfg.pulumi_token_secret_arn or None,
                build_image=dl_cfg.build_image,
                build_compute_type=dl_cfg.build_compute_type,
                # pulumi up must reach the private EKS endpoint: run promotion builds in the VPC.
                build_vpc=BuildVpc(
                    vpc_id=platform.network.vpc_id, subnet_ids=platform.network.private_subnet_ids
                ),
                tags=tags,
            ),
        )

    platform.layers.update(registry=registry, observability=observability)
    if endpoint is not None:
        platform.layers["endpoint"] = endpoint
    if airflow is not None:
        platform.layers["airflow"] = airflow
    if delivery is not None:
        platform.layers["delivery"] = delivery

    first_group = config.registry.model_package_groups[0]
    outputs: dict[str, Any] = {
        "modelPackageGroupName": registry.group_names[first_group],
        "modelPackageGroupNames": registry.group_names,
        "sagemakerExecutionRoleArn": registry.execution_role_arn,
        "endpointName": endpoint.endpoint_name if endpoint is not None else None,
        "endpointStatus": f"deployed: {ep_cfg.model_package_arn or ep_cfg.image_uri}"
        if endpoint is not None
        else _no_endpoint_reason(config),
        "endpointConfigName": endpoint.endpoint_config_name if endpoint is not None else None,
        "endpointRollbackAlarmNames": endpoint.alarm_names if endpoint is not None else [],
        "airflowEnvironmentName": airflow.environment_name if airflow is not None else None,
        "airflowWebserverUrl": airflow.webserver_url if airflow is not None else None,
        "airflowExecutionRoleArn": airflow.execution_role_arn if airflow is not None else None,
        "airflowDagsS3Uri": airflow.dags_s3_uri if airflow is not None else None,
        "alertTopicArn": observability.topic_arn,
        "dashboardName": observability.dashboard_name,
        "deliveryPipelineName": delivery.pipeline_name if delivery is not None else None,
        "promotionPipelineName": delivery.promotion_pipeline_name if delivery is not None else None,
    }
    platform.outputs.update(outputs)
