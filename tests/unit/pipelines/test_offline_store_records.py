"""A batch as offline-store records (pipelines.features.offline_store.offline_records), no AWS needed:
the group's schema exactly, Feature Store's added columns, missing values as nulls, event times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from pipelines.features.offline_store import OfflineStoreError, OfflineTable, offline_records, offline_schema

DEFINITIONS = [
    ("id", "String"),
    ("n", "Integral"),
    ("x", "Fractional"),
    ("c", "String"),
    ("event_time", "String"),
]


class _Table:
    def __init__(self, definitions: list[tuple[str, str]]) -> None:
        self._schema = offline_schema(definitions)

    def schema(self) -> Any:
        return self._schema


def _table(definitions: list[tuple[str, str]] = DEFINITIONS, event_time: str = "event_time") -> OfflineTable:
    return OfflineTable("g", "id", event_time, dict(definitions), "db", "t", _Table(definitions))  # type: ignore[arg-type]


def test_records_have_the_group_schema_added_columns_and_nulls_for_missing_values() -> None:
    frame = pd.DataFrame(
        {"id": [3, 1], "n": [True, None], "x": [float("nan"), 2.5], "target": [0, 1]}
    )  # no c, no event_time, an extra column
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    records = offline_records(frame, _table(), "2026-11-20T00:00:00Z", now=now)
    assert records.schema.names == [
        *[n for n, _ in DEFINITIONS],
        "api_invocation_time",
        "write_time",
        "is_deleted",
    ]
    assert records.schema.equals(_table().table.schema().as_arrow())
    rows = records.to_pylist()
    assert [r["id"] for r in rows] == ["3", "1"]  # a String identifier is text
    assert rows[0]["n"] == 1  # a boolean as Integral 0/1
    assert rows[1]["n"] is None
    assert rows[0]["x"] is None  # NaN is a missing value, as a record without the feature
    assert rows[1]["x"] == 2.5
    assert {r["c"] for r in rows} == {None}
    assert {r["event_time"] for r in rows} == {"2026-11-20T00:00:00Z"}
    assert {r["write_time"] for r in rows} == {now}
    assert {r["is_deleted"] for r in rows} == {False}


def test_a_row_keeps_its_own_event_time_and_rows_are_sorted_by_it() -> None:
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "event_time": pd.to_datetime(["2026-11-21 08:30:15.5", None, "2026-11-19"], format="ISO8601"),
        }
    )
    records = offline_records(frame, _table(), "2026-11-20T00:00:00Z")
    assert records.column("id").to_pylist() == ["c", "b", "a"]
    assert records.column("event_time").to_pylist() == [
        "2026-11-19T00:00:00Z",
        "2026-11-20T00:00:00Z",  # the batch's, for the row without one
        "2026-11-21T08:30:15Z",
    ]


def test_a_fractional_event_time_is_epoch_seconds() -> None:
    definitions = [("id", "String"), ("ts", "Fractional")]
    frame = pd.DataFrame({"id": ["a"], "ts": ["2026-11-20T00:00:01Z"]})
    records = offline_records(frame, _table(definitions, "ts"), "2026-11-20T00:00:00Z")
    assert records.column("ts").to_pylist() == [datetime(2026, 11, 20, 0, 0, 1, tzinfo=UTC).timestamp()]


def test_bad_batches_are_refused_naming_what_is_wrong() -> None:
    with pytest.raises(OfflineStoreError, match=r"lacks its record identifier column 'id'"):
        offline_records(pd.DataFrame({"n": [1]}), _table(), "2026-11-20T00:00:00Z")
    with pytest.raises(OfflineStoreError, match=r"event time is not an ISO-8601 time .*event_time column"):
        offline_records(
            pd.DataFrame({"id": ["a"], "event_time": ["yesterday"]}), _table(), "2026-11-20T00:00:00Z"
        )
