"""MWAA: private web server, all Airflow logs on, customer-managed key."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.core import Context, Level, is_truthy, resource_rule

ENVIRONMENT = "aws:mwaa/environment:Environment"
LOG_TYPES = ("dagProcessingLogs", "schedulerLogs", "taskLogs", "webserverLogs", "workerLogs")


@resource_rule(
    "mwaa-private-webserver",
    [ENVIRONMENT],
    level=Level.ADVISORY,
    staging=Level.MANDATORY,
    prod=Level.MANDATORY,
    why="A public Airflow UI exposes DAG triggers and connections to the internet behind only IAM sign-in.",
    fix="Set airflow.webserverAccessMode: PRIVATE_ONLY (reach it through the VPC).",
)
def private_webserver(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """The MWAA web server is private (mandatory in staging and prod).

    Mirrors: CKV2_AWS_66
    """
    if props.get("webserverAccessMode") != "PRIVATE_ONLY":
        yield f"webserverAccessMode is {props.get('webserverAccessMode')!r}"


@resource_rule(
    "mwaa-logging",
    [ENVIRONMENT],
    why="Scheduler, worker and web server logs are how a failed or tampered DAG run is investigated.",
    fix="Enable every loggingConfiguration log type (the Airflow component does).",
)
def logging(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Every MWAA log type (DAG processing, scheduler, task, web server, worker) is enabled.

    Mirrors: CKV_AWS_242, CKV_AWS_243, CKV_AWS_244
    """
    cfg = props.get("loggingConfiguration") or {}
    missing = [t for t in LOG_TYPES if not is_truthy((cfg.get(t) or {}).get("enabled"))]
    if missing:
        yield f"log types not enabled: {', '.join(missing)}"


@resource_rule(
    "mwaa-kms",
    [ENVIRONMENT],
    why="MWAA's metadata database and logs hold connection details and task output; a customer key keeps them under the platform's key policy.",
    fix="Set kmsKey to the platform's KMS key ARN.",
)
def kms(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """The MWAA environment is encrypted with a customer-managed key.

    Mirrors: none (MWAA KmsKey)
    """
    if not props.get("kmsKey"):
        yield "no kmsKey"
