"""The rehearsal's drift stage: traffic through the endpoint, the monitoring DAG, the retrain trigger.

:func:`drift_stage` sends clean traffic, then drifted traffic (:mod:`pipelines.synthetic`'s shift,
scale and category drift), to the serving endpoint through ``sagemaker-runtime`` InvokeEndpoint; the
emulator writes data capture into the capture bucket. Then it runs the model's monitoring DAG with
``dag.test()`` twice: over the clean window (the control: no retrain) and over the drifted window.
The claim is checked from what really happened: the drift report in S3 names the injected
features, ``MLOps/Monitoring`` metrics are in the emulated CloudWatch, and the DAG's
``TriggerDagRunOperator`` created the training DAG run in Airflow's metadata database (the monitoring
DAG triggers through Airflow, not through the MWAA REST API).

What the stage needs from the earlier stages (``ctx.values``):

- ``serving_endpoint``: the InService endpoint (default: the deploy's ``endpointName`` output);
- ``dag_outputs_file``: the stack outputs file the DAGs read (default: the deploy's outputs plus the
  local worker interpreter, written by :func:`dag_outputs_file`);
- ``drift_traffic`` (optional): ``(rows, seed, drifted) -> DataFrame`` of feature rows in the
  model's column order; default :func:`synthetic_traffic` from the contract.

It leaves ``ctx.values["retrain_run"]`` (the triggered run's ``dag_id``, ``run_id``, ``conf``) for a
later stage that runs that training DAG run to a registered, promoted package.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rehearsal.quality_check import quality_evidence, quality_headline, write_ground_truth
from rehearsal.run import Evidence, RunContext, Stage

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.synthetic import DriftSpec

REPO = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO / "dags"

REHEARSAL_DRIFT_FEATURES = ("monthly_charges", "tenure_months", "contract_type")
"""The churn features the rehearsal drifts (the claim: these, and only drifted windows, are flagged)."""

TrafficSource = Callable[[int, int, bool], "pd.DataFrame"]


def rehearsed_model(ctx: RunContext) -> str:
    """The contract of the model the rehearsal monitors and retrains (:func:`rehearsal.catalog.rehearsed_model`)."""
    from rehearsal.catalog import contract_of

    return str(contract_of(ctx).name)


def rehearsal_drift() -> DriftSpec:
    """The drift the rehearsal injects into the churn traffic (and into the batch it retrains on)."""
    from pipelines.synthetic import DriftSpec

    return DriftSpec(
        numeric_scale={"tenure_months": 2.5},
        numeric_shift={"monthly_charges": 30.0},
        category_weights={"contract_type": {"month-to-month": 0.05, "one-year": 0.15, "two-year": 0.8}},
    )


def synthetic_traffic(ctx: RunContext) -> TrafficSource:
    """Model-input rows for the rehearsal's contract from :mod:`pipelines.synthetic`; drifted on demand.

    The rows are what the endpoint's serving contract asks for (docs/serving-and-monitoring.md): every
    model input in ``metadata.json`` order (numeric, derived, categorical), the derived features
    computed as the feature job computes them (:func:`pipelines.features.spec.build_features_pandas`),
    no target, no keys. Raw contract columns alone (no derived features) are refused by the inference
    handler, and the scikit-learn image answers any handler error with HTTP 500.
    """
    from pipelines.contract import load_contract
    from pipelines.features.spec import build_features_pandas, feature_spec
    from pipelines.synthetic import DriftSpec, generate

    contract = ctx.values.get("contract") or load_contract(ctx.options.contract or rehearsed_model(ctx))
    spec = feature_spec(contract)
    columns = contract.feature_names
    drift = rehearsal_drift()

    def rows(count: int, seed: int, drifted: bool) -> pd.DataFrame:
        frame = generate(contract.name, count, seed, drift if drifted else DriftSpec())
        return build_features_pandas(frame, spec).loc[:, columns]

    return rows


def dag_outputs_file(ctx: RunContext) -> Path:
    """The outputs file the DAGs read: the deploy's outputs plus this machine's worker interpreter."""
    if "dag_outputs_file" in ctx.values:
        return Path(ctx.values["dag_outputs_file"])
    assert ctx.deployment is not None
    assert ctx.deployment.outputs_file is not None
    outputs = json.loads(Path(ctx.deployment.outputs_file).read_text())
    outputs.update(
        {
            "workerPython": sys.executable,
            "workerPythonPath": str(REPO),
            "contractsDir": str(REPO / "contracts"),
            "airflowAwsConnId": None,
            "pollSeconds": 1,
        }
    )
    path = ctx.out / "stack" / "dag_outputs.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outputs, indent=2) + "\n")
    ctx.values["dag_outputs_file"] = str(path)
    return path


def airflow_environment(ctx: RunContext) -> None:
    """A throwaway Airflow home and SQLite metadata DB under the output folder (before Airflow imports).

    When Airflow is already configured (``AIRFLOW_HOME`` set, as in the tests), it is used as is. The
    home is the one the training DAG's child runner uses (``rehearsal.lifecycle._airflow_env``): a
    database it already migrated is kept (its runs stay visible), a new one is created.
    """
    if os.environ.get("AIRFLOW_HOME") or "airflow" in sys.modules:
        return
    home = ctx.out / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    bundle = [
        {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(DAGS_FOLDER)},
        }
    ]
    values = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundle),
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)

    def restore() -> None:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    ctx.on_close("airflow environment", restore)
    marker = home / ".migrated"  # written by rehearsal.airflow_runner after it migrates the database
    if marker.exists() and (home / "airflow.db").exists():
        return
    from airflow.utils import db

    db.resetdb()
    marker.write_text("1")


def send_traffic(
    ctx: RunContext,
    endpoint: str,
    frame: pd.DataFrame,
    rows_per_request: int = 20,
    inference_prefix: str | None = None,
) -> int:
    """InvokeEndpoint with CSV batches of ``frame`` (each with an ``InferenceId`` when
    ``inference_prefix`` is given, :func:`rehearsal.quality_check.inference_id`); return the number of
    predictions read back."""
    from rehearsal.quality_check import inference_id

    assert ctx.emulator is not None
    runtime = ctx.emulator.client("sagemaker-runtime")
    predictions = 0
    for start in range(0, len(frame), rows_per_request):
        body = frame.iloc[start : start + rows_per_request].to_csv(header=False, index=False)
        extra = {"InferenceId": inference_id(inference_prefix, start)} if inference_prefix else {}
        response = runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body, **extra)
        payload = response["Body"].read().decode()
        predictions += _count_predictions(payload)
    return predictions


def _count_predictions(payload: str) -> int:
    try:
        value = json.loads(payload)
    except json.JSONDecodeError:
        return len([line for line in payload.splitlines() if line.strip()])
    if isinstance(value, dict):
        value = value.get("predictions", value.get("scores", []))
    return len(value) if isinstance(value, list) else 1


def _flush_capture(ctx: RunContext) -> None:
    from rehearsal.endpoints import SageMakerHosting

    assert ctx.emulator is not None
    for extension in ctx.emulator.extensions:
        if isinstance(extension, SageMakerHosting):
            extension.flush_capture()


def _capture_objects(ctx: RunContext, bucket: str, prefix: str) -> int:
    assert ctx.emulator is not None
    pages = ctx.emulator.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(len(page.get("Contents", [])) for page in pages)


def run_monitoring_dag(dag_id: str, training_dag_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    """``dag.test()`` the monitoring DAG over ``[start, end)``; return task states and new training runs."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    def training_runs() -> dict[str, Any]:
        with create_session() as session:
            rows = session.query(DagRun).filter(DagRun.dag_id == training_dag_id).all()
            return {r.run_id: {"conf": r.conf, "state": str(r.state)} for r in rows}

    before = training_runs()
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if dag_id not in bag.dags:
        raise RuntimeError(f"the DAG folder has no {dag_id} (import errors: {bag.import_errors})")
    run = bag.dags[dag_id].test(run_conf={"window_start": start.isoformat(), "window_end": end.isoformat()})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    after = training_runs()
    return {
        "run_id": run.run_id,
        "state": str(run.state),
        "tasks": states,
        "triggered": {k: v for k, v in after.items() if k not in before},
    }


def _window_key(start: datetime, end: datetime) -> str:
    return f"{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}"


def _drift_report(ctx: RunContext, bucket: str, endpoint: str, start: datetime, end: datetime) -> Any:
    from pipelines.monitoring.drift import DriftReport

    assert ctx.emulator is not None
    key = f"monitoring/{endpoint}/{_window_key(start, end)}/report.json"
    body = ctx.emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return DriftReport.from_dict(json.loads(body))


def drift(ctx: RunContext) -> Evidence:
    """Clean then drifted traffic through the endpoint; the monitoring DAG over each window."""
    from pipelines.orchestration import load_dag_settings
    from rehearsal.stages import endpoint_weights

    assert ctx.emulator is not None
    outputs_file = dag_outputs_file(ctx)
    previous = os.environ.get("MLOPS_OUTPUTS_FILE")
    os.environ["MLOPS_OUTPUTS_FILE"] = str(outputs_file)

    def restore_outputs() -> None:
        if previous is None:
            os.environ.pop("MLOPS_OUTPUTS_FILE", None)
        else:
            os.environ["MLOPS_OUTPUTS_FILE"] = previous

    ctx.on_close("MLOPS_OUTPUTS_FILE", restore_outputs)
    airflow_environment(ctx)
    outputs = json.loads(outputs_file.read_text())
    settings = load_dag_settings(DAGS_FOLDER)
    contract_name = rehearsed_model(ctx)
    model = next((m for m in settings.models if m.model == contract_name), settings.models[0])
    endpoint = ctx.values.get("serving_endpoint") or ctx.values.get("endpoint") or model.endpoint
    traffic: TrafficSource = ctx.values.get("drift_traffic") or synthetic_traffic(ctx)
    rows = 600  # fewer rows make the clean control window look drifted (sampling noise vs the baseline)
    capture_bucket = outputs["captureBucket"]
    capture_prefix = f"{model.names.capture_prefix}/{endpoint}/"

    labelled = "drift_traffic" not in ctx.values  # labels are known for the synthetic traffic only

    def window(drifted: bool, seed: int) -> tuple[datetime, datetime, int]:
        start = datetime.now(UTC).replace(microsecond=0)
        ids = f"drift-{seed}" if drifted and labelled else None
        sent = send_traffic(ctx, endpoint, traffic(rows, seed, drifted), inference_prefix=ids)
        _flush_capture(ctx)
        end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        time.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()))
        return start, end, sent

    history_start = len(alarm_history(ctx))
    clean_start, clean_end, clean_sent = window(False, ctx.options.seed + 101)
    weights = endpoint_weights(ctx, endpoint)
    ctx.event(
        "traffic", f"predictions read back for {clean_sent} clean rows", endpoint=endpoint, weights=weights
    )
    drift_start, drift_end, drift_sent = window(True, ctx.options.seed + 202)
    ctx.event(
        "traffic", f"predictions read back for {drift_sent} drifted rows", endpoint=endpoint, weights=weights
    )
    captured = _capture_objects(ctx, capture_bucket, capture_prefix)
    if captured == 0:
        raise RuntimeError(
            f"no capture data reached s3://{capture_bucket}/{capture_prefix}: the endpoint's data capture "
            "is off or points elsewhere, so there is nothing to monitor"
        )
    if labelled:  # the drifted window's ground truth lands before its monitoring run
        write_ground_truth(
            ctx, capture_bucket, endpoint, rows, ctx.options.seed + 202, f"drift-{ctx.options.seed + 202}", 20
        )
    training_dag_id = model.names.training_dag_id
    control = run_monitoring_dag(model.names.monitoring_dag_id, training_dag_id, clean_start, clean_end)
    drifted = run_monitoring_dag(model.names.monitoring_dag_id, training_dag_id, drift_start, drift_end)
    artifacts = outputs["artifactsBucket"]
    control_report = _drift_report(ctx, artifacts, endpoint, clean_start, clean_end)
    drift_report = _drift_report(ctx, artifacts, endpoint, drift_start, drift_end)
    ctx.drift_reports.append(drift_report)
    window_key = _window_key(drift_start, drift_end)
    quality = quality_evidence(ctx, artifacts, endpoint, window_key) if labelled else None
    cloudwatch = ctx.emulator.client("cloudwatch")
    metrics = sorted(
        {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="MLOps/Monitoring")["Metrics"]}
    )
    for item in drift_report.features:
        if item.statistic is not None:
            ctx.metrics[f"drift {item.name} ({item.method})"] = float(item.statistic)
    transitions = record_alarm_transitions(ctx, history_start)
    triggered = drifted["triggered"]
    if len(triggered) == 1:
        run_id, run = next(iter(triggered.items()))
        ctx.values["retrain_run"] = {"dag_id": training_dag_id, "run_id": run_id, "conf": run["conf"]}
        ctx.event("retrain", f"monitoring triggered {training_dag_id} run {run_id}")
    return {
        "endpoint": endpoint,
        "predictions_read_back": {"clean": clean_sent, "drifted": drift_sent},
        "capture_objects": captured,
        "rows_per_window": rows,
        "control_window": [clean_start.isoformat(), clean_end.isoformat()],
        "drift_window": [drift_start.isoformat(), drift_end.isoformat()],
        "control_drifted_features": list(control_report.drifted_features),
        "drifted_features": {
            f.name: {"method": f.method, "statistic": f.statistic, "status": f.status}
            for f in drift_report.features
            if f.name in drift_report.drifted_features
        },
        "evaluated_features": drift_report.evaluated_features,
        "drift_share": drift_report.drift_share,
        "dataset_drift": drift_report.dataset_drift,
        "expected_drift": list(REHEARSAL_DRIFT_FEATURES) if "drift_traffic" not in ctx.values else None,
        "control_tasks": control["tasks"],
        "drift_tasks": drifted["tasks"],
        "control_triggered": sorted(control["triggered"]),
        "triggered_training_runs": sorted(triggered),
        "training_dag_id": training_dag_id,
        "monitoring_metrics": metrics,
        "retrain_conf": ctx.values.get("retrain_run", {}).get("conf"),
        "alarm_transitions": transitions,
        "quality": quality,
    }


def alarm_history(ctx: RunContext) -> list[Any]:
    """The emulated CloudWatch's alarm transitions so far (empty when the alarm evaluator is absent)."""
    assert ctx.emulator is not None
    for extension in ctx.emulator.extensions:
        if extension.name == "cloudwatch-alarms":
            return list(getattr(extension, "history", []))
    return []


def record_alarm_transitions(ctx: RunContext, start: int) -> list[dict[str, Any]]:
    """The transitions since ``start`` as JSON; those into ALARM go to ``ctx.alarms_fired`` and the timeline."""
    transitions = [{**t.as_dict(), "at": t.time.isoformat()} for t in alarm_history(ctx)[start:]]
    for transition in transitions:
        if transition["to"] == "ALARM":
            ctx.alarms_fired.append(transition)
            ctx.event("alarm", f"{transition['alarm']} -> ALARM")
    return transitions


def check_drift(evidence: Evidence, ctx: RunContext) -> str | None:
    """Drift on the injected features only in the drifted window; metrics published; one retrain run."""
    expected = evidence.get("expected_drift") or ctx.values.get("expected_drift") or []
    missing = [f for f in expected if f not in evidence["drifted_features"]]
    if missing:
        return f"drift not detected on the injected features {missing} (drifted: {list(evidence['drifted_features'])})"
    if not evidence["drifted_features"]:
        return "the drifted window's report flags no feature"
    if evidence["control_drifted_features"]:
        return f"the clean control window was flagged as drifted on {evidence['control_drifted_features']}"
    if evidence["control_triggered"] or evidence["control_tasks"].get("trigger_training") != "skipped":
        return f"clean traffic triggered retraining: {evidence['control_triggered']}"
    if evidence["drift_tasks"].get("trigger_training") != "success":
        return f"the drifted window did not trigger retraining: tasks {evidence['drift_tasks']}"
    if len(evidence["triggered_training_runs"]) != 1:
        return f"expected one triggered {evidence['training_dag_id']} run, got {evidence['triggered_training_runs']}"
    if "DatasetDrift" not in evidence["monitoring_metrics"]:
        return f"no DatasetDrift metric in MLOps/Monitoring (metrics: {evidence['monitoring_metrics']})"
    return None


def drift_headline(evidence: Evidence) -> str:
    """One line for the terminal summary: how many features drifted, which, and the retrain decision."""
    drifted = list(evidence.get("drifted_features") or {})
    evaluated = evidence.get("evaluated_features")
    names = ", ".join(drifted[:4]) + (f" (+{len(drifted) - 4})" if len(drifted) > 4 else "")
    count = f"{len(drifted)} of {evaluated}" if evaluated is not None else str(len(drifted))
    decision = "retrain triggered" if evidence.get("triggered_training_runs") else "no retrain triggered"
    control = evidence.get("control_drifted_features") or []
    clean = f"clean window flagged {', '.join(control)}" if control else "clean window clean"
    return f"{count} features drifted: {names or 'none'}; {decision}; {clean}" + quality_headline(
        evidence.get("quality")
    )


def drift_stage() -> Stage:
    """The drift stage: drifted traffic is detected and triggers the training DAG; clean traffic is not."""
    return Stage(
        "drift",
        drift,
        "injected drift is detected per feature, published to MLOps/Monitoring, and triggers retraining "
        "(a clean control window does not)",
        check_drift,
        drift_headline,
    )
