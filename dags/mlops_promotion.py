"""Promotion DAG, one per model: check the package -> a person approves (Airflow human-in-the-loop)
-> record the approval on the package -> start the promotion pipeline (staging, then prod behind the
pipeline's own manual approval).

Trigger with conf ``{"model_package_arn": "arn:aws:sagemaker:..."}``; the approver answers in the
Airflow UI (Required actions), giving the reason, and is recorded as the approver. The steps run in
the workers' pipeline interpreter (``@task.external_python``) and are self-contained.
"""

# pyright: reportArgumentType=false, reportIndexIssue=false, reportUnusedExpression=false, reportCallIssue=false
# (TaskFlow calls return XComArgs at parse time where the functions are typed with their run-time
# values, and `a >> b` is an expression: the checker cannot see through Airflow's DAG-building API.)

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG, Param, task

from pipelines.orchestration import DagSettings, ModelDag, load_dag_settings, promotion_dag_id

TAGS = ["mlops", "promotion"]


def check_package(outputs: str, group: str, endpoint: str, package_arn: str) -> dict:
    """The package is this model's and not rejected; what the approver sees."""
    from pipelines.orchestration import model_clients, package_for_promotion

    return package_for_promotion(model_clients(outputs, group, endpoint), package_arn)


def approve_package(outputs: str, group: str, endpoint: str, checked: dict, answer: dict) -> dict:
    """Record the approval (who answered, and the reason they gave) on the package."""
    from pipelines.orchestration import model_clients
    from pipelines.promote import approve_package as approve

    user = answer.get("responded_by_user") or {}
    approver = str(user.get("name") or user.get("id") or "")
    reason = str((answer.get("params_input") or {}).get("reason", ""))
    clients = model_clients(outputs, group, endpoint)
    recorded = approve(clients, checked["model_package_arn"], approver, reason)
    return {"approver": recorded.approver, "approved_at": recorded.approved_at}


def start_promotion(outputs: str, group: str, endpoint: str, approved: dict) -> str:
    """Start the promotion pipeline; its execution ID."""
    from pipelines.orchestration import model_clients
    from pipelines.orchestration import start_promotion as start

    return start(model_clients(outputs, group, endpoint), outputs)


def build_promotion_dag(settings: DagSettings, model: ModelDag) -> DAG:
    """The promotion DAG of ``model``."""
    common = (str(settings.outputs_file), model.model_package_group, model.endpoint)

    def step(fn: Any) -> Any:
        return task.external_python(
            task_id=fn.__name__,
            python=settings.worker_python,
            expect_airflow=False,
            env_vars={"PYTHONPATH": settings.worker_pythonpath},
        )(fn)

    with DAG(
        dag_id=promotion_dag_id(model.names),
        description=f"Approve a {model.model} model package and deploy it to staging and prod",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=[*TAGS, f"model:{model.names.slug}"],
        default_args={"retries": 0},
        params={"model_package_arn": Param(type="string", description="Model package ARN to promote")},
    ) as dag:
        package = step(check_package)(*common, "{{ params.model_package_arn }}")
        approval = ApprovalOperator(
            task_id="approval",
            subject=f"Promote {model.model} {{{{ params.model_package_arn }}}} to staging and prod?",
            body="Metrics: {{ ti.xcom_pull(task_ids='check_package')['metrics'] }}",
            params={"reason": Param(type="string", minLength=3, description="Why this model may ship")},
            response_timeout=timedelta(days=7),
        )
        package >> approval
        approved = step(approve_package)(*common, package, approval.output)
        step(start_promotion)(*common, approved)
    return dag


SETTINGS = load_dag_settings(Path(__file__).resolve().parent)
for _model in SETTINGS.models:
    globals()[promotion_dag_id(_model.names)] = build_promotion_dag(SETTINGS, _model)
