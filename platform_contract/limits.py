"""AWS API limits that the stack config and the components both check, each with its source.

One definition per fact: the config model (``stacks/config``) rejects a value outside a limit with the
config key that set it, and a component's args reject it when the component is used on its own. Both
import the constant from here, so a limit changes in one place. Plain Python, no third-party imports.
"""

from __future__ import annotations

import re

from platform_contract import versions

CLOUDWATCH_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip
"""The only values CloudWatch Logs accepts as a log group's retention (``PutRetentionPolicy``,
``retentionInDays``: https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html)."""

KMS_DELETION_WINDOW_DAYS = (7, 30)
"""Inclusive range of a KMS key's pending-deletion window (``ScheduleKeyDeletion``, ``PendingWindowInDays``:
https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html)."""

ATHENA_MIN_BYTES_SCANNED_CUTOFF_MB = 10
"""Athena's smallest per-query data usage control, in MB (``BytesScannedCutoffPerQuery``:
https://docs.aws.amazon.com/athena/latest/APIReference/API_WorkGroupConfiguration.html)."""

ML_INSTANCE_TYPE = re.compile(r"^ml\.([a-z]+)(\d+)([a-z-]*)\.([a-z0-9]+)$")
"""Shape of a SageMaker ML instance type name (``ml.<family><generation><attributes>.<size>``)."""

LOCAL_STORAGE_FAMILIES = frozenset({"g5", "g6", "g6e", "p4d", "p4de", "p5", "p5e", "p5en", "trn1", "trn1n"})
"""SageMaker instance families with local NVMe instance storage whose names lack the ``d`` suffix.
With local storage, ``CreateEndpointConfig`` fails when a ``KmsKeyId`` is given (API reference,
CreateEndpointConfig ``KmsKeyId``:
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html)."""


def has_local_storage(instance_type: str) -> bool:
    """True for ML instance types with local NVMe storage (``ml.m5d.large``, ``ml.g4dn.xlarge``...)."""
    match = ML_INSTANCE_TYPE.match(instance_type)
    if not match:
        return False
    family = match.group(1) + match.group(2)
    suffix = match.group(3)
    return "d" in suffix or family + suffix in LOCAL_STORAGE_FAMILIES or family in LOCAL_STORAGE_FAMILIES


SERVERLESS_MEMORY_SIZES_MB = (1024, 2048, 3072, 4096, 5120, 6144)
"""Memory sizes Serverless Inference accepts (``ProductionVariantServerlessConfig``, ``MemorySizeInMB``:
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariantServerlessConfig.html)."""

SERVERLESS_MAX_CONCURRENCY = (1, 200)
"""Inclusive range of ``MaxConcurrency`` of a serverless variant (same page)."""

# Blue/green deployment guardrails: TrafficRoutingConfig, CapacitySize and BlueGreenUpdatePolicy.
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html
CANARY_SIZE_PERCENT = (1, 50)
"""Inclusive range of a canary's share of the fleet (``CanarySize`` is at most 50% of the variant)."""
LINEAR_STEP_PERCENT = (10, 50)
"""Inclusive range of a linear step's share of the fleet (``LinearStepSize``: 10-50% of the variant)."""
WAIT_INTERVAL_SECONDS = (0, 3600)
"""Inclusive range of ``WaitIntervalInSeconds`` and ``TerminationWaitInSeconds``."""
MAXIMUM_EXECUTION_TIMEOUT_SECONDS = (600, 14400)
"""Inclusive range of ``MaximumExecutionTimeoutInSeconds`` of a blue/green update."""

MWAA_AIRFLOW_VERSIONS = versions.MWAA_AIRFLOW_VERSIONS
"""Airflow 3 versions MWAA offers that this blueprint accepts (the facts, with source and date, are in
:mod:`platform_contract.versions`)."""

MWAA_MAX_WORKERS = 25
"""Most Celery workers an MWAA environment runs (``MaxWorkers``:
https://docs.aws.amazon.com/mwaa/latest/API/API_CreateEnvironment.html)."""

EMR_STUDIO_MAX_SUBNETS = 5
"""Most subnets an EMR Studio takes (``CreateStudio``, ``SubnetIds``:
https://docs.aws.amazon.com/emr/latest/APIReference/API_CreateStudio.html)."""


# --- SageMaker Feature Store (CreateFeatureGroup, botocore's sagemaker service model;
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateFeatureGroup.html) ---
FEATURE_GROUP_NAME = re.compile(r"^[a-zA-Z0-9]([_-]*[a-zA-Z0-9]){0,63}$")
"""``FeatureGroupName``: 1-64 letters, digits, ``_`` and ``-``, starting and ending alphanumeric."""
FEATURE_NAME = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
"""``FeatureName`` (record identifier, event time and every feature): same shape as a group name, so a
column that starts with ``_`` (such as the feature job's ``__split__``) cannot be a feature."""
RESERVED_FEATURE_NAMES = frozenset({"is_deleted", "write_time", "api_invocation_time"})
"""Names Feature Store adds to the offline table itself (``FeatureDefinition``)."""
FEATURE_TYPES: dict[str, str] = {
    "integer": "Integral",
    "float": "Fractional",
    "string": "String",
    # Feature Store has no boolean type: 0/1 keeps it numeric for the model and for Athena.
    "boolean": "Integral",
    # Timestamps (event times included) are ISO-8601 strings, the EventTime format Feature Store reads.
    "datetime": "String",
}
"""Dataset contract column type -> Feature Store ``FeatureType`` (``Integral``, ``Fractional``, ``String``)."""
MAX_FEATURE_DEFINITIONS = 2500
"""Most feature definitions per feature group."""

# --- SageMaker AI domain and Studio (CreateDomain, CreateUserProfile, IdleSettings) ---
DOMAIN_MAX_SUBNETS = 16
"""Most subnets of a domain (``CreateDomain``, ``SubnetIds``)."""
USER_PROFILE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
"""``UserProfileName``: letters, digits and ``-``, at most 63 characters."""
STUDIO_IDLE_TIMEOUT_MINUTES = (60, 525600)
"""Inclusive range of ``IdleSettings.IdleTimeoutInMinutes`` (JupyterLab and Code Editor apps)."""
MLFLOW_APP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
"""``CreateMlflowApp`` ``Name``: letters, digits and ``-``, at most 256 characters."""
MLFLOW_MAINTENANCE_WINDOW = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun):([01]\d|2[0-3]):([0-5]\d)$")
"""``WeeklyMaintenanceWindowStart`` of an MLflow App or tracking server, e.g. ``Sun:03:00`` (UTC)."""
MLFLOW_TRACKING_SERVER_SIZES = ("Small", "Medium", "Large")
"""``TrackingServerSize`` of ``CreateMlflowTrackingServer``."""


def within(value: int, bounds: tuple[int, int]) -> bool:
    """True when ``bounds[0] <= value <= bounds[1]``."""
    low, high = bounds
    return low <= value <= high


# SageMaker automatic model tuning defaults ("Resource Limits for Automatic Model Tuning":
# https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-limits.html).
TUNING_MAX_TRAINING_JOBS = 750
"""Training jobs one tuning job may launch (``ResourceLimits.MaxNumberOfTrainingJobs``; Bayesian and
Random default quota; Random can be raised, Bayesian cannot)."""
TUNING_MAX_PARALLEL_TRAINING_JOBS = 10
"""Concurrent training jobs of one tuning job (``MaxParallelTrainingJobs``; default quota, raisable to 100)."""
TUNING_MAX_HYPERPARAMETERS = 30
"""Hyperparameters one tuning job may search (all ranges together)."""
TUNING_MAX_CATEGORICAL_VALUES = 30
"""Values of one categorical hyperparameter range."""
TUNING_MAX_METRIC_DEFINITIONS = 20
"""Metric definitions of one tuning job's training definition."""
TUNING_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")
"""``HyperParameterTuningJobName``: 1-32 characters (API_CreateHyperParameterTuningJob.html)."""


SPARK_DRIFT_MIN_BYTES = {"dev": 2 * 1024**3, "staging": 2 * 1024**3, "prod": 2 * 1024**3}
"""Per environment, the captured bytes of a monitoring window from which drift runs as the Spark job
on EMR on EKS instead of in the monitoring task (stack config ``models[].monitoring.sparkDriftMinBytes``
overrides it per model). 2 GiB is about 31M captured rows of 10 features (68 bytes per row). Measured
with ``benchmarks/spark_drift_bench.py`` (docs/benchmarks.md, 2026-12-01): local-mode Spark on 2 cores
overtakes the in-process engine at about 3M rows (0.2 GB) and is 1.8 times faster at 50M rows; the
threshold sits higher so that at it the local job would finish about 150 s before the in-process
engine, which leaves room for what the benchmark cannot measure: an EMR on EKS job's start (driver and
executor pods scheduled, the image pulled)."""

SPARK_DRIFT_MIN_BYTES_FLOOR = 1
"""Smallest ``sparkDriftMinBytes`` accepted (1 byte: every non-empty window goes to Spark)."""
