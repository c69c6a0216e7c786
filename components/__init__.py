"""Pulumi component resources: one AWS capability per module.

Each component is a ``pulumi.ComponentResource`` with a ``mlops:<module>:<Class>`` type token,
a frozen keyword-only args dataclass with secure defaults, every child parented to it, and flat
outputs (names, ARNs, IDs) registered at the end of ``__init__``. Components never reach into each
other: they take other components' outputs as inputs.
"""

from components.airflow import Airflow, AirflowArgs
from components.analytics import Analytics, AnalyticsArgs
from components.cluster import Cluster, ClusterArgs, NodeGroupSpec
from components.datalake import DataLake, DataLakeArgs
from components.delivery import Delivery, DeliveryArgs, PromotionTarget, Source
from components.encryption import Encryption, EncryptionArgs, KeySpec
from components.endpoint import (
    AutoScaling,
    Guardrails,
    ModelEndpoint,
    ModelEndpointArgs,
    ServerlessCapacity,
    ShadowVariant,
)
from components.experimentation import Experimentation, ExperimentationArgs, MlflowSpec
from components.feature_store import FeatureGroupSpec, FeatureStore, FeatureStoreArgs
from components.network import Network, NetworkArgs
from components.observability import Observability, ObservabilityArgs, PipelineSteps
from components.registry import ModelRegistry, ModelRegistryArgs
from components.spark import JobClass, S3Location, SparkOnEks, SparkOnEksArgs
from components.studio import EmrStudio, EmrStudioArgs

__all__ = [
    "Airflow",
    "AirflowArgs",
    "Analytics",
    "AnalyticsArgs",
    "AutoScaling",
    "Cluster",
    "ClusterArgs",
    "DataLake",
    "DataLakeArgs",
    "Delivery",
    "DeliveryArgs",
    "EmrStudio",
    "EmrStudioArgs",
    "Encryption",
    "EncryptionArgs",
    "Experimentation",
    "ExperimentationArgs",
    "FeatureGroupSpec",
    "FeatureStore",
    "FeatureStoreArgs",
    "Guardrails",
    "JobClass",
    "KeySpec",
    "MlflowSpec",
    "ModelEndpoint",
    "ModelEndpointArgs",
    "ModelRegistry",
    "ModelRegistryArgs",
    "Network",
    "NetworkArgs",
    "NodeGroupSpec",
    "Observability",
    "ObservabilityArgs",
    "PipelineSteps",
    "PromotionTarget",
    "S3Location",
    "ServerlessCapacity",
    "ShadowVariant",
    "Source",
    "SparkOnEks",
    "SparkOnEksArgs",
]
