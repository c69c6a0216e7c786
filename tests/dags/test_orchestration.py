"""pipelines.orchestration without Airflow: settings from the outputs file, the window, run ids, and the
task-side helpers against moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pipelines import orchestration as orch
from platform_contract.naming import InvalidNameError


def _outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: Any) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    monkeypatch.setenv(orch.OUTPUTS_ENV, str(path))
    return path


def test_models_from_catalog_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _outputs(tmp_path, monkeypatch, {
        "environment": "staging", "region": "eu-west-1", "airflowAwsConnId": None, "pollSeconds": 5,
        "models": {"churn": {"contract": "churn"}, "My_Dataset": {"contract": "housing", "endpointName": "ep-x"}},
        "monitoringSchedules": {"churn": "0 * * * *"},
    })  # fmt: skip
    settings = orch.load_dag_settings(tmp_path / "dags")
    assert [m.names.training_dag_id for m in settings.models] == ["churn_training", "my_dataset_training"]
    churn, mine = settings.models
    assert churn.model_package_group == "mlops-staging-churn"
    assert churn.monitoring_schedule == "0 * * * *"
    assert (mine.contract, mine.endpoint, mine.monitoring_schedule) == ("housing", "ep-x", "@hourly")
    assert settings.aws_conn_id is None
    assert (settings.region, settings.poll_seconds) == ("eu-west-1", 5)
    assert settings.contracts_dir == tmp_path / "dags" / "contracts"
    assert settings.worker_python == orch.WORKER_PYTHON


def test_outputs_file_next_to_the_dags_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(orch.OUTPUTS_ENV, raising=False)
    assert orch.outputs_path(tmp_path) == tmp_path / "mlops_outputs.json"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ({"environment": "dev"}, "names no models"),
        ({"models": {"churn": "churn"}}, "models.churn must be an object"),
        ({"models": {"churn": {}}, "pollSeconds": 0}, "'pollSeconds' must be a positive integer"),
    ],
)
def test_bad_outputs_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: Any, message: str
) -> None:
    _outputs(tmp_path, monkeypatch, body)
    with pytest.raises(orch.DagSettingsError, match=message):
        orch.load_dag_settings(tmp_path)


def test_bad_model_name_fails_at_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _outputs(tmp_path, monkeypatch, {"models": {"9lives": {"contract": "churn"}}})
    with pytest.raises(InvalidNameError, match="does not start with a letter"):
        orch.load_dag_settings(tmp_path)


def test_capture_window() -> None:
    given = orch.capture_window(
        "2026-11-24T16:00:00Z", "2026-11-24T17:00:00Z", "", "", "2026-12-01T09:12:00+00:00", "ep"
    )
    assert given == {
        "start": "2026-11-24T16:00:00+00:00", "end": "2026-11-24T17:00:00+00:00",
        "window": "20261124T160000Z_20261124T170000Z", "retrain_run_id": "retrain__ep__20261124T160000Z_20261124T170000Z",
    }  # fmt: skip
    scheduled = orch.capture_window(
        "", "", "2026-12-01T08:00:00+00:00", "2026-12-01T09:00:00+00:00", "x", "ep"
    )
    assert scheduled["window"] == "20261201T080000Z_20261201T090000Z"
    manual = orch.capture_window("", "", "", "", "2026-12-01T09:12:34+00:00", "ep")
    assert manual["window"] == "20261201T080000Z_20261201T090000Z"  # the last full hour
    with pytest.raises(ValueError, match="is not before its end"):
        orch.capture_window("2026-11-24T18:00:00Z", "2026-11-24T17:00:00Z", "", "", "x", "ep")


def test_run_id_for() -> None:
    assert (
        orch.run_id_for("mlops-dev-churn-", "2026-12-01T09:12:34.5+00:00")
        == "mlops-dev-churn-20261201-091234"
    )
    with pytest.raises(InvalidNameError, match="not valid for SageMaker"):
        orch.run_id_for("x" * 60 + "-", "2026-12-01T09:12:34+00:00")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"rawBucket": "raw-b", "promotionPipelineName": "promote-p"}))
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="raw-b")
        yield outputs


def test_ingest_takes_the_newest_landed_batch(aws: Path) -> None:
    s3 = boto3.client("s3")
    clients = orch.model_clients(aws, "mlops-dev-churn", "mlops-dev-churn")
    with pytest.raises(FileNotFoundError, match="landing/churn/ is empty"):
        orch.newest_landed(clients, "churn")
    s3.put_object(Bucket="raw-b", Key="landing/churn/a.csv", Body=b"id\n1\n")
    s3.put_object(Bucket="raw-b", Key="landing/churn/b.csv", Body=b"id\n2\n")
    assert orch.newest_landed(clients, "churn") == "s3://raw-b/landing/churn/b.csv"
    batch = orch.ingest_step(clients, "churn", None, "2026-12-01")
    assert batch["key"].startswith("raw/churn/ingest_date=2026-12-01/")
    assert batch["key"].endswith("/b.csv")
    assert batch["source"] == "s3://raw-b/landing/churn/b.csv"
    assert s3.get_object(Bucket="raw-b", Key=batch["key"])["Body"].read() == b"id\n2\n"


def test_promotion_checks_the_group(aws: Path) -> None:
    sm = boto3.client("sagemaker")
    for group in ("mlops-dev-churn", "mlops-dev-housing"):
        sm.create_model_package_group(ModelPackageGroupName=group)
    arn = sm.create_model_package(
        ModelPackageGroupName="mlops-dev-housing",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "123.dkr.ecr.us-east-1.amazonaws.com/x:1", "ModelDataUrl": "s3://b/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]  # fmt: skip
    churn = orch.model_clients(aws, "mlops-dev-churn", "ep")
    with pytest.raises(ValueError, match="promote it with that model's promotion DAG"):
        orch.package_for_promotion(churn, arn)
    housing = orch.model_clients(aws, "mlops-dev-housing", "ep")
    assert orch.package_for_promotion(housing, arn)["approval_status"] == "PendingManualApproval"


def test_start_promotion_needs_the_pipeline(tmp_path: Path, aws: Path) -> None:
    empty = tmp_path / "none.json"
    empty.write_text("{}")
    clients = orch.model_clients(aws, "g", "ep")
    with pytest.raises(orch.DagSettingsError, match="no 'promotionPipelineName'"):
        orch.start_promotion(clients, empty)
