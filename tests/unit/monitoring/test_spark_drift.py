"""The Spark drift engine gives the in-process engine's per-feature verdicts on the same capture files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines.monitoring.capture import (
    CaptureStats,
    decode_records,
    format_capture_line,
    iter_capture_file_records,
)
from pipelines.monitoring.drift import DriftConfig, compute_drift, load_reference
from pipelines.monitoring.spark_drift import drift_plan, spark_drift, use_spark
from tests.unit.monitoring.capture_fixture import response_csv
from tests.unit.serving.model_fixture import sample_rows

START = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from pipelines.features.local import spark_session

    session = spark_session("mlops-drift-test", cores=2)
    yield session
    session.stop()


def _lines(frame: pd.DataFrame, start: datetime, per_request: int = 4) -> list[str]:
    lines = []
    for index, offset in enumerate(range(0, len(frame), per_request)):
        chunk = frame.iloc[offset : offset + per_request]
        body = chunk.to_csv(index=False, header=False).encode()
        lines.append(
            format_capture_line(
                body, "text/csv", response_csv([0.5] * len(chunk)), "text/csv",
                inference_time=start + timedelta(seconds=index),
            )
        )  # fmt: skip
    return lines


def _window(tmp_path: Path, frame: pd.DataFrame) -> list[Path]:
    lines = _lines(frame, START)
    # a malformed record (wrong column count), a non-numeric cell, and one event outside the window
    lines.append(format_capture_line(b"1,2\n", "text/csv", None, None, inference_time=START))
    lines.append(format_capture_line(b"x,1,2,basic,north\n", "text/csv", None, None, inference_time=START))
    lines += _lines(frame.iloc[:8], END + timedelta(minutes=1))
    half = len(lines) // 2
    paths = []
    for i, part in enumerate((lines[:half], lines[half:])):
        path = tmp_path / f"part-{i}.jsonl"
        path.write_text("\n".join(part) + "\n")
        paths.append(path)
    return paths


def _in_process(paths: list[Path], model_dir: Path, config: DriftConfig) -> Any:
    reference = load_reference(model_dir)
    stats = CaptureStats()
    batches = []
    for path in paths:
        records = iter_capture_file_records(path.read_text().splitlines(), stats, START, END)
        batch = decode_records(records, reference.features, stats)
        if batch is not None:
            batch.pop("__prediction__")  # the Spark engine does not read the responses
            batches.append(batch)
    return compute_drift(reference, batches, config)


def _drifted(rows: int, seed: int) -> pd.DataFrame:
    frame = sample_rows(rows, seed=seed)
    frame["monthly_charges"] = frame["monthly_charges"] + 20
    frame.loc[frame.index[:40], "tenure_months"] = np.nan  # missing values count the same
    frame.loc[frame.index[: rows // 3], "plan"] = "premium"
    return frame


@pytest.mark.timeout(1800)  # Spark local mode on a shared 2-core machine
def test_spark_verdicts_equal_the_in_process_engine(tmp_path: Path, model_dir: Path, spark: Any) -> None:
    drifted = True
    frame = _drifted(3000, 5)
    paths = _window(tmp_path, frame)
    config = DriftConfig()
    expected = _in_process(paths, model_dir, config)
    got = spark_drift(spark, [str(p) for p in paths], load_reference(model_dir), config, start=START, end=END)
    assert got.current_rows == expected.current_rows == 3000
    assert got.drifted_features == expected.drifted_features
    assert got.dataset_drift == expected.dataset_drift
    assert got.missing_value_rate == pytest.approx(expected.missing_value_rate)
    assert got.context["spark"]["malformed_records"] == 2
    for want in expected.features:
        have = got.feature(want.name)
        assert (have.method, have.status, have.drifted) == (want.method, want.status, want.drifted), want.name
        assert (have.current_rows, have.current_missing) == (want.current_rows, want.current_missing)
        # same rows below reservoir_size: equal up to floating-point summation order
        assert have.statistic == pytest.approx(want.statistic, rel=1e-9, abs=1e-12), want.name
        for key in ("psi", "new_category_rate", "current_mean"):
            if want.measures.get(key) is not None:
                assert have.measures[key] == pytest.approx(want.measures[key], rel=1e-9), (want.name, key)
        assert have.plot == want.plot
    if drifted:
        assert {"monthly_charges", "plan"} <= set(got.drifted_features)


@pytest.mark.timeout(1800)
def test_sampled_window_keeps_the_verdicts(tmp_path: Path, model_dir: Path, spark: Any) -> None:
    # more rows than the reservoir: both engines read a uniform sample; verdicts still agree
    frame = _drifted(6000, 8)
    paths = _window(tmp_path, frame)
    config = DriftConfig(reservoir_size=1000)
    expected = _in_process(paths, model_dir, config)
    got = spark_drift(spark, [str(p) for p in paths], load_reference(model_dir), config, start=START, end=END)
    assert got.drifted_features == expected.drifted_features
    for want in expected.features:
        assert got.feature(want.name).status == want.status, want.name


def test_plan_and_threshold(model_dir: Path) -> None:
    plan = drift_plan(load_reference(model_dir), DriftConfig(), START, END)
    assert [f["name"] for f in plan["features"]] == [f.name for f in load_reference(model_dir).features]
    assert all("psi_edges" in f for f in plan["features"] if f["kind"] == "numeric")
    assert plan["window_start"] == "2026-11-24T16:00:00.000Z"
    assert use_spark(5 * 1024**3)
    assert not use_spark(10 * 1024**2)
