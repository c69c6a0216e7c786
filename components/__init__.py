"""Pulumi component resources: one AWS capability per module.

Each component is a ``pulumi.ComponentResource`` with a ``mlops:<module>:<Class>`` type token,
a frozen keyword-only args dataclass with secure defaults, every child parented to it, and flat
outputs (names, ARNs, IDs) registered at the end of ``__init__``. Components never reach into each
other: they take other components' outputs as inputs.
"""

from components.analytics import Analytics, AnalyticsArgs
from components.cluster import Cluster, ClusterArgs, NodeGroupSpec
from components.datalake import DataLake, DataLakeArgs
from components.encryption import Encryption, EncryptionArgs, KeySpec
from components.network import Network, NetworkArgs
from components.spark import JobClass, S3Location, SparkOnEks, SparkOnEksArgs

__all__ = [
    "Analytics",
    "AnalyticsArgs",
    "Cluster",
    "ClusterArgs",
    "DataLake",
    "DataLakeArgs",
    "Encryption",
    "EncryptionArgs",
    "JobClass",
    "KeySpec",
    "Network",
    "NetworkArgs",
    "NodeGroupSpec",
    "S3Location",
    "SparkOnEks",
    "SparkOnEksArgs",
]
