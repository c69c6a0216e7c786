"""Monitoring DAG, one per model, on the model's schedule: capture window -> champion baseline ->
drift report -> metrics -> retrain decision, which triggers the model's training DAG (once per window:
the triggered run's id is derived from the window, and Airflow refuses a duplicate).
"""

# pyright: reportArgumentType=false, reportIndexIssue=false, reportUnusedExpression=false, reportTypedDictNotRequiredAccess=false
# (TaskFlow calls return XComArgs at parse time where the functions are typed with their run-time
# values, and `a >> b` is an expression: the checker cannot see through Airflow's DAG-building API.)

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Param, get_current_context, task

from pipelines.orchestration import DagSettings, ModelDag, load_dag_settings

TAGS = ["mlops", "monitoring"]


def _when(value: Any) -> datetime:
    parsed = (
        value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    )
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def build_monitoring_dag(settings: DagSettings, model: ModelDag) -> DAG:
    """The monitoring DAG of ``model``."""
    outputs = str(settings.outputs_file)
    group, endpoint = model.model_package_group, model.endpoint
    training_dag_id = model.names.training_dag_id

    with DAG(
        dag_id=model.names.monitoring_dag_id,
        description=f"Drift of the {model.model} endpoint's captured traffic; retrain when it drifts",
        schedule=model.monitoring_schedule,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=[*TAGS, f"model:{model.names.slug}"],
        default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
        params={
            "window_start": Param(None, type=["null", "string"], description="ISO 8601 (default: interval)"),
            "window_end": Param(None, type=["null", "string"], description="ISO 8601, exclusive"),
        },
    ) as dag:

        @task(task_id="capture_window")
        def capture_window() -> dict[str, str]:
            from pipelines.monitoring.report import window_label
            from pipelines.monitoring.retrain import dag_run_id_for

            context = get_current_context()
            params = context["params"]
            end = _when(
                params.get("window_end") or context.get("data_interval_end") or context["dag_run"].run_after
            )
            if not (params.get("window_end") or context.get("data_interval_end")):
                end = end.replace(minute=0, second=0, microsecond=0)
            start = _when(
                params.get("window_start") or context.get("data_interval_start") or end - timedelta(hours=1)
            )
            if start >= end:
                start = end - timedelta(hours=1)
            window = window_label(start, end)
            return {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "window": window,
                "retrain_run_id": dag_run_id_for(endpoint, window),
            }

        @task(task_id="champion_baseline")
        def champion_baseline() -> dict[str, Any]:
            from pipelines.orchestration import champion_baseline as champion
            from pipelines.orchestration import model_clients

            return champion(model_clients(outputs, group, endpoint))

        @task(task_id="drift_report")
        def drift_report(window: dict[str, str], champion: dict[str, Any]) -> dict[str, Any]:
            from pipelines.orchestration import model_clients, monitor_step

            with tempfile.TemporaryDirectory(prefix="mlops-monitor-") as scratch:
                return monitor_step(
                    model_clients(outputs, group, endpoint),
                    endpoint,
                    model.names.capture_prefix,
                    champion["evaluation_prefix"],
                    _when(window["start"]),
                    _when(window["end"]),
                    Path(scratch),
                )

        @task(task_id="publish_metrics")
        def publish_metrics(window: dict[str, str], drift: dict[str, Any]) -> int:
            from pipelines.orchestration import model_clients, publish_monitoring

            return publish_monitoring(
                model_clients(outputs, group, endpoint), endpoint, drift["report"], _when(window["end"])
            )

        @task.branch(task_id="retrain_decision")
        def retrain_decision(drift: dict[str, Any], champion: dict[str, Any]) -> str:
            from pipelines.orchestration import model_clients, publish_retrain, retrain_decision

            decision = retrain_decision(drift["report"], champion["created_at"])
            print(f"retrain: {decision['retrain']} {decision['reasons']}")
            get_current_context()["ti"].xcom_push(key="reasons", value=decision["reasons"])
            publish_retrain(model_clients(outputs, group, endpoint), training_dag_id, decision["retrain"])
            return "trigger_training" if decision["retrain"] else "no_retrain"

        window = capture_window()
        champion = champion_baseline()
        drift = drift_report(window, champion)
        decision = retrain_decision(drift, champion)
        publish_metrics(window, drift) >> decision
        trigger = TriggerDagRunOperator(
            task_id="trigger_training",
            trigger_dag_id=training_dag_id,
            trigger_run_id="{{ ti.xcom_pull(task_ids='capture_window')['retrain_run_id'] }}",
            conf={
                "retrain_reasons": "{{ ti.xcom_pull(task_ids='retrain_decision', key='reasons') }}",
                "monitoring_window": "{{ ti.xcom_pull(task_ids='capture_window')['window'] }}",
            },
            skip_when_already_exists=True,
        )
        decision >> [trigger, EmptyOperator(task_id="no_retrain")]
    return dag


SETTINGS = load_dag_settings(Path(__file__).resolve().parent)
for _model in SETTINGS.models:
    globals()[_model.names.monitoring_dag_id] = build_monitoring_dag(SETTINGS, _model)
