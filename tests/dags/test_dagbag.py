"""Every DAG parses in real Airflow with no import errors, no network at parse time, and the expected graph."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.dags.conftest import DAGS_FOLDER

TRAINING = {
    "ingest": {"validate", "prepare_features", "publish_features"},
    "validate": {"prepare_features"},
    "prepare_features": {"features", "wait_for_features", "publish_features", "prepare_training", "evaluate"},
    "features": {"wait_for_features"},
    "wait_for_features": {"publish_features"},
    "publish_features": {"prepare_training"},
    "prepare_training": {"train", "evaluate"},
    "train": {"evaluate"},
    "evaluate": {"gate", "register"},
    "gate": {"register"},
    "register": {"promote_dev"},
    "promote_dev": set(),
}
MONITORING = {
    "capture_window": {
        "drift_engine",
        "drift_report",
        "prepare_spark_drift",
        "spark_drift_report",
        "publish_metrics",
        "model_quality",
    },
    "champion_baseline": {
        "drift_report",
        "prepare_spark_drift",
        "spark_drift_report",
        "retrain_policy",
        "model_quality",
    },
    # the window's capture size picks the engine: in process, or the Spark drift job on EMR on EKS
    "drift_engine": {"drift_report", "prepare_spark_drift"},
    "drift_report": {"drift_result"},
    "prepare_spark_drift": {"spark_drift", "wait_for_spark_drift", "spark_drift_report"},
    "spark_drift": {"wait_for_spark_drift"},
    "wait_for_spark_drift": {"spark_drift_report"},
    "spark_drift_report": {"drift_result"},
    "drift_result": {"publish_metrics", "retrain_policy"},
    "model_quality": {"retrain_policy"},
    "publish_metrics": {"retrain_decision"},
    "retrain_policy": {"retrain_decision"},
    "retrain_decision": {"trigger_training", "no_retrain"},
    "trigger_training": set(),
    "no_retrain": set(),
}
PROMOTION = {
    "check_package": {"approval", "approve_package"},
    "approval": {"approve_package"},
    "approve_package": {"start_promotion"},
    "start_promotion": set(),
}
BATCH = {"batch_package": {"score"}, "score": set()}


class _NoNetwork(socket.socket):
    def connect(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a DAG file opened a connection at parse time: {args}")

    def connect_ex(self, *args: Any, **kwargs: Any) -> int:
        raise AssertionError(f"a DAG file opened a connection at parse time: {args}")


@pytest.fixture(scope="module")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    mp = pytest.MonkeyPatch()
    mp.setattr(socket, "socket", _NoNetwork)
    mp.setattr(socket, "create_connection", _refuse)
    mp.setattr(socket, "getaddrinfo", _refuse)
    try:
        return DagBag(dag_folder=str(DAGS_FOLDER))
    finally:
        mp.undo()


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"a DAG file resolved or connected at parse time: {args}")


def test_no_import_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert {Path(d.fileloc).name for d in dagbag.dags.values()} == {
        "mlops_training.py",
        "mlops_monitoring.py",
        "mlops_promotion.py",
        "mlops_batch.py",
    }


def test_one_dag_of_each_kind_per_model(dagbag: Any) -> None:
    assert set(dagbag.dag_ids) == {
        f"{model}_{kind}"
        for model in ("churn", "housing")
        for kind in ("training", "monitoring", "promotion", "batch")
    }


@pytest.mark.parametrize(
    ("dag_id", "graph"),
    [
        ("churn_training", TRAINING),
        ("housing_training", TRAINING),
        ("churn_monitoring", MONITORING),
        ("churn_promotion", PROMOTION),
        ("churn_batch", BATCH),
        ("housing_batch", BATCH),
    ],
)
def test_task_graph(dagbag: Any, dag_id: str, graph: dict[str, set[str]]) -> None:
    dag = dagbag.dags[dag_id]
    assert {t.task_id: set(t.downstream_task_ids) for t in dag.tasks} == graph


def test_provider_operators_where_they_fit(dagbag: Any) -> None:
    dag = dagbag.dags["churn_training"]
    kinds = {t.task_id: type(t).__name__ for t in dag.tasks}
    assert kinds["features"] == "EmrContainerOperator"
    assert kinds["wait_for_features"] == "EmrContainerSensor"
    assert kinds["train"] == "SageMakerTrainingOperator"
    monitoring = dagbag.dags["churn_monitoring"]
    trigger = monitoring.get_task("trigger_training")
    assert type(trigger).__name__ == "TriggerDagRunOperator"
    assert trigger.trigger_dag_id == "churn_training"
    assert type(dagbag.dags["churn_promotion"].get_task("approval")).__name__ == "ApprovalOperator"
    batch = dagbag.dags["churn_batch"]
    assert batch.params["engine"] == "transform"
    assert batch.params.get_param("engine").schema["enum"] == ["transform", "spark"]
    assert batch.schedule is None


def test_dag_conventions(dagbag: Any) -> None:
    for dag in dagbag.dags.values():
        assert dag.catchup is False
        assert "mlops" in dag.tags
        assert dag.description
    assert dagbag.dags["churn_monitoring"].schedule == "@hourly"
    assert dagbag.dags["churn_training"].schedule is None


def test_settings_come_from_the_outputs_file(outputs: Any) -> None:
    from airflow.dag_processing.dagbag import DagBag

    outputs(
        models={"my_dataset": {"contract": "churn", "monitoringSchedule": "0 */6 * * *"}},
        modelPackageGroupNames=None,
    )
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "my_dataset_training",
        "my_dataset_monitoring",
        "my_dataset_promotion",
        "my_dataset_batch",
    }
    assert bag.dags["my_dataset_monitoring"].schedule == "0 */6 * * *"


def test_missing_outputs_is_a_clear_import_error(outputs: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("MLOPS_OUTPUTS_FILE", str(tmp_path / "absent.json"))
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert len(bag.import_errors) == 4
    assert all("stack outputs file not found" in e for e in bag.import_errors.values())


TUNED_TRAINING = {
    **{k: v for k, v in TRAINING.items() if k not in {"prepare_training", "train"}},
    "prepare_features": {"features", "wait_for_features", "publish_features", "prepare_tuning", "evaluate"},
    "publish_features": {"prepare_tuning"},
    "prepare_tuning": {"tune", "best_trial"},
    "tune": {"best_trial"},
    "best_trial": {"evaluate"},
}


def test_a_contract_with_tuning_runs_a_tuning_job_then_its_best_trial(outputs: Any, tmp_path: Path) -> None:
    import yaml
    from airflow.dag_processing.dagbag import DagBag

    from tests.unit.pipelines.test_tuning import TUNING, write_churn

    contracts = tmp_path / "contracts"
    contracts.mkdir()
    write_churn(contracts, TUNING)
    (contracts / "housing.yaml").write_text(
        (Path(DAGS_FOLDER).parent / "contracts" / "housing.yaml").read_text()
    )
    assert yaml.safe_load((contracts / "churn.yaml").read_text())["tuning"]
    outputs(
        contractsDir=str(contracts),
        models={
            "churn": {"contract": "churn", "tuningMaxJobs": 3, "tuningMaxParallelJobs": 2},
            "housing": {"contract": "housing"},
        },
        modelPackageGroupNames=None,
    )
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    tuned = bag.dags["churn_training"]
    assert {t.task_id: set(t.downstream_task_ids) for t in tuned.tasks} == TUNED_TRAINING
    assert type(tuned.get_task("tune")).__name__ == "SageMakerTuningOperator"
    args = getattr(tuned.get_task("prepare_tuning"), "op_args")  # noqa: B009 - the decorated task's
    assert 3 in args
    assert 2 in args
    assert any(str(a).startswith("churn-") and str(a).endswith("-") for a in args)  # the tuning prefix
    # without a tuning section the DAG is unchanged
    untouched = bag.dags["housing_training"]
    assert {t.task_id: set(t.downstream_task_ids) for t in untouched.tasks} == TRAINING
