"""The feature group's offline store as what it is on AWS: an Iceberg table in the Glue Data Catalog.

Feature Store creates an Iceberg offline store as an Iceberg table registered in Glue, its Parquet
data under ``ResolvedOutputS3Uri`` and its metadata under the sibling ``metadata/`` prefix
(https://docs.aws.amazon.com/sagemaker/latest/dg/feature-store-offline.html). Files dropped under
``data/`` that no Iceberg snapshot lists are invisible to Athena and to every Iceberg reader, so a
batch is written to the offline store only through an Iceberg commit. This module makes those
commits with pyiceberg's Glue catalog (the same library AWS's Feature Store Spark connector's own
tests read these tables with), against AWS or the emulator alike:

* :func:`append_batch` is direct offline-store batch ingestion, the Spark connector's
  ``ingest_data(..., target_stores=["OfflineStore"])``: the batch's records with Feature Store's
  ``api_invocation_time``, ``write_time`` and ``is_deleted`` columns, sorted by event time, in one
  Iceberg append (one snapshot), encrypted by the bucket's default key. The snapshot is tagged
  with the batch's id, so a re-run of the same batch commits nothing.
* :func:`read_records` reads a group's records back (optionally only some identifiers), dropping
  superseded writes and deletions the way the Feature Store documentation's point-in-time queries do.

Feature types map to Iceberg as Feature Store maps them (``String`` to string, ``Integral`` to long,
``Fractional`` to double); the three added columns are ``timestamptz``, ``timestamptz`` and boolean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from pipelines.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table

    from pipelines.aws import AwsClients

API_INVOCATION_TIME = "api_invocation_time"
WRITE_TIME = "write_time"
IS_DELETED = "is_deleted"
ADDED_COLUMNS = (API_INVOCATION_TIME, WRITE_TIME, IS_DELETED)
"""The columns Feature Store adds to every offline-store record."""
BATCH_PROPERTY = "mlops:batch"
"""Snapshot summary property naming the batch an append committed (re-runs commit nothing)."""


class OfflineStoreError(PipelineError):
    """The offline store cannot be read or written: names the group and what to do."""


def iceberg_type(feature_type: str) -> Any:
    """The Iceberg type of a Feature Store feature type."""
    from pyiceberg.types import DoubleType, LongType, StringType

    types = {"String": StringType(), "Integral": LongType(), "Fractional": DoubleType()}
    if feature_type not in types:
        raise OfflineStoreError(f"feature type {feature_type!r} is not one of {sorted(types)}")
    return types[feature_type]


def offline_schema(definitions: Sequence[tuple[str, str]]) -> Schema:
    """The Iceberg schema of a group's offline table: its features in order, then the added columns."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import BooleanType, NestedField, TimestamptzType

    fields = [
        NestedField(i, name, iceberg_type(kind), required=False)
        for i, (name, kind) in enumerate(definitions, start=1)
    ]
    start = len(fields) + 1
    fields += [
        NestedField(start, API_INVOCATION_TIME, TimestamptzType(), required=False),
        NestedField(start + 1, WRITE_TIME, TimestamptzType(), required=False),
        NestedField(start + 2, IS_DELETED, BooleanType(), required=False),
    ]
    return Schema(*fields)


def table_location(resolved_output_uri: str) -> str:
    """The Iceberg table's location: ``ResolvedOutputS3Uri`` without its ``/data`` (data and metadata
    are its two children)."""
    return resolved_output_uri.rstrip("/").removesuffix("/data")


def file_io_properties(*, region: str, endpoint_url: str | None, credentials: Any | None) -> dict[str, str]:
    """pyiceberg S3 properties: the region, an endpoint override and explicit credentials (a boto3
    frozen-credentials object, else the SDK's default chain).

    No encryption settings: pyiceberg's pyarrow FileIO (0.12) sends no SSE-KMS headers, so its objects
    get the bucket's default encryption. The stack makes the features bucket's default key the groups'
    offline-store key (``tests/unit/stacks/test_data_science.py`` holds it to that).
    """
    props: dict[str, str] = {"s3.region": region}
    if endpoint_url:
        props["s3.endpoint"] = endpoint_url
    if credentials is not None:
        props["s3.access-key-id"] = credentials.access_key
        props["s3.secret-access-key"] = credentials.secret_key
        if credentials.token:
            props["s3.session-token"] = credentials.token
    return props


def glue_catalog(glue_client: Any, properties: Mapping[str, str]) -> Any:
    """pyiceberg's Glue catalog over ``glue_client`` (its role, region and endpoint).

    A new metadata file (its name has a fresh UUID) is put without pyiceberg's HeadObject probe, as
    Iceberg's own S3FileIO puts it: the probe of a key that does not exist answers 404 only to a caller
    allowed ``s3:ListBucket`` on the whole bucket, else 403, which fails the commit
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html); a prefix-scoped
    ``s3:ListBucket`` grant does not cover a HeadObject.
    """
    from pyiceberg.catalog.glue import GlueCatalog

    catalog = GlueCatalog("glue", client=glue_client, **dict(properties))
    catalog._write_metadata = catalog._write_metadata_no_exist_check  # pyright: ignore[reportPrivateUsage]
    return catalog


@dataclass(frozen=True)
class OfflineTable:
    """A feature group's offline store: its definition and its Iceberg table."""

    group: str
    record_identifier: str
    event_time: str
    types: dict[str, str]
    database: str
    table_name: str
    table: Table


def offline_table(clients: AwsClients, group_name: str) -> OfflineTable:
    """Open ``group_name``'s offline table (DescribeFeatureGroup, then the Glue catalog) as ``clients``.

    Raises:
        OfflineStoreError: the group has no offline store, is not in the Iceberg format, or its table is
            not in the catalog (Feature Store creates it with the group).
    """
    described = clients.sagemaker.describe_feature_group(FeatureGroupName=group_name)
    offline = described.get("OfflineStoreConfig") or {}
    if not offline:
        raise OfflineStoreError(f"feature group {group_name!r} has no offline store")
    if offline.get("TableFormat") != "Iceberg":
        raise OfflineStoreError(
            f"feature group {group_name!r}'s offline store is in the {offline.get('TableFormat') or 'Glue'} "
            "format; direct batch ingestion here writes Iceberg tables (recreate the group with "
            "TableFormat Iceberg, as the FeatureStore component does)"
        )
    catalog_config = offline.get("DataCatalogConfig") or {}
    # the DescribeFeatureGroup above made the clients' session: pyarrow signs with its credentials
    credentials = clients.session.get_credentials()
    properties = file_io_properties(
        region=clients.settings.region,
        endpoint_url=clients.settings.endpoint_for("s3"),
        credentials=credentials.get_frozen_credentials() if credentials is not None else None,
    )
    catalog = glue_catalog(clients.client("glue"), properties)
    database, name = str(catalog_config.get("Database", "")), str(catalog_config.get("TableName", ""))
    from pyiceberg.exceptions import NoSuchTableError

    try:
        table = catalog.load_table((database, name))
    except NoSuchTableError:
        raise OfflineStoreError(
            f"feature group {group_name!r}: its offline table {database}.{name} is not in the Glue catalog "
            "(Feature Store creates it with the group; was it dropped?)"
        ) from None
    return OfflineTable(
        group=str(described["FeatureGroupName"]),
        record_identifier=str(described["RecordIdentifierFeatureName"]),
        event_time=str(described["EventTimeFeatureName"]),
        types={d["FeatureName"]: d["FeatureType"] for d in described["FeatureDefinitions"]},
        database=database,
        table_name=name,
        table=table,
    )


def _event_times(values: Any, count: int, kind: str, default: str, group: str) -> Any:
    """A batch's event times as the group stores them (an Arrow array): ISO-8601
    ``yyyy-MM-ddTHH:mm:ssZ`` strings (UTC), or epoch seconds for a ``Fractional`` event time; a
    missing one is ``default``."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute

    pc: Any = pyarrow.compute  # its functions are generated: not visible to the type checker
    fallback: Any = pd.Timestamp(default.replace("Z", "+00:00"))
    fallback = fallback.tz_localize("UTC") if fallback.tzinfo is None else fallback.tz_convert("UTC")
    if values is None or not bool(values.notna().any()):
        if kind == "Fractional":
            return pa.array([float(fallback.timestamp())] * count, type=pa.float64())
        return pa.array([fallback.strftime("%Y-%m-%dT%H:%M:%SZ")] * count, type=pa.string())
    if kind == "Fractional" and pd.api.types.is_numeric_dtype(values):
        return pa.array(values.astype("float64").fillna(float(fallback.timestamp())).to_numpy())
    try:
        parsed = pd.to_datetime(values.reset_index(drop=True), utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0].removesuffix(" You might want to try:")
        raise OfflineStoreError(
            f"feature group {group!r}: an event time is not an ISO-8601 time ({reason}); fix the "
            "contract's event_time column"
        ) from None
    stamps = pa.array(parsed.fillna(fallback), type=pa.timestamp("us", tz="UTC"))
    if kind == "Fractional":
        return pc.divide(stamps.cast(pa.int64()).cast(pa.float64()), 1_000_000.0)
    # whole seconds first: Arrow's %S prints a finer unit's fraction
    seconds = stamps.cast(pa.timestamp("s", tz="UTC"), safe=False)
    return pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ")


def offline_records(
    frame: pd.DataFrame,
    table: OfflineTable,
    event_time: str,
    now: datetime | None = None,
) -> pa.Table:
    """``frame``'s rows as offline-store records of ``table``'s group (an Arrow table in its schema).

    Every feature the group defines is a column (missing ones are null, as a record without the
    feature); the event time is the row's own value, else ``event_time``; the added columns say the
    records were written now and are not deletions; rows are sorted by event time.
    """
    import numpy as np
    import pyarrow as pa

    if table.record_identifier not in frame.columns:
        raise OfflineStoreError(
            f"feature group {table.group!r}: the batch lacks its record identifier column "
            f"{table.record_identifier!r}"
        )
    count = len(frame)
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    arrays: dict[str, Any] = {}
    for name, kind in table.types.items():
        if name == table.event_time:
            source = frame[name] if name in frame.columns else None
            arrays[name] = _event_times(source, count, kind, event_time, table.group)
            continue
        if name not in frame.columns:
            target = {"Integral": pa.int64(), "Fractional": pa.float64()}.get(kind, pa.string())
            arrays[name] = pa.nulls(count, type=target)
            continue
        series = frame[name].reset_index(drop=True)
        if kind == "Integral":
            arrays[name] = pa.array(series.astype("Int64"), type=pa.int64())
        elif kind == "Fractional":
            arrays[name] = pa.array(series.astype("float64").to_numpy(), type=pa.float64(), from_pandas=True)
        else:
            arrays[name] = pa.array(series.astype("string"), type=pa.string())
    micros = np.full(count, int(stamp.timestamp() * 1_000_000), dtype="int64")
    written = pa.array(micros, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    arrays[API_INVOCATION_TIME] = written
    arrays[WRITE_TIME] = written
    arrays[IS_DELETED] = pa.array(np.zeros(count, dtype=bool))
    # cast to the table's own types: a table made elsewhere may say timestamp (no zone) or large_string
    schema = table.table.schema().as_arrow()
    columns = [arrays[f.name].cast(f.type) if f.name in arrays else pa.nulls(count, f.type) for f in schema]
    records = pa.Table.from_arrays(columns, schema=schema)
    return records.sort_by(table.event_time)


def committed_batches(table: Table) -> set[str]:
    """The batch ids the table's snapshots committed (:data:`BATCH_PROPERTY`)."""
    found: set[str] = set()
    for snapshot in table.snapshots():
        summary = snapshot.summary
        value = summary.additional_properties.get(BATCH_PROPERTY) if summary is not None else None
        if value:
            found.add(str(value))
    return found


def append_batch(
    table: OfflineTable, frame: pd.DataFrame, *, batch_id: str, event_time: str
) -> dict[str, Any]:
    """Ingest ``frame`` into the offline store in one Iceberg commit (see the module docstring).

    Returns:
        ``records`` written (0 when ``batch_id`` was committed before), ``snapshot_id`` and ``table``.
    """
    from pyiceberg.exceptions import CommitFailedException

    name = f"{table.database}.{table.table_name}"
    if batch_id in committed_batches(table.table):
        return {"records": 0, "snapshot_id": None, "table": name, "already_committed": True}
    records = offline_records(frame, table, event_time)
    try:
        table.table.append(records, snapshot_properties={BATCH_PROPERTY: batch_id})
    except CommitFailedException as exc:
        raise OfflineStoreError(
            f"feature group {table.group!r}: the Iceberg commit to {name} failed ({exc}); other writers "
            "kept committing first: re-run the step (a committed batch is not written twice)"
        ) from exc
    snapshot = table.table.current_snapshot()
    return {
        "records": records.num_rows,
        "snapshot_id": None if snapshot is None else snapshot.snapshot_id,
        "table": name,
        "already_committed": False,
    }


def read_records(table: OfflineTable, identifiers: Iterable[Any] | None = None) -> pd.DataFrame:
    """The group's current records: for each (identifier, event time) the latest write, deletions
    dropped (``is_deleted``), as the documented point-in-time queries filter them; ``identifiers``
    limits the scan (pushed down to Iceberg's file statistics)."""
    import pandas as pd
    from pyiceberg.expressions import AlwaysTrue, In

    row_filter: Any = AlwaysTrue()
    if identifiers is not None:
        kind = table.types[table.record_identifier]
        wanted = {
            str(v) if kind == "String" else int(v) if kind == "Integral" else float(v) for v in identifiers
        }
        if not wanted:
            return table.table.schema().as_arrow().empty_table().to_pandas()
        row_filter = cast(Any, In)(table.record_identifier, wanted)  # a pydantic model to the checker
    frame = table.table.scan(row_filter=row_filter).to_pandas()
    if frame.empty:
        return frame
    key = [table.record_identifier, table.event_time]
    latest = frame.sort_values(WRITE_TIME, kind="stable").drop_duplicates(key, keep="last")
    kept = pd.DataFrame(latest[~latest[IS_DELETED].fillna(False).astype(bool)])
    return kept.reset_index(drop=True)
