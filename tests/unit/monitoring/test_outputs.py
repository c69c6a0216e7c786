"""Metrics to CloudWatch, reports to S3 (moto), Model Monitor files, HTML, the monitor run and CLI."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mlops_cli.main import app
from pipelines.monitoring.drift import DriftConfig, compute_drift, load_reference
from pipelines.monitoring.metrics import (
    MONITORING_NAMESPACE,
    PIPELINE_NAMESPACE,
    publish_drift_metrics,
    publish_retrain_triggered,
    publish_step_status,
)
from pipelines.monitoring.model_monitor import (
    baseline_constraints,
    baseline_statistics,
    constraint_violations,
    current_statistics,
)
from pipelines.monitoring.monitor import run_monitor
from pipelines.monitoring.report import render_html, report_prefix, upload_reports, write_reports
from pipelines.serving.artifact import load_artifact
from tests.unit.monitoring.capture_fixture import capture_lines, put_capture_file
from tests.unit.serving.model_fixture import sample_rows

START = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def _shifted_rows(count: int, seed: int):
    rows = sample_rows(count, seed=seed)
    rows["monthly_charges"] = rows["monthly_charges"] + 25
    rows["tenure_months"] = rows["tenure_months"] * 3
    rows["plan"] = "premium"
    return rows


@pytest.fixture
def drift_report(model_dir: Path):
    reference = load_reference(model_dir)
    return compute_drift(reference, [_shifted_rows(1000, 5)], context={"endpoint_name": "churn-ep"})


def _metric_values(cloudwatch, namespace: str, name: str, dimensions: list[dict[str, str]]) -> list[float]:
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
        ],
        StartTime=END - timedelta(hours=2),
        EndTime=END + timedelta(hours=1),
    )
    return result["MetricDataResults"][0]["Values"]


def test_drift_metrics_in_cloudwatch(aws, drift_report) -> None:
    cloudwatch = aws["cloudwatch"]
    count = publish_drift_metrics(cloudwatch, drift_report, "dev", "churn-ep", END)
    assert count == 3 + 5  # dataset-level metrics + one score per evaluated feature
    base = [{"Name": "Environment", "Value": "dev"}, {"Name": "EndpointName", "Value": "churn-ep"}]
    assert _metric_values(cloudwatch, MONITORING_NAMESPACE, "DatasetDrift", base) == [1.0]
    assert _metric_values(cloudwatch, MONITORING_NAMESPACE, "DriftShare", base) == [
        pytest.approx(drift_report.drift_share)
    ]
    assert _metric_values(cloudwatch, MONITORING_NAMESPACE, "MissingValueRate", base) == [0.0]
    score = _metric_values(
        cloudwatch,
        MONITORING_NAMESPACE,
        "FeatureDriftScore",
        [*base, {"Name": "Feature", "Value": "monthly_charges"}],
    )
    assert score == [pytest.approx(drift_report.feature("monthly_charges").statistic)]
    listed = cloudwatch.list_metrics(Namespace=MONITORING_NAMESPACE, MetricName="FeatureDriftScore")[
        "Metrics"
    ]
    assert {d["Value"] for m in listed for d in m["Dimensions"] if d["Name"] == "Feature"} == {
        "tenure_months", "monthly_charges", "support_calls", "plan", "region",
    }  # fmt: skip


def test_pipeline_metrics_in_cloudwatch(aws) -> None:
    cloudwatch = aws["cloudwatch"]
    publish_retrain_triggered(cloudwatch, "dev", "churn_training", True)
    publish_step_status(cloudwatch, "dev", "monitoring", "monitor", failed=False)
    names = {
        m["MetricName"]: m["Dimensions"]
        for m in cloudwatch.list_metrics(Namespace=PIPELINE_NAMESPACE)["Metrics"]
    }
    assert names["RetrainTriggered"] == [
        {"Name": "Environment", "Value": "dev"},
        {"Name": "Pipeline", "Value": "churn_training"},
    ]
    assert {d["Name"] for d in names["StepFailed"]} == {"Environment", "Pipeline", "Step"}


def test_reports_written_locally_and_to_s3_encrypted(aws, drift_report, tmp_path: Path) -> None:
    paths = write_reports(drift_report, tmp_path, {"statistics.json": current_statistics(drift_report)})
    assert {p.name for p in paths} == {"report.json", "report.html", "summary.json", "statistics.json"}
    prefix = report_prefix("churn-ep", START, END)
    assert prefix == "monitoring/churn-ep/20261124T160000Z_20261124T170000Z/"
    keys = upload_reports(aws["s3"], aws["artifacts_bucket"], prefix, paths, kms_key_id=aws["key_arn"])
    for key in keys:
        head = aws["s3"].head_object(Bucket=aws["artifacts_bucket"], Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == aws["key_arn"]
    body = aws["s3"].get_object(Bucket=aws["artifacts_bucket"], Key=prefix + "report.json")["Body"].read()
    assert json.loads(body)["drifted_features"] == drift_report.drifted_features


def test_html_is_self_contained_with_a_plot_per_feature(drift_report) -> None:
    page = render_html(drift_report)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == len(drift_report.features) + (1 if drift_report.prediction else 0)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no external assets
    assert "<script" not in page
    assert "DATASET DRIFT" in page
    for item in drift_report.features:
        assert item.name in page


def test_model_monitor_files(model_dir: Path, drift_report) -> None:
    reference = load_reference(model_dir)
    statistics = baseline_statistics(reference)
    assert statistics["dataset"]["item_count"] == 3000
    by_name = {f["name"]: f for f in statistics["features"]}
    assert by_name["tenure_months"]["inferred_type"] == "Fractional"
    assert by_name["support_calls"]["inferred_type"] == "Integral"
    assert by_name["plan"]["inferred_type"] == "String"
    kll = by_name["tenure_months"]["numerical_statistics"]["distribution"]["kll"]["buckets"]
    assert sum(b["count"] for b in kll) == 3000
    buckets = {
        b["value"]: b["count"]
        for b in by_name["plan"]["string_statistics"]["distribution"]["categorical"]["buckets"]
    }
    assert set(buckets) == {"basic", "standard", "premium"}
    assert sum(buckets.values()) == 3000
    constraints = baseline_constraints(reference)
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.1
    plan = next(f for f in constraints["features"] if f["name"] == "plan")
    assert plan["string_constraints"]["domains"] == ["basic", "premium", "standard"]
    violations = constraint_violations(drift_report, constraints)["violations"]
    drift_checks = {
        v["feature_name"] for v in violations if v["constraint_check_type"] == "baseline_drift_check"
    }
    assert drift_checks == set(drift_report.drifted_features)
    current = current_statistics(drift_report)
    assert current["dataset"]["item_count"] == 1000


def test_constraint_violations_for_missing_and_new_values(model_dir: Path) -> None:
    reference = load_reference(model_dir)
    rows = sample_rows(500, seed=9)
    rows["region"] = None
    rows.loc[rows.index[:100], "plan"] = "enterprise"
    report = compute_drift(reference, [rows])
    violations = constraint_violations(report, baseline_constraints(reference))["violations"]
    kinds = {(v["feature_name"], v["constraint_check_type"]) for v in violations}
    assert ("region", "missing_column_check") in kinds
    assert ("plan", "categorical_values_check") in kinds


def _write_window(aws, model_dir: Path, rows) -> None:
    artifact = load_artifact(model_dir)
    scores = artifact.model.predict_proba(rows)[:, 1].tolist()
    half = len(rows) // 2
    for offset, minute in ((0, 5), (half, 35)):
        when = START + timedelta(minutes=minute)
        put_capture_file(
            aws["s3"], aws["capture_bucket"], "datacapture", "churn-ep", "AllTraffic", when,
            capture_lines(rows.iloc[offset : offset + half], scores[offset : offset + half], when, rows_per_request=10),
        )  # fmt: skip


def test_run_monitor_end_to_end(aws, model_dir: Path, tmp_path: Path) -> None:
    _write_window(aws, model_dir, _shifted_rows(600, 6))
    result = run_monitor(
        s3=aws["s3"],
        reference=load_reference(model_dir),
        capture_bucket=aws["capture_bucket"],
        capture_prefix="datacapture",
        endpoint_name="churn-ep",
        start=START,
        end=END,
        output_dir=tmp_path / "out",
        environment="dev",
        artifacts_bucket=aws["artifacts_bucket"],
        kms_key_id=aws["key_arn"],
        cloudwatch=aws["cloudwatch"],
    )
    report = result.report
    assert report.current_rows == 600
    assert {"monthly_charges", "tenure_months", "plan"} <= set(report.drifted_features)
    assert report.dataset_drift
    assert report.prediction is not None
    assert not np.isnan(report.prediction.statistic or np.nan)
    prefix = "monitoring/churn-ep/20261124T160000Z_20261124T170000Z/"
    assert sorted(k.removeprefix(prefix) for k in result.s3_keys) == sorted(
        ["report.json", "report.html", "summary.json", "statistics.json", "constraint_violations.json",
         "baseline_statistics.json", "constraints.json"]
    )  # fmt: skip
    assert result.metrics_published == 8
    assert report.context["capture"]["files"] == 2


def test_cli_monitor_run_and_report(aws, model_dir: Path, tmp_path: Path) -> None:
    _write_window(aws, model_dir, sample_rows(400, seed=8))
    out = tmp_path / "cli-out"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "monitor", "run", "--endpoint", "churn-ep", "--capture-bucket", aws["capture_bucket"],
            "--capture-prefix", "datacapture", "--start", START.isoformat(), "--end", END.isoformat(),
            "--baseline-dir", str(model_dir), "--output-dir", str(out), "--artifacts-bucket", aws["artifacts_bucket"],
            "--environment", "dev", "--max-model-age-days", "100000",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "churn-ep 20261124T160000Z_20261124T170000Z: ok" in result.output
    assert "retrain: False" in result.output
    assert (out / "report.html").is_file()
    rendered = runner.invoke(
        app,
        ["monitor", "report", str(out / "report.json"), "--html-out", str(tmp_path / "r.html")],
        env={"COLUMNS": "200"},
    )
    assert rendered.exit_code == 0, rendered.output
    assert "monthly_charges" in rendered.output
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_cli_monitor_reads_the_stack_outputs_like_every_step(aws, model_dir: Path, tmp_path: Path) -> None:
    """``--outputs`` names the bucket, the model's endpoint and capture prefix: no per-name options."""
    _write_window(aws, model_dir, sample_rows(400, seed=8))
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "environment": "dev",
                "captureBucket": aws["capture_bucket"],
                "artifactsBucket": aws["artifacts_bucket"],
                "models": {
                    "churn": {"contract": "churn", "endpointName": "churn-ep", "capturePrefix": "datacapture"}
                },
            }
        )
    )
    result = CliRunner().invoke(
        app,
        [
            "monitor", "run", "--outputs", str(outputs), "--start", START.isoformat(), "--end", END.isoformat(),
            "--baseline-dir", str(model_dir), "--output-dir", str(tmp_path / "o"), "--max-model-age-days", "100000",
            "--log-level", "warning",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "churn-ep 20261124T160000Z_20261124T170000Z: ok" in result.output
    bad = CliRunner().invoke(app, ["monitor", "run", "--outputs", str(outputs), "--log-level", "loud"])
    assert bad.exit_code == 2


def test_cli_report_rejects_non_report(tmp_path: Path) -> None:
    bogus = tmp_path / "x.json"
    bogus.write_text("{}")
    result = CliRunner().invoke(app, ["monitor", "report", str(bogus)], env={"COLUMNS": "200"})
    assert result.exit_code != 0
    assert "not a drift report" in result.output


def test_custom_config_changes_the_deciding_test(model_dir: Path) -> None:
    reference = load_reference(model_dir)
    report = compute_drift(reference, [sample_rows(500, seed=10)], DriftConfig(numeric_method="psi"))
    assert {f.method for f in report.features if f.kind == "numeric"} == {"psi"}
