"""CloudWatch metrics the Observability alarms read; names, dimensions and units from :mod:`platform_contract.metrics`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pipelines.monitoring.drift import DriftReport
from platform_contract import metrics as contract

MONITORING_NAMESPACE = contract.MONITORING_NAMESPACE
"""Namespace of the drift metrics."""

PIPELINE_NAMESPACE = contract.PIPELINE_NAMESPACE
"""Namespace of the pipeline step and retrain metrics."""

_BATCH = 20  # PutMetricData entries per call (well under the service limit)


def drift_metric_data(
    report: DriftReport, environment: str, endpoint_name: str, timestamp: datetime | None = None
) -> list[dict[str, Any]]:
    """The ``MetricData`` entries for a drift report: DatasetDrift, DriftShare, MissingValueRate and
    one FeatureDriftScore per evaluated feature (its test's statistic)."""
    when = timestamp or datetime.now(UTC)
    base = {contract.ENVIRONMENT: environment, contract.ENDPOINT_NAME: endpoint_name}
    data: list[dict[str, Any]] = [
        contract.DATASET_DRIFT.datum(1.0 if report.dataset_drift else 0.0, base),
        contract.DRIFT_SHARE.datum(float(report.drift_share), base),
        contract.MISSING_VALUE_RATE.datum(float(report.missing_value_rate), base),
    ]
    for item in report.features:
        if item.statistic is None:
            continue
        data.append(
            contract.FEATURE_DRIFT_SCORE.datum(float(item.statistic), {**base, contract.FEATURE: item.name})
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
    """``MLOps/Pipeline`` ``RetrainTriggered`` (1 when the retrain decision fired).

    ``pipeline`` is the retrained model's ``Pipeline`` dimension (``<slug>-training``).
    """
    dimensions = {contract.ENVIRONMENT: environment, contract.PIPELINE: pipeline}
    put_metrics(
        cloudwatch,
        PIPELINE_NAMESPACE,
        [contract.RETRAIN_TRIGGERED.datum(1.0 if triggered else 0.0, dimensions)],
    )


def publish_step_status(cloudwatch: Any, environment: str, pipeline: str, step: str, failed: bool) -> None:
    """``MLOps/Pipeline`` ``StepFailed`` (1 on failure, 0 on success)."""
    dimensions = {contract.ENVIRONMENT: environment, contract.PIPELINE: pipeline, contract.STEP: step}
    put_metrics(
        cloudwatch, PIPELINE_NAMESPACE, [contract.STEP_FAILED.datum(1.0 if failed else 0.0, dimensions)]
    )
