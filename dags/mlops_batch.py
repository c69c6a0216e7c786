"""Batch inference DAG, one per model: pick the package -> score a batch with a SageMaker batch transform job.

Trigger with conf ``{"input_uri": "s3://<features>/predictions/<model>/input/run=<id>/", "run_id": "<id>"}``
(CSV rows without header, in the model's input order) and optionally ``model_package_arn`` (default: the
package the model's endpoint serves, else its newest Approved one). The output is partition
``run=<id>`` of the Glue table ``<model>_batch_predictions``: each input row followed by its prediction.
``engine`` picks the batch path; ``transform`` (SageMaker batch transform) is the one built.
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
ENGINES = ["transform"]
"""Batch paths the DAG can take (``params.engine``)."""


def batch_package(
    outputs: str, group: str, endpoint: str, contract: str, model: str, package_arn: str
) -> str:
    """The package to score with: the one given, else the served one, else the newest Approved."""
    from pipelines.batch import package_to_score
    from pipelines.orchestration import model_clients

    clients = model_clients(outputs, group, endpoint)
    target = clients.settings.model_target(contract, model)
    return package_to_score(clients, target, package_arn or None)


def batch_transform(
    outputs: str,
    group: str,
    endpoint: str,
    contract_path: str,
    model: str,
    input_uri: str,
    run_id: str,
    package: str,
) -> dict:
    """Run the transform job over ``input_uri`` and register the output partition."""
    from pipelines.batch import transform_step
    from pipelines.orchestration import model_clients

    clients = model_clients(outputs, group, endpoint)
    return transform_step(clients, contract_path, model, input_uri, run_id, package)


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
        description=f"Score a batch with a {model.model} model package (SageMaker batch transform)",
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
            "engine": Param("transform", enum=ENGINES, description="Batch path"),
        },
    ) as dag:
        package = step(batch_package)(*common, model.contract, model.model, "{{ params.model_package_arn }}")
        step(batch_transform)(
            *common, contract_path, model.model, "{{ params.input_uri }}", "{{ params.run_id }}", package
        )
    return dag


SETTINGS = load_dag_settings(Path(__file__).resolve().parent)
for _model in SETTINGS.models:
    globals()[_model.names.batch_dag_id] = build_batch_dag(SETTINGS, _model)
