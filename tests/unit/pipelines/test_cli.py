"""The ``mlops pipeline`` CLI: end-to-end on moto, exit codes and readable errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from mlops_cli.main import app
from pipelines.cli_errors import cli_errors
from pipelines.errors import ExitCode
from tests.unit.pipelines.conftest import Platform, all_keys

runner = CliRunner(env={"COLUMNS": "250"})


def _outputs(platform: Platform, tmp_path: Path) -> Path:
    s = platform.settings
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps(
            {
                "environment": "dev",
                "region": s.region,
                "rawBucket": s.raw_bucket,
                "curatedBucket": s.curated_bucket,
                "featuresBucket": s.features_bucket,
                "artifactsBucket": s.artifacts_bucket,
                "captureBucket": s.capture_bucket,
                "dataLakeKeyArn": s.data_lake_key_arn,
                "mlKeyArn": s.ml_key_arn,
                "modelPackageGroupName": s.model_package_group_name,
            }
        )
    )
    return path


def test_generate_and_run_the_pipeline(platform: Platform, tmp_path: Path) -> None:
    batch = tmp_path / "houses.csv"
    result = runner.invoke(
        app, ["pipeline", "generate-data", "housing", "--out", str(batch), "--rows", "1200"]
    )
    assert result.exit_code == 0, result.output
    outputs = _outputs(platform, tmp_path)
    result = runner.invoke(
        app,
        [
            "pipeline",
            "run",
            str(batch),
            "-c",
            "housing",
            "-d",
            "2026-11-24",
            "--engine",
            "pandas",
            "-o",
            str(outputs),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "gate PASSED" in result.output
    assert "package: arn:aws:sagemaker" in result.output
    run_id = next(k.split("/")[2] for k in all_keys(platform.s3, platform.settings.artifacts_bucket))
    again = runner.invoke(app, ["pipeline", "register", run_id, "-c", "housing", "-o", str(outputs)])
    assert again.exit_code == 0, again.output
    assert "already registered" in again.output


def test_step_by_step_commands(platform: Platform, tmp_path: Path) -> None:
    batch = tmp_path / "churn.csv"
    runner.invoke(app, ["pipeline", "generate-data", "churn", "--out", str(batch), "--rows", "1500"])
    outputs = str(_outputs(platform, tmp_path))
    common = ["-c", "churn", "-o", outputs]
    for argv in (
        ["ingest", str(batch), "-d", "2026-11-24", *common],
        ["features", "--engine", "pandas", "-d", "2026-11-24", *common],
        ["train", "--run-id", "cli-run", "--hp", "C=0.5", "-d", "2026-11-24", *common],
        ["evaluate", "cli-run", "-d", "2026-11-24", *common],
        ["register", "cli-run", *common],
    ):
        result = runner.invoke(app, ["pipeline", *argv])
        assert result.exit_code == 0, (argv, result.output)
    assert "registered: arn:aws:sagemaker" in result.output
    assert "(Approved)" in result.output


def test_bad_batch_exits_2_with_the_failed_checks(tmp_path: Path) -> None:
    batch = tmp_path / "bad.csv"
    batch.write_text("customer_id;tenure_months\nA;1\n")
    result = runner.invoke(app, ["pipeline", "validate", str(batch), "-c", "churn"])
    assert result.exit_code == 2
    assert "batch rejected" in result.output
    assert "[wrong_delimiter]" in result.output


def test_missing_settings_are_explained(tmp_path: Path) -> None:
    batch = tmp_path / "b.csv"
    runner.invoke(app, ["pipeline", "generate-data", "churn", "--out", str(batch), "--rows", "10"])
    result = runner.invoke(app, ["pipeline", "ingest", str(batch)])
    assert result.exit_code == 3
    assert "MLOPS_RAW_BUCKET" in result.output


def test_importing_the_cli_is_light() -> None:
    code = (
        "import sys, mlops_cli.main; "
        "print(sorted(m for m in ('pandas', 'sklearn', 'pyspark', 'pulumi', 'boto3', 'pandera') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_run_publishes_step_failed_metrics(platform: Platform, tmp_path: Path) -> None:
    import boto3

    batch = tmp_path / "bad.csv"
    batch.write_text("customer_id,tenure_months\nA,1\n")
    outputs = _outputs(platform, tmp_path)
    result = runner.invoke(app, ["pipeline", "run", str(batch), "-d", "2026-11-24", "-o", str(outputs)])
    assert result.exit_code == 2, result.output
    cloudwatch = boto3.client("cloudwatch", region_name=platform.settings.region)
    metrics = cloudwatch.list_metrics(Namespace="MLOps/Pipeline", MetricName="StepFailed")["Metrics"]
    steps = sorted(next(d["Value"] for d in m["Dimensions"] if d["Name"] == "Step") for m in metrics)
    assert steps == ["ingest", "validate"]
    stats = cloudwatch.get_metric_statistics(
        Namespace="MLOps/Pipeline",
        MetricName="StepFailed",
        Dimensions=[
            {"Name": "Environment", "Value": "dev"},
            {"Name": "Pipeline", "Value": "churn-training"},
            {"Name": "Step", "Value": "validate"},
        ],
        StartTime=datetime(2020, 1, 1, tzinfo=UTC),
        EndTime=datetime(2100, 1, 1, tzinfo=UTC),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert stats[0]["Maximum"] == 1.0


def test_validate_a_landed_batch_by_uri(platform: Platform, tmp_path: Path) -> None:
    batch = tmp_path / "churn.csv"
    runner.invoke(app, ["pipeline", "generate-data", "churn", "--out", str(batch), "--rows", "50"])
    outputs = str(_outputs(platform, tmp_path))
    landed = runner.invoke(
        app, ["pipeline", "ingest", str(batch), "--no-validate", "-d", "2026-11-24", "-o", outputs]
    )
    assert landed.exit_code == 0, landed.output
    assert all_keys(platform.s3, platform.settings.curated_bucket) == []
    uri = next(line.split("raw: ")[1].split()[0] for line in landed.output.splitlines() if "raw: " in line)
    result = runner.invoke(app, ["pipeline", "validate", uri, "-o", outputs])
    assert result.exit_code == 0, result.output
    assert "50 rows passed contract 'churn'" in result.output
    curated = all_keys(platform.s3, platform.settings.curated_bucket)
    # the working copy, and the validated batch's immutable version with its manifest
    assert len([k for k in curated if "/versions/" not in k]) == 1
    assert [k.rsplit("/", 1)[1] for k in curated if "/validated/versions/" in k] == [
        "_lineage.json",
        "data.parquet",
    ]


def test_missing_credentials_name_the_settings_that_fix_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata lookup (no network)
    batch = tmp_path / "b.csv"
    runner.invoke(app, ["pipeline", "generate-data", "churn", "--out", str(batch), "--rows", "10"])
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"rawBucket": "raw", "curatedBucket": "curated"}))
    result = runner.invoke(app, ["pipeline", "ingest", str(batch), "-o", str(outputs)])
    assert result.exit_code == ExitCode.NOT_CONFIGURED, result.output
    assert "Unable to locate credentials" in result.output
    for setting in ("AWS_PROFILE", "MLOPS_ENDPOINT_URL", "--outputs"):
        assert setting in result.output


def test_missing_model_package_group_names_the_setting(platform: Platform) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="does not exist") as raised:  # moto's text, as SageMaker's
        platform.clients.sagemaker.describe_model_package_group(ModelPackageGroupName="mlops-dev-nope")
    console = Console(record=True, width=250)
    with pytest.raises(typer.Exit) as exited, cli_errors(console):
        raise raised.value
    assert exited.value.exit_code == ExitCode.NOT_CONFIGURED
    text = console.export_text()
    for setting in ("modelPackageGroupName", "MLOPS_MODEL_PACKAGE_GROUP_NAME", "deployed"):
        assert setting in text


def test_a_library_value_error_is_a_bug_with_its_traceback() -> None:
    with pytest.raises(ValueError, match="a bug"), cli_errors(Console(record=True)):
        raise ValueError("a bug")


def test_failed_run_prints_its_run_id(platform: Platform, tmp_path: Path) -> None:
    batch = tmp_path / "bad.csv"
    batch.write_text("customer_id,tenure_months\nA,1\n")
    result = runner.invoke(app, ["pipeline", "run", str(batch), "-o", str(_outputs(platform, tmp_path))])
    assert result.exit_code == ExitCode.INPUT_REJECTED, result.output
    assert re.search(r"run mlops-dev-churn-\d{8}-\d{6} failed at step 'validate'", result.output), (
        result.output
    )


def test_typed_choices_reject_unknown_values(tmp_path: Path) -> None:
    for argv in (
        ["pipeline", "features", "--engine", "dask"],
        ["pipeline", "train", "--mode", "cloud"],
        ["pipeline", "run", str(tmp_path / "x.csv"), "--engine", "emr"],
        ["serve", "--log-level", "loud"],
    ):
        result = runner.invoke(app, argv)
        assert result.exit_code == ExitCode.INPUT_REJECTED, (argv, result.output)
        assert "Invalid value" in result.output, result.output
