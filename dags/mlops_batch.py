"""Batch inference DAG, one per model: pick the package -> score a batch (SageMaker batch transform or Spark).

Trigger with conf ``{"engine": "transform", "input_uri": "s3://<features>/predictions/<model>/input/run=<id>/",
"run_id": "<id>"}`` (CSV rows without header, in the model's input order), or ``{"engine": "spark",
"input_uri": "s3://<features>/features/<dataset>/", "split": "test", "run_id": "<id>"}`` (a Parquet table
already in the lake, scored on EMR on EKS), and optionally ``model_package_arn`` (default: the package the
model's endpoint serves, else its newest Approved one). The output is partition ``run=<id>`` of the Glue
table ``<model>_batch_predictions`` (transform: each input row followed by its prediction) or
``<model>_spark_scores`` (Spark: keys, inputs, the serving handler's answer).
"""

# pyright: reportArgumentType=false, reportIndexIssue=false, reportUnusedExpression=false, reportCallIssue=false
# (TaskFlow calls return XComArgs at parse time where the functions are typed with their run-time
# values, and `a >> b` is an expression: the checker cannot see through Airflow's DAG-building API.)

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task

from pipelines.orchestration import DagSettings, ModelDag, load_dag_settings

TAGS = ["mlops", "batch"]
ENGINES = ["transform", "spark"]
"""Batch paths the DAG can take (``params.engine``, see ``pipelines.batch.ENGINES``)."""


def batch_package(
    outputs: str, group: str, endpoint: str, contract: str, model: str, package_arn: str
) -> str:
    """The package to score with: the one given, else the served one, else the newest Approved."""
    from pipelines.batch import package_to_score
    from pipelines.orchestration import model_clients

    clients = model_clients(outputs, group, endpoint)
    target = clients.settings.model_target(contract, model)
    return package_to_score(clients, target, package_arn or None)


def score(
    outputs: str,
    group: str,
    endpoint: str,
    contract_path: str,
    model: str,
    engine: str,
    input_uri: str,
    run_id: str,
    split: str,
    package: str,
) -> dict:
    """Score ``input_uri`` with the chosen engine and register the output partition."""
    from pipelines.batch import score_step
    from pipelines.orchestration import model_clients

    clients = model_clients(outputs, group, endpoint)
    return score_step(clients, engine, contract_path, model, input_uri, run_id, package, split or None)


def build_batch_dag(settings: DagSettings, model: ModelDag) -> DAG:
    """The batch inference DAG of ``model``."""
    common = (str(settings.outputs_file), model.model_package_group, model.endpoint)
    contract_path = str(settings.contracts_dir / f"{model.contract}.yaml")

    def step(fn: Any) -> Any:
        return task.external_python(
            task_id=fn.__name__,
            python=settings.worker_python,
            expect_airflow=False,
            env_vars={"PYTHONPATH": settings.worker_pythonpath},
        )(fn)

    with DAG(
        dag_id=model.names.batch_dag_id,
        description=f"Score a batch with a {model.model} model package (batch transform or Spark on EMR on EKS)",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=[*TAGS, f"model:{model.names.slug}"],
        default_args={"retries": 0},
        params={
            "input_uri": Param(
                type="string", pattern="^s3://", description="s3:// prefix of the CSV rows to score"
            ),
            "run_id": Param(
                type="string", pattern="^[A-Za-z0-9_-]+$", description="Partition value run=<id>"
            ),
            "model_package_arn": Param(
                "", type="string", description="Package to score with (default: served)"
            ),
            "engine": Param(
                "transform", enum=ENGINES, description="transform (CSV rows) or spark (a lake table)"
            ),
            "split": Param("", type="string", description="spark: score only this __split__ (e.g. test)"),
        },
    ) as dag:
        package = step(batch_package)(*common, model.contract, model.model, "{{ params.model_package_arn }}")
        step(score)(
            *common,
            contract_path,
            model.model,
            "{{ params.engine }}",
            "{{ params.input_uri }}",
            "{{ params.run_id }}",
            "{{ params.split }}",
            package,
        )
    return dag


SETTINGS = load_dag_settings(Path(__file__).resolve().parent)
for _model in SETTINGS.models:
    globals()[_model.names.batch_dag_id] = build_batch_dag(SETTINGS, _model)
