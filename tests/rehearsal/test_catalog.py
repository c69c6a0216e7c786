"""The rehearsed model: dev's catalog plus the user's contract, and the names every stage uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from platform_contract.naming import InvalidNameError
from rehearsal.catalog import (
    catalog_overrides,
    contracts_folder,
    model_entry,
    rehearsal_catalog,
    rehearsed_model,
)
from rehearsal.lifecycle import canary_share, endpoint_overrides, prediction_problem
from rehearsal.run import RehearsalOptions, RunContext
from stacks.config import parse_config
from stacks.config.contracts import CONTRACTS_DIR_ENV, read_contract_schema

REPO = Path(__file__).resolve().parents[2]


def _ctx(tmp_path: Path, contract: Path | None = None) -> RunContext:
    data = None
    if contract is not None:
        data = tmp_path / "data.csv"
        data.write_text("x\n1\n")
    options = RehearsalOptions(out=tmp_path / "out", data=data, contract=contract)
    return RunContext(options=options, out=tmp_path / "out")


def _user_contract(tmp_path: Path, name: str) -> Path:
    raw: dict[str, Any] = yaml.safe_load((REPO / "contracts" / "housing.yaml").read_text())
    raw["name"] = name
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_without_a_contract_churn_is_rehearsed(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    names = rehearsed_model(ctx)
    assert (names.model, names.model_package_group, names.training_dag_id) == (
        "churn",
        "mlops-dev-churn",
        "churn_training",
    )
    assert [e["name"] for e in rehearsal_catalog(ctx)] == ["churn", "housing"]
    assert canary_share(ctx) == 0.5


def test_a_bundled_contract_takes_its_dev_entry(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, REPO / "contracts" / "housing.yaml")
    assert rehearsed_model(ctx).endpoint == "mlops-dev-housing"
    assert [e["name"] for e in rehearsal_catalog(ctx)] == ["churn", "housing"]
    overrides = endpoint_overrides(ctx, "arn:pkg")["mlops-platform:models"]
    assert [e["endpoint"]["modelPackageArn"] for e in overrides] == ["", "arn:pkg"]


def test_a_new_contract_joins_the_catalog_with_churns_endpoint_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _ctx(tmp_path, _user_contract(tmp_path, "my_dataset"))
    names = rehearsed_model(ctx)
    assert (names.model, names.slug, names.endpoint, names.training_dag_id, names.capture_prefix) == (
        "my_dataset",
        "my-dataset",
        "mlops-dev-my-dataset",
        "my_dataset_training",
        "datacapture/my-dataset",
    )
    entry = model_entry(ctx)
    churn = model_entry(ctx, "churn")
    assert entry["contract"] == "my_dataset"
    assert entry["endpoint"] == {**churn["endpoint"], "modelPackageArn": ""}
    # the stack config reads the user's contract from the rehearsal's contracts folder
    folder = contracts_folder(ctx)
    assert sorted(p.name for p in folder.glob("*.yaml")) == ["churn.yaml", "housing.yaml", "my_dataset.yaml"]
    monkeypatch.setenv(CONTRACTS_DIR_ENV, str(folder))
    assert read_contract_schema("my_dataset").name == "my_dataset"
    config = parse_config(
        {
            "environment": "dev",
            "region": "us-east-1",
            "owner": "me",
            "costCenter": "cc",
            "models": catalog_overrides(ctx, {"my_dataset": "", "churn": ""})["mlops-platform:models"],
        }
    )
    assert [m.name for m in config.models] == ["churn", "housing", "my_dataset"]


def test_unknown_models_and_unusable_names_are_refused(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    with pytest.raises(LookupError, match=r"no model \['sales'\] in the rehearsal's catalog"):
        catalog_overrides(ctx, {"sales": "arn"})
    long = _ctx(tmp_path, _user_contract(tmp_path, "a" * 30))
    with pytest.raises(InvalidNameError, match="at most 24"):
        rehearsed_model(long)


def test_prediction_shapes_by_task() -> None:
    regression = {"predictions": [{"score": 123.5}, {"score": 99}]}
    classification = {
        "classes": [0, 1],
        "predictions": [{"label": 1, "score": 0.7, "probabilities": [0.3, 0.7]}],
    }
    assert prediction_problem(regression, 2, regression=True) is None
    assert prediction_problem(classification, 1, regression=False) is None
    assert "lacks 'label'" in str(prediction_problem({"predictions": [{"score": 0.5}]}, 1, regression=False))
    assert "finite numeric" in str(prediction_problem({"predictions": [{"score": None}]}, 1, regression=True))
    assert "finite numeric" in str(prediction_problem({"predictions": [{"score": "7"}]}, 1, regression=True))
    assert "expected 3 predictions" in str(prediction_problem(regression, 3, regression=True))
    assert "not a probability" in str(
        prediction_problem(
            {"predictions": [{"label": 1, "score": 3.0, "probabilities": []}]}, 1, regression=False
        )
    )


def test_ingest_features_gives_the_feature_groups_an_online_store(tmp_path: Path) -> None:
    """``--ingest-features``: every deploy of the rehearsal declares the groups with an online store
    (as staging and prod have), so the feature job PutRecords; without it, dev's offline-only groups."""
    ctx = _ctx(tmp_path)
    base = {"environment": "dev", "region": "us-east-1", "owner": "me", "costCenter": "cc"}
    plain = catalog_overrides(ctx, {})
    assert "mlops-platform:featureStore" not in plain
    assert not parse_config(base).feature_store.online_enabled("dev")
    ctx.options = RehearsalOptions(out=tmp_path / "out", ingest_features=True)
    overrides = catalog_overrides(ctx, {})
    section = overrides["mlops-platform:featureStore"]
    config = parse_config({**base, "featureStore": section, "models": overrides["mlops-platform:models"]})
    assert config.feature_store.enabled
    assert config.feature_store.online_enabled("dev")
