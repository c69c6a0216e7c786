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


def test_the_emr_request_plans_the_window_and_reads_only_its_hour_folders(
    aws: dict[str, Any], model_dir: Path, tmp_path: Path
) -> None:
    import json

    from pipelines.aws import AwsClients
    from pipelines.monitoring.capture_window import choose_engine, window_capture
    from pipelines.monitoring.spark_drift import spark_drift_request
    from pipelines.settings import PipelineSettings
    from tests.unit.monitoring.capture_fixture import capture_lines, put_capture_file

    s3 = aws["s3"]
    for name in ("baseline.json", "baseline_sample.parquet"):
        s3.put_object(
            Bucket="artifacts-bucket-test", Key=f"eval/{name}", Body=(model_dir / name).read_bytes()
        )
    rows = sample_rows(40, seed=3)
    for minute, variant in ((5, "AllTraffic"), (30, "Canary")):
        when = START + timedelta(minutes=minute)
        put_capture_file(s3, "capture-bucket-test", "datacapture/churn", "ep", variant, when,
                         capture_lines(rows, [0.5] * len(rows), when, rows_per_request=4))  # fmt: skip
    later = END + timedelta(minutes=5)  # the next hour: not in the window
    put_capture_file(s3, "capture-bucket-test", "datacapture/churn", "ep", "AllTraffic", later,
                     capture_lines(rows, [0.5] * len(rows), later))  # fmt: skip
    size, folders = window_capture(s3, "capture-bucket-test", "datacapture/churn", "ep", START, END)
    assert folders == [
        "s3://capture-bucket-test/datacapture/churn/ep/AllTraffic/2026/11/24/16/",
        "s3://capture-bucket-test/datacapture/churn/ep/Canary/2026/11/24/16/",
    ]
    settings = PipelineSettings(
        capture_bucket="capture-bucket-test",
        artifacts_bucket="artifacts-bucket-test",
        ml_key_arn=aws["key_arn"],
        emr_virtual_cluster_id="vc-1",
        emr_job_role_arn="arn:aws:iam::123456789012:role/emr-job",
    )
    clients = AwsClients(settings, session=boto3_session())
    assert choose_engine(clients, "ep", "datacapture/churn", START, END, size)["engine"] == "spark"
    stays = choose_engine(clients, "ep", "datacapture/churn", START, END, size + 1)
    assert (stays["engine"], stays["window_bytes"]) == ("in_process", size)

    request = spark_drift_request(clients, "ep", "datacapture/churn", "s3://artifacts-bucket-test/eval/",
                                  START, END, tmp_path)  # fmt: skip
    arguments = request["job_driver"]["sparkSubmitJobDriver"]["entryPointArguments"]
    assert arguments[4:] == folders
    assert request["execution_role_arn"] == "arn:aws:iam::123456789012:role/emr-job"
    prefix = "monitoring/ep/20261124T160000Z_20261124T170000Z/spark/"
    assert arguments[:4] == [
        "--plan", f"s3://artifacts-bucket-test/{prefix}plan.json", "--output", request["state_uri"]
    ]  # fmt: skip
    assert request["state_uri"] == f"s3://artifacts-bucket-test/{prefix}state.json"
    plan = s3.get_object(Bucket="artifacts-bucket-test", Key=f"{prefix}plan.json")
    assert plan["SSEKMSKeyId"] == aws["key_arn"]
    assert json.loads(plan["Body"].read()) == drift_plan(load_reference(model_dir), None, START, END)
    emrfs = request["configuration_overrides"]["applicationConfiguration"][1]["properties"]
    assert emrfs["fs.s3.serverSideEncryption.kms.keyId"] == aws["key_arn"]  # the state: ML key


def boto3_session() -> Any:
    import boto3

    return boto3.Session(region_name="us-east-1")


@pytest.mark.timeout(1800)
def test_a_high_cardinality_column_brings_only_its_most_frequent_values_to_the_driver(
    tmp_path: Path, model_dir: Path, spark: Any
) -> None:
    from pipelines.monitoring import spark_drift_job
    from pipelines.monitoring.drift import OTHER_CATEGORY
    from pipelines.monitoring.spark_drift import accumulator_from_state

    frame = _drifted(600, 3)
    paths = _window(tmp_path, frame)
    config = DriftConfig(max_categories=1)
    reference = load_reference(model_dir)
    plan = drift_plan(reference, config, START, END)
    state = spark_drift_job.compute_state(spark, [str(p) for p in paths], plan)
    plan_state = state["categorical"]["plan"]
    # the most frequent value ("premium", a third of the rows plus its share of the rest) and the
    # others' total, which together are every present value
    assert list(plan_state["counts"]) == ["premium"]
    present = int(frame["plan"].notna().to_numpy().sum())
    assert plan_state["counts"]["premium"] + plan_state["other"] == present
    assert plan_state["other"] == int((frame["plan"].notna() & (frame["plan"] != "premium")).to_numpy().sum())
    counts = accumulator_from_state(reference, state, config)._categorical["plan"].counts
    assert counts[OTHER_CATEGORY] == plan_state["other"]
    assert state["records"] == len(_lines(frame, START)) + 2  # the window's good and malformed records
