"""CloudWatch metrics the Observability alarms read (names and dimensions from docs/pipeline-contracts.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pipelines.monitoring.drift import DriftReport

MONITORING_NAMESPACE = "MLOps/Monitoring"
"""Namespace of the drift metrics."""

PIPELINE_NAMESPACE = "MLOps/Pipeline"
"""Namespace of the pipeline step and retrain metrics."""

_BATCH = 20  # PutMetricData entries per call (well under the service limit)


def drift_metric_data(
    report: DriftReport, environment: str, endpoint_name: str, timestamp: datetime | None = None
) -> list[dict[str, Any]]:
    """The ``MetricData`` entries for a drift report: DatasetDrift, DriftShare, MissingValueRate and
    one FeatureDriftScore per evaluated feature (its test's statistic)."""
    when = timestamp or datetime.now(UTC)
    base = [{"Name": "Environment", "Value": environment}, {"Name": "EndpointName", "Value": endpoint_name}]
    data: list[dict[str, Any]] = [
        {
            "MetricName": "DatasetDrift",
            "Dimensions": base,
            "Value": 1.0 if report.dataset_drift else 0.0,
            "Unit": "Count",
        },
        {"MetricName": "DriftShare", "Dimensions": base, "Value": float(report.drift_share), "Unit": "None"},
        {
            "MetricName": "MissingValueRate",
            "Dimensions": base,
            "Value": float(report.missing_value_rate),
            "Unit": "None",
        },
    ]
    for item in report.features:
        if item.statistic is None:
            continue
        data.append(
            {
                "MetricName": "FeatureDriftScore",
                "Dimensions": [*base, {"Name": "Feature", "Value": item.name}],
                "Value": float(item.statistic),
                "Unit": "None",
            }
        )
    for entry in data:
        entry["Timestamp"] = when
    return data


def put_metrics(cloudwatch: Any, namespace: str, data: Sequence[dict[str, Any]]) -> int:
    """Put metric data in batches; returns the number of entries sent."""
    for start in range(0, len(data), _BATCH):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=list(data[start : start + _BATCH]))
    return len(data)


def publish_drift_metrics(
    cloudwatch: Any,
    report: DriftReport,
    environment: str,
    endpoint_name: str,
    timestamp: datetime | None = None,
) -> int:
    """Publish a drift report's metrics to ``MLOps/Monitoring``; returns the number of data points."""
    return put_metrics(
        cloudwatch, MONITORING_NAMESPACE, drift_metric_data(report, environment, endpoint_name, timestamp)
    )


def publish_retrain_triggered(cloudwatch: Any, environment: str, pipeline: str, triggered: bool) -> None:
    """``MLOps/Pipeline`` ``RetrainTriggered`` (1 when the retrain decision fired)."""
    put_metrics(
        cloudwatch,
        PIPELINE_NAMESPACE,
        [
            {
                "MetricName": "RetrainTriggered",
                "Dimensions": [
                    {"Name": "Environment", "Value": environment},
                    {"Name": "Pipeline", "Value": pipeline},
                ],
                "Value": 1.0 if triggered else 0.0,
                "Unit": "Count",
            }
        ],
    )


def publish_step_status(cloudwatch: Any, environment: str, pipeline: str, step: str, failed: bool) -> None:
    """``MLOps/Pipeline`` ``StepFailed`` (1 on failure, 0 on success)."""
    put_metrics(
        cloudwatch,
        PIPELINE_NAMESPACE,
        [
            {
                "MetricName": "StepFailed",
                "Dimensions": [
                    {"Name": "Environment", "Value": environment},
                    {"Name": "Pipeline", "Value": pipeline},
                    {"Name": "Step", "Value": step},
                ],
                "Value": 1.0 if failed else 0.0,
                "Unit": "Count",
            }
        ],
    )
