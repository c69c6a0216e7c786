"""Explainability, fairness gate, model cards (issue 15 items 4 and 5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines.contract import ContractError, DatasetContract, FairnessConfig, parse_contract
from pipelines.evaluate import LoadedModel, evaluate_model, gate
from pipelines.fairness import fairness_report
from pipelines.features.spec import build_features_pandas, feature_columns, feature_spec
from pipelines.promote import approve_package
from pipelines.register import register_model
from pipelines.synthetic import generate
from pipelines.train import build_pipeline, model_inputs, run_training_locally, split_rows, target_values
from tests.unit.pipelines.conftest import Platform
from tests.unit.pipelines.helpers import contract_path, prepare_features


def _contract(churn: DatasetContract, **changes: Any) -> DatasetContract:
    data = churn.model_dump(mode="json")
    data.update(changes)
    return parse_contract(data, "test.yaml")


# --- contract --------------------------------------------------------------------------------------


def test_fairness_contract_errors_name_the_problem(
    churn_contract: DatasetContract, housing_contract: DatasetContract
) -> None:
    with pytest.raises(
        ContractError, match=r"fairness.sensitive_attributes: 'gender' is not declared under 'columns'"
    ):
        _contract(churn_contract, fairness={"sensitive_attributes": ["gender"]})
    with pytest.raises(ContractError, match="'monthly_charges' is a float column"):
        _contract(churn_contract, fairness={"sensitive_attributes": ["monthly_charges"]})
    with pytest.raises(ContractError, match="'churned' is the target"):
        _contract(churn_contract, fairness={"sensitive_attributes": ["churned"]})
    with pytest.raises(ContractError, match=r"fairness\.max_demographic_parity_difference"):
        _contract(
            churn_contract,
            fairness={"sensitive_attributes": ["region"], "max_demographic_parity_difference": 2},
        )
    column = housing_contract.columns[0].name
    with pytest.raises(ContractError, match="applies to binary_classification only"):
        _contract(housing_contract, fairness={"sensitive_attributes": [column]})
    with pytest.raises(ContractError, match=r"governance\.risk_rating"):
        _contract(churn_contract, governance={"risk_rating": "Severe"})
    # safe defaults: no fairness section, an Unknown risk rating that says the intended use is missing
    plain = _contract(housing_contract)
    assert plain.fairness is None
    assert plain.governance.risk_rating == "Unknown"
    assert "Not stated" in plain.governance.intended_use


def test_a_sensitive_attribute_the_model_does_not_use_is_carried_by_the_features(
    churn_contract: DatasetContract,
) -> None:
    features = churn_contract.features.model_dump()
    features["categorical"] = [c for c in features["categorical"] if c != "region"]
    contract = _contract(churn_contract, features=features, fairness={"sensitive_attributes": ["region"]})
    assert contract.passthrough_columns == ["region"]
    assert "region" not in contract.feature_names
    spec = feature_spec(contract)
    frame = build_features_pandas(generate("churn", 600, 3), spec)
    assert list(frame.columns) == feature_columns(spec)
    assert feature_columns(spec)[-2:] == ["region", "__split__"]
    # the shipped contract's sensitive attribute is a model input: nothing extra is carried
    assert churn_contract.passthrough_columns == []


# --- fairness gate ----------------------------------------------------------------------------------


def test_a_fairness_breach_fails_the_gate_with_a_readable_reason(churn_contract: DatasetContract) -> None:
    rng = np.random.default_rng(0)
    groups = np.array(["north"] * 400 + ["south"] * 400)
    y_true = rng.integers(0, 2, 800)
    # the model flags 70% of the north and 20% of the south, whatever the outcome
    scores = np.where(groups == "north", rng.random(800) < 0.7, rng.random(800) < 0.2).astype(float)
    config = FairnessConfig(
        sensitive_attributes=["region"],
        max_demographic_parity_difference=0.2,
        max_equalized_odds_difference=0.9,
    )
    report = fairness_report(config, pd.DataFrame({"region": groups}), y_true, scores)
    region = report["attributes"]["region"]
    assert region["demographic_parity_difference"] == pytest.approx(
        abs(region["groups"]["north"]["selection_rate"] - region["groups"]["south"]["selection_rate"])
    )
    assert set(region["groups"]["north"]) == {
        "count",
        "selection_rate",
        "true_positive_rate",
        "false_positive_rate",
    }
    assert not report["passed"]
    decision = gate(
        churn_contract,
        {"auc": 0.9, "recall": 0.9, "calibration_error": 0.0, "log_loss": 0.1},
        [],
        None,
        report,
    )
    assert not decision["passed"]
    (reason,) = decision["reasons"]
    assert reason.startswith("fairness: demographic parity difference on 'region' is 0.")
    assert "above the maximum 0.2" in reason
    assert "for 'north' vs" in reason
    assert "for 'south'" in reason
    assert decision["thresholds"]["fairness"] == {
        "demographic_parity_difference": 0.2,
        "equalized_odds_difference": 0.9,
    }
    # the same predictions for both groups pass
    fair = fairness_report(config, pd.DataFrame({"region": groups}), y_true, np.tile(scores[:400], 2))
    assert fair["passed"]
    assert fair["reasons"] == []


# --- explainability -------------------------------------------------------------------------------


def test_permutation_importance_is_seeded_and_ranks_the_signal(churn_contract: DatasetContract) -> None:
    from pipelines.explain import permutation_importance

    frame = build_features_pandas(generate("churn", 1500, 5), feature_spec(churn_contract))
    train, test = split_rows(frame, "train"), split_rows(frame, "test")
    model = build_pipeline(churn_contract, churn_contract.training.hyperparameters)
    model.fit(model_inputs(train, churn_contract), target_values(train, churn_contract))
    loaded = LoadedModel(model, {"positive_class": 1, "classes": [0, 1]}, churn_contract)
    first = permutation_importance(loaded, test, n_repeats=3, max_rows=200, seed=7)
    again = permutation_importance(loaded, test, n_repeats=3, max_rows=200, seed=7)
    assert first["features"] == again["features"]
    assert (first["rows"], first["scoring"], first["status"]) == (200, "roc_auc", "computed")
    assert set(first["features"]) == set(churn_contract.feature_names)
    assert all(set(v) == {"mean", "std"} and v["std"] >= 0 for v in first["features"].values())
    means = [v["mean"] for v in first["features"].values()]
    assert means == sorted(means, reverse=True)
    # the synthetic churn depends on the contract type; the invariance-checked region carries nothing
    assert next(iter(first["features"])) == "contract_type"
    assert abs(first["features"]["region"]["mean"]) < first["features"]["contract_type"]["mean"] / 5


# --- model cards ------------------------------------------------------------------------------------


@pytest.fixture
def card_rules(platform: Platform) -> Iterator[None]:
    """The emulator's model card rules (what SageMaker validates and keeps) on the in-process moto."""
    from rehearsal.sagemaker_extra import SageMakerRegistryExtras

    extras = SageMakerRegistryExtras()
    extras.install(None)  # type: ignore[arg-type]  # patches moto's classes; the emulator is not used
    try:
        yield
    finally:
        extras.close()


@pytest.mark.usefixtures("card_rules")
def test_card_is_drafted_at_registration_and_approved_with_the_package(
    platform: Platform, churn_contract: DatasetContract
) -> None:
    platform.settings.environment = "staging"
    features = prepare_features(platform, churn_contract)
    model_uri = run_training_locally(
        platform.clients, contract_path(churn_contract), "run-1", features.uri, {}
    )
    result = evaluate_model(platform.clients, model_uri, features.uri)
    report = result.report
    assert report["explainability"]["status"] == "computed"
    assert report["fairness"]["passed"], report["fairness"]
    assert report["gate"]["thresholds"]["fairness"]["demographic_parity_difference"] == 0.2

    registration = register_model(platform.clients, model_uri)
    assert registration.approval_status == "PendingManualApproval"
    sm = platform.clients.sagemaker
    name = registration.model_card_name
    assert name == "mlops-test-models-1"
    card = sm.describe_model_card(ModelCardName=name)
    assert card["ModelCardStatus"] == "Draft"
    content = json.loads(card["Content"])
    assert content["model_package_details"]["model_package_arn"] == registration.model_package_arn
    assert content["intended_uses"]["risk_rating"] == "Medium"
    assert "retention" in content["intended_uses"]["intended_uses"]
    job = content["training_details"]["training_job_details"]
    assert job["training_arn"].endswith(":training-job/run-1")
    assert {"name": "C", "value": "1.0"} in job["hyper_parameters"]
    groups = {g["name"]: g for g in content["evaluation_details"][0]["metric_groups"]}
    auc = next(m for m in groups["metrics"]["metric_data"] if m["name"] == "auc")
    assert auc["value"] == pytest.approx(report["metrics"]["auc"])
    assert any(n.startswith("permutation importance") for n in groups)
    fairness = {m["name"]: m["value"] for m in groups["fairness by region"]["metric_data"]}
    region = report["fairness"]["attributes"]["region"]
    assert fairness["demographic_parity_difference"] == pytest.approx(region["demographic_parity_difference"])
    assert "north: selection_rate" in fairness
    assert "Synthetic example data" in content["additional_information"]["caveats_and_recommendations"]

    artifacts = platform.settings.artifacts_bucket
    prefix = "models/churn/run-1/evaluation/"
    markdown = platform.s3.get_object(Bucket=artifacts, Key=prefix + "model_card.md")["Body"].read().decode()
    assert "Status: **Draft**" in markdown
    assert "fairness by region" in markdown
    page = platform.s3.get_object(Bucket=artifacts, Key=prefix + "model_card.html")
    assert (page["ServerSideEncryption"], page["ContentType"]) == ("aws:kms", "text/html")

    # registering the same model again finds the package and leaves its card alone
    again = register_model(platform.clients, model_uri)
    assert (again.created, again.model_package_arn) == (False, registration.model_package_arn)
    assert sm.describe_model_card(ModelCardName=name)["ModelCardVersion"] == 1

    approve_package(platform.clients, registration.model_package_arn, "alice", "fair and accurate")
    card = sm.describe_model_card(ModelCardName=name)
    assert card["ModelCardStatus"] == "Approved"
    details = json.loads(card["Content"])["model_package_details"]
    assert details["model_approval_status"] == "Approved"
    assert details["approval_description"].startswith("approved by alice: fair and accurate")
    versions = sm.list_model_card_versions(ModelCardName=name)["ModelCardVersionSummaryList"]
    assert [v["ModelCardStatus"] for v in sorted(versions, key=lambda v: v["ModelCardVersion"])] == [
        "Draft",
        "Draft",
        "Approved",
    ]
    markdown = platform.s3.get_object(Bucket=artifacts, Key=prefix + "model_card.md")["Body"].read().decode()
    assert "Status: **Approved**" in markdown
