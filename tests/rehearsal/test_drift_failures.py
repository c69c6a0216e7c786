"""The rehearsal exits non-zero naming the drift or retrain stage when monitoring or retraining fails.

The drift test serves a small model of its own in the emulator (the DAG tests' serving account) and
runs the real monitoring DAG under ``dag.test()`` in the stage's child Airflow process; the drifted window moves one feature only, which
the report flags but which is below the dataset drift share, so the DAG does not trigger retraining
and the run must stop at the drift stage with that reason (the retrain stage never runs).
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rehearsal.alarms import AlarmEvaluator
from rehearsal.emulator import Emulator
from rehearsal.endpoints import SageMakerHosting
from rehearsal.monitoring_stage import drift_stage
from rehearsal.retrain_stage import (
    check_retrain,
    retrain_headline,
    retrain_stage,
    triggered_run_in_metadata_db,
)
from rehearsal.run import EXIT_STAGE_FAILED, RehearsalOptions, RunContext, run_stages
from tests.dags import test_drift_stage as serving_account
from tests.rehearsal import endpoint_fixtures
from tests.unit.serving.model_fixture import sample_rows, write_artifact

REPO = Path(__file__).resolve().parents[2]


def _quiet() -> Any:
    from rich.console import Console

    return Console(file=io.StringIO())


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def serving(credentials: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    model_dir = write_artifact(tmp_path / "trained-model-3000", rows=3000)
    monkeypatch.setattr(endpoint_fixtures, "_trained_model", lambda root: model_dir)
    hosting = SageMakerHosting(time_scale=0.05, seed=7, capture_flush_s=0.5)
    with Emulator(extensions=[AlarmEvaluator(time_scale=0.05), hosting]) as emu:
        yield emu


def _outputs_file(tmp_path: Path, emu: Emulator) -> Path:
    outputs = {
        "environment": "dev",
        "region": "us-east-1",
        "rawBucket": "raw-bucket-test",
        "curatedBucket": "curated-bucket-test",
        "featuresBucket": "features-bucket-test",
        "artifactsBucket": "artifacts-bucket-test",
        "captureBucket": "capture-bucket-test",
        "modelPackageGroupNames": {"churn": "mlops-dev-churn", "housing": "mlops-dev-housing"},
        "contractsDir": str(REPO / "contracts"),
        "airflowAwsConnId": None,
        "pollSeconds": 1,
        "workerPython": sys.executable,
        "workerPythonPath": str(REPO),
        "endpointUrl": emu.endpoint_url,
    }
    path = tmp_path / "dag_outputs.json"
    path.write_text(json.dumps(outputs))
    return path


def _one_feature_drift(count: int, seed: int, drifted: bool) -> Any:
    rows = sample_rows(count, seed=seed if drifted else 21)
    if drifted:
        rows["monthly_charges"] = rows["monthly_charges"] + 25  # 1 of 5 features: below the 0.5 share
    return rows


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(1800)  # two monitoring DAG runs in child processes (minutes on a loaded machine)
def test_the_run_stops_at_the_drift_stage_when_drifted_traffic_triggers_no_retraining(
    serving: Emulator, tmp_path: Path
) -> None:
    serving_account._serving_account(serving, tmp_path, capture=True)
    out = tmp_path / "out"
    ctx = RunContext(options=RehearsalOptions(out=out, quick=True), out=out)
    ctx.emulator = serving
    ctx.values.update(
        dag_outputs_file=str(_outputs_file(tmp_path, serving)),
        drift_traffic=_one_feature_drift,
        expected_drift=["monthly_charges"],
        serving_endpoint=serving_account.ENDPOINT,
    )
    summary = run_stages([drift_stage(), retrain_stage()], ctx, console=_quiet())
    assert summary.exit_code == EXIT_STAGE_FAILED
    assert summary.failed is not None
    assert summary.failed.stage == "drift"
    assert summary.message.startswith("rehearsal failed at stage 'drift': the drifted window did not trigger")
    evidence = summary.failed.evidence
    assert list(evidence["drifted_features"]) == ["monthly_charges"]  # detected, yet no retrain
    assert evidence["dataset_drift"] is False
    assert evidence["drift_tasks"]["trigger_training"] == "skipped"
    assert evidence["drift_tasks"]["no_retrain"] == "success"
    assert evidence["triggered_training_runs"] == []
    assert "retrain_run" not in ctx.values
    assert [r.verdict for r in summary.results] == ["failed", "not run"]
    saved = json.loads((out / "summary.json").read_text())
    assert saved["exit_code"] == EXIT_STAGE_FAILED
    assert saved["stages"][0]["reason"] == summary.failed.reason


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(1800)  # two monitoring DAG runs in child processes (minutes on a loaded machine)
def test_the_drift_stage_ignores_the_callers_airflow_environment(
    serving: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's own Airflow settings in the environment reach neither the monitoring DAG's child
    Airflow nor their folders; drifted traffic triggers retraining there, the clean control does not."""
    junk_home, other_dags = tmp_path / "my-airflow-home", tmp_path / "my-dags"
    junk_home.mkdir()
    other_dags.mkdir()
    monkeypatch.setenv("AIRFLOW_HOME", str(junk_home))
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(other_dags))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{junk_home / 'mine.db'}")
    airflow_before = "airflow" in sys.modules
    serving_account._serving_account(serving, tmp_path, capture=True)
    out = tmp_path / "out"
    ctx = RunContext(options=RehearsalOptions(out=out, quick=True), out=out)
    ctx.emulator = serving
    ctx.values.update(
        dag_outputs_file=str(_outputs_file(tmp_path, serving)),
        drift_traffic=serving_account._traffic,
        expected_drift=["monthly_charges", "tenure_months", "plan"],
        serving_endpoint=serving_account.ENDPOINT,
    )
    summary = run_stages([drift_stage()], ctx, console=_quiet())
    assert summary.exit_code == 0, summary.message
    evidence = summary.results[0].evidence
    assert evidence["control_triggered"] == []
    assert evidence["control_tasks"]["trigger_training"] == "skipped"
    (run_id,) = evidence["triggered_training_runs"]
    assert evidence["drift_tasks"]["trigger_training"] == "success"
    assert ctx.values["airflow_db"] == str((out / "airflow" / "airflow.db").resolve())
    queued = triggered_run_in_metadata_db(ctx, "churn_training", run_id)
    assert queued is not None
    assert queued["state"] == "queued"
    assert list(junk_home.iterdir()) == []
    assert list(other_dags.iterdir()) == []
    assert ("airflow" in sys.modules) == airflow_before  # Airflow ran in the child, not here


def test_the_retrain_stage_fails_naming_the_missing_trigger(tmp_path: Path) -> None:
    ctx = RunContext(options=RehearsalOptions(out=tmp_path), out=tmp_path)
    summary = run_stages([retrain_stage()], ctx, console=_quiet())
    assert summary.exit_code == EXIT_STAGE_FAILED
    assert summary.message == (
        "rehearsal failed at stage 'retrain': RuntimeError: the drift stage left no triggered training run "
        "(ctx.values['retrain_run'])"
    )


def test_the_retrain_check_refuses_another_conf_or_a_failed_run() -> None:
    ctx = RunContext(options=RehearsalOptions(), out=Path(os.devnull))
    evidence: dict[str, Any] = {
        "trigger": {"conf_sent": {"retrain_reasons": "dataset drift"}},
        "executed_conf": {},
        "dag_state": "success",
    }
    assert "not the trigger's conf" in (check_retrain(evidence, ctx) or "")
    evidence["executed_conf"] = {"retrain_reasons": "dataset drift"}
    evidence["dag_state"] = "failed"
    assert check_retrain(evidence, ctx) == "the retraining run ended failed"


def test_the_retrain_headline_names_package_metric_and_failures() -> None:
    line = retrain_headline(
        {
            "package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-dev-churn/4",
            "training_metrics": {"validation:auc": 0.8312},
            "executed_run_id": "manual__2026-12-01T12:00:00",
            "config": "mlops-dev-churn-cfg-4",
            "traffic_ok": 120,
            "traffic_errors": 0,
        }
    )
    assert line == (
        "retrained mlops-dev-churn/4 (validation:auc 0.831) from manual__2026-12-01T12:00:00; "
        "serving on mlops-dev-churn-cfg-4; 0 of 120 invocations failed during the shift"
    )
