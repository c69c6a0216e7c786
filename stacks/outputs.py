"""The stack outputs, each declared once: key, description and how its value is read from the platform.

:data:`STACK_OUTPUTS` is the single source: ``__main__.py`` exports :func:`stack_outputs`, the offline
synth prints it (``mlops synth --outputs``), :data:`OUTPUT_KEYS` and the docs table
(``docs/outputs.md``) are derived from it.

Output keys are a public contract: pipeline settings, CI and other stacks read them. Add keys freely;
never rename or remove one without a major version and an upgrade note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi

from platform_contract.limits import SPARK_DRIFT_MIN_BYTES

if TYPE_CHECKING:
    from stacks.platform import Platform


@dataclass(frozen=True)
class StackOutput:
    """One stack output."""

    key: str
    """The output name (camelCase)."""
    description: str
    """What it holds (the docs table row)."""
    value: Callable[[Platform], Any]
    """Reads the value from the built platform (an Output, a plain value or None)."""


def _bucket(role: str, key: str, purpose: str) -> tuple[StackOutput, StackOutput]:
    return (
        StackOutput(f"{key}Bucket", f"Bucket name: {purpose}", lambda p: p.foundation.datalake.bucket_names[role]),
        StackOutput(f"{key}BucketArn", f"Bucket ARN of {key}Bucket.", lambda p: p.foundation.datalake.bucket_arns[role]),
    )  # fmt: skip


def _default_job_class(p: Platform) -> str:
    return p.config.spark.job_classes[0].name


def _endpoint_status(p: Platform) -> str:
    from stacks.ml_services import no_endpoint_reason

    first = p.ml.first
    if first.endpoint is None:
        return no_endpoint_reason(first.config)
    endpoint_cfg = first.config.endpoint
    return f"deployed: {endpoint_cfg.model_package_arn or endpoint_cfg.image_uri}"


def _models(p: Platform) -> dict[str, dict[str, Any]]:
    """The model catalog: model -> its contract and names (read by ``pipelines.settings`` and the DAGs)."""
    tables = p.compute.analytics.tables
    return {
        name: {
            "contract": m.config.contract,
            "modelPackageGroupName": m.group_name,
            "endpointName": m.endpoint.endpoint_name if m.endpoint else None,
            "capturePrefix": m.names.capture_prefix,
            "glueCaptureTable": tables[m.names.slug].capture,
            "pipeline": m.names.pipeline,
            "trainingDagId": m.names.training_dag_id,
            "monitoringDagId": m.names.monitoring_dag_id,
            "trainingJobPrefix": m.names.training_job_prefix,
            "monitoringSchedule": m.config.monitoring.schedule,
            "sparkDriftMinBytes": m.config.monitoring.spark_drift_min_bytes
            or SPARK_DRIFT_MIN_BYTES[p.config.environment],
            "tuningJobPrefix": m.names.tuning_job_prefix,
            "tuningMaxJobs": m.config.tuning.max_jobs,
            "tuningMaxParallelJobs": m.config.tuning.max_parallel_jobs,
        }
        for name, m in p.ml.models.items()
    }


def _experimentation(p: Platform, attribute: str) -> Any:
    """An attribute of the experimentation component, or None when it is not declared."""
    component = p.data_science.experimentation
    return getattr(component, attribute) if component is not None else None


def _by_model(p: Platform, name: str) -> dict[str, Any]:
    """A feature store name per model (``feature_group`` or ``feature_offline_table`` of its names)."""
    store = p.data_science.feature_store
    if store is None:
        return {}
    out: dict[str, Any] = {}
    for model, services in p.ml.models.items():
        group = services.names.feature_group
        out[model] = (
            store.feature_group_names[group] if name == "feature_group" else store.offline_table_names[group]
        )
    return out


# fmt: off
STACK_OUTPUTS: tuple[StackOutput, ...] = (
    # --- foundation (stacks/foundation.py) ---
    StackOutput("environment", "Environment name (dev, staging, prod).", lambda p: p.config.environment),
    StackOutput("region", "AWS region of the platform.", lambda p: p.config.region),
    StackOutput("accountId", "AWS account the platform is deployed in.", lambda p: p.foundation.account_id),
    StackOutput("vpcId", "VPC ID.", lambda p: p.foundation.network.vpc_id),
    StackOutput("vpcCidr", "VPC IPv4 CIDR.", lambda p: p.foundation.network.vpc_cidr),
    StackOutput("privateSubnetIds", "Private subnet IDs, one per AZ (workloads, endpoints, MWAA, SageMaker).",
                lambda p: p.foundation.network.private_subnet_ids),
    StackOutput("publicSubnetIds", "Public subnet IDs, one per AZ (NAT gateways, internet-facing load balancers).",
                lambda p: p.foundation.network.public_subnet_ids),
    StackOutput("endpointSecurityGroupId", "Security group of the interface VPC endpoints (HTTPS from the VPC).",
                lambda p: p.foundation.network.endpoint_security_group_id),
    StackOutput("flowLogGroupName", "CloudWatch log group receiving VPC flow logs.",
                lambda p: p.foundation.network.flow_log_group_name),
    StackOutput("dataLakeKeyArn", "KMS key ARN for lake data (raw, curated, features).",
                lambda p: p.foundation.encryption.key_arn("datalake")),
    StackOutput("logsKeyArn", "KMS key ARN for CloudWatch log groups.", lambda p: p.foundation.encryption.key_arn("logs")),
    StackOutput("mlKeyArn", "KMS key ARN for ML artifacts, endpoints and data capture.",
                lambda p: p.foundation.encryption.key_arn("ml")),
    StackOutput("computeKeyArn", "KMS key ARN for envelope encryption of the EKS cluster's Kubernetes secrets.",
                lambda p: p.foundation.encryption.key_arn("compute")),
    StackOutput("trainingSecurityGroupId", "Security group for SageMaker training/processing jobs' VpcConfig "
                "(HTTPS egress to the S3 prefix list and the interface endpoints).",
                lambda p: p.foundation.network.training_security_group_id),
    *_bucket("access-logs", "accessLogs", "S3 server access logs."),
    *_bucket("raw", "raw", "landed raw batches."),
    *_bucket("curated", "curated", "validated datasets."),
    *_bucket("features", "features", "feature tables."),
    *_bucket("artifacts", "artifacts", "models, reports, code, DAGs, query results."),
    *_bucket("capture", "capture", "endpoint data capture."),
    # --- compute and analytics (stacks/compute.py) ---
    StackOutput("clusterName", "EKS cluster name.", lambda p: p.compute.cluster.cluster_name),
    StackOutput("clusterEndpoint", "EKS Kubernetes API endpoint (private unless cluster.endpointPublicAccess).",
                lambda p: p.compute.cluster.endpoint),
    StackOutput("clusterApiClientSecurityGroupId", "Security group the EKS cluster admits on 443: in-VPC deployers "
                "attach it to reach the private API (docs/first-deploy.md).",
                lambda p: p.compute.cluster.api_client_security_group_id),
    StackOutput("clusterOidcIssuerUrl", "OIDC issuer URL of the EKS cluster (IRSA).",
                lambda p: p.compute.cluster.oidc_issuer_url),
    StackOutput("clusterOidcProviderArn", "IAM OIDC identity provider ARN of the EKS cluster (IRSA trust policies).",
                lambda p: p.compute.cluster.oidc_provider_arn),
    StackOutput("kubeconfig", "Kubeconfig for the EKS cluster using `aws eks get-token` (secret output).",
                lambda p: pulumi.Output.secret(p.compute.cluster.kubeconfig)),
    StackOutput("emrVirtualClusterId", "EMR on EKS virtual cluster ID of the default (first) Spark job class.",
                lambda p: p.compute.spark.virtual_cluster_ids[_default_job_class(p)]),
    StackOutput("emrJobExecutionRoleArn", "EMR on EKS job execution role ARN of the default Spark job class.",
                lambda p: p.compute.spark.job_role_arns[_default_job_class(p)]),
    StackOutput("emrLogGroupName", "CloudWatch log group for EMR job logs of the default Spark job class.",
                lambda p: p.compute.spark.log_group_names[_default_job_class(p)]),
    StackOutput("emrLogsS3Uri", "S3 `logUri` for EMR jobs (artifacts bucket); logs land under "
                "`<virtual cluster id>/jobs/<job id>/`.", lambda p: p.compute.spark.logs_s3_uri),
    StackOutput("emrVirtualClusterIds", "EMR on EKS virtual cluster IDs by Spark job class.",
                lambda p: p.compute.spark.virtual_cluster_ids),
    StackOutput("emrJobExecutionRoleArns", "EMR on EKS job execution role ARNs by Spark job class.",
                lambda p: p.compute.spark.job_role_arns),
    StackOutput("emrStudioId", "EMR Studio ID (null when spark.studio is false).",
                lambda p: p.compute.studio.studio_id if p.compute.studio else None),
    StackOutput("emrStudioUrl", "EMR Studio URL (null when spark.studio is false).",
                lambda p: p.compute.studio.studio_url if p.compute.studio else None),
    StackOutput("glueDatabaseName", "Glue database of the lake tables and the data-capture table.",
                lambda p: p.compute.analytics.database_name),
    StackOutput("glueCuratedTable", "Glue table of the first model's curated data (from its contract).",
                lambda p: p.compute.analytics.curated_table_name),
    StackOutput("glueFeaturesTable", "Glue table of the first model's features (from its contract).",
                lambda p: p.compute.analytics.features_table_name),
    StackOutput("glueCaptureTable", "Glue table of the first model's endpoint data capture.",
                lambda p: p.compute.analytics.capture_table_name),
    StackOutput("athenaWorkgroup", "Athena workgroup (enforced settings, SSE-KMS results, bytes-scanned cutoff).",
                lambda p: p.compute.analytics.workgroup_name),
    # --- ML services (stacks/ml_services.py) ---
    StackOutput("modelPackageGroupName", "Model package group of the first (default) model; pipeline settings read it.",
                lambda p: p.ml.first.group_name),
    StackOutput("modelPackageGroupNames", "Model package group names by model.",
                lambda p: {name: m.group_name for name, m in p.ml.models.items()}),
    StackOutput("models", "The model catalog: model -> contract, modelPackageGroupName, endpointName (null "
                "without endpoint), capturePrefix, glueCaptureTable, pipeline, trainingDagId, monitoringDagId, "
                "trainingJobPrefix, monitoringSchedule, sparkDriftMinBytes, tuningJobPrefix, tuningMaxJobs, "
                "tuningMaxParallelJobs.", _models),
    StackOutput("sagemakerExecutionRoleArn", "SageMaker execution role ARN (training, processing, hosting).",
                lambda p: p.ml.registry.execution_role_arn),
    StackOutput("endpointName", "Endpoint of the first model (null until an approved package is configured, or batch/none mode).",
                lambda p: p.ml.endpoint.endpoint_name if p.ml.endpoint else None),
    StackOutput("endpointStatus", "`deployed` with the served package, or why no endpoint is declared yet.",
                _endpoint_status),
    StackOutput("endpointConfigName", "Current endpoint config name (changes with its content; null without endpoint).",
                lambda p: p.ml.endpoint.endpoint_config_name if p.ml.endpoint else None),
    StackOutput("endpointRollbackAlarmNames", "CloudWatch alarms that roll an endpoint update back (empty without endpoint).",
                lambda p: p.ml.endpoint.alarm_names if p.ml.endpoint else []),
    StackOutput("airflowEnvironmentName", "MWAA environment name (null when airflow.enabled is false).",
                lambda p: p.ml.airflow.environment_name if p.ml.airflow else None),
    StackOutput("airflowWebserverUrl", "MWAA web UI host name (private: reachable from the VPC).",
                lambda p: p.ml.airflow.webserver_url if p.ml.airflow else None),
    StackOutput("airflowExecutionRoleArn", "MWAA execution role ARN.",
                lambda p: p.ml.airflow.execution_role_arn if p.ml.airflow else None),
    StackOutput("airflowDagsS3Uri", "`s3://` folder MWAA reads DAGs from (in the artifacts bucket).",
                lambda p: p.ml.airflow.dags_s3_uri if p.ml.airflow else None),
    StackOutput("alertTopicArn", "SNS topic of platform alerts (KMS-encrypted).", lambda p: p.ml.observability.topic_arn),
    StackOutput("dashboardName", "CloudWatch dashboard of the platform.", lambda p: p.ml.observability.dashboard_name),
    StackOutput("deliveryPipelineName", "CodePipeline that tests, packages and deploys the code (null when disabled).",
                lambda p: p.ml.delivery.pipeline_name if p.ml.delivery else None),
    StackOutput("promotionPipelineName", "CodePipeline that promotes approved models (null without promotion targets).",
                lambda p: p.ml.delivery.promotion_pipeline_name if p.ml.delivery else None),
    # --- data science (stacks/data_science.py) ---
    StackOutput("mlflowArn", "ARN of the managed MLflow App (or tracking server with experimentation.mlflow.kind "
                "trackingServer); the pipeline's tracking URI. Null when MLflow is off.",
                lambda p: _experimentation(p, "mlflow_arn")),
    StackOutput("mlflowKind", "`app` or `tracking_server` (which IAM actions its clients need); null when MLflow is off.",
                lambda p: _experimentation(p, "mlflow_kind")),
    StackOutput("mlflowArtifactUri", "`s3://` artifact store of MLflow (in the artifacts bucket).",
                lambda p: _experimentation(p, "mlflow_artifact_uri")),
    StackOutput("studioDomainId", "SageMaker AI domain ID (VPC-only Studio); null when experimentation.studio is off.",
                lambda p: _experimentation(p, "domain_id")),
    StackOutput("studioDomainUrl", "Studio URL of the domain (sign in with CreatePresignedDomainUrl).",
                lambda p: _experimentation(p, "domain_url")),
    StackOutput("studioExecutionRoleArn", "Default execution role of the domain's users and spaces.",
                lambda p: _experimentation(p, "studio_role_arn")),
    StackOutput("featureGroupNames", "Feature Store feature group by model (empty when featureStore.enabled is false).",
                lambda p: _by_model(p, "feature_group")),
    StackOutput("featureOfflineTables", "Glue (Iceberg) table of each model's offline feature store, in glueDatabaseName.",
                lambda p: _by_model(p, "feature_offline_table")),
    StackOutput("featureIngestionRoleArn", "Role of feature ingestion jobs and the offline-store writer (null when off).",
                lambda p: p.data_science.feature_store.ingestion_role_arn if p.data_science.feature_store else None),
)
# fmt: on
"""Every stack output, in export order."""

OUTPUT_KEYS: dict[str, str] = {o.key: o.description for o in STACK_OUTPUTS}
"""Output key -> description (derived from :data:`STACK_OUTPUTS`)."""


def stack_outputs(platform: Platform) -> dict[str, Any]:
    """The value of every stack output of ``platform``, by key, in export order."""
    return {o.key: o.value(platform) for o in STACK_OUTPUTS}
