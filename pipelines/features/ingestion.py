"""Ingest feature rows into the model's Feature Store group with PutRecord, with bounded concurrency.

Each row becomes one record: every feature the group defines that the row has a value for
(Feature Store omits missing values; a record lacks the feature), as ``ValueAsString`` in the
group's type (``Integral`` booleans as 0/1), and the event time, the contract's ``event_time``
column or, when it names none, the ingestion time (ISO-8601 ``yyyy-MM-ddTHH:mm:ssZ``). A pandas
frame is sent from a thread pool; a Spark DataFrame from each partition (:func:`ingest_partitions`),
each partition with its own client and pool, so the load on the API is partitions x workers.

PutRecord is idempotent per (identifier, event time): a retried batch writes the same records.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipelines.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_WORKERS = 4
"""Concurrent PutRecord calls per pandas frame or Spark partition."""


class IngestionError(PipelineError):
    """Feature Store refused a record (the message names the record and AWS's reason)."""


@dataclass(frozen=True)
class GroupDefinition:
    """What ingestion needs of a feature group (from DescribeFeatureGroup)."""

    name: str
    record_identifier: str
    event_time: str
    types: Mapping[str, str]

    @classmethod
    def describe(cls, sagemaker: Any, name: str) -> GroupDefinition:
        """Read the group's definition from SageMaker."""
        group = sagemaker.describe_feature_group(FeatureGroupName=name)
        return cls(
            name=group["FeatureGroupName"],
            record_identifier=group["RecordIdentifierFeatureName"],
            event_time=group["EventTimeFeatureName"],
            types={d["FeatureName"]: d["FeatureType"] for d in group["FeatureDefinitions"]},
        )


def iso_event_time(value: Any) -> str:
    """An event time as Feature Store's ISO-8601 string (UTC, seconds, ``Z``)."""
    import pandas as pd

    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _value(value: Any, kind: str) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if kind == "Integral":
        return str(int(value))  # booleans as 0/1
    if kind == "Fractional":
        return repr(float(value))
    return str(value)


def to_record(row: Mapping[str, Any], group: GroupDefinition, ingested_at: str) -> list[dict[str, str]]:
    """One row as a PutRecord ``Record`` (missing values left out; event time filled when absent)."""
    record: list[dict[str, str]] = []
    for name, kind in group.types.items():
        if name == group.event_time:
            raw = row.get(name)
            text = ingested_at if raw is None or (isinstance(raw, float) and math.isnan(raw)) else None
            if text is None:
                text = repr(float(raw)) if kind == "Fractional" else iso_event_time(raw)  # pyright: ignore[reportArgumentType]
            record.append({"FeatureName": name, "ValueAsString": text})
            continue
        text = _value(row.get(name), kind)
        if text is not None:
            record.append({"FeatureName": name, "ValueAsString": text})
    return record


def put_records(
    client: Any, group: GroupDefinition, rows: Iterable[Mapping[str, Any]], workers: int, ingested_at: str
) -> int:
    """PutRecord every row with ``workers`` concurrent calls; the number written.

    Raises:
        IngestionError: a record was refused (the first refusal; nothing is retried past it).
    """
    from botocore.exceptions import ClientError

    def put(row: Mapping[str, Any]) -> None:
        try:
            record = to_record(row, group, ingested_at)
        except (ValueError, TypeError) as exc:
            raise IngestionError(
                f"the record of {group.record_identifier}={row.get(group.record_identifier)!r} does not fit "
                f"feature group {group.name!r}: a value is not of its feature's type (Integral, Fractional): {exc}"
            ) from exc
        try:
            client.put_record(FeatureGroupName=group.name, Record=record)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise IngestionError(
                f"feature group {group.name!r} refused the record of {group.record_identifier}="
                f"{row.get(group.record_identifier)!r}: {error.get('Code')}: {error.get('Message')}"
            ) from exc

    count = 0
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="put-record") as pool:
        for _ in pool.map(put, rows):
            count += 1
    return count


def ingest_frame(
    client: Any, group: GroupDefinition, frame: pd.DataFrame, workers: int = DEFAULT_WORKERS
) -> int:
    """Ingest a pandas frame (the pandas engine's features); the number of records written."""
    ingested_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = (dict(zip(frame.columns, values, strict=True)) for values in frame.itertuples(index=False))
    return put_records(client, group, rows, workers, ingested_at)


def ingest_partitions(
    frame: Any,
    group: GroupDefinition,
    client_factory: Any,
    workers: int = DEFAULT_WORKERS,
) -> int:
    """Ingest a Spark DataFrame from each partition (``client_factory()`` makes each one's client)."""
    ingested_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    columns = [c for c in frame.columns if c in group.types]

    def partition(rows: Iterator[Any]) -> Iterator[int]:
        client = client_factory()
        yield put_records(client, group, (row.asDict() for row in rows), workers, ingested_at)

    return int(sum(frame.select(*columns).rdd.mapPartitions(partition).collect()))
