"""Run tracking (pipelines/tracking.py) and lineage (pipelines/provenance.py) against moto and a local MLflow store."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipelines.aws import AwsClients
from pipelines.contract import DatasetContract
from pipelines.orchestration import evaluate_step, register_step
from pipelines.provenance import lineage, missing_links, package_lineage, render_tree
from pipelines.register import register_model
from pipelines.tracking import PACKAGE_TAG, TrackingError, experiment_name, open_tracker
from pipelines.train import run_training_locally
from tests.unit.pipelines.conftest import Platform
from tests.unit.pipelines.helpers import contract_path, prepare_features


def _tracked(platform: Platform, tmp_path: Path) -> AwsClients:
    settings = platform.settings.model_copy(
        update={
            "mlflow_tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
            "endpoint_name": "mlops-test-ep",
        }
    )
    return AwsClients(settings)


def _trained(platform: Platform, contract: DatasetContract, run_id: str = "run-1") -> tuple[str, str]:
    features = prepare_features(platform, contract)
    model_uri = run_training_locally(platform.clients, contract_path(contract), run_id, features.uri)
    return model_uri, features.uri


def _deploy(clients: AwsClients, package_arn: str, endpoint: str) -> None:
    sm = clients.sagemaker
    sm.create_model(
        ModelName="m1",
        PrimaryContainer={"ModelPackageName": package_arn},
        ExecutionRoleArn=str(clients.settings.sagemaker_role_arn),
    )
    sm.create_endpoint_config(
        EndpointConfigName="c1",
        ProductionVariants=[
            {
                "VariantName": "blue",
                "ModelName": "m1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName="c1")


def test_training_run_records_everything_and_points_at_its_package(
    platform: Platform, churn_contract: DatasetContract, tmp_path: Path
) -> None:
    clients = _tracked(platform, tmp_path)
    model_uri, features_uri = _trained(platform, churn_contract)
    evaluation = evaluate_step(clients, model_uri, features_uri)
    run_id = evaluation["mlflow_run_id"]
    assert run_id
    assert evaluation["passed"]

    tracker = open_tracker(clients.settings)
    assert tracker is not None
    run = tracker.client.get_run(run_id)
    experiment = tracker.client.get_experiment(run.info.experiment_id)
    target = clients.settings.model_target("churn")
    assert experiment.name == experiment_name(target) == "mlops-test-models"
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    # hyperparameters, dataset identity, code version
    for name, value in churn_contract.training.hyperparameters.items():
        assert params[name] == (value if isinstance(value, str) else json.dumps(value, sort_keys=True))
    assert params["contract"] == "churn"
    assert params["contract_version"] == str(churn_contract.version)
    assert params["code_version"] == "test-sha" == tags["mlflow.source.git.commit"]
    assert int(params["training_rows"]) > 0
    assert len(params["validated_data_sha256"]) == 64
    assert params["batch_uris"].startswith("s3://mlops-test-raw/raw/churn/ingest_date=")
    # metrics from evaluation.json
    report = json.loads(
        platform.s3.get_object(
            Bucket="mlops-test-artifacts", Key="models/churn/run-1/evaluation/evaluation.json"
        )["Body"].read()
    )
    assert {k: pytest.approx(v) for k, v in report["metrics"].items() if v is not None} == metrics
    assert tags["mlops.training_job"] == "run-1"
    assert tags["mlops.model_uri"] == model_uri
    # artifacts: reports, dataset identity, the model archive byte for byte
    listed = {a.path for a in tracker.client.list_artifacts(run_id)}
    assert {"dataset.json", "reports", "model"} <= listed
    reports = {a.path for a in tracker.client.list_artifacts(run_id, "reports")}
    assert reports == {"reports/evaluation.json", "reports/validation-0.json"}
    local = Path(tracker.client.download_artifacts(run_id, "model/model.tar.gz", str(tmp_path)))
    archive = platform.s3.get_object(Bucket="mlops-test-artifacts", Key=model_uri.split("/", 3)[3])[
        "Body"
    ].read()
    assert local.read_bytes() == archive
    dataset = json.loads(
        Path(tracker.client.download_artifacts(run_id, "dataset.json", str(tmp_path))).read_text()
    )
    batch = dataset["batches"][0]
    raw_key = batch["batch_uri"].split("/", 3)[3]
    raw = platform.s3.get_object(Bucket="mlops-test-raw", Key=raw_key)["Body"].read()
    assert batch["batch_sha256"] == hashlib.sha256(raw).hexdigest()
    assert batch["validation"]["passed"] is True
    # the dataset entity MLflow shows in its UI
    assert run.inputs is not None
    inputs = run.inputs.dataset_inputs
    assert inputs
    assert inputs[0].dataset.name == "churn"

    registration = register_step(clients, model_uri, run_id, evaluation["mlflow_experiment_id"])
    package = clients.sagemaker.describe_model_package(ModelPackageName=registration["model_package_arn"])
    assert package["CustomerMetadataProperties"]["mlflow_run_id"] == run_id
    assert tracker.client.get_run(run_id).data.tags[PACKAGE_TAG] == registration["model_package_arn"]
    # dev approves at registration and records who, when and why
    assert package["CustomerMetadataProperties"]["approved_by"] == "registration:auto-approve"
    # the registry's value pattern (moto does not check it): letters, digits, spaces and _.:/=+-@
    allowed = re.compile(r"^[\w .:/=+\-@]{1,256}$")
    assert {k: v for k, v in package["CustomerMetadataProperties"].items() if not allowed.match(v)} == {}


def test_lineage_of_a_deployed_model_is_complete(
    platform: Platform, churn_contract: DatasetContract, tmp_path: Path
) -> None:
    clients = _tracked(platform, tmp_path)
    model_uri, features_uri = _trained(platform, churn_contract)
    evaluation = evaluate_step(clients, model_uri, features_uri)
    arn = register_step(clients, model_uri, evaluation["mlflow_run_id"])["model_package_arn"]
    _deploy(clients, arn, "mlops-test-ep")

    document = lineage(clients)  # the environment: its one endpoint
    assert missing_links(document) == [
        "training job 'run-1' is not in SageMaker (trained locally, or expired)"
    ]
    [endpoint] = document["endpoints"]
    assert endpoint["endpoint"] == "mlops-test-ep"
    [variant] = endpoint["variants"]
    node = variant["package"]
    assert variant["variant"] == "blue"
    assert node["model_package_arn"] == arn
    assert node["mlflow_run"]["run_id"] == evaluation["mlflow_run_id"]
    assert node["mlflow_run"]["found_by"] == "package metadata mlflow_run_id"
    assert node["mlflow_run"]["metrics"]["auc"] == pytest.approx(evaluation["metrics"]["auc"])
    assert node["approval"]["status"] == "Approved"
    assert node["approval"]["approved_by"]
    assert node["contract"]["name"] == "churn"
    assert node["contract"]["version"] == churn_contract.version
    assert node["code_version"] == "test-sha"
    [batch] = node["batches"]
    raw = platform.s3.get_object(Bucket="mlops-test-raw", Key=batch["batch_uri"].split("/", 3)[3])[
        "Body"
    ].read()
    assert batch["batch_sha256"] == hashlib.sha256(raw).hexdigest()
    assert batch["validation_report_uri"].endswith("/validation.json")
    assert (
        node["validated_data_sha256"] == package["CustomerMetadataProperties"]["validated_data_sha256"]
        if (package := clients.sagemaker.describe_model_package(ModelPackageName=arn))
        else False
    )
    # the same document by package, and as a tree
    by_package = lineage(clients, package_arn=arn)["packages"][0]
    assert by_package["mlflow_run"]["run_id"] == node["mlflow_run"]["run_id"]
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(render_tree(document))
    text = console.export_text()
    assert "mlops-test-ep" in text
    assert evaluation["mlflow_run_id"] in text
    assert batch["batch_sha256"] in text


def test_run_found_by_tag_when_the_package_metadata_lost_it(
    platform: Platform, churn_contract: DatasetContract, tmp_path: Path
) -> None:
    clients = _tracked(platform, tmp_path)
    model_uri, features_uri = _trained(platform, churn_contract)
    evaluation = evaluate_step(clients, model_uri, features_uri)
    arn = register_step(clients, model_uri, evaluation["mlflow_run_id"])["model_package_arn"]
    kept = clients.sagemaker.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    kept.pop("mlflow_run_id")
    clients.sagemaker.update_model_package(
        ModelPackageArn=arn,
        CustomerMetadataProperties=kept,
        CustomerMetadataPropertiesToRemove=["mlflow_run_id"],
    )
    node = package_lineage(clients, arn)
    assert node["mlflow_run"]["run_id"] == evaluation["mlflow_run_id"]
    assert node["mlflow_run"]["found_by"] == f"run tag {PACKAGE_TAG}"


def test_tracking_off_logs_nothing_and_registers(
    platform: Platform, churn_contract: DatasetContract, tmp_path: Path
) -> None:
    model_uri, features_uri = _trained(platform, churn_contract)
    evaluation = evaluate_step(platform.clients, model_uri, features_uri)
    assert evaluation["mlflow_run_id"] is None
    registration = register_step(platform.clients, model_uri, None)
    package = platform.clients.sagemaker.describe_model_package(
        ModelPackageName=registration["model_package_arn"]
    )
    assert "mlflow_run_id" not in package["CustomerMetadataProperties"]
    assert not list(tmp_path.iterdir())
    assert not Path("mlruns").exists()


def test_package_without_a_run_gets_a_clear_missing_link(
    platform: Platform, churn_contract: DatasetContract, tmp_path: Path
) -> None:
    model_uri, features_uri = _trained(platform, churn_contract)
    evaluate_step(platform.clients, model_uri, features_uri)  # tracking off: an untracked package
    arn = register_model(platform.clients, model_uri).model_package_arn
    node = package_lineage(_tracked(platform, tmp_path), arn)
    assert node["mlflow_run"] is None
    [gap] = [m for m in node["missing"] if m.startswith("MLflow run")]
    assert "records no mlflow_run_id" in gap
    assert "registered before run tracking" in gap


def test_tracking_outage_fails_before_registration(
    platform: Platform, churn_contract: DatasetContract, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = _tracked(platform, tmp_path)
    model_uri, features_uri = _trained(platform, churn_contract)
    from mlflow.tracking import MlflowClient

    def down(*_: Any, **__: Any) -> Any:
        raise ConnectionError("tracking server unreachable")

    monkeypatch.setattr(MlflowClient, "create_run", down)
    with pytest.raises(TrackingError, match="could not record training run run-1"):
        evaluate_step(clients, model_uri, features_uri)
    with pytest.raises(TrackingError, match="no MLflow run was recorded"):
        register_step(clients, model_uri, None)
    groups = clients.sagemaker.list_model_packages(ModelPackageGroupName="mlops-test-models")
    assert groups["ModelPackageSummaryList"] == []


def test_lineage_command_errors_name_what_is_missing(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from mlops_cli.main import app

    monkeypatch.setenv("MLOPS_MODEL_PACKAGE_GROUP_NAME", "mlops-test-models")
    runner = CliRunner()
    both = runner.invoke(app, ["lineage", "--endpoint", "e", "--package", "p"])
    assert both.exit_code == 2
    assert "not both" in both.output
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-test-models/9"
    unknown = runner.invoke(app, ["lineage", "--package", arn])
    assert unknown.exit_code == 1
    assert f"model package {arn} not found" in unknown.output
    nothing = runner.invoke(app, ["lineage"])
    assert nothing.exit_code == 3
    assert "no endpoints to trace" in nothing.output
