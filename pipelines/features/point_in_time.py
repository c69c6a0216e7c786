"""Point-in-time correct training sets: each label row gets the feature values as of its event time.

An as-of join: for every label row (record identifier, label event time), the feature record of the
same identifier with the latest event time that is not after the label's event time; a later
feature value (one the model could not have known when the label's event happened) is never used,
and a label with no earlier feature record gets missing features (imputed like any missing value).
Offline-store records (``pipelines.features.ingestion``) may hold several writes of one event and
deletions: the latest ``write_time`` of an (identifier, event time) wins and ``is_deleted`` records
are dropped first, as the Feature Store documentation's point-in-time queries do
(https://docs.aws.amazon.com/sagemaker/latest/dg/feature-store-create-a-dataset.html).

A pandas engine (``merge_asof``) and a Spark engine (range join + window) give the same rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from pipelines.errors import InputRejectedError

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.aws import AwsClients
    from pipelines.contract import DatasetContract
    from pipelines.features.offline_store import OfflineTable

WRITE_TIME = "write_time"
IS_DELETED = "is_deleted"
_ROW = "__label_row__"


class PointInTimeError(InputRejectedError, ValueError):
    """The labels or the feature records lack a column the join needs, or a time does not parse."""


def _require(frame: Any, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PointInTimeError(f"{what} lack column(s) {missing}; they have {list(frame.columns)}")


def _times(values: Any, what: str) -> Any:
    import pandas as pd

    try:
        # one resolution on both sides: merge_asof refuses datetime64[s] against datetime64[us]
        return pd.DatetimeIndex(pd.to_datetime(values, utc=True, format="ISO8601")).as_unit("us")
    except (ValueError, TypeError) as exc:
        raise PointInTimeError(f"{what}: not ISO-8601 timestamps ({exc})") from exc


def latest_records(records: pd.DataFrame, key: str, event_time: str) -> pd.DataFrame:
    """Offline-store records without deletions, one per (identifier, event time): the last written."""
    frame = records
    if IS_DELETED in frame.columns:
        frame = frame.loc[~frame[IS_DELETED].astype(bool)]
    if WRITE_TIME in frame.columns:
        frame = frame.sort_values(WRITE_TIME, kind="stable")
    return frame.drop_duplicates([key, event_time], keep="last")


def point_in_time_join(
    labels: pd.DataFrame,
    features: pd.DataFrame,
    *,
    key: str,
    label_time: str,
    feature_time: str,
    feature_columns: list[str] | None = None,
) -> pd.DataFrame:
    """``labels`` (in their order) with each feature column as of the label's event time (pandas).

    Args:
        labels: one row per label: ``key``, ``label_time`` and the label columns.
        features: feature records: ``key``, ``feature_time`` and the feature columns.
        feature_columns: the columns to attach (default: every column of ``features`` except the
            key, event time, ``write_time`` and ``is_deleted``).
    """
    import pandas as pd

    _require(labels, [key, label_time], "the labels")
    _require(features, [key, feature_time], "the feature records")
    records = latest_records(features, key, feature_time)
    columns = feature_columns or [
        c for c in records.columns if c not in {key, feature_time, WRITE_TIME, IS_DELETED}
    ]
    _require(records, columns, "the feature records")
    clash = [c for c in columns if c in labels.columns and c not in (key,)]
    if clash:
        raise PointInTimeError(f"column(s) {clash} are in both the labels and the features; rename one")
    left = labels.copy()
    left[_ROW] = range(len(left))
    left["__t__"] = _times(left[label_time], f"labels.{label_time}")
    right = pd.DataFrame(records[[key, *columns]]).copy()
    right["__t__"] = _times(records[feature_time], f"features.{feature_time}")
    joined = pd.merge_asof(
        left.sort_values("__t__", kind="stable"),
        right.sort_values("__t__", kind="stable"),
        on="__t__",
        by=key,
        direction="backward",  # the latest feature record at or before the label's time
        allow_exact_matches=True,
    )
    out = joined.sort_values(_ROW).drop(columns=[_ROW, "__t__"]).reset_index(drop=True)
    return pd.DataFrame(out[[*labels.columns, *columns]])


def point_in_time_join_spark(
    labels: Any,
    features: Any,
    *,
    key: str,
    label_time: str,
    feature_time: str,
    feature_columns: list[str],
) -> Any:
    """The same join on Spark DataFrames (times as ISO-8601 strings or timestamps); a DataFrame."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812 - the conventional alias

    records = features
    if IS_DELETED in records.columns:
        records = records.where(~F.col(IS_DELETED).cast("boolean"))
    if WRITE_TIME in records.columns:
        latest = Window.partitionBy(key, feature_time).orderBy(F.col(WRITE_TIME).desc())
        records = records.withColumn("__w__", F.row_number().over(latest)).where("__w__ = 1").drop("__w__")
    right = records.select(
        F.col(key).alias("__k__"),
        F.to_timestamp(F.col(feature_time)).alias("__ft__"),
        *[F.col(c) for c in feature_columns],
    )
    left = labels.withColumn(_ROW, F.monotonically_increasing_id()).withColumn(
        "__lt__", F.to_timestamp(F.col(label_time))
    )
    joined = left.join(right, (left[key] == right["__k__"]) & (right["__ft__"] <= left["__lt__"]), "left")
    newest = Window.partitionBy(_ROW).orderBy(F.col("__ft__").desc_nulls_last())
    return (
        joined.withColumn("__n__", F.row_number().over(newest))
        .where("__n__ = 1")
        .orderBy(_ROW)
        .select(*labels.columns, *feature_columns)
    )


EVENT_TIME = "__event_time__"
_ROW_KEY = "__label_key__"
"""Event-time column of feature records while a training set is assembled (not in its output)."""


def as_of_training_set(
    batch: pd.DataFrame,
    history: pd.DataFrame | None,
    *,
    key: str,
    label_columns: list[str],
    batch_time: str,
    event_time_column: str | None = None,
) -> pd.DataFrame:
    """The training set of a batch: its label rows, each with the feature values as of its own time.

    Args:
        batch: the feature job's rows (key, features, label columns), in the job's column order.
        history: earlier feature records of the same dataset (key, features, :data:`EVENT_TIME`);
            values dated after a label are never used.
        label_columns: what the label row keeps (target, split, sensitive columns); every other
            column but the key is a feature taken from the records.
        batch_time: the batch's event time (ISO-8601), for rows without their own.
        event_time_column: the contract's ``event_time`` column, when it names one.

    Returns:
        ``batch``'s rows and columns, features from the latest record at or before each label's time.
    """
    import pandas as pd

    _require(batch, [key, *label_columns], "the feature rows")
    features = [c for c in batch.columns if c != key and c not in label_columns]
    if event_time_column and event_time_column in batch.columns:
        times = batch[event_time_column].map(lambda v: pd.Timestamp(v).isoformat())
    else:
        times = pd.Series(batch_time, index=batch.index)
    # One join key per label row: a date may hold several batches with the same identifiers, and a
    # row's own record (at its own time) must not be taken for another row's. History records of the
    # identifier are copied to each of its label rows; the own record comes last, so it wins a tie.
    labels = pd.DataFrame(batch[[key, *label_columns]]).copy()
    labels[EVENT_TIME] = times.to_numpy()
    labels[_ROW_KEY] = range(len(labels))
    own = pd.DataFrame(batch[features]).copy()
    own[EVENT_TIME] = times.to_numpy()
    own[_ROW_KEY] = range(len(own))
    records = own
    if history is not None and len(history):
        _require(history, [key, EVENT_TIME, *features], "the feature history")
        earlier = labels[[key, _ROW_KEY]].merge(
            pd.DataFrame(history[[key, *features, EVENT_TIME]]), on=key, how="inner"
        )
        records = pd.concat(
            [pd.DataFrame(earlier[[*features, EVENT_TIME, _ROW_KEY]]), own], ignore_index=True
        )
    joined = _join(labels, records, _ROW_KEY, features)
    out = pd.DataFrame(joined[list(batch.columns)])
    for column, dtype in batch.dtypes.items():
        if bool(out[column].notna().all()) and out[column].dtype != dtype:
            out[column] = out[column].astype(dtype)
    return out


def _join(labels: pd.DataFrame, records: pd.DataFrame, key: str, features: list[str]) -> pd.DataFrame:
    renamed = records.rename(columns={EVENT_TIME: "__feature_time__"})
    return point_in_time_join(
        labels,
        renamed,
        key=key,
        label_time=EVENT_TIME,
        feature_time="__feature_time__",
        feature_columns=features,
    )


def assemble_training_set(
    clients: AwsClients, contract: DatasetContract, ingest_date: str, features_uri: str
) -> dict[str, Any]:
    """Rewrite the feature job's part files under ``features_uri`` as the point-in-time training set.

    The label rows are the batch's (event time: the contract's ``event_time`` column, else the
    batch's, :func:`pipelines.features.emr.batch_event_time`); the feature records are the batch's
    and the history: when the contract's model has a feature group, the records of the batch's
    identifiers in its offline store (read back from the Iceberg table); else every other ingest
    date's feature set of the dataset, each at its date's event time. Then the batch is ingested into
    the offline store (:func:`pipelines.features.offline_store.append_batch`, one Iceberg commit; a
    re-run commits nothing). Each part file keeps its key and rows, so the layout the lineage hashes
    stays.

    Returns:
        ``rows``, ``history_source`` (``offline_store`` or ``feature_sets``), ``history_records``,
        ``future_records`` (history dated after the batch, never used), ``from_history`` (labels whose
        features came from an earlier record, not the batch's own) and ``offline_store`` (what the
        append committed, or None without a feature group).
    """
    import io

    import pandas as pd

    from pipelines.aws import list_keys, put_bytes, split_s3_uri
    from pipelines.features.emr import batch_event_time
    from pipelines.features.spark_job import SPLIT_COLUMN

    s3 = clients.s3
    bucket, prefix = split_s3_uri(features_uri)

    def read(key: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))

    parts = [
        k for k in list_keys(s3, bucket, prefix) if k.endswith(".parquet") and "/" not in k[len(prefix) :]
    ]
    frames = [read(k) for k in parts]
    if not frames:
        raise PointInTimeError(f"no feature part files under {features_uri}: did the feature job write any?")
    batch = pd.concat(frames, ignore_index=True)
    key = contract.unique_keys[0] if len(contract.unique_keys) == 1 else None
    if key is None:
        raise PointInTimeError(
            f"contract {contract.name!r}: a point-in-time training set needs one record identifier "
            f"(unique_keys is {contract.unique_keys})"
        )
    batch_time = batch_event_time(ingest_date)
    labels = [c for c in [contract.target, SPLIT_COLUMN, *contract.passthrough_columns] if c in batch.columns]
    group = clients.settings.feature_group_for(contract.name)
    offline = None
    if group:  # the group's offline store holds every batch ingested before this one
        from pipelines.features.offline_store import offline_table

        offline = offline_table(clients, group)
        features = [c for c in batch.columns if c != key and c not in labels]
        history = offline_history(offline, batch, key, features)
    else:
        history = _feature_set_history(clients, features_uri, ingest_date, batch)
    training = as_of_training_set(
        batch,
        history,
        key=key,
        label_columns=labels,
        batch_time=batch_time,
        event_time_column=contract.event_time,
    )
    start = 0
    for part_key, frame in zip(parts, frames, strict=True):
        buffer = io.BytesIO()
        training.iloc[start : start + len(frame)].to_parquet(buffer, index=False)
        put_bytes(s3, bucket, part_key, buffer.getvalue(), clients.settings.data_lake_key_arn)
        start += len(frame)
    ingested: dict[str, Any] | None = None
    if offline is not None:  # direct offline-store ingestion: the batch's records, one Iceberg commit
        from pipelines.features.offline_store import append_batch

        ingested = append_batch(
            offline, batch, batch_id=batch_id(contract.name, ingest_date, batch), event_time=batch_time
        )
    future = 0
    from_history = 0
    if history is not None:
        later: Any = (history[EVENT_TIME] > batch_time) & history[key].isin(list(batch[key]))
        future = int(later.sum())
        features = [c for c in batch.columns if c != key and c not in labels]
        same: Any = training[features].eq(batch[features]) | (
            training[features].isna() & batch[features].isna()
        )
        from_history = int((~same.all(axis=1)).sum())
    return {
        "rows": len(training),
        "history_source": "offline_store" if offline is not None else "feature_sets",
        "history_records": 0 if history is None else len(history),
        "future_records": future,
        "from_history": from_history,
        "offline_store": ingested,
    }


def batch_id(dataset: str, ingest_date: str, batch: pd.DataFrame) -> str:
    """A batch's id in the offline store: its dataset, date and a hash of its values (so a re-run of
    the same batch is recognised, and a changed batch of the same date is not)."""
    import hashlib

    from pandas.util import hash_pandas_object

    hashed: Any = cast(Any, hash_pandas_object)(batch[sorted(batch.columns)], index=False)
    hashes = hashed.to_numpy()
    return f"{dataset}/{ingest_date}/{hashlib.sha256(hashes.tobytes()).hexdigest()[:32]}"


def offline_history(
    table: OfflineTable, batch: pd.DataFrame, key: str, features: list[str]
) -> pd.DataFrame | None:
    """The feature records of ``batch``'s identifiers in the group's offline store, as
    :func:`as_of_training_set` takes them:
    ``key``, ``features`` and :data:`EVENT_TIME` (superseded writes and deletions dropped)."""
    import pandas as pd

    from pipelines.features.offline_store import read_records
    from pipelines.features.spark_job import iso_time

    missing = [f for f in features if f not in table.types]
    if missing:
        raise PointInTimeError(
            f"feature group {table.group!r} does not define {missing}, which the feature job now makes: "
            "its definitions come from an older contract; deploy the stack again (pulumi up) so the "
            "group matches the contract"
        )
    records = read_records(table, identifiers=batch[key].dropna().unique().tolist())
    if records.empty:
        return None
    history = pd.DataFrame(records[[key, *features]]).copy()
    times = records[table.event_time]
    if table.types[table.event_time] == "Fractional":
        times = pd.to_datetime(times, unit="s", utc=True)
        history[EVENT_TIME] = [iso_time(t.to_pydatetime()) for t in times]
    else:
        history[EVENT_TIME] = times.to_numpy()
    return history


def _feature_set_history(
    clients: AwsClients, features_uri: str, ingest_date: str, batch: pd.DataFrame
) -> pd.DataFrame | None:
    """Without a feature group: every other ingest date's published feature set of the dataset, each
    at its date's event time (a feature set of an older contract, without the batch's columns, is
    left out)."""
    import io

    import pandas as pd

    from pipelines.aws import list_keys, split_s3_uri
    from pipelines.features.emr import batch_event_time

    s3 = clients.s3
    bucket, prefix = split_s3_uri(features_uri)
    dataset_prefix = prefix.split("ingest_date=", 1)[0]
    frames = []
    for other in list_keys(s3, bucket, dataset_prefix):
        rest = other[len(dataset_prefix) :]
        date = rest.removeprefix("ingest_date=").split("/", 1)[0]
        if date == ingest_date or not rest.startswith("ingest_date=") or rest.count("/") != 1:
            continue
        if other.endswith(".parquet"):
            frame = pd.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=other)["Body"].read()))
            if set(batch.columns) <= set(frame.columns):
                frame[EVENT_TIME] = batch_event_time(date)
                frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else None
