"""The rehearsal's drift stage against a serving endpoint in the emulator: traffic in, capture out,
the monitoring DAG (``dag.test()``) flags the drifted window only and triggers the training DAG."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rehearsal.alarms import AlarmEvaluator
from rehearsal.emulator import Emulator
from rehearsal.endpoints import SageMakerHosting
from rehearsal.monitoring_stage import check_drift, drift_headline, drift_stage
from rehearsal.report import render_report, write_report
from rehearsal.retrain_stage import triggered_run_in_metadata_db
from rehearsal.run import RehearsalOptions, RunContext, run_stages
from tests.rehearsal import endpoint_fixtures
from tests.rehearsal.endpoint_fixtures import IMAGE, ROLE, model_tarball
from tests.unit.serving.model_fixture import sample_rows, write_artifact

ENDPOINT = "mlops-dev-churn"
GROUP = "mlops-dev-churn"
EVALUATION = "models/churn/run-1/evaluation/"


def _traffic(count: int, seed: int, drifted: bool) -> Any:
    # seed 21: the clean sample the monitoring DAG test also uses (clean against this baseline)
    rows = sample_rows(count, seed=seed if drifted else 21)
    if drifted:
        rows["monthly_charges"] = rows["monthly_charges"] + 25
        rows["tenure_months"] = rows["tenure_months"] * 3
        rows["plan"] = "premium"
    return rows


def _serving_account(emu: Emulator, tmp: Path, capture: bool) -> None:
    """Buckets, an approved package with its training baselines, and an InService endpoint."""
    s3, sm = emu.client("s3"), emu.client("sagemaker")
    for bucket in ("capture-bucket-test", "artifacts-bucket-test"):
        s3.create_bucket(Bucket=bucket)
    model_dir = endpoint_fixtures._trained_model(str(tmp))
    for name in ("baseline.json", "baseline_sample.parquet"):
        s3.put_object(
            Bucket="artifacts-bucket-test", Key=EVALUATION + name, Body=(model_dir / name).read_bytes()
        )
    key = "models/churn/run-1/output/model.tar.gz"
    s3.put_object(Bucket="artifacts-bucket-test", Key=key, Body=model_tarball(tmp))
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    package = sm.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{
                "Image": IMAGE,
                "ModelDataUrl": f"s3://artifacts-bucket-test/{key}",
                "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"},
            }],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={"ModelDataQuality": {"Statistics": {
            "ContentType": "application/json", "S3Uri": f"s3://artifacts-bucket-test/{EVALUATION}baseline.json"
        }}},
    )["ModelPackageArn"]  # fmt: skip
    sm.create_model(
        ModelName="churn-v1", ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": package}
    )
    config: dict[str, Any] = {
        "EndpointConfigName": "churn-v1",
        "ProductionVariants": [
            {"VariantName": "AllTraffic", "ModelName": "churn-v1", "InstanceType": "ml.m5.large",
             "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}
        ],
    }  # fmt: skip
    if capture:
        config["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": "s3://capture-bucket-test/datacapture/churn",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
        }
    sm.create_endpoint_config(**config)
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="churn-v1")
    hosting = next(e for e in emu.extensions if isinstance(e, SageMakerHosting))
    hosting.wait_for_status(ENDPOINT, ("InService", "Failed"), timeout_s=60)
    described = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(key, value)  # fmt: skip
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _context(tmp_path: Path, emu: Emulator, outputs: Callable[..., Path], quick: bool = True) -> RunContext:
    ctx = RunContext(options=RehearsalOptions(out=tmp_path / "out", quick=quick), out=tmp_path / "out")
    ctx.emulator = emu
    ctx.values["dag_outputs_file"] = str(outputs(endpointUrl=emu.endpoint_url))
    ctx.values["drift_traffic"] = _traffic
    ctx.values["expected_drift"] = ["monthly_charges", "tenure_months", "plan"]
    ctx.values["serving_endpoint"] = ENDPOINT
    return ctx


@pytest.fixture
def serving(credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    # a baseline from 3000 training rows, as the monitoring DAG test uses: the endpoint fixtures'
    # 400-row model gives a reference so small that a clean window's tenure looks drifted
    model_dir = write_artifact(tmp_path / "trained-model-3000", rows=3000)
    monkeypatch.setattr(endpoint_fixtures, "_trained_model", lambda root: model_dir)
    hosting = SageMakerHosting(time_scale=0.05, seed=7, capture_flush_s=0.5)
    with Emulator(extensions=[AlarmEvaluator(time_scale=0.05), hosting]) as emu:
        yield emu


def _reset_training_runs() -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagRun).filter(DagRun.dag_id == "churn_training").delete()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two monitoring DAG runs in child processes (minutes on a loaded machine)
def test_drift_stage_detects_injected_drift_and_triggers_retraining(
    airflow_db: Path, serving: Emulator, tmp_path: Path, outputs: Callable[..., Path]
) -> None:
    _reset_training_runs()
    _serving_account(serving, tmp_path, capture=True)
    ctx = _context(tmp_path, serving, outputs)
    summary = run_stages([drift_stage()], ctx)
    result = summary.results[0]
    assert summary.exit_code == 0, result.reason
    evidence = result.evidence
    assert {"monthly_charges", "tenure_months", "plan"} <= set(evidence["drifted_features"])
    assert all(v["statistic"] is not None for v in evidence["drifted_features"].values())
    assert evidence["control_drifted_features"] == []
    assert evidence["control_triggered"] == []
    (run_id,) = evidence["triggered_training_runs"]
    assert run_id.startswith(f"retrain__{ENDPOINT}__")
    assert ctx.values["retrain_run"]["run_id"] == run_id
    assert "dataset drift" in ctx.values["retrain_run"]["conf"]["retrain_reasons"]
    assert "DatasetDrift" in evidence["monitoring_metrics"]
    # the trigger created a queued training run in Airflow's metadata database, with the conf it sent
    queued = triggered_run_in_metadata_db(ctx, "churn_training", run_id)
    assert queued is not None
    assert queued["state"] == "queued"
    assert queued["conf"] == ctx.values["retrain_run"]["conf"] == evidence["retrain_conf"]
    assert queued["conf"]["monitoring_window"]
    headline = drift_headline(evidence)
    assert headline.startswith(f"{len(evidence['drifted_features'])} of {evidence['evaluated_features']} ")
    assert "monthly_charges" in headline
    assert "retrain triggered" in headline
    saved = json.loads((ctx.out / "summary.json").read_text())
    assert saved["stages"][0]["evidence"]["triggered_training_runs"] == [run_id]
    # the report draws the drift report the stage recorded, one plot per feature
    html = write_report(summary, ctx).read_text()
    assert html == render_report(summary, ctx)
    assert "predictions read back for 600 clean rows" in html  # the traffic event, with its weights
    assert "AllTraffic: 100%" in html
    assert f"{ENDPOINT}: " in html
    assert html.count('<section class="feature">') >= 3
    assert "monthly_charges" in html


@pytest.mark.slow
def test_drift_stage_fails_naming_the_stage_when_no_capture_reaches_the_bucket(
    airflow_db: Path, serving: Emulator, tmp_path: Path, outputs: Callable[..., Path]
) -> None:
    _serving_account(serving, tmp_path, capture=False)
    summary = run_stages([drift_stage()], _context(tmp_path, serving, outputs))
    assert summary.exit_code == 1
    assert summary.message.startswith("rehearsal failed at stage 'drift': ")
    assert "no capture data reached s3://capture-bucket-test/datacapture/churn/" in summary.message


def test_the_check_refuses_drift_on_the_control_window() -> None:
    evidence = {
        "expected_drift": ["a"],
        "drifted_features": {"a": {}},
        "control_drifted_features": ["a"],
        "control_triggered": [],
        "control_tasks": {"trigger_training": "skipped"},
        "drift_tasks": {"trigger_training": "success"},
        "triggered_training_runs": ["r"],
        "training_dag_id": "churn_training",
        "monitoring_metrics": ["DatasetDrift"],
    }
    ctx = RunContext(options=RehearsalOptions(), out=Path(os.devnull))
    assert "clean control window" in (check_drift(evidence, ctx) or "")
    evidence["control_drifted_features"] = []
    assert check_drift(evidence, ctx) is None
    evidence["drifted_features"] = {}
    assert "injected features ['a']" in (check_drift(evidence, ctx) or "")
