"""Ingest feature rows into the model's Feature Store group with PutRecord, with bounded concurrency.

The record format, the concurrency and the throttling retries are the Spark feature job's own
(:mod:`pipelines.features.spark_job`, self-contained for EMR on EKS); this module runs them for a
pandas frame (the pandas engine, tests) or a Spark DataFrame, and raises :class:`IngestionError`.

Each row becomes one record: every feature the group defines that the row has a value for
(Feature Store omits missing values; a record lacks the feature), as ``ValueAsString`` in the
group's type (``Integral`` booleans as 0/1), and the event time, the contract's ``event_time``
column or, when the row has none, the batch's event time (ISO-8601 ``yyyy-MM-ddTHH:mm:ssZ``).
PutRecord is idempotent per (identifier, event time): a retried batch writes the same records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipelines.errors import PipelineError
from pipelines.features.spark_job import (
    FeatureIngestionError,
    GroupSchema,
    Ingestion,
    ingest_dataframe,
    put_rows,
)

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_WORKERS = 4
"""Concurrent PutRecord calls per pandas frame or Spark partition."""

GroupDefinition = GroupSchema
"""What ingestion needs of a feature group (``GroupDefinition.describe(sagemaker, name)``)."""


class IngestionError(PipelineError):
    """Feature Store refused a record (the message names the record and AWS's reason)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ingest_frame(
    client: Any,
    group: GroupSchema,
    frame: pd.DataFrame,
    workers: int = DEFAULT_WORKERS,
    event_time: str | None = None,
) -> int:
    """Ingest a pandas frame; the number of records written (``event_time`` default: now)."""
    rows = (dict(zip(frame.columns, values, strict=True)) for values in frame.itertuples(index=False))
    try:
        return put_rows(client, group, rows, event_time or _now(), workers)
    except FeatureIngestionError as exc:
        raise IngestionError(str(exc)) from exc


def ingest_partitions(
    frame: Any,
    group: GroupSchema,
    client_factory: Callable[[], Any],
    workers: int = DEFAULT_WORKERS,
    event_time: str | None = None,
    partitions: int | None = None,
) -> int:
    """Ingest a Spark DataFrame from each partition (``client_factory()`` makes each one's client)."""
    count = partitions or frame.rdd.getNumPartitions()
    ingestion = Ingestion(group, event_time or _now(), client_factory, count, workers)
    try:
        return ingest_dataframe(frame, ingestion)
    except FeatureIngestionError as exc:
        raise IngestionError(str(exc)) from exc
