"""The rehearsal's retrain stage: run the training DAG run the monitoring DAG triggered, promote it.

The drift stage's monitoring DAG ends with ``TriggerDagRunOperator``, which creates a queued run of
the model's training DAG in Airflow's metadata database (``ctx.values["retrain_run"]``: its
``dag_id``, ``run_id`` and ``conf``). On MWAA the scheduler would pick that run up; the rehearsal has
no scheduler, so this stage reads the queued run back from the metadata database and executes the
same DAG with the same conf through the training stages' path (``rehearsal.airflow_runner`` in a
child process, :func:`rehearsal.lifecycle.run_training_dag`). Before that it lands a new batch
drawn from the drifted distribution (the data the world now produces): the triggered conf names no
batch, so the DAG ingests the newest landed object, as it would on AWS.

The DAG registers the retrained package and approves it in dev (its ``promote_dev`` task); the stage
then promotes it to the dev endpoint with the same stack deploy the canary stage uses (an
UpdateEndpoint with dev's blue/green guardrail) while traffic flows, and checks that the endpoint
serves the retrained package with no failed invocation during the shift.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rehearsal.run import Evidence, RunContext, Stage

RETRAIN_BATCH = "batch-3-retrain.csv"
"""The landed batch the retrain ingests (sorts after the earlier batches when LastModified ties)."""


def triggered_run_in_metadata_db(ctx: RunContext, dag_id: str, run_id: str) -> dict[str, Any] | None:
    """The triggered run as Airflow's metadata database holds it (``state``, ``conf``, ``run_type``).

    The database is the rehearsal's throwaway SQLite one under ``<out>/airflow`` (the child Airflow
    the monitoring DAG ran in); None when it holds no such run.
    """
    path = Path(_sqlite_path(ctx))
    if not path.is_file():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT state, conf, run_type, triggered_by FROM dag_run WHERE dag_id = ? AND run_id = ?",
            (dag_id, run_id),
        ).fetchone()
    if row is None:
        return None
    state, conf, run_type, triggered_by = row
    return {
        "state": state,
        "conf": json.loads(conf) if isinstance(conf, str | bytes) else conf,
        "run_type": run_type,
        "triggered_by": triggered_by,
    }


def _sqlite_path(ctx: RunContext) -> str:
    """The metadata database file of the child Airflow the monitoring DAG ran in (the drift stage
    records it; the default is the training DAG's throwaway home, :func:`rehearsal.lifecycle._airflow_env`)."""
    return str(ctx.values.get("airflow_db") or (ctx.out / "airflow").resolve() / "airflow.db")


def retrain_batch(ctx: RunContext) -> Any:
    """The batch the retrain ingests, drawn from the drifted distribution (the data the world now
    produces): a new seeded churn batch under :func:`rehearsal.monitoring_stage.rehearsal_drift`, or,
    with ``--data``, a seeded sample of the user's rows (without replacement, so the contract's unique
    keys stay unique) with the drift the drift stage injected (:func:`rehearsal.monitoring_stage.frame_drift`)."""
    from pipelines.synthetic import generate
    from rehearsal.lifecycle import SECOND_BATCH_SHARE
    from rehearsal.monitoring_stage import frame_drift, rehearsal_drift, rehearsed_model, user_rows

    if ctx.options.data is not None:
        own = user_rows(ctx)
        sample = own.sample(frac=SECOND_BATCH_SHARE, random_state=ctx.options.seed + 3).reset_index(drop=True)
        return frame_drift(ctx).apply(sample, ctx.options.seed + 3)
    return generate(
        rehearsed_model(ctx),
        rows=ctx.options.rows,
        seed=ctx.options.seed + 3,
        drift=rehearsal_drift(),
        id_offset=3 * ctx.options.rows,
    )


def land_retrain_batch(ctx: RunContext) -> str:
    """Land :func:`retrain_batch` under ``landing/<dataset>/``; its URI."""
    from rehearsal.lifecycle import _land_batch

    return _land_batch(ctx, retrain_batch(ctx), RETRAIN_BATCH)


def retrain(ctx: RunContext) -> Evidence:
    """Execute the triggered training DAG run (same DAG, same conf) and promote its package to dev."""
    from rehearsal.catalog import rehearsed_model
    from rehearsal.deploy import GuardrailRollbackError
    from rehearsal.lifecycle import (
        TrafficLoop,
        _deploy_package,
        _hosting,
        _packages,
        _serving,
        _training_evidence,
        canary_share,
        check_training,
        run_training_dag,
    )
    from rehearsal.monitoring_stage import alarm_history, record_alarm_transitions

    trigger = ctx.values.get("retrain_run")
    if not trigger:
        raise RuntimeError("the drift stage left no triggered training run (ctx.values['retrain_run'])")
    training_dag = rehearsed_model(ctx).training_dag_id
    if trigger["dag_id"] != training_dag:
        raise RuntimeError(f"the monitoring DAG triggered {trigger['dag_id']}, not {training_dag}")
    queued = triggered_run_in_metadata_db(ctx, trigger["dag_id"], trigger["run_id"])
    if queued is None:
        raise RuntimeError(
            f"Airflow's metadata database has no {trigger['dag_id']} run {trigger['run_id']}: "
            "the monitoring DAG's trigger did not create it"
        )
    conf = dict(queued["conf"] or {})
    batch_uri = land_retrain_batch(ctx)
    before = {p["ModelPackageArn"] for p in _packages(ctx)}
    started = time.monotonic()
    result = run_training_dag(ctx, conf, "retrain")
    training_s = round(time.monotonic() - started, 1)
    training = _training_evidence(ctx, result, before)
    problem = check_training(training, ctx)
    if problem:
        raise RuntimeError(f"the triggered retraining: {problem}")
    arn = str(training["package_arn"])
    ctx.values.setdefault("packages", []).append(arn)
    ctx.event("register", "retrained model approved", package=arn, run_id=result.get("run_id"))
    endpoint = ctx.values["endpoint"]
    previous = _serving(ctx, endpoint)
    share = canary_share(ctx)
    history_start = len(alarm_history(ctx))
    timeline_start = len(_hosting(ctx).timeline(endpoint))
    ctx.event(
        "deploy",
        "retrained model update started",
        package=arn,
        weights={"model 2": 1 - share, "retrained": share},
    )
    rolled_back: str | None = None
    with TrafficLoop(ctx, endpoint, ctx.values["rows"]) as loop:
        try:
            _deploy_package(ctx, arn)
        except GuardrailRollbackError as exc:
            rolled_back = str(exc)
            if exc.state is not None and ctx.deployment is not None:
                ctx.deployment.state = exc.state
    timeline = _hosting(ctx).timeline(endpoint)[timeline_start:]
    shares = [
        round(e["weights"].get("green", {}).get("share", 0.0), 3)
        for e in timeline
        if e["event"] == "traffic-shifted"
    ]
    transitions = record_alarm_transitions(ctx, history_start)
    serving = _serving(ctx, endpoint)
    if rolled_back is None:
        ctx.event(
            "traffic", "retrained model serves all traffic", endpoint=endpoint, weights={"retrained": 1.0}
        )
    return {
        "trigger": {
            "dag_id": trigger["dag_id"],
            "run_id": trigger["run_id"],
            "conf_sent": trigger["conf"],
            "metadata_db": queued,
        },
        "executed_run_id": result.get("run_id"),
        "executed_conf": conf,
        "batch_uri": batch_uri,
        "training_s": training_s,
        "package_arn": arn,
        "approval": training.get("approval"),
        "training_job": training.get("training_job"),
        "training_status": training.get("training_status"),
        "training_metrics": training.get("training_metrics", {}),
        "dag_state": training["dag_state"],
        "previous_config": previous["config"],
        "previous_packages": sorted({v["package"] for v in previous["variants"].values()}),
        "observed_green_shares": shares,
        "update_events": [e["event"] for e in timeline],
        "rolled_back": rolled_back,
        "traffic_ok": loop.traffic.ok,
        "traffic_errors": loop.traffic.errors,
        "traffic_error_samples": loop.traffic.error_samples,
        "alarm_transitions": transitions,
        "finished_at": datetime.now(UTC).isoformat(),
        **serving,
    }


def check_retrain(evidence: Evidence, ctx: RunContext) -> str | None:
    """The triggered conf ran, the new package is Approved in the group and serves all traffic, no errors."""
    from rehearsal.lifecycle import _group, _serving

    trigger = evidence["trigger"]
    if evidence["executed_conf"] != trigger["conf_sent"]:
        return f"the training DAG ran with {evidence['executed_conf']}, not the trigger's conf {trigger['conf_sent']}"
    if evidence["dag_state"] != "success":
        return f"the retraining run ended {evidence['dag_state']}"
    assert ctx.emulator is not None
    sm = ctx.emulator.client("sagemaker")
    package = sm.describe_model_package(ModelPackageName=evidence["package_arn"])
    if package.get("ModelPackageGroupName") != _group(ctx):
        return f"{evidence['package_arn']} is in {package.get('ModelPackageGroupName')}, not {_group(ctx)}"
    if package["ModelApprovalStatus"] != "Approved":
        return f"{evidence['package_arn']} is {package['ModelApprovalStatus']}, not Approved"
    if evidence["package_arn"] in evidence["previous_packages"]:
        return f"the endpoint already served {evidence['package_arn']} before the promotion"
    if evidence["rolled_back"]:
        return f"the guardrail rolled the retrained model back: {evidence['rolled_back']}"
    if "update-completed" not in evidence["update_events"]:
        return f"the endpoint update did not complete: {evidence['update_events']}"
    serving = _serving(ctx, ctx.values["endpoint"])
    packages = {v["package"] for v in serving["variants"].values()}
    if serving["status"] != "InService" or packages != {evidence["package_arn"]}:
        return f"the endpoint is {serving['status']} serving {sorted(packages)}, not the retrained package"
    if serving["config"] == evidence["previous_config"]:
        return f"the endpoint is still on its previous config {serving['config']}"
    if evidence["traffic_errors"] or not evidence["traffic_ok"]:
        return (
            f"{evidence['traffic_errors']} invocations failed ({evidence['traffic_ok']} succeeded) during the "
            f"shift: {evidence['traffic_error_samples']}"
        )
    return None


def retrain_headline(evidence: Evidence) -> str:
    """One line for the terminal summary: the retrained package, its metric, and the promotion."""
    arn = str(evidence.get("package_arn") or "")
    package = arn.rsplit("/", 2)[-2:] if arn else ["?"]
    metrics = evidence.get("training_metrics") or {}
    numeric = {k: v for k, v in sorted(metrics.items()) if isinstance(v, int | float)}
    preferred = [k for k in numeric if "auc" in k.lower() or "rmse" in k.lower()] or list(numeric)
    metric = f"{preferred[0]} {numeric[preferred[0]]:.3f}" if preferred else ""
    errors, ok = evidence.get("traffic_errors", 0), evidence.get("traffic_ok", 0)
    return (
        f"retrained {'/'.join(package)}{f' ({metric})' if metric else ''} from {evidence.get('executed_run_id')}; "
        f"serving on {evidence.get('config')}; {errors} of {ok + errors} invocations failed during the shift"
    )


def retrain_stage() -> Stage:
    """The retrain stage: the triggered run trains, registers and approves a model that then serves."""
    return Stage(
        "retrain",
        retrain,
        "the triggered training run registers an Approved package; the guardrail update makes it serve "
        "with no failed invocation",
        check_retrain,
        retrain_headline,
    )
