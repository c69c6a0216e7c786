"""One monitoring run: capture window -> drift report -> files, S3, CloudWatch -> retrain decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.monitoring.capture import CaptureStats, iter_capture_batches, list_capture_keys
from pipelines.monitoring.drift import DriftAccumulator, DriftConfig, DriftReport, Reference
from pipelines.monitoring.metrics import publish_drift_metrics
from pipelines.monitoring.model_monitor import (
    baseline_constraints,
    baseline_statistics,
    constraint_violations,
    current_statistics,
)
from pipelines.monitoring.report import report_prefix, upload_reports, window_label, write_reports


@dataclass
class MonitorResult:
    """Everything a monitoring run produced."""

    report: DriftReport
    capture: CaptureStats
    files: list[Path]
    s3_keys: list[str] = field(default_factory=list)
    metrics_published: int = 0
    window: str = ""


def run_monitor(
    *,
    s3: Any,
    reference: Reference,
    capture_bucket: str,
    capture_prefix: str,
    endpoint_name: str,
    start: datetime,
    end: datetime,
    output_dir: str | Path,
    variant: str | None = None,
    config: DriftConfig | None = None,
    environment: str = "dev",
    artifacts_bucket: str | None = None,
    kms_key_id: str | None = None,
    cloudwatch: Any = None,
    positive_index: int = 1,
) -> MonitorResult:
    """Read the window's capture files, compute drift, write reports (locally and to S3 when
    ``artifacts_bucket`` is set) and publish metrics (when a ``cloudwatch`` client is given)."""
    config = config or DriftConfig()
    stats = CaptureStats()
    keys = list_capture_keys(s3, capture_bucket, capture_prefix, endpoint_name, start, end, variant)
    accumulator = DriftAccumulator(reference, config)
    for batch in iter_capture_batches(
        s3,
        capture_bucket,
        keys,
        reference.features,
        stats,
        start=start,
        end=end,
        positive_index=positive_index,
    ):
        accumulator.update(batch)
    report = accumulator.result(
        window_context(endpoint_name, environment, variant, start, end, {"capture": stats.as_dict()})
    )
    return finish_monitor(
        s3=s3,
        report=report,
        reference=reference,
        capture=stats,
        endpoint_name=endpoint_name,
        start=start,
        end=end,
        output_dir=output_dir,
        config=config,
        environment=environment,
        artifacts_bucket=artifacts_bucket,
        kms_key_id=kms_key_id,
        cloudwatch=cloudwatch,
    )


def window_context(
    endpoint_name: str,
    environment: str,
    variant: str | None,
    start: datetime,
    end: datetime,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report's ``context``: endpoint, environment, variant, window and when it was computed."""
    return {
        "endpoint_name": endpoint_name,
        "environment": environment,
        "variant": variant,
        "window_start": start.astimezone(UTC).isoformat(),
        "window_end": end.astimezone(UTC).isoformat(),
        "generated_at": datetime.now(UTC).isoformat(),
        **(extra or {}),
    }


def finish_monitor(
    *,
    s3: Any,
    report: DriftReport,
    reference: Reference,
    capture: CaptureStats,
    endpoint_name: str,
    start: datetime,
    end: datetime,
    output_dir: str | Path,
    config: DriftConfig,
    environment: str = "dev",
    artifacts_bucket: str | None = None,
    kms_key_id: str | None = None,
    cloudwatch: Any = None,
) -> MonitorResult:
    """Write a window's report files (locally, then to S3 when ``artifacts_bucket`` is set) and publish
    its metrics (when a ``cloudwatch`` client is given): the same for either drift engine."""
    constraints = baseline_constraints(reference, config.jensenshannon_threshold)
    files = write_reports(
        report,
        output_dir,
        {
            "statistics.json": current_statistics(report),
            "constraint_violations.json": constraint_violations(report, constraints),
            "baseline_statistics.json": baseline_statistics(reference),
            "constraints.json": constraints,
        },
    )
    result = MonitorResult(report=report, capture=capture, files=files, window=window_label(start, end))
    if artifacts_bucket:
        result.s3_keys = upload_reports(
            s3, artifacts_bucket, report_prefix(endpoint_name, start, end), files, kms_key_id=kms_key_id
        )
    if cloudwatch is not None:
        result.metrics_published = publish_drift_metrics(cloudwatch, report, environment, endpoint_name, end)
    return result
