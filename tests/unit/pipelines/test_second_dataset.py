"""The whole pipeline on a regression dataset with its own contract: nothing is churn-specific."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from pipelines.contract import DatasetContract, load_contract
from pipelines.evaluate import evaluate_model
from pipelines.ingest import ingest_bytes
from pipelines.promote import PromotionError, approve_package, latest_approved
from pipelines.register import ModelMismatchError, register_model
from pipelines.settings import ModelEntry, ModelSelectionError
from pipelines.synthetic import generate_housing
from pipelines.train import run_training_locally
from pipelines.validate import check_batch
from tests.unit.pipelines.conftest import Platform
from tests.unit.pipelines.helpers import contract_path, prepare_features


def _two_models(platform: Platform) -> None:
    """A catalog with churn and housing, each in its own group (as the stack's ``models`` output says)."""
    platform.clients.sagemaker.create_model_package_group(ModelPackageGroupName="mlops-dev-housing")
    platform.settings.models = {
        "churn": ModelEntry(contract="churn", model_package_group_name="mlops-test-models"),
        "housing": ModelEntry(contract="housing", model_package_group_name="mlops-dev-housing"),
    }


def test_housing_pipeline_end_to_end(platform: Platform, housing_contract: DatasetContract) -> None:
    _two_models(platform)
    features = prepare_features(platform, housing_contract, rows=1500)
    model_uri = run_training_locally(
        platform.clients, contract_path(housing_contract), "h-run-1", features.uri
    )
    assert model_uri.endswith("/models/housing/h-run-1/output/model.tar.gz")
    result = evaluate_model(platform.clients, model_uri, features.uri)
    assert result.report["task"] == "regression"
    assert set(result.report["metrics"]) == {"rmse", "mae", "r2"}
    assert result.passed, result.report["gate"]["reasons"]
    assert result.report["metrics"]["r2"] > 0.9
    assert result.report["serving_runtime"]["runtime"].startswith("fast-path:"), result.report[
        "serving_runtime"
    ]
    registration = register_model(platform.clients, model_uri)
    package = platform.clients.sagemaker.describe_model_package(
        ModelPackageName=registration.model_package_arn
    )
    assert package["ModelPackageGroupName"] == "mlops-dev-housing"
    assert package["CustomerMetadataProperties"]["task"] == "regression"
    assert package["CustomerMetadataProperties"]["contract"] == "housing"
    assert "metric_rmse" in package["CustomerMetadataProperties"]
    churn = platform.settings.model_target("churn")
    assert latest_approved(platform.clients, churn) is None, "housing became churn's latest approved"


def test_a_second_dataset_never_hijacks_the_first_models_group(
    platform: Platform, housing_contract: DatasetContract
) -> None:
    """Regression (issue 13): a housing model was registered into churn's group, approved, reported as
    churn's latest approved model and used as churn's champion. Now it is refused, and a package of
    another contract already in a group is never a champion or the latest approved."""
    features = prepare_features(platform, housing_contract, rows=800)
    model_uri = run_training_locally(
        platform.clients, contract_path(housing_contract), "h-run-2", features.uri
    )
    evaluate_model(platform.clients, model_uri, features.uri)
    _two_models(platform)
    churn = platform.settings.model_target("churn")
    with pytest.raises(ModelMismatchError, match=r"model 'churn' uses contract 'churn'.*contract 'housing'"):
        register_model(platform.clients, model_uri, model=churn)
    assert not platform.clients.sagemaker.list_model_packages(ModelPackageGroupName="mlops-test-models")[
        "ModelPackageSummaryList"
    ]
    # a housing package that an older version put into churn's group, approved:
    housing = platform.settings.model_target("housing")
    hijacker = register_model(
        platform.clients, model_uri, model=replace(housing, model_package_group_name="mlops-test-models")
    )
    assert hijacker.approval_status == "Approved"
    assert latest_approved(platform.clients, churn) is None
    churn_features = prepare_features(platform, load_contract("churn"), rows=800)
    churn_uri = run_training_locally(
        platform.clients, contract_path(load_contract("churn")), "c-run-1", churn_features.uri
    )
    result = evaluate_model(platform.clients, churn_uri, churn_features.uri, model=churn)
    assert result.report["gate"]["champion"] is None, "housing's package was churn's champion"
    with pytest.raises(ModelMismatchError, match="holds packages of contract 'housing'"):
        register_model(platform.clients, churn_uri, model=churn, allow_failed_gate=True)
    with pytest.raises(PromotionError, match=r"not in model 'churn''s group|not this model's package"):
        approve_package(platform.clients, hijacker.model_package_arn, "alice", "why", model=churn)


def test_model_choice_is_explained(platform: Platform) -> None:
    _two_models(platform)
    with pytest.raises(ModelSelectionError, match=r"--model 'nope'.*churn \(contract churn\), housing"):
        platform.settings.model_target("churn", "nope")
    platform.settings.models = {
        "a": ModelEntry(contract="churn"),
        "b": ModelEntry(contract="churn"),
    }
    with pytest.raises(ModelSelectionError, match="2 models of the catalog use contract 'churn'"):
        platform.settings.model_target("churn")
    target = platform.settings.model_target("churn", "b")
    assert target.model_package_group_name == "mlops-dev-b"
    assert target.pipeline == "b-training"
    assert target.training_job_name("20261201-083700") == "mlops-dev-b-20261201-083700"


def test_user_contract_for_a_parquet_file(platform: Platform, tmp_path: Path) -> None:
    """A user's own table: a contract written by hand and the data as Parquet."""
    spec = yaml.safe_load(Path(contract_path(load_contract("housing"))).read_text())
    spec.update(name="my-houses", extra_columns="reject")
    spec["evaluation"] = {"min": {"r2": 0.5}}
    path = tmp_path / "my-houses.yaml"
    path.write_text(yaml.safe_dump(spec))
    contract = load_contract(path)
    frame = generate_housing(rows=600, seed=3)
    parquet = tmp_path / "houses.parquet"
    frame.to_parquet(parquet, index=False)
    report, curated = check_batch(parquet.read_bytes(), "houses.parquet", contract)
    assert report.passed
    assert curated is not None
    batch = ingest_bytes(
        platform.clients, contract.name, parquet.read_bytes(), "houses.parquet", "2026-11-24"
    )
    assert batch.key.startswith("raw/my-houses/ingest_date=2026-11-24/")
    assert json.loads(report.to_json())["passed"] is True


def test_churn_batch_is_rejected_by_the_housing_contract(housing_contract: DatasetContract) -> None:
    from pipelines.synthetic import generate_churn

    report, _ = check_batch(generate_churn(rows=20).to_csv(index=False).encode(), "c.csv", housing_contract)
    assert report.kinds == ["different_contract"]
