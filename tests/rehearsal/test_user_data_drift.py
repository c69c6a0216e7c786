"""The drift the rehearsal injects with ``--data --contract``: derived from the contract, for any dataset.

Checked with the monitoring's own drift engine (:class:`pipelines.monitoring.drift.DriftAccumulator`,
the code the monitoring DAG runs) against a reference built as the evaluation step builds it (the
``train`` split's model inputs), on a regression contract (housing) and on a wide numeric
classification table whose contract ``mlops contract init`` drafted: the drifted traffic flags the
planned features (and the derived ones computed from them) and nothing else, enough of them for
dataset drift; the clean traffic flags nothing. Fast: no emulator, no Airflow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.contract import DatasetContract, load_contract
from pipelines.features.spec import build_features_pandas, feature_spec
from pipelines.monitoring.drift import DriftAccumulator, DriftConfig, DriftReport, Reference
from pipelines.serving.artifact import FeatureSpec
from pipelines.synthetic import derived_from, generate, plan_frame_drift
from rehearsal import monitoring_stage
from rehearsal.monitoring_stage import REHEARSAL_DRIFT_FEATURES, injected_drift, synthetic_traffic
from rehearsal.retrain_stage import retrain_batch
from rehearsal.run import RehearsalOptions, RunContext
from tests.rehearsal.test_user_data import _wide_table

REPO = Path(__file__).resolve().parents[2]


def _housing(folder: Path, rows: int = 2000) -> tuple[Path, Path]:
    data = folder / "houses.csv"
    generate("housing", rows, 11).to_csv(data, index=False)
    return data, REPO / "contracts" / "housing.yaml"


def _ctx(folder: Path, data: Path, contract: Path) -> RunContext:
    options = RehearsalOptions(out=folder / "out", data=data, contract=contract, quick=True).validated()
    ctx = RunContext(options=options, out=options.out)
    ctx.values["data_file"] = str(data)
    loaded = load_contract(contract)
    features = build_features_pandas(monitoring_stage.user_rows(ctx), feature_spec(loaded))
    train = features[features["__split__"] == "train"].reset_index(drop=True)
    # what the feature job wrote to the features bucket (the rehearsal reads it from the emulated S3)
    ctx.values["reference_rows"] = train
    return ctx


def _report(contract: DatasetContract, reference: pd.DataFrame, current: pd.DataFrame) -> DriftReport:
    features = [FeatureSpec(name, kind) for name, kind in contract.feature_kinds]  # type: ignore[arg-type]
    accumulator = DriftAccumulator(Reference.from_frame(reference, features), DriftConfig())
    accumulator.update({c: current[c].to_numpy() for c in current.columns})
    return accumulator.result()


@pytest.mark.parametrize("dataset", ["housing", "sensors"])
def test_the_drift_is_planned_from_the_contract_and_detected_exactly(dataset: str, tmp_path: Path) -> None:
    data, contract_file = _housing(tmp_path) if dataset == "housing" else _wide_table(tmp_path)
    ctx = _ctx(tmp_path, data, contract_file)
    contract = load_contract(contract_file)
    injected = injected_drift(ctx)
    never = {contract.target, *contract.unique_keys, *(d.name for d in contract.features.derived)}
    assert injected.exact
    assert injected.features
    assert not set(injected.features) & never
    assert set(injected.follows) == set(derived_from(contract, list(injected.features)))
    inputs = len(contract.feature_names)
    # enough features that dataset drift (share >= 0.5) holds with a margin, or every candidate
    candidates = (
        len(contract.features.numeric)
        + len(contract.features.categorical)
        - len(never & {*contract.features.numeric, *contract.features.categorical})
    )
    assert len(injected.features) >= min(candidates, inputs // 2 + 2)
    traffic = synthetic_traffic(ctx)
    reference = ctx.values["reference_rows"].loc[:, contract.feature_names]
    rows = monitoring_stage.window_rows(ctx)
    assert rows == len(reference)  # the whole reference: a clean window cannot look drifted
    clean, drifted = traffic(rows, 101, False), traffic(rows, 202, True)
    assert list(clean.columns) == list(drifted.columns) == contract.feature_names
    control = _report(contract, reference, clean)
    assert control.drifted_features == []
    assert not control.dataset_drift
    report = _report(contract, reference, drifted)
    assert set(injected.features) <= set(report.drifted_features)
    assert set(report.drifted_features) <= {*injected.features, *injected.follows}
    assert report.dataset_drift
    assert report.drift_share >= 0.6


def test_numeric_drift_moves_by_the_columns_std_within_the_contracts_bounds(tmp_path: Path) -> None:
    data, contract_file = _housing(tmp_path)
    contract = load_contract(contract_file)
    frame = pd.read_csv(data)
    plan = plan_frame_drift(contract, frame)
    assert plan.features[:2] == ["bedrooms", "neighbourhood"]  # numeric and categorical alternate
    drifted = plan.apply(frame, 5)
    for column in ("area_sqm", "age_years"):
        values = frame[column].to_numpy(dtype=float)
        shifted = drifted[column].to_numpy(dtype=float)
        assert abs(shifted.mean() - values.mean()) > 0.9 * values.std()
    specs = {c.name: c for c in contract.columns}
    for column in ("bedrooms", "area_sqm", "age_years"):
        low, high = specs[column].min, specs[column].max
        assert low is not None
        assert high is not None
        values = drifted[column].to_numpy(dtype=float)
        assert ((values >= low) & (values <= high)).all()
    assert drifted["bedrooms"].dtype == frame["bedrooms"].dtype  # integers stay integers
    minority = frame["neighbourhood"].value_counts().index[-1]
    moved = float(np.mean(drifted["neighbourhood"].to_numpy() == minority))
    before = float(np.mean(frame["neighbourhood"].to_numpy() == minority))
    assert moved > 0.75 > before
    assert drifted["price"].tolist() == frame["price"].tolist()  # the target is never drifted
    assert drifted["house_id"].tolist() == frame["house_id"].tolist()


def test_a_numeric_column_at_its_maximum_shifts_down(tmp_path: Path) -> None:
    contract = load_contract(REPO / "contracts" / "housing.yaml")
    frame = generate("housing", 500, 3)
    frame["age_years"] = 300 - frame["age_years"] // 2  # just below the contract's max of 300
    plan = plan_frame_drift(contract, frame)
    (age,) = [c for c in plan.columns if c.column == "age_years"]
    assert age.shift < 0
    ages = np.asarray(frame["age_years"], dtype=float)
    drifted = np.asarray(plan.apply(frame, 1)["age_years"], dtype=float)
    assert drifted.mean() < ages.mean() - 0.9 * ages.std()
    assert drifted.max() <= 300


def test_a_table_with_nothing_to_drift_is_refused_naming_the_contract(tmp_path: Path) -> None:
    contract = load_contract(REPO / "contracts" / "housing.yaml")
    frame = generate("housing", 50, 3)
    for column in ("bedrooms", "area_sqm", "age_years"):
        frame[column] = frame[column].iloc[0]
    frame["neighbourhood"], frame["has_garden"] = "rural", True
    with pytest.raises(ValueError, match="no feature of contract 'housing' can be drifted"):
        plan_frame_drift(contract, frame)


def test_the_retrain_batch_is_the_users_rows_drifted_with_unique_keys(tmp_path: Path) -> None:
    data, contract_file = _housing(tmp_path)
    ctx = _ctx(tmp_path, data, contract_file)
    batch = retrain_batch(ctx)
    own = pd.read_csv(data)
    assert batch["house_id"].is_unique
    assert set(batch["house_id"]) <= set(own["house_id"])
    assert len(batch) == round(0.9 * len(own))
    assert batch["area_sqm"].mean() > own["area_sqm"].mean() + 0.9 * own["area_sqm"].std()
    assert list(batch.columns) == list(own.columns)


def test_the_default_churn_drift_clears_the_dataset_share_with_a_margin(tmp_path: Path) -> None:
    ctx = RunContext(options=RehearsalOptions(out=tmp_path, quick=True), out=tmp_path)
    contract = load_contract("churn")
    injected = injected_drift(ctx)
    assert injected.features == REHEARSAL_DRIFT_FEATURES
    assert not injected.exact  # the generator's columns are correlated (total_charges = tenure x charges)
    features = build_features_pandas(
        generate("churn", ctx.options.rows, ctx.options.seed), feature_spec(contract)
    )
    reference = features[features["__split__"] == "train"].loc[:, contract.feature_names]
    traffic = synthetic_traffic(ctx)
    report = _report(contract, reference, traffic(600, ctx.options.seed + 202, True))
    assert set(REHEARSAL_DRIFT_FEATURES) <= set(report.drifted_features)
    # two features to spare over the 0.5 share: one borderline test cannot flip the decision
    assert len(report.drifted_features) - 2 >= 0.5 * report.evaluated_features
    control = _report(contract, reference, traffic(600, ctx.options.seed + 101, False))
    assert not control.dataset_drift


def test_with_data_the_lifecycle_keeps_drift_and_retrain(tmp_path: Path) -> None:
    from rehearsal.lifecycle import lifecycle_stages

    data, contract_file = _housing(tmp_path, rows=100)
    options = RehearsalOptions(out=tmp_path / "out", data=data, contract=contract_file).validated()
    names = [s.name for s in lifecycle_stages(options)]
    assert names == [s.name for s in lifecycle_stages(RehearsalOptions())]
    assert names.index("rollback") < names.index("drift") < names.index("retrain")
