"""``mlops rehearse --data --contract`` on a table of the user's own: a generated wide numeric table
whose contract ``mlops contract init`` drafted. Its model joins dev's catalog, is trained by its own
training DAG, deployed to its own endpoint and serves its own predictions; then a drift derived from
its contract is injected into its traffic, its monitoring DAG flags exactly the drifted features and
triggers its training DAG, and the retrained model serves. Runs the rehearsal's own stages up to
serve, then drift and retrain (canary and rollback act on the same accessor and are run by
``mlops rehearse``)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.contract_init import DraftOptions, init_contract
from rehearsal import lifecycle
from rehearsal.run import RehearsalOptions, RunContext, run_stages

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(3600),
]  # two training DAG runs, two monitoring DAG runs, one endpoint


def _wide_table(folder: Path, rows: int = 1500, columns: int = 40) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(rows, columns))
    frame = pd.DataFrame(values.round(4), columns=[f"sensor_{i:02d}" for i in range(columns)])
    frame.insert(0, "reading_id", np.arange(1, rows + 1))
    frame["failure"] = (values[:, 0] - 0.8 * values[:, 3] + rng.normal(scale=0.5, size=rows) > 0.3).astype(
        int
    )
    data = folder / "sensor_readings.csv"
    frame.to_csv(data, index=False)
    contract = folder / "contracts" / "sensor_readings.yaml"
    init_contract(data, contract, DraftOptions(target="failure", guess_key=True))
    return data, contract


def test_a_wide_numeric_table_gets_its_own_model_through_serve_drift_and_retrain(tmp_path: Path) -> None:
    from rich.console import Console

    data, contract = _wide_table(tmp_path)
    options = RehearsalOptions(out=tmp_path / "out", data=data, contract=contract, quick=True).validated()
    wanted = (
        "emulator",
        "deploy",
        "data",
        "ingest",
        "validate",
        "train",
        "deploy-model",
        "serve",
        "drift",
        "retrain",
    )
    stages = [s for s in lifecycle.lifecycle_stages(options) if s.name in wanted]
    assert [s.name for s in stages] == list(wanted)
    ctx = RunContext(options=options, out=options.out)
    summary = run_stages(stages, ctx, console=Console(file=io.StringIO()))  # type: ignore[arg-type]
    assert summary.exit_code == 0, summary.message
    evidence = {r.stage: r.evidence for r in summary.results}
    assert evidence["data"]["model"] == "sensor_readings"
    assert evidence["deploy"]["models"] == ["churn", "housing", "sensor_readings"]
    assert evidence["deploy"]["model_package_group"] == "mlops-dev-sensor-readings"
    assert evidence["train"]["group"] == "mlops-dev-sensor-readings"
    assert evidence["deploy-model"]["endpoint"] == "mlops-dev-sensor-readings"
    serve = evidence["serve"]
    assert serve["task"] == "binary_classification"
    assert serve["requests_ok"] > 0
    assert serve["responses_misshaped"] == 0
    assert all(k.startswith("datacapture/sensor-readings/") for k in serve["capture_sample"])
    prediction = serve["sample_predictions"][0]["predictions"][0]
    assert set(prediction) == {"label", "score", "probabilities"}
    drift = evidence["drift"]
    injected = drift["injected_drift"]
    assert injected["exact"]
    assert len(injected["features"]) >= 21  # of 40 model inputs: over the 0.5 share with a margin
    assert "failure" not in injected["features"]
    assert "reading_id" not in injected["features"]
    assert set(drift["drifted_features"]) == set(injected["features"])  # no derived features here
    assert drift["control_drifted_features"] == []
    assert drift["dataset_drift"]
    assert drift["training_dag_id"] == "sensor_readings_training"
    assert len(drift["triggered_training_runs"]) == 1
    retrain = evidence["retrain"]
    assert retrain["package_arn"].endswith("model-package/mlops-dev-sensor-readings/2")
    assert retrain["trigger"]["metadata_db"]["state"] == "queued"
    assert retrain["traffic_errors"] == 0
