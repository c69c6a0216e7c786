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

from typing import TYPE_CHECKING, Any

from pipelines.errors import InputRejectedError

if TYPE_CHECKING:
    import pandas as pd

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
        return pd.to_datetime(values, utc=True, format="ISO8601")
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
