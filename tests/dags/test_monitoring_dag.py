"""The monitoring DAG run end to end with ``dag.test()`` against the emulator (moto server on loopback):
drifted traffic triggers the training DAG, clean traffic does not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rehearsal.emulator import Emulator
from tests.dags.conftest import DAGS_FOLDER
from tests.unit.monitoring.capture_fixture import capture_lines, put_capture_file
from tests.unit.serving.model_fixture import sample_rows, write_artifact

START = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
ENDPOINT = "mlops-dev-churn"
GROUP = "mlops-dev-churn"
EVALUATION = "models/churn/run-test-1/evaluation/"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_artifact(tmp_path_factory.mktemp("model"), rows=3000)


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch, outputs: Any, model_dir: Path) -> Iterator[Emulator]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with Emulator() as emu:
        s3 = emu.client("s3")
        for bucket in ("capture-bucket-test", "artifacts-bucket-test"):
            s3.create_bucket(Bucket=bucket)
        for name in ("baseline.json", "baseline_sample.parquet"):
            s3.put_object(
                Bucket="artifacts-bucket-test", Key=EVALUATION + name, Body=(model_dir / name).read_bytes()
            )
        sm = emu.client("sagemaker")
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
        sm.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "123.dkr.ecr.us-east-1.amazonaws.com/sklearn:1.9-0", "ModelDataUrl": "s3://artifacts-bucket-test/models/churn/run-test-1/output/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelMetrics={
                "ModelDataQuality": {
                    "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://artifacts-bucket-test/{EVALUATION}baseline.json"}
                }
            },
        )  # fmt: skip
        outputs(endpointUrl=emu.endpoint_url)
        yield emu


def _write_window(emu: Emulator, model_dir: Path, rows: Any) -> None:
    from pipelines.serving.artifact import load_artifact

    scores = load_artifact(model_dir).model.predict_proba(rows)[:, 1].tolist()
    half = len(rows) // 2
    for offset, minute in ((0, 5), (half, 35)):
        when = START + timedelta(minutes=minute)
        put_capture_file(
            emu.client("s3"), "capture-bucket-test", "datacapture/churn", ENDPOINT, "AllTraffic", when,
            capture_lines(rows.iloc[offset : offset + half], scores[offset : offset + half], when, rows_per_request=10),
        )  # fmt: skip


def _drifted(count: int) -> Any:
    rows = sample_rows(count, seed=6)
    rows["monthly_charges"] = rows["monthly_charges"] + 25
    rows["tenure_months"] = rows["tenure_months"] * 3
    rows["plan"] = "premium"
    return rows


def _run_monitoring() -> tuple[dict[str, str], list[Any]]:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    dag = DagBag(dag_folder=str(DAGS_FOLDER)).dags["churn_monitoring"]
    run = dag.test(run_conf={"window_start": START.isoformat(), "window_end": END.isoformat()})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    with create_session() as session:
        training_runs = [
            (r.run_id, r.conf) for r in session.query(DagRun).filter(DagRun.dag_id == "churn_training").all()
        ]
    return states, training_runs


def _reset_training_runs() -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagRun).filter(DagRun.dag_id == "churn_training").delete()


@pytest.mark.slow
def test_drifted_traffic_triggers_training(airflow_db: Path, emulator: Emulator, model_dir: Path) -> None:
    _reset_training_runs()
    _write_window(emulator, model_dir, _drifted(600))
    states, training_runs = _run_monitoring()
    # a window far below the default sparkDriftMinBytes: drift in process, the Spark branch skipped
    assert states["drift_report"] == "success"
    assert states["prepare_spark_drift"] == states["spark_drift"] == "skipped"
    assert states["retrain_decision"] == "success"
    assert states["trigger_training"] == "success"
    assert states["no_retrain"] == "skipped"
    assert [run_id for run_id, _ in training_runs] == [
        f"retrain__{ENDPOINT}__20261124T160000Z_20261124T170000Z"
    ]
    conf = training_runs[0][1]
    assert "dataset drift" in conf["retrain_reasons"]
    report = json.loads(
        emulator.client("s3")
        .get_object(
            Bucket="artifacts-bucket-test",
            Key=f"monitoring/{ENDPOINT}/20261124T160000Z_20261124T170000Z/report.json",
        )["Body"]
        .read()
    )
    assert {"monthly_charges", "tenure_months", "plan"} <= set(report["drifted_features"])
    cloudwatch = emulator.client("cloudwatch")
    drift_metrics = cloudwatch.list_metrics(Namespace="MLOps/Monitoring", MetricName="DatasetDrift")[
        "Metrics"
    ]
    assert [d for m in drift_metrics for d in m["Dimensions"] if d["Name"] == "EndpointName"] == [
        {"Name": "EndpointName", "Value": ENDPOINT}
    ]
    retrain = cloudwatch.list_metrics(Namespace="MLOps/Pipeline", MetricName="RetrainTriggered")["Metrics"]
    assert retrain


@pytest.mark.slow
def test_clean_traffic_does_not_trigger(airflow_db: Path, emulator: Emulator, model_dir: Path) -> None:
    _reset_training_runs()
    _write_window(emulator, model_dir, sample_rows(600, seed=21))
    states, training_runs = _run_monitoring()
    assert states["retrain_decision"] == "success"
    assert states["no_retrain"] == "success"
    assert states["trigger_training"] == "skipped"
    assert training_runs == []
