"""``mlops contract init`` / ``check``: drafts that load, check and train; every kind of mistake named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from mlops_cli.main import app
from pipelines.contract import load_contract
from pipelines.contract_check import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    ContractCheckError,
    check_contract_data,
    check_contract_file,
    require_valid_contract,
)
from pipelines.contract_init import DraftError, DraftOptions, draft_contract, init_contract
from pipelines.evaluate import classification_metrics, regression_metrics
from pipelines.features.spec import build_features_pandas, feature_spec
from pipelines.synthetic import generate
from pipelines.train import train
from pipelines.validate import check_batch

runner = CliRunner(env={"COLUMNS": "250"})


def _train_from(contract_file: Path, data: pd.DataFrame, tmp_path: Path) -> dict[str, Any]:
    """Validate, featurize and train locally, as the pipeline does with this contract."""
    contract = load_contract(contract_file)
    report, curated = check_batch(data.to_csv(index=False).encode(), "data.csv", contract)
    assert curated is not None, report.summary()
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    build_features_pandas(curated, feature_spec(contract)).to_parquet(
        train_dir / "part-0.parquet", index=False
    )
    return train(contract_file, train_dir, tmp_path / "model").metadata


@pytest.mark.parametrize(
    ("dataset", "target", "task"),
    [("churn", "churned", "binary_classification"), ("housing", "price", "regression")],
)
def test_init_on_the_bundled_examples_checks_and_trains(
    tmp_path: Path, dataset: str, target: str, task: str
) -> None:
    data = generate(dataset, 1500, 3)
    csv = tmp_path / f"{dataset}_export.csv"
    data.to_csv(csv, index=False)
    output = tmp_path / "contract.yaml"
    result = runner.invoke(
        app, ["contract", "init", str(csv), "-o", str(output), "--target", target, "--guess-key"]
    )
    assert result.exit_code == 0, result.output
    contract = load_contract(output)
    assert contract.name == f"{dataset}_export"
    assert contract.task == task
    assert contract.target == target
    assert contract.unique_keys == [f"{'customer' if dataset == 'churn' else 'house'}_id"]
    shipped = load_contract(dataset)
    for name in shipped.features.numeric + shipped.features.categorical:
        assert name in contract.feature_names
    if dataset == "churn":
        assert contract.column("contract_type").categories == ["month-to-month", "one-year", "two-year"]
        assert contract.column("total_charges").nullable
        assert contract.column("paperless_billing").type == "boolean"
        assert contract.column("signup_date").type == "datetime"
        assert contract.positive_class == 1
    check = runner.invoke(app, ["contract", "check", str(output)])
    assert check.exit_code == 0, check.output
    metadata = _train_from(output, data, tmp_path)
    assert metadata["task"] == task
    assert metadata["training_rows"] > 1000


def test_init_on_a_wide_numeric_table_after_setting_the_target(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(600, 200))
    frame = pd.DataFrame(values, columns=[f"sensor_{i:03d}" for i in range(200)])
    frame.insert(0, "row_id", np.arange(600))
    frame["failure"] = (values[:, 0] + 0.5 * values[:, 7] > 0.3).astype(int)
    path = tmp_path / "Wide Table.parquet"
    frame.to_parquet(path, index=False)
    output = tmp_path / "wide.yaml"
    draft = init_contract(path, output, DraftOptions(target="failure", guess_key=True))
    contract = load_contract(output)
    assert contract.name == "wide_table"
    assert contract.unique_keys == ["row_id"]
    assert len(contract.features.numeric) == 200
    assert contract.task == "binary_classification"
    assert any("unique_keys guessed" in note for note in draft.notes)
    assert check_contract_file(output) == []
    metadata = _train_from(output, frame, tmp_path)
    assert len(metadata["features"]) == 200


def test_a_guessed_target_is_said_and_the_draft_still_loads(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"a": [1.0, 2.5, 3.0, 4.0], "b": ["x", "y", "x", "y"], "value": [10.0, 11.0, 12.5, 9.0]}
    )
    draft = draft_contract(frame, DraftOptions(), "measurements.csv")
    assert draft.contract["target"] == "value"
    assert draft.contract["task"] == "regression"
    assert any("target GUESSED as 'value'" in note for note in draft.notes)
    path = tmp_path / "c.yaml"
    path.write_text(draft.to_yaml())
    assert load_contract(path).target == "value"
    assert path.read_text().startswith("# Drafted by `mlops contract init`")


def test_init_refuses_bad_requests_with_exit_code_2(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    pd.DataFrame({"a": [1, 2, 3], "label": ["p", "q", "r"]}).to_csv(csv, index=False)
    with pytest.raises(DraftError, match=r"column\(s\) \['nope'\] not in the data"):
        init_contract(csv, tmp_path / "x.yaml", DraftOptions(target="nope"))
    with pytest.raises(DraftError, match="binary classification needs exactly 2"):
        init_contract(csv, tmp_path / "x.yaml", DraftOptions(target="label", task="binary_classification"))
    with pytest.raises(DraftError, match="regression needs numbers"):
        init_contract(csv, tmp_path / "x.yaml", DraftOptions(target="label"))
    result = runner.invoke(
        app, ["contract", "init", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "y.yaml")]
    )
    assert result.exit_code == 2
    assert "data file not found" in result.output
    (tmp_path / "taken.yaml").write_text("mine\n")
    result = runner.invoke(
        app, ["contract", "init", str(csv), "-o", str(tmp_path / "taken.yaml"), "--target", "a"]
    )
    assert result.exit_code == 2
    assert "refusing to overwrite" in result.output
    assert (tmp_path / "taken.yaml").read_text() == "mine\n"


def test_metric_names_match_what_evaluate_computes() -> None:
    y = np.array([0, 1, 0, 1])
    assert set(classification_metrics(y, np.array([0.2, 0.8, 0.4, 0.6]))) == CLASSIFICATION_METRICS
    assert set(regression_metrics(np.array([1.0, 2.0]), np.array([1.5, 2.5]))) == REGRESSION_METRICS


def _churn() -> dict[str, Any]:
    from pipelines.contract import resolve_contract_path

    return yaml.safe_load(resolve_contract_path("churn").read_text())


def _column(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in data["columns"] if c["name"] == name)


def _set(path: str, value: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    return change


MISTAKES: list[tuple[str, Any, str, str]] = [
    (
        "unknown gate metric",
        _set("evaluation.min.aucc", 0.7),
        "evaluation.min.aucc",
        "not a metric of binary_classification",
    ),
    ("metric of the other task", _set("evaluation.max.rmse", 3.0), "evaluation.max.rmse", "not a metric"),
    ("min above max", _set("evaluation.max.auc", 0.5), "evaluation.min.auc", "no model can pass"),
    (
        "champion metric",
        _set("evaluation.champion.metric", "mse"),
        "evaluation.champion.metric",
        "not a metric",
    ),
    (
        "estimator for the other task",
        _set("training.estimator", "ridge"),
        "training.estimator",
        "is for regression",
    ),
    (
        "unknown estimator",
        _set("training.estimator", "xgboost"),
        "training.estimator",
        "unknown estimator 'xgboost'",
    ),
    (
        "unknown hyperparameter",
        _set("training.hyperparameters.depth", 3),
        "training.hyperparameters.depth",
        "has no hyperparameter",
    ),
    (
        "invalid hyperparameter value",
        _set("training.hyperparameters.C", -1.0),
        "training.hyperparameters.C",
        "is not valid",
    ),
    (
        "bad seed",
        _set("training.hyperparameters.seed", "x"),
        "training.hyperparameters.seed",
        "not an integer",
    ),
    (
        "feature not a column",
        lambda d: d["features"]["numeric"].append("tenure"),
        "features.numeric[4]",
        "'tenure' is not a declared column",
    ),
    (
        "text column as numeric",
        lambda d: d["features"]["numeric"].append("region"),
        "features.numeric[4]",
        "is a string column",
    ),
    (
        "key as feature",
        lambda d: d["features"]["categorical"].append("customer_id"),
        "features.categorical[5]",
        "is an identifier",
    ),
    (
        "derived from text",
        lambda d: d["features"]["derived"][0]["inputs"].__setitem__(0, "region"),
        "features.derived[0].inputs[0]",
        "is a string column",
    ),
    ("split leaves nothing", _set("split", {"validation": 0.5, "test": 0.45}), "split", "leaves 5% of rows"),
    ("no test split", _set("split", {"validation": 0.2, "test": 0.0}), "split.test", "no rows"),
    ("split not a share", _set("split", {"validation": 1.5, "test": 0.1}), "split.validation", "not a share"),
    ("target not a column", _set("target", "churn"), "target", "'churn' is not a declared column"),
    ("nullable target", lambda d: _column(d, "churned").update(nullable=True), "target", "is nullable"),
    ("positive class not a label", _set("positive_class", 2), "positive_class", "not among the categories"),
    (
        "nullable key",
        lambda d: _column(d, "customer_id").update(nullable=True),
        "unique_keys[0]",
        "cannot be told apart",
    ),
    (
        "float key",
        lambda d: d.__setitem__("unique_keys", ["monthly_charges"]),
        "unique_keys[0]",
        "is a float",
    ),
    (
        "behavioural on a non-feature",
        lambda d: d["evaluation"]["behavioural"][0].update(column="signup_date"),
        "evaluation.behavioural[0].column",
        "not a model feature",
    ),
    (
        "invariance values",
        lambda d: d["evaluation"]["behavioural"][0].update(values=["north", "mars"]),
        "evaluation.behavioural[0].values",
        "['mars'] are not categories",
    ),
    ("misspelt key", lambda d: d.__setitem__("trainig", {}), "trainig", "Extra inputs are not permitted"),
    ("wrong task name", _set("task", "classification"), "task", "binary_classification"),
    (
        "column min above max",
        lambda d: _column(d, "tenure_months").update(min=200),
        "columns[2]",
        "min 200 > max 120",
    ),
]


@pytest.mark.parametrize(
    ("change", "key", "message"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_check_names_the_key_and_the_fix_of_each_mistake(change: Any, key: str, message: str) -> None:
    data = _churn()
    assert check_contract_data(copy.deepcopy(data)) == []
    change(data)
    problems = check_contract_data(data)
    matching = [p for p in problems if p.key == key and message in p.message]
    assert matching, [str(p) for p in problems]
    assert all(p.fix for p in problems)


def test_check_command_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    data = _churn()
    data["evaluation"]["min"]["aucc"] = 0.7
    data["training"]["estimator"] = "ridge"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ContractCheckError) as caught:
        require_valid_contract(path)
    assert caught.value.exit_code == 2
    assert len(caught.value.problems) == 2
    result = runner.invoke(app, ["contract", "check", str(path)])
    assert result.exit_code == 2
    assert (
        "evaluation.min.aucc: 'aucc' is not a metric of binary_classification; fix: use one of:"
        in result.output
    )
    assert "training.estimator: 'ridge' is for regression" in result.output
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    result = runner.invoke(app, ["contract", "check", str(tmp_path / "broken.yaml")])
    assert result.exit_code == 2
    assert "not valid YAML" in result.output


def test_shipped_contracts_pass_the_check() -> None:
    from pipelines.contract import CONTRACTS_DIR

    for path in sorted(CONTRACTS_DIR.glob("*.yaml")):
        assert check_contract_file(path) == [], path
