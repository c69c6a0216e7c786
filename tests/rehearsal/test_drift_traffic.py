"""The drift stage's traffic is what the pipeline-trained model serves: every model input, in order.

The cause of the drift stage's HTTP 500 in the full rehearsal: its traffic sent the contract's raw
numeric and categorical columns (9 for churn) while the model's inputs include the feature job's
derived features (11, numeric, derived, categorical); the inference handler refused the rows with a
400 ``InputError`` and the scikit-learn image answers any handler error with HTTP 500.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines.contract import load_contract
from pipelines.features.spec import build_features_pandas, feature_spec
from pipelines.serving.codec import InputError
from pipelines.serving.inference import model_fn, transform
from pipelines.synthetic import generate
from pipelines.train import train
from rehearsal.monitoring_stage import REHEARSAL_DRIFT_FEATURES, synthetic_traffic
from rehearsal.run import RehearsalOptions, RunContext

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def churn_model(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A churn model trained by the pipeline's training code on the feature job's columns."""
    root = tmp_path_factory.mktemp("churn-model")
    contract = load_contract("churn")
    features = build_features_pandas(generate("churn", 1500, 5), feature_spec(contract))
    (root / "train").mkdir()
    features.to_parquet(root / "train" / "part-0.parquet")
    train(REPO / "contracts" / "churn.yaml", root / "train", root / "model")
    return model_fn(root / "model")


def _ctx(tmp_path: Path) -> RunContext:
    return RunContext(options=RehearsalOptions(out=tmp_path), out=tmp_path)


@pytest.mark.parametrize("drifted", [False, True])
def test_the_traffic_is_every_model_input_in_the_models_order(
    churn_model: object, tmp_path: Path, drifted: bool
) -> None:
    rows = synthetic_traffic(_ctx(tmp_path))(40, 3, drifted)
    contract = load_contract("churn")
    assert list(rows.columns) == contract.feature_names
    assert [f.name for f in churn_model.features] == contract.feature_names  # type: ignore[attr-defined]
    assert contract.target not in rows.columns
    body = rows.to_csv(header=False, index=False)  # as the stage sends it: no header
    payload, content_type = transform(churn_model, body, "text/csv", "application/json")  # type: ignore[arg-type]
    assert content_type == "application/json"
    assert payload.count(b'"label"') == 40


def test_drifted_traffic_moves_the_injected_features_only(tmp_path: Path) -> None:
    traffic = synthetic_traffic(_ctx(tmp_path))
    clean, drifted = traffic(600, 9, False), traffic(600, 9, True)

    def mean(frame: pd.DataFrame, column: str) -> float:
        return float(frame[column].to_numpy(dtype=float).mean())

    def two_year(frame: pd.DataFrame) -> float:
        return float((frame["contract_type"].to_numpy() == "two-year").mean())

    assert mean(drifted, "monthly_charges") > mean(clean, "monthly_charges") + 20
    assert mean(drifted, "tenure_months") > mean(clean, "tenure_months") * 1.5
    assert two_year(drifted) > 0.6 > two_year(clean)
    assert abs(mean(drifted, "support_calls") - mean(clean, "support_calls")) < 0.3
    assert set(REHEARSAL_DRIFT_FEATURES) <= set(clean.columns)


def test_raw_columns_without_the_derived_features_are_refused(churn_model: object) -> None:
    # the old traffic: numeric + categorical only (what gave HTTP 500 behind the scikit-learn image)
    contract = load_contract("churn")
    raw = generate("churn", 5, 3).loc[:, [*contract.features.numeric, *contract.features.categorical]]
    with pytest.raises(InputError, match="has 9 columns; the model expects 11") as error:
        transform(churn_model, raw.to_csv(header=False, index=False), "text/csv", "application/json")  # type: ignore[arg-type]
    assert error.value.status_code == 400
