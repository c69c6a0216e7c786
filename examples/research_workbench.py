"""A research workbench: a VPC-only Studio domain for three users, a sized MLflow tracking server, and a
feature group with an online store, in a VPC and lake another stack owns.

Non-default choices: an MLflow *tracking server* (``Medium``) instead of an App, two hours of idle time
before JupyterLab/Code Editor apps stop, a Monday maintenance window, and online records expiring 14
days after their event time. The feature group comes from the ``housing`` contract, the way the
platform derives one per model.
"""

from __future__ import annotations

from typing import Any

from components.experimentation import Experimentation, ExperimentationArgs, MlflowSpec
from components.feature_store import FeatureGroupSpec, FeatureStore, FeatureStoreArgs
from platform_contract.naming import model_names
from stacks.config.contracts import read_contract_schema
from stacks.config.data_science import feature_group_plan

ACCOUNT = "123456789012"
ML_KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/research-ml"
LAKE_KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/research-lake"
ARTIFACTS = "arn:aws:s3:::research-artifacts"
FEATURES = "arn:aws:s3:::research-features"


def main() -> dict[str, Any]:
    """Declare the workbench; return the domain, the MLflow server and the feature group."""
    # --8<-- [start:workbench]
    workbench = Experimentation(
        "research",
        ExperimentationArgs(
            name_prefix="research",
            region="eu-west-1",
            vpc_id="vpc-0123456789abcdef0",
            subnet_ids=["subnet-0a1b2c3d", "subnet-1a2b3c4d"],
            vpc_cidr="10.40.0.0/16",
            s3_prefix_list_id="pl-6da54004",
            kms_key_arn=ML_KEY,
            artifacts_bucket_name="research-artifacts",
            artifacts_bucket_arn=ARTIFACTS,
            artifacts_key_arn=ML_KEY,
            user_profiles=["ana", "bruno", "chen"],
            idle_timeout_minutes=120,
            read_locations=[(FEATURES, "features/"), (ARTIFACTS, "models/")],
            write_locations=[(ARTIFACTS, "experiments/")],
            data_key_arns=[LAKE_KEY, ML_KEY],
            mlflow=MlflowSpec(
                kind="tracking_server",
                tracking_server_size="Medium",
                artifact_prefix="tracking/",
                maintenance_window="Mon:02:30",
                client_role_arns={"training": f"arn:aws:iam::{ACCOUNT}:role/research-training"},
            ),
        ),
    )
    # --8<-- [end:workbench]
    # --8<-- [start:features]
    names = model_names("research", "housing")
    plan = feature_group_plan(read_contract_schema("housing"))
    store = FeatureStore(
        "research",
        FeatureStoreArgs(
            name_prefix="research",
            region="eu-west-1",
            groups=[
                FeatureGroupSpec(
                    name=names.feature_group,
                    record_identifier=plan.record_identifier,
                    event_time_feature=plan.event_time_feature,
                    features=plan.features,
                    offline_prefix=names.feature_offline_prefix,
                    offline_table=names.feature_offline_table,
                    description="House features for the pricing model",
                )
            ],
            offline_bucket_name="research-features",
            offline_bucket_arn=FEATURES,
            offline_key_arn=LAKE_KEY,
            glue_database_name="research_lake",
            online_store=True,
            online_key_arn=ML_KEY,
            online_ttl_days=14,
        ),
    )
    # --8<-- [end:features]
    return {
        "domain": workbench.domain_id,
        "users": workbench.user_profile_arns,
        "mlflow": workbench.mlflow_arn,
        "groups": store.feature_group_names,
    }
