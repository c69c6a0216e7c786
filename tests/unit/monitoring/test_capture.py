"""Data capture parsing on files in SageMaker's exact layout and key naming, incl. malformed lines."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from pipelines.monitoring.capture import (
    PREDICTION_COLUMN,
    CaptureStats,
    MalformedCaptureError,
    capture_key,
    format_capture_line,
    hour_prefixes,
    iter_capture_batches,
    list_capture_keys,
    parse_capture_line,
)
from pipelines.serving.artifact import load_artifact
from tests.unit.monitoring.capture_fixture import capture_lines, put_capture_file, response_csv
from tests.unit.serving.model_fixture import FEATURES, sample_rows

START = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
END = START + timedelta(hours=2)

# A line exactly as SageMaker documents it (CSV in, CSV out).
SAGEMAKER_LINE = (
    '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT",'
    '"data":"12.5,70.1,3,basic,north","encoding":"CSV"},"endpointOutput":{"observedContentType":'
    '"text/csv; charset=utf-8","mode":"OUTPUT","data":"1,0.3,0.7","encoding":"CSV"}},'
    '"eventMetadata":{"eventId":"b7c1b0b8-9a53-4c0e-9c38-5b3f1d5f3d2a","inferenceId":"abc",'
    '"inferenceTime":"2026-11-24T16:05:10Z"},"eventVersion":"0"}'
)


def test_parse_sagemaker_line() -> None:
    record = parse_capture_line(SAGEMAKER_LINE)
    assert record.input_content_type == "text/csv"
    assert record.input_data == b"12.5,70.1,3,basic,north"
    assert record.output_data == b"1,0.3,0.7"
    assert record.inference_id == "abc"
    assert record.inference_time == datetime(2026, 11, 24, 16, 5, 10, tzinfo=UTC)


def test_key_naming_matches_sagemaker() -> None:
    key = capture_key(
        "datacapture", "churn-ep", "AllTraffic", datetime(2026, 11, 24, 16, 5, 9, 123000, tzinfo=UTC)
    )
    assert re.fullmatch(
        r"datacapture/churn-ep/AllTraffic/2026/11/24/16/05-09-123-[0-9a-f-]{36}\.jsonl", key
    ), key


def test_hour_prefixes_cover_the_window() -> None:
    assert hour_prefixes(START + timedelta(minutes=30), START + timedelta(hours=2, minutes=1)) == [
        "2026/11/24/16/",
        "2026/11/24/17/",
        "2026/11/24/18/",
    ]
    with pytest.raises(ValueError, match="is not after its start"):
        hour_prefixes(END, START)


def test_base64_and_json_round_trip() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((1, 5)), allow_pickle=False)
    line = format_capture_line(
        buffer.getvalue(), "application/x-npy", b'{"predictions":[{"score":0.25}]}', "application/json",
        inference_time=START,
    )  # fmt: skip
    event = json.loads(line)
    assert event["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert event["captureData"]["endpointOutput"]["encoding"] == "JSON"
    record = parse_capture_line(line)
    assert record.input_data == buffer.getvalue()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json {", "not JSON"),
        ('{"eventVersion": "0"}', "missing captureData"),
        ('{"captureData": {}}', "missing endpointInput"),
        ('{"captureData": {"endpointInput": {"data": "%%%", "encoding": "BASE64"}}}', "not valid base64"),
        ('{"captureData": {"endpointInput": {"data": "x", "encoding": "UTF7"}}}', "unknown encoding"),
        ('{"captureData": {"endpointInput": {"encoding": "CSV"}}}', "has no data"),
    ],
)
def test_malformed_lines_name_the_reason(line: str, reason: str) -> None:
    with pytest.raises(MalformedCaptureError, match=reason):
        parse_capture_line(line)


def test_read_window_from_s3(aws, model_dir: Path) -> None:
    s3, bucket = aws["s3"], aws["capture_bucket"]
    artifact = load_artifact(model_dir)
    rows = sample_rows(60, seed=3)
    scores = artifact.model.predict_proba(rows)[:, 1].tolist()
    # 40 rows in one file at 16:xx (20 requests of 2 rows), 20 rows in a 17:xx file of another variant
    put_capture_file(s3, bucket, "datacapture", "churn-ep", "AllTraffic", START + timedelta(minutes=5),
                     capture_lines(rows.iloc[:40], scores[:40], START + timedelta(minutes=5), rows_per_request=2))  # fmt: skip
    malformed = [
        "{broken",
        json.dumps({"captureData": {"endpointInput": {"observedContentType": "text/csv", "data": "1,2", "encoding": "CSV"}},
                    "eventMetadata": {"inferenceTime": "2026-11-24T17:10:00Z"}}),  # wrong column count
        json.dumps({"captureData": {"endpointInput": {"observedContentType": "text/csv", "data": "1,x,3,basic,north", "encoding": "CSV"}},
                    "eventMetadata": {"inferenceTime": "2026-11-24T17:10:00Z"}}),  # non-numeric
        "",
    ]  # fmt: skip
    put_capture_file(s3, bucket, "datacapture", "churn-ep", "Canary", START + timedelta(hours=1, minutes=10),
                     capture_lines(rows.iloc[40:], scores[40:], START + timedelta(hours=1, minutes=10)) + malformed)  # fmt: skip
    # outside the window: a file in the 18:xx folder and an event before the window inside a listed folder
    put_capture_file(s3, bucket, "datacapture", "churn-ep", "AllTraffic", END + timedelta(minutes=1),
                     capture_lines(rows.iloc[:5], scores[:5], END + timedelta(minutes=1)))  # fmt: skip
    put_capture_file(
        s3,
        bucket,
        "datacapture",
        "other-ep",
        "AllTraffic",
        START,
        capture_lines(rows.iloc[:5], scores[:5], START),
    )

    keys = list_capture_keys(s3, bucket, "datacapture", "churn-ep", START, END)
    assert len(keys) == 2
    assert all(k.startswith("datacapture/churn-ep/") and k.endswith(".jsonl") for k in keys)
    canary = list_capture_keys(s3, bucket, "datacapture", "churn-ep", START, END, variant="Canary")
    assert len(canary) == 1
    assert "/Canary/2026/11/24/17/" in canary[0]

    stats = CaptureStats()
    batches = list(iter_capture_batches(s3, bucket, keys, artifact.features, stats, start=START, end=END))
    total = sum(len(b[PREDICTION_COLUMN]) for b in batches)
    assert total == 60
    assert stats.rows == 60
    assert stats.files == 2
    assert stats.malformed_lines == 3
    assert stats.malformed["not JSON"] == 1
    assert sum(v for k, v in stats.malformed.items() if k.startswith("input:")) == 2
    merged = {name: np.concatenate([b[name] for b in batches]) for name in [*FEATURES, PREDICTION_COLUMN]}
    np.testing.assert_allclose(np.sort(merged["tenure_months"]), np.sort(rows["tenure_months"].to_numpy()))
    assert sorted(merged["plan"].tolist()) == sorted(rows["plan"].tolist())
    np.testing.assert_allclose(np.sort(merged[PREDICTION_COLUMN]), np.sort(scores), rtol=1e-12)


def test_json_output_and_base64_input_decoded(aws, model_dir: Path) -> None:
    s3, bucket = aws["s3"], aws["capture_bucket"]
    artifact = load_artifact(model_dir)
    rows = sample_rows(3, seed=4)
    buffer = io.BytesIO()
    np.save(buffer, rows.astype(str).to_numpy().astype("U"), allow_pickle=False)
    output = json.dumps(
        {"predictions": [{"label": 0, "score": 0.1}, {"label": 0, "score": 0.2}, {"label": 1, "score": 0.9}]}
    )
    line = format_capture_line(
        buffer.getvalue(), "application/x-npy", output.encode(), "application/json", inference_time=START
    )
    assert '"encoding": "BASE64"' in line
    unscored = format_capture_line(
        b"1,2,3,basic,north", "text/csv", b"garbage,,", "text/csv", inference_time=START
    )
    key = put_capture_file(s3, bucket, "", "ep", "AllTraffic", START, [line, unscored])
    stats = CaptureStats()
    (batch,) = iter_capture_batches(s3, bucket, [key], artifact.features, stats)
    np.testing.assert_allclose(batch[PREDICTION_COLUMN][:3], [0.1, 0.2, 0.9])
    assert np.isnan(batch[PREDICTION_COLUMN][3])
    assert stats.unscored_rows == 1
    np.testing.assert_allclose(batch["tenure_months"][:3], rows["tenure_months"].to_numpy())


def test_response_csv_helper_matches_server_format() -> None:
    assert response_csv([0.75]) == b"1,0.25,0.75\n"
