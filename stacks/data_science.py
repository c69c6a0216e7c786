"""Data science layer: Studio and managed MLflow (``experimentation``), and the feature store.

Called once from :func:`stacks.platform.build` after the ML services layer, with the records of the
three earlier layers (it grants MLflow to their Airflow and training roles and reads their buckets,
keys, Glue database and registry groups); returns a :class:`DataScience` record.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_aws as aws

from components.experimentation import Experimentation, ExperimentationArgs, MlflowSpec
from components.feature_store import FeatureGroupSpec, FeatureStore, FeatureStoreArgs
from stacks.compute import Compute
from stacks.config import PlatformConfig
from stacks.config.data_science import feature_group_plan
from stacks.foundation import Foundation
from stacks.ml_services import MlServices

STUDIO_READ_PREFIXES = {
    "curated": ("curated/",),
    "features": ("features/", "feature-store/"),
    "artifacts": ("models/", "monitoring/"),
}
"""What notebooks read, by lake bucket role: validated data, features, models and monitoring reports."""
STUDIO_WRITE_PREFIX = "experiments/"
"""Where notebooks write (artifacts bucket): never the raw, curated or model prefixes the pipeline owns."""


@dataclass(frozen=True)
class DataScience:
    """What the data science layer declared."""

    experimentation: Experimentation | None
    """The Studio domain and MLflow server; None when ``experimentation.enabled`` is false."""
    feature_store: FeatureStore | None
    """One feature group per model; None when ``featureStore.enabled`` is false."""


def build_data_science(
    config: PlatformConfig, foundation: Foundation, compute: Compute, ml: MlServices
) -> DataScience:
    """Declare the experimentation and feature store components from config."""
    prefix, tags, region, env = config.name_prefix, config.tags, config.region, config.environment
    network, encryption = foundation.network, foundation.encryption
    names, arns = foundation.datalake.bucket_names, foundation.datalake.bucket_arns
    ml_key, lake_key = encryption.key_arn("ml"), encryption.key_arn("datalake")

    experimentation: Experimentation | None = None
    exp = config.experimentation
    studio, with_mlflow = exp.studio_enabled(env), exp.mlflow_enabled()
    if studio or with_mlflow:
        clients = {"training": ml.registry.execution_role_arn}
        if ml.airflow is not None:
            clients["airflow"] = ml.airflow.execution_role_arn
        mlflow = (
            MlflowSpec(
                kind="app" if exp.mlflow.kind == "app" else "tracking_server",
                artifact_prefix=exp.mlflow.artifact_prefix,
                tracking_server_size=exp.mlflow.tracking_server_size,
                maintenance_window=exp.mlflow.maintenance_window,
                client_role_arns=clients,
            )
            if with_mlflow
            else None
        )
        experimentation = Experimentation(
            prefix,
            ExperimentationArgs(
                name_prefix=prefix,
                region=region,
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                vpc_cidr=network.vpc_cidr,
                s3_prefix_list_id=aws.ec2.get_prefix_list_output(name=f"com.amazonaws.{region}.s3").id
                if studio
                else None,
                kms_key_arn=ml_key,
                artifacts_bucket_name=names["artifacts"],
                artifacts_bucket_arn=arns["artifacts"],
                artifacts_key_arn=ml_key,
                studio=studio,
                user_profiles=exp.studio.user_profiles if studio else (),
                idle_timeout_minutes=exp.studio.idle_timeout_minutes,
                max_idle_timeout_minutes=exp.studio.max_idle_timeout_minutes,
                read_locations=[(arns[role], p) for role, ps in STUDIO_READ_PREFIXES.items() for p in ps],
                write_locations=[(arns["artifacts"], STUDIO_WRITE_PREFIX)],
                data_key_arns=[lake_key, ml_key],
                model_package_group_names=list(ml.registry.group_names.values()),
                mlflow=mlflow,
                tags=tags,
            ),
        )

    feature_store: FeatureStore | None = None
    if config.feature_store.enabled:
        groups = []
        for model in config.models:
            model_names = config.model_names(model)
            plan = feature_group_plan(config.contract_schema(model))
            groups.append(
                FeatureGroupSpec(
                    name=model_names.feature_group,
                    record_identifier=plan.record_identifier,
                    event_time_feature=plan.event_time_feature,
                    features=plan.features,
                    offline_prefix=model_names.feature_offline_prefix,
                    offline_table=model_names.feature_offline_table,
                    description=f"Features of model {model.name} (contract {model.contract})",
                    tags={"mlops:model": model_names.slug, "mlops:contract": model.contract},
                )
            )
        feature_store = FeatureStore(
            prefix,
            FeatureStoreArgs(
                name_prefix=prefix,
                region=region,
                groups=groups,
                offline_bucket_name=names["features"],
                offline_bucket_arn=arns["features"],
                offline_key_arn=lake_key,
                glue_database_name=compute.analytics.database_name,
                online_store=config.feature_store.online_enabled(env),
                online_key_arn=ml_key,
                online_ttl_days=config.feature_store.online_ttl_days,
                # the EMR feature job (default Spark job class) PutRecords each batch into its group
                writer_role_names={
                    "emr-features": compute.spark.job_role_arns[config.spark.job_classes[0].name].apply(
                        lambda arn: arn.rsplit("/", 1)[-1]
                    )
                },
                # the DAG workers commit each feature batch to its group's Iceberg offline table and
                # read earlier batches back for point-in-time training sets (publish_features)
                offline_writer_role_names={
                    "airflow": ml.airflow.execution_role_arn.apply(lambda arn: arn.rsplit("/", 1)[-1])
                }
                if ml.airflow is not None
                else {},
                tags=tags,
            ),
        )
    return DataScience(experimentation=experimentation, feature_store=feature_store)
