"""The CloudWatch metrics the platform publishes and alarms on: namespaces, names, dimensions, units.

The pipeline publishes ``MLOps/Pipeline`` (step outcomes, retrain triggers) and ``MLOps/Monitoring``
(drift) metrics; SageMaker publishes ``AWS/SageMaker`` endpoint metrics. The Observability component
alarms on and charts them. A CloudWatch alarm matches a metric only when its dimension set is the
metric's *whole* dimension set (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Dimension),
so publishers and alarms must agree exactly: both build their metrics from :data:`METRICS` here, and
a test checks it.

Plain Python, no third-party imports: ``components/`` and ``pipelines/`` both import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PIPELINE_NAMESPACE = "MLOps/Pipeline"
"""Namespace of the pipeline's step and retrain metrics."""
MONITORING_NAMESPACE = "MLOps/Monitoring"
"""Namespace of the drift monitor's metrics."""
SAGEMAKER_NAMESPACE = "AWS/SageMaker"
"""Namespace SageMaker publishes endpoint invocation metrics to."""

# Dimension names.
ENVIRONMENT = "Environment"
PIPELINE = "Pipeline"
STEP = "Step"
ENDPOINT_NAME = "EndpointName"
FEATURE = "Feature"
VARIANT_NAME = "VariantName"
QUALITY_METRIC = "QualityMetric"
SEGMENT = "Segment"

MONITORING_PIPELINE = "monitoring"
"""``Pipeline`` dimension of the monitor's own ``StepFailed`` metric (its step is ``monitor``)."""


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric: where it lives, the exact dimension names it is published with, its unit."""

    namespace: str
    """CloudWatch namespace."""
    name: str
    """Metric name."""
    dimensions: tuple[str, ...]
    """The full dimension set, in publishing order (an alarm must name all of them)."""
    unit: str
    """CloudWatch unit (``Count``, ``None``, ``Microseconds``)."""
    description: str
    """What a data point means."""

    @property
    def key(self) -> tuple[str, str, frozenset[str]]:
        """Namespace, name and dimension names: what identifies the metric to an alarm."""
        return (self.namespace, self.name, frozenset(self.dimensions))

    def dimension_list(self, values: Mapping[str, str]) -> list[dict[str, str]]:
        """``[{"Name": ..., "Value": ...}]`` for PutMetricData; ``values`` must name every dimension, no more.

        Raises:
            KeyError: a dimension is missing or an unknown one is given.
        """
        unknown = set(values) - set(self.dimensions)
        missing = [d for d in self.dimensions if d not in values]
        if unknown or missing:
            raise KeyError(
                f"{self.namespace} {self.name} takes dimensions {list(self.dimensions)}; "
                f"missing {missing}, unknown {sorted(unknown)}"
            )
        return [{"Name": d, "Value": str(values[d])} for d in self.dimensions]

    def datum(self, value: float, dimensions: Mapping[str, str]) -> dict[str, object]:
        """One PutMetricData ``MetricData`` entry (no timestamp)."""
        return {
            "MetricName": self.name,
            "Dimensions": self.dimension_list(dimensions),
            "Value": float(value),
            "Unit": self.unit,
        }


STEP_FAILED = Metric(
    PIPELINE_NAMESPACE,
    "StepFailed",
    (ENVIRONMENT, PIPELINE, STEP),
    "Count",
    "1 when a pipeline step failed, 0 when it succeeded",
)
RETRAIN_TRIGGERED = Metric(
    PIPELINE_NAMESPACE,
    "RetrainTriggered",
    (ENVIRONMENT, PIPELINE),
    "Count",
    "1 when the monitor triggered the training pipeline, 0 when it decided not to",
)
DATASET_DRIFT = Metric(
    MONITORING_NAMESPACE,
    "DatasetDrift",
    (ENVIRONMENT, ENDPOINT_NAME),
    "Count",
    "1 when the window's dataset-level verdict is drift",
)
DRIFT_SHARE = Metric(
    MONITORING_NAMESPACE,
    "DriftShare",
    (ENVIRONMENT, ENDPOINT_NAME),
    "None",
    "share of evaluated features that drifted (0..1)",
)
MISSING_VALUE_RATE = Metric(
    MONITORING_NAMESPACE,
    "MissingValueRate",
    (ENVIRONMENT, ENDPOINT_NAME),
    "None",
    "share of missing feature values in the captured rows (0..1)",
)
FEATURE_DRIFT_SCORE = Metric(
    MONITORING_NAMESPACE,
    "FeatureDriftScore",
    (ENVIRONMENT, ENDPOINT_NAME, FEATURE),
    "None",
    "the drift test's statistic for one feature",
)
LABEL_COVERAGE = Metric(
    MONITORING_NAMESPACE,
    "LabelCoverage",
    (ENVIRONMENT, ENDPOINT_NAME),
    "None",
    "share of the window's captured predictions with ground truth joined (0..1)",
)
MODEL_QUALITY = Metric(
    MONITORING_NAMESPACE,
    "ModelQuality",
    (ENVIRONMENT, ENDPOINT_NAME, QUALITY_METRIC),
    "None",
    "a task metric (auc, f1, rmse, ...) of the window's predictions against their ground truth",
)
SEGMENT_MODEL_QUALITY = Metric(
    MONITORING_NAMESPACE,
    "SegmentModelQuality",
    (ENVIRONMENT, ENDPOINT_NAME, QUALITY_METRIC, SEGMENT),
    "None",
    "a task metric over the rows of one segment (Segment is <column>=<value>)",
)
ESTIMATED_MODEL_QUALITY = Metric(
    MONITORING_NAMESPACE,
    "EstimatedModelQuality",
    (ENVIRONMENT, ENDPOINT_NAME, QUALITY_METRIC),
    "None",
    "confidence-based estimate of a classification metric before labels arrive",
)
# SageMaker's endpoint metrics (published by the service every minute):
# https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html#cloudwatch-metrics-endpoint-invocation
INVOCATIONS = Metric(
    SAGEMAKER_NAMESPACE,
    "Invocations",
    (ENDPOINT_NAME, VARIANT_NAME),
    "None",
    "InvokeEndpoint requests sent to the variant",
)
INVOCATION_4XX_ERRORS = Metric(
    SAGEMAKER_NAMESPACE,
    "Invocation4XXErrors",
    (ENDPOINT_NAME, VARIANT_NAME),
    "None",
    "requests the model answered with a 4xx status",
)
INVOCATION_5XX_ERRORS = Metric(
    SAGEMAKER_NAMESPACE,
    "Invocation5XXErrors",
    (ENDPOINT_NAME, VARIANT_NAME),
    "None",
    "requests the model answered with a 5xx status",
)
MODEL_LATENCY = Metric(
    SAGEMAKER_NAMESPACE,
    "ModelLatency",
    (ENDPOINT_NAME, VARIANT_NAME),
    "Microseconds",
    "time the model container took to answer",
)

METRICS: tuple[Metric, ...] = (
    STEP_FAILED,
    RETRAIN_TRIGGERED,
    DATASET_DRIFT,
    DRIFT_SHARE,
    MISSING_VALUE_RATE,
    FEATURE_DRIFT_SCORE,
    LABEL_COVERAGE,
    MODEL_QUALITY,
    SEGMENT_MODEL_QUALITY,
    ESTIMATED_MODEL_QUALITY,
    INVOCATIONS,
    INVOCATION_4XX_ERRORS,
    INVOCATION_5XX_ERRORS,
    MODEL_LATENCY,
)
"""Every metric of the contract."""

PUBLISHED_BY_PIPELINE: tuple[Metric, ...] = tuple(m for m in METRICS if m.namespace != SAGEMAKER_NAMESPACE)
"""The metrics the pipeline code publishes itself (the rest come from SageMaker)."""


def metric(namespace: str, name: str) -> Metric:
    """The contract's metric ``namespace``/``name``.

    Raises:
        KeyError: the metric is not part of the contract.
    """
    for candidate in METRICS:
        if candidate.namespace == namespace and candidate.name == name:
            return candidate
    raise KeyError(
        f"{namespace} {name} is not a metric of the platform contract (platform_contract/metrics.py)"
    )
