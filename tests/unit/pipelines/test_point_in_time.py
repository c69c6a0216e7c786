"""Point-in-time training sets: a label gets the latest feature value at or before its time, never a later one."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from pipelines.features.point_in_time import PointInTimeError, point_in_time_join, point_in_time_join_spark

FEATURES = pd.DataFrame(
    {
        "customer_id": ["a", "a", "a", "b", "b"],
        "event_time": [
            "2026-01-01T00:00:00Z",
            "2026-02-01T00:00:00Z",
            "2026-03-01T00:00:00Z",  # after a's label: the future, must not leak
            "2026-01-15T00:00:00Z",
            "2026-02-10T00:00:00Z",  # exactly b's label time: known then, used
        ],
        "tenure": [1.0, 2.0, 3.0, 10.0, 11.0],
    }
)
LABELS = pd.DataFrame(
    {
        "customer_id": ["a", "b", "c", "a"],
        "label_time": [
            "2026-02-15T00:00:00Z",
            "2026-02-10T00:00:00Z",
            "2026-02-15T00:00:00Z",  # no features for c at all
            "2025-12-31T00:00:00Z",  # before a's first feature record
        ],
        "churned": [1, 0, 1, 0],
    }
)


def test_the_join_uses_the_most_recent_past_value_and_excludes_future_values() -> None:
    joined = point_in_time_join(
        LABELS, FEATURES, key="customer_id", label_time="label_time", feature_time="event_time"
    )
    assert list(joined.columns) == ["customer_id", "label_time", "churned", "tenure"]
    assert joined["customer_id"].tolist() == ["a", "b", "c", "a"]  # the labels' order
    tenure = joined["tenure"].tolist()
    assert tenure[0] == 2.0  # February's value, not March's (3.0, the future)
    assert tenure[1] == 11.0  # a record at the label's exact time is known then
    assert pd.isna(tenure[2])
    assert pd.isna(tenure[3])
    # a naive latest-value join would have leaked the future value
    assert 3.0 not in tenure


def test_deleted_and_overwritten_offline_records() -> None:
    records = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "event_time": ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"],
            "tenure": [1.0, 1.5, 2.0],
            "write_time": ["2026-01-01T01:00:00Z", "2026-01-02T01:00:00Z", "2026-02-01T01:00:00Z"],
            "is_deleted": [False, False, True],
        }
    )
    labels = pd.DataFrame({"customer_id": ["a"], "label_time": ["2026-02-15T00:00:00Z"]})
    joined = point_in_time_join(
        labels, records, key="customer_id", label_time="label_time", feature_time="event_time"
    )
    assert joined["tenure"].tolist() == [1.5]  # the deletion is dropped, the later write of Jan 1 wins


def test_bad_input_is_named() -> None:
    with pytest.raises(PointInTimeError, match="label_time"):
        point_in_time_join(
            LABELS.drop(columns="label_time"),
            FEATURES,
            key="customer_id",
            label_time="label_time",
            feature_time="event_time",
        )
    bad = LABELS.assign(label_time="yesterday")
    with pytest.raises(PointInTimeError, match="ISO-8601"):
        point_in_time_join(
            bad, FEATURES, key="customer_id", label_time="label_time", feature_time="event_time"
        )


@pytest.mark.slow
def test_spark_gives_the_same_rows(spark: Any) -> None:
    expected = point_in_time_join(
        LABELS, FEATURES, key="customer_id", label_time="label_time", feature_time="event_time"
    )
    joined = point_in_time_join_spark(
        spark.createDataFrame(LABELS),
        spark.createDataFrame(FEATURES),
        key="customer_id",
        label_time="label_time",
        feature_time="event_time",
        feature_columns=["tenure"],
    ).toPandas()
    pd.testing.assert_frame_equal(joined, expected, check_dtype=False)
