"""The light capture-window module (what the monitoring DAG's branch imports in Airflow's process):
one key layout, the window's size and folders, and the engine choice (moto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from pipelines.aws import AwsClients
from pipelines.monitoring import capture, capture_window, spark_drift
from pipelines.settings import PipelineSettings
from tests.unit.monitoring.capture_fixture import capture_lines, put_capture_file
from tests.unit.serving.model_fixture import sample_rows

START = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
END = START + timedelta(hours=2)


def test_the_key_layout_is_one_definition() -> None:
    assert capture.endpoint_prefix is capture_window.endpoint_prefix
    assert capture.hour_prefixes is capture_window.hour_prefixes
    assert capture.MalformedCaptureError is capture_window.MalformedCaptureError
    with pytest.raises(capture.MalformedCaptureError, match="not after its start"):
        capture_window.hour_prefixes(END, START)


def test_window_size_folders_and_engine(aws: dict[str, Any]) -> None:
    s3 = aws["s3"]
    settings = PipelineSettings(
        capture_bucket="capture-bucket-test", artifacts_bucket="artifacts-bucket-test"
    )
    clients = AwsClients(settings, session=boto3.Session(region_name="us-east-1"))
    empty = capture_window.choose_engine(clients, "ep", "datacapture/churn", START, END, 0)
    assert empty == {"engine": "in_process", "window_bytes": 0, "min_bytes": 0}
    rows = sample_rows(20, seed=4)
    for minute, variant in ((5, "AllTraffic"), (70, "Canary"), (150, "AllTraffic")):  # the last: outside
        when = START + timedelta(minutes=minute)
        put_capture_file(s3, "capture-bucket-test", "datacapture/churn", "ep", variant, when,
                         capture_lines(rows, [0.5] * len(rows), when, rows_per_request=5))  # fmt: skip
    light = capture_window.window_capture(s3, "capture-bucket-test", "datacapture/churn", "ep", START, END)
    assert spark_drift.window_capture is capture_window.window_capture  # the Spark job reads these folders
    size, folders = light
    assert len(folders) == 2
    assert size > 0
    for threshold, engine in ((size, "spark"), (size + 1, "in_process")):
        assert capture_window.choose_engine(clients, "ep", "datacapture/churn", START, END, threshold) == {
            "engine": engine,
            "window_bytes": size,
            "min_bytes": threshold,
        }
