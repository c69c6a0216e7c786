"""Training DAG, one per model of the catalog: ingest -> validate -> features (EMR on EKS) -> train
(SageMaker) -> evaluate -> gate -> register -> promote (dev).

Parse time reads the stack outputs file only (``pipelines.orchestration.load_dag_settings``); every
AWS call happens inside a task. The pipeline steps run in the workers' own Python environment
(``@task.external_python``: pandas, scikit-learn... at the project's pins, apart from Airflow's), so
each step function below is self-contained: it imports what it needs and gets every value as an
argument. Trigger with conf ``{"batch_uri": "s3://..."}`` to train on a given batch; without it the
newest object under ``s3://<raw bucket>/landing/<dataset>/`` is ingested.
"""

# pyright: reportArgumentType=false, reportIndexIssue=false, reportUnusedExpression=false, reportCallIssue=false
# (TaskFlow calls return XComArgs at parse time where the functions are typed with their run-time
# values, and `a >> b` is an expression: the checker cannot see through Airflow's DAG-building API.)

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.amazon.aws.operators.emr import EmrContainerOperator
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerTrainingOperator,
    SageMakerTuningOperator,
)
from airflow.providers.amazon.aws.sensors.emr import EmrContainerSensor
from airflow.sdk import DAG, Param, task

from pipelines.orchestration import DagSettings, ModelDag, contract_tunes, load_dag_settings

TAGS = ["mlops", "training"]


# --- the steps (run by the workers' pipeline interpreter; self-contained) -----------------------


def ingest(outputs: str, group: str, endpoint: str, dataset: str, batch_uri: str, ingest_date: str) -> dict:
    """Land the batch (the newest landed object when ``batch_uri`` is empty)."""
    from pipelines.orchestration import ingest_step, model_clients

    return ingest_step(model_clients(outputs, group, endpoint), dataset, batch_uri or None, ingest_date)


def validate(outputs: str, group: str, endpoint: str, contract: str, contracts_dir: str, batch: dict) -> dict:
    """Validate and curate the landed batch (fails with the readable report when it is rejected)."""
    from pathlib import Path

    from pipelines.orchestration import model_clients, validate_step

    clients = model_clients(outputs, group, endpoint)
    return validate_step(clients, Path(contract), batch, Path(contracts_dir))


def prepare_features(outputs: str, group: str, endpoint: str, contract: str, batch: dict) -> dict:
    """Upload the Spark script; the EMR on EKS job run's arguments."""
    from pathlib import Path

    from pipelines.orchestration import features_job, model_clients

    return features_job(model_clients(outputs, group, endpoint), Path(contract), batch["ingest_date"])


def publish_features(
    outputs: str, group: str, endpoint: str, contract: str, batch: dict, features_uri: str
) -> dict:
    """Publish the EMR job's features as an immutable, content-addressed version with its manifest."""
    from pathlib import Path

    from pipelines.orchestration import model_clients, publish_features_step

    clients = model_clients(outputs, group, endpoint)
    return publish_features_step(clients, Path(contract), batch["ingest_date"], features_uri)


def prepare_training(
    outputs: str, group: str, endpoint: str, contract: str, job_prefix: str, run_after: str, features_uri: str
) -> dict:
    """Upload the training source; the CreateTrainingJob request and the model URI it produces."""
    from pathlib import Path

    from pipelines.orchestration import model_clients, run_id_for, training_job

    run_id = run_id_for(job_prefix, run_after)
    return training_job(model_clients(outputs, group, endpoint), Path(contract), run_id, features_uri)


def prepare_tuning(
    outputs: str,
    group: str,
    endpoint: str,
    contract: str,
    tuning_job_prefix: str,
    max_jobs: int,
    max_parallel_jobs: int,
    run_after: str,
    features_uri: str,
) -> dict:
    """Upload the training source; the CreateHyperParameterTuningJob request (contract with ``tuning``)."""
    from pathlib import Path

    from pipelines.orchestration import model_clients, tuning_job, tuning_run_id

    name = tuning_run_id(tuning_job_prefix, run_after)
    clients = model_clients(outputs, group, endpoint)
    return tuning_job(clients, Path(contract), name, features_uri, int(max_jobs), int(max_parallel_jobs))


def best_trial(outputs: str, group: str, endpoint: str, tuning_job_name: str) -> dict:
    """The tuning job's best trial (its model goes to evaluate); every trial tracked in MLflow."""
    from pipelines.orchestration import best_trial_step, model_clients

    return best_trial_step(model_clients(outputs, group, endpoint), tuning_job_name)


def evaluate(outputs: str, group: str, endpoint: str, model_uri: str, features_uri: str) -> dict:
    """Evaluate the model on the held-out features; the gate's verdict, reasons and metrics."""
    from pipelines.orchestration import evaluate_step, model_clients

    return evaluate_step(model_clients(outputs, group, endpoint), model_uri, features_uri)


def register(outputs: str, group: str, endpoint: str, evaluation: dict) -> dict:
    """Register the evaluated model as a package of the model's group."""
    from pipelines.orchestration import model_clients, register_step

    return register_step(
        model_clients(outputs, group, endpoint),
        evaluation["model_uri"],
        evaluation.get("mlflow_run_id"),
        evaluation.get("mlflow_experiment_id"),
    )


def promote_dev(outputs: str, group: str, endpoint: str, dag_id: str, registration: dict) -> dict:
    """In dev (auto-approval): approve the package and start the deployment; elsewhere skip (exit 99)."""
    import sys

    from pipelines.orchestration import model_clients, promote_step

    clients = model_clients(outputs, group, endpoint)
    if not clients.settings.approve_on_pass:
        print(f"{clients.settings.environment} approves by hand: run the promotion DAG", file=sys.stderr)
        sys.exit(99)
    arn = registration["model_package_arn"]
    return promote_step(
        clients, arn, approver=f"airflow:{dag_id}", reason="passed the evaluation gate in dev"
    )


def gate(evaluation: dict[str, Any]) -> bool:
    """Continue to registration only when the evaluation gate passed (its reasons go to the log)."""
    print(
        f"evaluation gate {'passed' if evaluation['passed'] else 'failed'}: {'; '.join(evaluation['reasons'])}"
    )
    return bool(evaluation["passed"])


# --- the DAG -------------------------------------------------------------------------------------


def build_training_dag(settings: DagSettings, model: ModelDag) -> DAG:
    """The training DAG of ``model``."""
    dag_id = model.names.training_dag_id
    common = (str(settings.outputs_file), model.model_package_group, model.endpoint)
    contract = str(settings.contracts_dir / f"{model.contract}.yaml")
    aws = {"aws_conn_id": settings.aws_conn_id, "region_name": settings.region}

    def step(fn: Any, **kwargs: Any) -> Any:
        return task.external_python(
            task_id=fn.__name__,
            python=settings.worker_python,
            expect_airflow=False,
            env_vars={"PYTHONPATH": settings.worker_pythonpath},
            **kwargs,
        )(fn)

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
        batch = step(ingest)(
            *common,
            model.contract,
            "{{ params.batch_uri or '' }}",
            "{{ params.ingest_date or dag_run.run_after.strftime('%Y-%m-%d') }}",
        )
        curated = step(validate)(*common, contract, str(settings.contracts_dir), batch)
        job = step(prepare_features, multiple_outputs=True)(*common, contract, batch)
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
        published = step(publish_features)(*common, contract, batch, job["features_uri"])
        features >> features_done >> published
        if contract_tunes(Path(contract)):
            # the contract has a `tuning` section: a SageMaker tuning job, then its best trial's model
            tuning = step(prepare_tuning, multiple_outputs=True)(
                *common,
                contract,
                model.names.tuning_job_prefix,
                model.tuning_max_jobs,
                model.tuning_max_parallel_jobs,
                "{{ dag_run.run_after.isoformat() }}",
                job["features_uri"],
            )
            published >> tuning
            tune = SageMakerTuningOperator(
                task_id="tune",
                config=tuning["config"],
                wait_for_completion=True,
                check_interval=settings.poll_seconds,
                **aws,
            )
            best = step(best_trial, multiple_outputs=True)(*common, tuning["tuning_job_name"])
            tune >> best
            trained, model_uri = best, best["model_uri"]
        else:
            training = step(prepare_training, multiple_outputs=True)(
                *common,
                contract,
                model.names.training_job_prefix,
                "{{ dag_run.run_after.isoformat() }}",
                job["features_uri"],
            )
            published >> training
            train = SageMakerTrainingOperator(
                task_id="train",
                config=training["config"],
                wait_for_completion=True,
                print_log=False,
                check_interval=settings.poll_seconds,
                action_if_job_exists="fail",  # the job name is the run ID the model's S3 key is built from
                **aws,
            )
            trained, model_uri = train, training["model_uri"]
        evaluation = step(evaluate)(*common, model_uri, job["features_uri"])
        trained >> evaluation
        passed = task.short_circuit(task_id="gate")(gate)(evaluation)
        registration = step(register)(*common, evaluation)
        passed >> registration
        step(promote_dev, skip_on_exit_code=99)(*common, dag_id, registration)
    return dag


SETTINGS = load_dag_settings(Path(__file__).resolve().parent)
for _model in SETTINGS.models:
    globals()[_model.names.training_dag_id] = build_training_dag(SETTINGS, _model)
