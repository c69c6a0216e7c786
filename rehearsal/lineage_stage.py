"""The serving model's lineage at the end of the rehearsal, computed by ``mlops lineage``'s code.

The training DAG's tasks track their runs in a local MLflow store under the run folder
(:func:`tracking_uri`; the Airflow child gets it as ``MLOPS_MLFLOW_TRACKING_URI``). After the last
lifecycle stage, :func:`with_lineage` traces the rehearsed model's endpoint with
:func:`pipelines.provenance.lineage` and adds the document to that stage's evidence (summary.json,
``lineage``) and to the report; the claim is that the serving package and its MLflow run point at
each other. Links that were not recorded are listed under ``missing`` in the document.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rehearsal.run import Evidence, RunContext, Stage

TRACKING_DIR = "mlflow"
"""Folder of the run's MLflow store (``mlflow.db`` and the artifacts beside it)."""
LINEAGE_KEY = "lineage"
"""Key of the lineage document in ``ctx.values`` and in the wrapped stage's evidence."""


STORE_CHILD = "tracking_store_child"
"""``ctx.values`` key of the child process creating the store (:func:`start_tracking_store`)."""
_CREATE_STORE = (
    "import sys\n"
    "from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore\n"
    "SqlAlchemyStore(sys.argv[1], sys.argv[2])\n"
)


def _store_uri(ctx: RunContext) -> str:
    folder = (ctx.out / TRACKING_DIR).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def start_tracking_store(ctx: RunContext) -> None:
    """Create the run's MLflow store (its database schema) in a background child process.

    On AWS the stack's MLflow App exists, with its database, before the first training run; here the
    schema (MLflow's migrations: about 4.5 s on this machine) is created while the stack deploys
    instead of inside the first evaluate task. :func:`tracking_uri` waits for it.
    """
    import subprocess
    import sys

    if STORE_CHILD in ctx.values:
        return
    uri = _store_uri(ctx)
    folder = (ctx.out / TRACKING_DIR).resolve()
    with (folder / "store-setup.log").open("wb") as log:
        ctx.values[STORE_CHILD] = ctx.spawn(
            [sys.executable, "-c", _CREATE_STORE, uri, (folder / "mlflow-artifacts").as_uri()],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def tracking_uri(ctx: RunContext) -> str:
    """The rehearsal's MLflow tracking URI: a SQLite store in the run folder (artifacts beside it),
    once :func:`start_tracking_store` (if it was started) has created it.

    Raises:
        RuntimeError: creating the store failed (its log is named).
    """
    child = ctx.values.get(STORE_CHILD)
    if child is not None and child.poll() is None:
        child.wait(timeout=600)
    if child is not None and child.returncode != 0:
        log = (ctx.out / TRACKING_DIR).resolve() / "store-setup.log"
        raise RuntimeError(
            f"creating the rehearsal's MLflow store failed (exit {child.returncode}): {log.read_text()[-1500:]}"
        )
    return _store_uri(ctx)


def serving_lineage(ctx: RunContext) -> dict[str, Any]:
    """The lineage document of the rehearsed model's endpoint (the deployer's read-only view)."""
    import boto3

    from pipelines.aws import AwsClients
    from pipelines.provenance import lineage
    from pipelines.settings import load_settings
    from rehearsal.catalog import rehearsed_model

    assert ctx.emulator is not None, "the emulator stage did not run"
    assert ctx.deployment is not None, "the deploy stage did not run"
    settings = load_settings(ctx.deployment.outputs_file, mlflow_tracking_uri=tracking_uri(ctx))
    session = boto3.Session(region_name=settings.region, **ctx.emulator.credentials)
    started = time.monotonic()
    document = lineage(AwsClients(settings, session=session), endpoint=rehearsed_model(ctx).endpoint)
    document["computed_in_s"] = round(time.monotonic() - started, 3)
    return document


def lineage_problem(document: dict[str, Any]) -> str | None:
    """Why the serving model cannot be traced to its MLflow run (None: it can; other gaps are listed)."""
    from pipelines.provenance import missing_links

    gaps = missing_links(document)
    endpoints = document.get("endpoints") or []
    packages = [v["package"] for e in endpoints for v in e["variants"] if v.get("package")]
    if not packages:
        return "the endpoint serves no model package to trace"
    serving = max(
        (v for e in endpoints for v in e["variants"] if v.get("package")),
        key=lambda v: float(v.get("weight") or 0),
    )["package"]
    if serving.get("mlflow_run") is None:
        return f"the serving package {serving['model_package_arn']} has no MLflow run: {'; '.join(gaps)}"
    # Other gaps (e.g. batches: features built by the EMR job write no _lineage.json yet) are listed
    # under "missing" in the document and the report, not a failure of this claim.
    return None


def with_lineage(stages: list[Stage]) -> list[Stage]:
    """``stages`` with the last one also tracing the serving model's lineage and checking it is complete."""
    if not stages:
        return stages
    last = stages[-1]

    def run(ctx: RunContext) -> Evidence:
        evidence = last.run(ctx)
        document = serving_lineage(ctx)
        ctx.values[LINEAGE_KEY] = document
        return {**evidence, LINEAGE_KEY: document}

    def check(evidence: Evidence, ctx: RunContext) -> str | None:
        return last.check(evidence, ctx) or lineage_problem(evidence[LINEAGE_KEY])

    return [
        *stages[:-1],
        replace(last, run=run, check=check, claim=f"{last.claim}; the serving model's lineage is traced"),
    ]
