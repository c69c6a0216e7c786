"""Monitoring DAG, one per model, on the model's schedule: capture window -> champion baseline ->
drift report -> metrics -> retrain decision, which triggers the model's training DAG once per window
(the triggered run's id is derived from the window, and Airflow refuses a duplicate).

The drift report is computed in the task (``drift_report``) unless the window holds at least the model's
``sparkDriftMinBytes`` of capture: then ``drift_engine`` branches to the Spark drift job on EMR on EKS
(``prepare_spark_drift`` -> ``spark_drift`` (``EmrContainerOperator``) -> ``wait_for_spark_drift`` ->
``spark_drift_report``), which gives the same report; ``drift_result`` passes on whichever ran, so metrics,
quality and the retrain decision are the same downstream.

The steps run in the workers' pipeline interpreter (``@task.external_python``), so each step function
below is self-contained; only the branch, which reads the decision, runs in Airflow's own process.
"""

# pyright: reportArgumentType=false, reportIndexIssue=false, reportUnusedExpression=false, reportCallIssue=false
# (TaskFlow calls return XComArgs at parse time where the functions are typed with their run-time
# values, and `a >> b` is an expression: the checker cannot see through Airflow's DAG-building API.)

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.amazon.aws.operators.emr import EmrContainerOperator
from airflow.providers.amazon.aws.sensors.emr import EmrContainerSensor
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Param, task

from pipelines.orchestration import DagSettings, ModelDag, load_dag_settings

TAGS = ["mlops", "monitoring"]


# --- the steps (run by the workers' pipeline interpreter; self-contained) -----------------------


def capture_window(
    endpoint: str, window_start: str, window_end: str, interval_start: str, interval_end: str, run_after: str
) -> dict:
    """The window to monitor (params, else the scheduled interval, else the last full hour)."""
    from pipelines.orchestration import capture_window as window

    return window(window_start, window_end, interval_start, interval_end, run_after, endpoint)


def champion_baseline(outputs: str, group: str, endpoint: str, contract: str, model: str) -> dict:
    """The approved package now served and where its training baselines are."""
    from pipelines.orchestration import champion_baseline as champion
    from pipelines.orchestration import model_clients

    return champion(model_clients(outputs, group, endpoint), contract, model)


def drift_report(
    outputs: str, group: str, endpoint: str, capture_prefix: str, window: dict, champion: dict
) -> dict:
    """Drift of the window's captured traffic against the baseline; the report files go to S3."""
    import tempfile
    from datetime import datetime
    from pathlib import Path

    from pipelines.orchestration import model_clients, monitor_step

    with tempfile.TemporaryDirectory(prefix="mlops-monitor-") as scratch:
        return monitor_step(
            model_clients(outputs, group, endpoint),
            endpoint,
            capture_prefix,
            champion["evaluation_prefix"],
            datetime.fromisoformat(window["start"]),
            datetime.fromisoformat(window["end"]),
            Path(scratch),
        )


def prepare_spark_drift(
    outputs: str, group: str, endpoint: str, capture_prefix: str, window: dict, champion: dict
) -> dict:
    """Write the Spark drift job's plan and script; the EMR on EKS job run's arguments."""
    import tempfile
    from datetime import datetime
    from pathlib import Path

    from pipelines.monitoring.spark_drift import spark_drift_request
    from pipelines.orchestration import model_clients

    with tempfile.TemporaryDirectory(prefix="mlops-spark-drift-") as scratch:
        return spark_drift_request(
            model_clients(outputs, group, endpoint),
            endpoint,
            capture_prefix,
            champion["evaluation_prefix"],
            datetime.fromisoformat(window["start"]),
            datetime.fromisoformat(window["end"]),
            Path(scratch),
        )


def spark_drift_report(
    outputs: str, group: str, endpoint: str, window: dict, champion: dict, job: dict
) -> dict:
    """The Spark job's state -> the drift report, written to S3 as ``drift_report`` writes it."""
    import tempfile
    from datetime import datetime
    from pathlib import Path

    from pipelines.monitoring.spark_drift import spark_drift_monitor
    from pipelines.orchestration import model_clients

    with tempfile.TemporaryDirectory(prefix="mlops-spark-drift-") as scratch:
        return spark_drift_monitor(
            model_clients(outputs, group, endpoint),
            endpoint,
            champion["evaluation_prefix"],
            datetime.fromisoformat(window["start"]),
            datetime.fromisoformat(window["end"]),
            job["state_uri"],
            Path(scratch),
        )


def drift_engine(
    outputs: str, group: str, endpoint: str, capture_prefix: str, window: dict[str, Any], min_bytes: int
) -> str:
    """Branch (in Airflow's process: one S3 listing): the Spark drift job when the window holds at least
    ``min_bytes`` of capture (the model's ``sparkDriftMinBytes``), else the in-process report.

    Airflow's own interpreter has only Airflow's requirements (on MWAA, no numpy): this imports the
    standard library, boto3 and :mod:`pipelines.monitoring.capture_window` only (tested)."""
    from datetime import datetime

    from pipelines.monitoring.capture_window import choose_engine
    from pipelines.orchestration import model_clients

    chosen = choose_engine(
        model_clients(outputs, group, endpoint),
        endpoint,
        capture_prefix,
        datetime.fromisoformat(window["start"]),
        datetime.fromisoformat(window["end"]),
        min_bytes,
    )
    print(
        f"drift engine: {chosen['engine']} ({chosen['window_bytes']} captured bytes, Spark from {min_bytes})"
    )
    return "prepare_spark_drift" if chosen["engine"] == "spark" else "drift_report"


def drift_result(in_process: dict[str, Any] | None, on_spark: dict[str, Any] | None) -> dict[str, Any]:
    """The drift report of whichever engine ran (the branch skipped the other)."""
    result = in_process if in_process is not None else on_spark
    if result is None:
        raise RuntimeError("neither drift engine produced a report")
    return result


def model_quality(
    outputs: str,
    group: str,
    endpoint: str,
    contract_path: str,
    capture_prefix: str,
    window: dict,
    champion: dict,
) -> dict:
    """Captured predictions joined to the labels landed so far (by inference id); CBPE before labels."""
    import tempfile
    from datetime import datetime
    from pathlib import Path

    from pipelines.orchestration import model_clients, quality_step

    with tempfile.TemporaryDirectory(prefix="mlops-quality-") as scratch:
        report = quality_step(
            model_clients(outputs, group, endpoint),
            contract_path,
            endpoint,
            capture_prefix,
            champion["evaluation_prefix"],
            datetime.fromisoformat(window["start"]),
            datetime.fromisoformat(window["end"]),
            Path(scratch),
        )
    print(
        f"quality: {report['status']} coverage {report['coverage']:.1%} {report['metrics']} {report['breaches']}"
    )
    return {
        k: report[k] for k in ("status", "coverage", "labelled", "metrics", "floors", "breaches", "s3_keys")
    }


def publish_metrics(outputs: str, group: str, endpoint: str, window: dict, drift: dict) -> int:
    """Publish the drift metrics (``MLOps/Monitoring``) and the monitor step's status."""
    from datetime import datetime

    from pipelines.orchestration import model_clients, publish_monitoring

    clients = model_clients(outputs, group, endpoint)
    return publish_monitoring(clients, endpoint, drift["report"], datetime.fromisoformat(window["end"]))


def retrain_policy(
    outputs: str, group: str, endpoint: str, training_dag_id: str, drift: dict, champion: dict, quality: dict
) -> dict:
    """Apply the retrain policy (drift, quality floors, age); publish ``RetrainTriggered``."""
    from pipelines.orchestration import model_clients, publish_retrain, retrain_decision

    decision = retrain_decision(drift["report"], champion["created_at"], quality)
    print(f"retrain: {decision['retrain']} {decision['reasons']}")
    publish_retrain(model_clients(outputs, group, endpoint), training_dag_id, decision["retrain"])
    return decision


def retrain_decision(decision: dict[str, Any]) -> str:
    """Branch: trigger the training DAG when the policy says so."""
    return "trigger_training" if decision["retrain"] else "no_retrain"


# --- the DAG -------------------------------------------------------------------------------------


def build_monitoring_dag(settings: DagSettings, model: ModelDag) -> DAG:
    """The monitoring DAG of ``model``."""
    common = (str(settings.outputs_file), model.model_package_group, model.endpoint)
    training_dag_id = model.names.training_dag_id

    def step(fn: Any, **kwargs: Any) -> Any:
        return task.external_python(
            task_id=fn.__name__,
            python=settings.worker_python,
            expect_airflow=False,
            env_vars={"PYTHONPATH": settings.worker_pythonpath},
            **kwargs,
        )(fn)

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
        window = step(capture_window)(
            model.endpoint,
            "{{ params.window_start or '' }}",
            "{{ params.window_end or '' }}",
            "{{ data_interval_start.isoformat() if data_interval_start else '' }}",
            "{{ data_interval_end.isoformat() if data_interval_end else '' }}",
            "{{ dag_run.run_after.isoformat() }}",
        )
        champion = step(champion_baseline)(*common, model.contract, model.model)
        aws = {"aws_conn_id": settings.aws_conn_id, "region_name": settings.region}
        route = task.branch(task_id="drift_engine")(drift_engine)(
            *common, model.names.capture_prefix, window, model.spark_drift_min_bytes
        )
        in_process = step(drift_report)(*common, model.names.capture_prefix, window, champion)
        job = step(prepare_spark_drift, multiple_outputs=True)(
            *common, model.names.capture_prefix, window, champion
        )
        route >> [in_process, job]
        spark_job = EmrContainerOperator(
            task_id="spark_drift",
            name=job["name"],
            virtual_cluster_id=job["virtual_cluster_id"],
            execution_role_arn=job["execution_role_arn"],
            release_label=job["release_label"],
            job_driver=job["job_driver"],
            configuration_overrides=job["configuration_overrides"],
            tags={"mlops:model": model.model, "mlops:step": "drift"},
            wait_for_completion=False,
            **aws,
        )
        spark_done = EmrContainerSensor(
            task_id="wait_for_spark_drift",
            virtual_cluster_id=job["virtual_cluster_id"],
            job_id=spark_job.output,
            poll_interval=settings.poll_seconds,
            **aws,
        )
        on_spark = step(spark_drift_report)(*common, window, champion, job)
        job >> spark_job >> spark_done >> on_spark
        drift = task(task_id="drift_result", trigger_rule="none_failed_min_one_success")(drift_result)(
            in_process, on_spark
        )
        published = step(publish_metrics)(*common, window, drift)
        contract_path = str(settings.contracts_dir / f"{model.contract}.yaml")
        quality = step(model_quality)(*common, contract_path, model.names.capture_prefix, window, champion)
        policy = step(retrain_policy)(*common, training_dag_id, drift, champion, quality)
        decision = task.branch(task_id="retrain_decision")(retrain_decision)(policy)
        published >> decision
        trigger = TriggerDagRunOperator(
            task_id="trigger_training",
            trigger_dag_id=training_dag_id,
            trigger_run_id="{{ ti.xcom_pull(task_ids='capture_window')['retrain_run_id'] }}",
            conf={
                "retrain_reasons": "{{ ti.xcom_pull(task_ids='retrain_policy')['reasons'] | join('; ') }}",
                "monitoring_window": "{{ ti.xcom_pull(task_ids='capture_window')['window'] }}",
            },
            skip_when_already_exists=True,
        )
        decision >> [trigger, EmptyOperator(task_id="no_retrain")]
    return dag


SETTINGS = load_dag_settings(Path(__file__).resolve().parent)
for _model in SETTINGS.models:
    globals()[_model.names.monitoring_dag_id] = build_monitoring_dag(SETTINGS, _model)
