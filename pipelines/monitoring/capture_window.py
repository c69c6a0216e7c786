"""Where a capture window's files are and how big they are: standard library and an S3 client only.

The monitoring DAG's ``drift_engine`` branch runs in Airflow's own process (on MWAA: the scheduler's
and workers' Airflow environment, not the pipeline interpreter), so what it needs to choose the
drift engine lives here, with nothing heavier than the standard library: no numpy, no pandas.
:mod:`pipelines.monitoring.capture` re-exports the key layout, and the Spark drift request uses the
same listing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pipelines.errors import InputRejectedError

if TYPE_CHECKING:
    from pipelines.aws import AwsClients


class MalformedCaptureError(InputRejectedError, ValueError):
    """A capture line that cannot be used; the message is the reason counted in ``CaptureStats``."""


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (a naive one is taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def endpoint_prefix(prefix: str, endpoint: str, variant: str | None = None) -> str:
    """``<prefix>/<endpoint>/`` or ``<prefix>/<endpoint>/<variant>/`` (prefix may be empty)."""
    parts = [p.strip("/") for p in (prefix, endpoint, variant) if p and p.strip("/")]
    return "/".join(parts) + "/"


def hour_prefixes(start: datetime, end: datetime) -> list[str]:
    """The ``yyyy/mm/dd/hh/`` folders that can hold events in ``[start, end)`` (UTC)."""
    start_utc, end_utc = utc(start), utc(end)
    if end_utc <= start_utc:
        raise MalformedCaptureError(
            f"window end {end_utc.isoformat()} is not after its start {start_utc.isoformat()}"
        )
    hour = start_utc.replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end_utc:
        out.append(hour.strftime("%Y/%m/%d/%H/"))
        hour += timedelta(hours=1)
    return out


def window_capture(
    s3: Any, bucket: str, prefix: str, endpoint: str, start: datetime, end: datetime
) -> tuple[int, list[str]]:
    """The captured bytes of the window's hour folders (every variant) and those folders
    (``s3://`` URIs) that hold capture files: what decides the engine and what the Spark job reads."""
    base = endpoint_prefix(prefix, endpoint)
    paginator = s3.get_paginator("list_objects_v2")
    variants = [
        entry["Prefix"]
        for page in paginator.paginate(Bucket=bucket, Prefix=base, Delimiter="/")
        for entry in page.get("CommonPrefixes", [])
    ]
    size, folders = 0, []
    for variant in variants:
        for hour in hour_prefixes(start, end):
            found = [
                obj
                for page in paginator.paginate(Bucket=bucket, Prefix=variant + hour)
                for obj in page.get("Contents", [])
                if obj["Key"].endswith(".jsonl")
            ]
            if found:
                size += sum(int(obj["Size"]) for obj in found)
                folders.append(f"s3://{bucket}/{variant}{hour}")
    return size, folders


def choose_engine(
    clients: AwsClients, endpoint: str, capture_prefix: str, start: datetime, end: datetime, min_bytes: int
) -> dict[str, Any]:
    """``{"engine": "spark" | "in_process", "window_bytes": n, "min_bytes": m}`` for the window:
    Spark on EMR on EKS from ``min_bytes`` captured bytes (the model's ``sparkDriftMinBytes``); an
    empty window stays in process (there is nothing to scale)."""
    bucket = clients.settings.require("capture_bucket")
    size, _ = window_capture(clients.s3, bucket, capture_prefix, endpoint, start, end)
    engine = "spark" if size and size >= min_bytes else "in_process"
    return {"engine": engine, "window_bytes": size, "min_bytes": min_bytes}
