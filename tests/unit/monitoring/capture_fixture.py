"""Write capture files exactly as SageMaker does (layout, key naming, line format)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from pipelines.monitoring.capture import capture_key, format_capture_line


def response_csv(scores: list[float]) -> bytes:
    """The server's CSV response for binary classification: label,p0,p1 per row."""
    return "".join(f"{int(s >= 0.5)},{1 - s!r},{s!r}\n" for s in scores).encode()


def capture_lines(
    frame: pd.DataFrame, scores: list[float], start: datetime, rows_per_request: int = 1
) -> list[str]:
    """One capture line per request of ``rows_per_request`` CSV rows, a second apart."""
    lines = []
    for index, offset in enumerate(range(0, len(frame), rows_per_request)):
        chunk = frame.iloc[offset : offset + rows_per_request]
        body = chunk.to_csv(index=False, header=False).encode()
        lines.append(
            format_capture_line(
                body,
                "text/csv",
                response_csv(scores[offset : offset + rows_per_request]),
                "text/csv; charset=utf-8",
                inference_time=start + timedelta(seconds=index),
                inference_id=f"req-{offset}",
            )
        )
    return lines


def put_capture_file(
    s3: Any, bucket: str, prefix: str, endpoint: str, variant: str, when: datetime, lines: list[str]
) -> str:
    """Upload one .jsonl capture file at SageMaker's key for ``when``."""
    key = capture_key(prefix, endpoint, variant, when)
    s3.put_object(Bucket=bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
    return key


def json_line(event: dict[str, Any]) -> str:
    """A raw line (for hand-made malformed events)."""
    return json.dumps(event)
