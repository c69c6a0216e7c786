"""The whole pipeline on a regression dataset with its own contract: nothing is churn-specific."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from pipelines.contract import DatasetContract, load_contract
from pipelines.evaluate import evaluate_model
from pipelines.ingest import ingest_bytes
from pipelines.register import register_model
from pipelines.synthetic import generate_housing
from pipelines.train import run_training_locally
from pipelines.validate import check_batch
from tests.unit.pipelines.conftest import Platform
from tests.unit.pipelines.helpers import contract_path, prepare_features


def test_housing_pipeline_end_to_end(platform: Platform, housing_contract: DatasetContract) -> None:
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
    assert package["CustomerMetadataProperties"]["task"] == "regression"
    assert "metric_rmse" in package["CustomerMetadataProperties"]


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
