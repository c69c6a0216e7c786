"""SageMaker endpoint data capture: key layout, record format, streaming reader and writer.

SageMaker writes one JSON object per line to
``s3://<bucket>/<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm>-<ss>-<mmm>-<uuid>.jsonl``::

    {"captureData": {
        "endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",  "data": "...", "encoding": "CSV"},
        "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "...", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "...", "inferenceId": "...", "inferenceTime": "2026-11-24T17:00:00Z"},
     "eventVersion": "0"}

``encoding`` is ``CSV``, ``JSON`` or ``BASE64``. The reader decodes each payload with the serving
codec (so captured rows are aligned with the model's features exactly as they were served), reads
the model's score back from the output, and counts lines it cannot use instead of failing.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from pipelines.monitoring.capture_window import (
    MalformedCaptureError,
    endpoint_prefix,
    hour_prefixes,
)
from pipelines.monitoring.capture_window import utc as _utc
from pipelines.serving.artifact import FeatureSpec
from pipelines.serving.codec import InputError, align_to_features, decode_body, decode_prediction_scores

PREDICTION_COLUMN = "__prediction__"
"""Column holding the model's score in captured batches and in ``baseline_sample.parquet``."""


@dataclass(frozen=True)
class CaptureRecord:
    """One captured request/response pair with decoded payload bytes."""

    event_id: str | None
    inference_id: str | None
    inference_time: datetime | None
    input_content_type: str
    input_data: bytes
    output_content_type: str | None
    output_data: bytes | None


@dataclass
class CaptureStats:
    """What the reader saw: files, lines, rows kept and malformed lines by reason."""

    files: int = 0
    lines: int = 0
    records: int = 0
    rows: int = 0
    outside_window: int = 0
    unscored_rows: int = 0
    malformed: Counter[str] = field(default_factory=Counter)

    @property
    def malformed_lines(self) -> int:
        """Total lines skipped as malformed."""
        return sum(self.malformed.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "files": self.files,
            "lines": self.lines,
            "records": self.records,
            "rows": self.rows,
            "outside_window": self.outside_window,
            "unscored_rows": self.unscored_rows,
            "malformed_lines": self.malformed_lines,
            "malformed_by_reason": dict(self.malformed),
        }


# --------------------------------------------------------------------------------------------------
# keys (the layout lives in pipelines.monitoring.capture_window, importable without numpy)


def capture_key(prefix: str, endpoint: str, variant: str, when: datetime, file_id: str | None = None) -> str:
    """The key SageMaker uses for a capture file written at ``when``."""
    when = _utc(when)
    name = f"{when:%M-%S}-{when.microsecond // 1000:03d}-{file_id or uuid.uuid4()}.jsonl"
    return endpoint_prefix(prefix, endpoint, variant) + when.strftime("%Y/%m/%d/%H/") + name


def list_capture_keys(
    s3: Any,
    bucket: str,
    prefix: str,
    endpoint: str,
    start: datetime,
    end: datetime,
    variant: str | None = None,
) -> list[str]:
    """Capture file keys for the window, over every variant unless ``variant`` is given, sorted."""
    base = endpoint_prefix(prefix, endpoint)
    if variant is not None:
        variants = [endpoint_prefix(prefix, endpoint, variant)]
    else:
        variants = []
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=base, Delimiter="/"):
            variants += [entry["Prefix"] for entry in page.get("CommonPrefixes", [])]
    keys: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for variant_prefix in variants:
        for hour in hour_prefixes(start, end):
            for page in paginator.paginate(Bucket=bucket, Prefix=variant_prefix + hour):
                keys += [obj["Key"] for obj in page.get("Contents", []) if obj["Key"].endswith(".jsonl")]
    return sorted(keys)


# --------------------------------------------------------------------------------------------------
# records


def parse_time(text: str) -> datetime:
    """Parse SageMaker's ``inferenceTime`` (ISO 8601, ``Z`` suffix) as an aware UTC datetime."""
    return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _payload(section: Any, where: str) -> tuple[str, bytes]:
    if not isinstance(section, dict):
        raise MalformedCaptureError(f"missing {where}")
    data = section.get("data")
    if not isinstance(data, str):
        raise MalformedCaptureError(f"{where} has no data")
    encoding = str(section.get("encoding", "CSV")).upper()
    if encoding == "BASE64":
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedCaptureError(f"{where} is not valid base64") from None
    elif encoding in ("CSV", "JSON"):
        raw = data.encode("utf-8")
    else:
        raise MalformedCaptureError(f"{where} has unknown encoding {encoding}")
    return str(section.get("observedContentType") or ""), raw


def parse_capture_line(line: str | bytes) -> CaptureRecord:
    """Parse one capture line.

    Raises:
        MalformedCaptureError: naming what is wrong (bad JSON, missing input, bad encoding...).
    """
    try:
        event = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MalformedCaptureError("not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("captureData"), dict):
        raise MalformedCaptureError("missing captureData")
    capture = event["captureData"]
    input_type, input_data = _payload(capture.get("endpointInput"), "endpointInput")
    output_type: str | None = None
    output_data: bytes | None = None
    if capture.get("endpointOutput") is not None:
        output_type, output_data = _payload(capture["endpointOutput"], "endpointOutput")
    metadata = event.get("eventMetadata") if isinstance(event.get("eventMetadata"), dict) else {}
    assert isinstance(metadata, dict)
    inference_time = None
    if isinstance(metadata.get("inferenceTime"), str):
        try:
            inference_time = parse_time(metadata["inferenceTime"])
        except ValueError:
            raise MalformedCaptureError("bad inferenceTime") from None
    return CaptureRecord(
        event_id=metadata.get("eventId"),
        inference_id=metadata.get("inferenceId"),
        inference_time=inference_time,
        input_content_type=input_type,
        input_data=input_data,
        output_content_type=output_type,
        output_data=output_data,
    )


def format_capture_line(
    input_data: bytes,
    input_content_type: str,
    output_data: bytes | None,
    output_content_type: str | None,
    *,
    inference_time: datetime,
    inference_id: str | None = None,
    event_id: str | None = None,
) -> str:
    """One capture line in SageMaker's format (CSV/JSON payloads inline, anything else base64)."""

    def section(data: bytes, content_type: str, mode: str) -> dict[str, str]:
        kind = content_type.split(";", 1)[0].strip().lower()
        if kind in ("text/csv", "application/json"):
            try:
                return {
                    "observedContentType": content_type,
                    "mode": mode,
                    "data": data.decode("utf-8"),
                    "encoding": "CSV" if kind == "text/csv" else "JSON",
                }
            except UnicodeDecodeError:
                pass
        return {
            "observedContentType": content_type,
            "mode": mode,
            "data": base64.b64encode(data).decode("ascii"),
            "encoding": "BASE64",
        }

    capture: dict[str, Any] = {"endpointInput": section(input_data, input_content_type, "INPUT")}
    if output_data is not None and output_content_type is not None:
        capture["endpointOutput"] = section(output_data, output_content_type, "OUTPUT")
    metadata: dict[str, str] = {
        "eventId": event_id or str(uuid.uuid4()),
        "inferenceTime": _utc(inference_time).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    return json.dumps({"captureData": capture, "eventMetadata": metadata, "eventVersion": "0"})


# --------------------------------------------------------------------------------------------------
# decoding into feature-aligned batches


def decode_records(
    records: Iterable[CaptureRecord],
    features: Sequence[FeatureSpec],
    stats: CaptureStats,
    *,
    positive_index: int = 1,
) -> dict[str, np.ndarray] | None:
    """Decode records into one array per feature plus :data:`PREDICTION_COLUMN` (NaN when unknown).

    Records whose input does not decode against the features are counted in ``stats.malformed``.
    Returns ``None`` when no row could be decoded.
    """
    parts: dict[str, list[np.ndarray]] = {f.name: [] for f in features}
    parts[PREDICTION_COLUMN] = []
    for record in records:
        try:
            columns = align_to_features(decode_body(record.input_data, record.input_content_type), features)
        except InputError as error:
            stats.malformed[f"input: {_reason(error.message)}"] += 1
            continue
        rows = len(next(iter(columns.values())))
        scores = np.full(rows, np.nan)
        if record.output_data is not None:
            try:
                decoded = decode_prediction_scores(
                    record.output_data, record.output_content_type, positive_index
                )
                if decoded.size == rows:
                    scores = decoded
            except InputError:
                pass
        # the input rows are still good drift evidence when the output cannot be read back
        stats.unscored_rows += int(np.isnan(scores).sum())
        for name, values in columns.items():
            parts[name].append(values)
        parts[PREDICTION_COLUMN].append(scores)
        stats.records += 1
        stats.rows += rows
    if not parts[PREDICTION_COLUMN]:
        return None
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def _reason(message: str) -> str:
    # group counts by the kind of problem, not the exact value echoed back
    for marker in ("row ", "'", "feature"):
        if marker in message:
            return message.split(":")[0][:60]
    return message[:60]


def iter_capture_file_records(
    lines: Iterable[str | bytes],
    stats: CaptureStats,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Iterator[CaptureRecord]:
    """Parse lines, skipping blank ones, counting malformed ones and events outside ``[start, end)``."""
    start_utc = _utc(start) if start else None
    end_utc = _utc(end) if end else None
    for line in lines:
        if not line.strip():
            continue
        stats.lines += 1
        try:
            record = parse_capture_line(line)
        except MalformedCaptureError as error:
            stats.malformed[str(error)] += 1
            continue
        when = record.inference_time
        if when is not None and (
            (start_utc is not None and when < start_utc) or (end_utc is not None and when >= end_utc)
        ):
            stats.outside_window += 1
            continue
        yield record


def iter_capture_batches(
    s3: Any,
    bucket: str,
    keys: Iterable[str],
    features: Sequence[FeatureSpec],
    stats: CaptureStats,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    positive_index: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
    """Stream capture files from S3, one feature-aligned batch per file (memory bounded by one file)."""
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        stats.files += 1
        lines = body.iter_lines()
        records = iter_capture_file_records(lines, stats, start, end)
        batch = decode_records(records, features, stats, positive_index=positive_index)
        if batch is not None:
            yield batch
