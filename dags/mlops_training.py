"""Training DAG, one per model of the catalog: ingest -> validate -> features (EMR on EKS) -> train
(SageMaker) -> evaluate -> gate -> register -> promote (dev).

Parse time reads the stack outputs file only (``pipelines.orchestration.load_dag_settings``); every
AWS call happens inside a task. Trigger with conf ``{"batch_uri": "s3://..."}`` to train on a given
batch; without it the newest object under ``s3://<raw bucket>/landing/<dataset>/`` is ingested.
"""

# pyright: reportArgumentType=false, reportIndexIssue=false, reportUnusedExpression=false, reportTypedDictNotRequiredAccess=false
# (TaskFlow calls return XComArgs at parse time where the functions are typed with their run-time
# values, and `a >> b` is an expression: the checker cannot see through Airflow's DAG-building API.)

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.amazon.aws.operators.emr import EmrContainerOperator
from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator
from airflow.providers.amazon.aws.sensors.emr import EmrContainerSensor
from airflow.sdk import DAG, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from pipelines.orchestration import DagSettings, ModelDag, load_dag_settings

TAGS = ["mlops", "training"]


def _ingest_date() -> str:
    context = get_current_context()
    chosen = context["params"].get("ingest_date")
    return str(chosen) if chosen else context["dag_run"].run_after.strftime("%Y-%m-%d")


def build_training_dag(settings: DagSettings, model: ModelDag) -> DAG:
    """The training DAG of ``model``."""
    outputs = str(settings.outputs_file)
    contract_path = str(settings.contracts_dir / f"{model.contract}.yaml")
    contracts_dir = str(settings.contracts_dir)
    group, endpoint, dag_id = model.model_package_group, model.endpoint, model.names.training_dag_id
    aws = {"aws_conn_id": settings.aws_conn_id, "region_name": settings.region}

    with DAG(
        dag_id=dag_id,
        description=f"Train, evaluate, register and promote (dev) the {model.model} model",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=[*TAGS, f"model:{model.names.slug}"],
        default_args={"retries": 0},
        params={
            "batch_uri": Param(None, type=["null", "string"], description="s3:// URI or path of the batch"),
            "ingest_date": Param(None, type=["null", "string"], description="YYYY-MM-DD (default: run date)"),
        },
    ) as dag:

        @task(task_id="ingest")
        def ingest() -> dict[str, Any]:
            from pipelines.orchestration import ingest_step, model_clients

            clients = model_clients(outputs, group, endpoint)
            uri = get_current_context()["params"].get("batch_uri")
            return ingest_step(clients, model.contract, uri, _ingest_date())

        @task(task_id="validate")
        def validate(batch: dict[str, Any]) -> dict[str, Any]:
            from pipelines.orchestration import model_clients, validate_step
            from pipelines.validate import BatchValidationError

            try:
                return validate_step(
                    model_clients(outputs, group, endpoint), Path(contract_path), batch, Path(contracts_dir)
                )
            except BatchValidationError as rejected:  # a bad batch is not retried
                raise AirflowFailException(str(rejected)) from rejected

        @task(task_id="prepare_features", multiple_outputs=True)
        def prepare_features(batch: dict[str, Any]) -> dict[str, Any]:
            from pipelines.orchestration import features_job, model_clients

            return features_job(
                model_clients(outputs, group, endpoint), Path(contract_path), batch["ingest_date"]
            )

        @task(task_id="prepare_training", multiple_outputs=True)
        def prepare_training(features_uri: str) -> dict[str, Any]:
            from pipelines.orchestration import model_clients, run_id_for, training_job

            run_id = run_id_for(model.names, get_current_context()["dag_run"].run_after)
            return training_job(
                model_clients(outputs, group, endpoint), Path(contract_path), run_id, features_uri
            )

        @task(task_id="evaluate")
        def evaluate(model_uri: str, features_uri: str) -> dict[str, Any]:
            from pipelines.orchestration import evaluate_step, model_clients

            return evaluate_step(model_clients(outputs, group, endpoint), model_uri, features_uri)

        @task.short_circuit(task_id="gate")
        def gate(evaluation: dict[str, Any]) -> bool:
            verdict = "passed" if evaluation["passed"] else "failed"
            print(f"evaluation gate {verdict}: {'; '.join(evaluation['reasons'])}")
            return bool(evaluation["passed"])

        @task(task_id="register")
        def register(evaluation: dict[str, Any]) -> dict[str, Any]:
            from pipelines.orchestration import model_clients, register_step

            return register_step(model_clients(outputs, group, endpoint), evaluation["model_uri"])

        @task(task_id="promote_dev")
        def promote_dev(registration: dict[str, Any]) -> dict[str, Any]:
            from pipelines.orchestration import model_clients, promote_step

            clients = model_clients(outputs, group, endpoint)
            if not clients.settings.approve_on_pass:
                raise AirflowSkipException(
                    f"{clients.settings.environment} approves models by hand: run the promotion DAG "
                    f"for {registration['model_package_arn']}"
                )
            return promote_step(
                clients,
                registration["model_package_arn"],
                approver=f"airflow:{dag_id}",
                reason="passed the evaluation gate in dev",
            )

        batch = ingest()
        curated = validate(batch)
        job = prepare_features(batch)
        curated >> job
        features = EmrContainerOperator(
            task_id="features",
            name=job["name"],
            virtual_cluster_id=job["virtual_cluster_id"],
            execution_role_arn=job["execution_role_arn"],
            release_label=job["release_label"],
            job_driver=job["job_driver"],
            configuration_overrides=job["configuration_overrides"],
            tags={"mlops:model": model.model, "mlops:step": "features"},
            wait_for_completion=False,
            **aws,
        )
        job >> features
        features_done = EmrContainerSensor(
            task_id="wait_for_features",
            virtual_cluster_id=job["virtual_cluster_id"],
            job_id=features.output,
            poll_interval=settings.poll_seconds,
            **aws,
        )
        training = prepare_training(job["features_uri"])
        features >> features_done >> training
        train = SageMakerTrainingOperator(
            task_id="train",
            config=training["config"],
            wait_for_completion=True,
            print_log=False,
            check_interval=settings.poll_seconds,
            action_if_job_exists="fail",  # the job name is the run ID the model's S3 key is built from
            **aws,
        )
        evaluation = evaluate(training["model_uri"], job["features_uri"])
        train >> evaluation
        passed = gate(evaluation)
        registration = register(evaluation)
        passed >> registration
        promote_dev(registration)
    return dag


SETTINGS = load_dag_settings(Path(__file__).resolve().parent)
for _model in SETTINGS.models:
    globals()[_model.names.training_dag_id] = build_training_dag(SETTINGS, _model)
