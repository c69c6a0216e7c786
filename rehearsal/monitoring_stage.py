"""The rehearsal's drift stage: traffic through the endpoint, the monitoring DAG, the retrain trigger.

:func:`drift_stage` sends clean traffic, then drifted traffic, to the serving endpoint through
``sagemaker-runtime`` InvokeEndpoint; the emulator writes data capture into the capture bucket. The
drift (:func:`injected_drift`) is churn's :func:`rehearsal_drift` for the default run, and, with
``--data FILE --contract FILE``, one derived from the contract over the user's own rows
(:func:`pipelines.synthetic.plan_frame_drift`: numeric columns shifted by their standard deviation,
categorical ones moved to their least frequent value, enough of them to clear the dataset drift
share with a margin). Then it runs the model's monitoring DAG with ``dag.test()`` in a child Airflow
process (``rehearsal.airflow_runner``, the training DAG's throwaway home and SQLite database; none
of the caller's ``AIRFLOW*`` environment), twice: over the clean window (the control: no retrain)
and over the drifted window. The claim is checked from what really happened: the drift report in S3
names the injected features (with ``--data``: only those and the derived features computed from
them), ``MLOps/Monitoring`` metrics are in the emulated CloudWatch, and the DAG's
``TriggerDagRunOperator`` created the training DAG run in the child's metadata database (the
monitoring DAG triggers through Airflow, not through the MWAA REST API).

What the stage needs from the earlier stages (``ctx.values``):

- ``serving_endpoint``: the InService endpoint (default: the deploy's ``endpointName`` output);
- ``dag_outputs_file`` (tests): a stack outputs file of their own for the DAGs (default: the one
  :func:`rehearsal.lifecycle._airflow_env` writes from the deployed stack);
- ``drift_traffic`` (optional): ``(rows, seed, drifted) -> DataFrame`` of feature rows in the
  model's column order; default :func:`synthetic_traffic` from the contract.

It leaves ``ctx.values["retrain_run"]`` (the triggered run's ``dag_id``, ``run_id``, ``conf``) and
``ctx.values["airflow_db"]`` (the child's metadata database) for the retrain stage, which runs that
training DAG run to a registered, promoted package.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rehearsal.quality_check import quality_evidence, quality_headline, write_ground_truth
from rehearsal.run import Evidence, RunContext, Stage

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.synthetic import DriftSpec, FrameDrift


REHEARSAL_DRIFT_FEATURES = (
    "monthly_charges",
    "tenure_months",
    "contract_type",
    "payment_method",
    "region",
)
"""The churn features the rehearsal drifts (the claim: these, and only drifted windows, are flagged).

With the columns they move (``total_charges`` is tenure times charges in the generator, and the
derived features follow their inputs) 8 of churn's 11 model inputs drift against the 0.5 share (6)
the retrain policy needs: two features to spare, so one borderline test cannot flip the decision
(with the first three alone, 6 of 11 drifted: none to spare)."""

TrafficSource = Callable[[int, int, bool], "pd.DataFrame"]


@dataclass(frozen=True)
class InjectedDrift:
    """What the rehearsal drifts: the features it claims, and whether only those may be flagged."""

    features: tuple[str, ...]
    """The drifted contract columns: each must be flagged in the drifted window."""
    follows: tuple[str, ...] = ()
    """Derived model inputs computed from a drifted column (flagged or not, both are right)."""
    exact: bool = False
    """True: any other flagged feature fails the stage (the columns are drifted independently in
    the dataset's own rows). False for the churn generator, whose columns are correlated."""
    description: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """For the stage's evidence."""
        return {
            "features": list(self.features),
            "follows": list(self.follows),
            "exact": self.exact,
            "description": list(self.description),
        }


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
        category_weights={
            "contract_type": {"month-to-month": 0.05, "one-year": 0.15, "two-year": 0.8},
            "region": {"north": 0.7, "south": 0.1, "east": 0.1, "west": 0.1},
            "payment_method": {
                "card": 0.05,
                "bank_transfer": 0.05,
                "electronic_check": 0.1,
                "mailed_check": 0.8,
            },
        },
    )


def user_rows(ctx: RunContext) -> pd.DataFrame:
    """The user's dataset (``--data``) as the pipeline reads it (:func:`pipelines.validate.read_batch`)."""
    from pipelines.validate import read_batch
    from rehearsal.catalog import contract_of

    path = Path(ctx.values.get("data_file") or ctx.options.data or "")
    if not path.is_file():
        raise RuntimeError(f"the user's dataset {path} is not a file: the data stage did not run")
    return read_batch(path.read_bytes(), path.name, contract_of(ctx))


def reference_rows(ctx: RunContext) -> pd.DataFrame:
    """The ``train`` split the feature job wrote for the rehearsed contract: the rows the evaluation
    step draws the drift baseline from (:func:`pipelines.evaluate.evaluate_frames`), keys and target
    included (what :func:`pipelines.features.spec.build_features_pandas` needs)."""
    import io

    import pandas as pd

    from rehearsal.catalog import contract_of

    if "reference_rows" in ctx.values:
        return ctx.values["reference_rows"]
    assert ctx.emulator is not None
    assert ctx.deployment is not None, "the deploy stage did not run"
    bucket = str(ctx.deployment.outputs["featuresBucket"])
    prefix = f"features/{contract_of(ctx).name}/"  # pipelines.features.local.features_prefix
    s3 = ctx.emulator.client("s3")
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
        if o["Key"].endswith(".parquet")
    ]
    if not keys:
        raise RuntimeError(f"no feature Parquet in s3://{bucket}/{prefix}: the feature job wrote nothing")
    frames = [pd.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in keys]
    frame = pd.concat(frames, ignore_index=True)
    if "__split__" in frame.columns:
        frame = pd.DataFrame(frame[frame["__split__"] == "train"])
    if frame.empty:
        raise RuntimeError(f"the features under s3://{bucket}/{prefix} have no train split rows")
    ctx.values["reference_rows"] = frame.reset_index(drop=True)
    return ctx.values["reference_rows"]


def frame_drift(ctx: RunContext) -> FrameDrift:
    """The drift planned from the contract over the user's rows (:func:`pipelines.synthetic.plan_frame_drift`)."""
    from pipelines.monitoring.drift import DriftConfig
    from pipelines.synthetic import plan_frame_drift
    from rehearsal.catalog import contract_of

    if "frame_drift" not in ctx.values:
        ctx.values["frame_drift"] = plan_frame_drift(
            contract_of(ctx), user_rows(ctx), DriftConfig().drift_share
        )
    return ctx.values["frame_drift"]


def injected_drift(ctx: RunContext) -> InjectedDrift:
    """The drift of this rehearsal: churn's :func:`rehearsal_drift`, or the one derived from the contract."""
    from pipelines.synthetic import derived_from
    from rehearsal.catalog import contract_of

    if ctx.options.data is None:
        spec = rehearsal_drift()
        described = [f"{k}: x{v}" for k, v in spec.numeric_scale.items()]
        described += [f"{k}: {v:+}" for k, v in spec.numeric_shift.items()]
        described += [f"{k}: weights {v}" for k, v in spec.category_weights.items()]
        return InjectedDrift(REHEARSAL_DRIFT_FEATURES, description=tuple(described))
    plan = frame_drift(ctx)
    follows = derived_from(contract_of(ctx), plan.features)
    return InjectedDrift(
        tuple(plan.features),
        tuple(follows),
        exact=True,
        description=tuple(c.describe() for c in plan.columns),
    )


def synthetic_traffic(ctx: RunContext) -> TrafficSource:
    """Model-input rows for the rehearsal's contract; drifted on demand.

    The rows are what the endpoint's serving contract asks for (docs/serving-and-monitoring.md): every
    model input in ``metadata.json`` order (numeric, derived, categorical), the derived features
    computed as the feature job computes them (:func:`pipelines.features.spec.build_features_pandas`),
    no target, no keys. Raw contract columns alone (no derived features) are refused by the inference
    handler, and the scikit-learn image answers any handler error with HTTP 500.

    Without ``--data`` the rows come from :mod:`pipelines.synthetic`'s churn generator (drifted:
    :func:`rehearsal_drift`); with it, from the user's own rows the drift baseline was computed on
    (:func:`reference_rows`), sampled without replacement (with replacement only beyond its size;
    drifted: :func:`frame_drift` applied to the sample). :func:`window_rows` sends the whole
    reference when it is small: a sample of the same population is flagged on some feature by
    sampling noise alone (Wasserstein/std >= 0.1 at 600 rows, p < 0.05 for the small-sample tests),
    which a wide table's control window would not survive (a 40-feature table flagged one to three
    features in three of four clean 600-row windows).
    """
    from pipelines.contract import load_contract
    from pipelines.features.spec import build_features_pandas, feature_spec
    from pipelines.synthetic import DriftSpec, generate

    contract = ctx.values.get("contract") or load_contract(ctx.options.contract or rehearsed_model(ctx))
    spec = feature_spec(contract)
    columns = contract.feature_names
    if ctx.options.data is not None:
        own = reference_rows(ctx)
        plan = frame_drift(ctx)

        def resampled(count: int, seed: int, drifted: bool) -> pd.DataFrame:
            replace = count > len(own)
            sample = own.sample(n=count, replace=replace, random_state=seed).reset_index(drop=True)
            if drifted:  # the raw columns move; the derived features are computed again from them
                sample = build_features_pandas(plan.apply(sample, seed), spec)
            return sample.loc[:, columns]

        return resampled
    drift = rehearsal_drift()

    def rows(count: int, seed: int, drifted: bool) -> pd.DataFrame:
        frame = generate(contract.name, count, seed, drift if drifted else DriftSpec())
        return build_features_pandas(frame, spec).loc[:, columns]

    return rows


WINDOW_ROWS = 600
"""Rows per monitoring window for churn (fewer make the clean control window look drifted)."""
USER_WINDOW_ROWS_MAX = 3000
"""Rows per window with ``--data``: the whole drift reference up to this many."""


def window_rows(ctx: RunContext) -> int:
    """Rows sent per monitoring window: :data:`WINDOW_ROWS`, or with ``--data`` the reference's size
    (capped at :data:`USER_WINDOW_ROWS_MAX`, at least :data:`WINDOW_ROWS`)."""
    if ctx.options.data is None or "drift_traffic" in ctx.values:
        return WINDOW_ROWS
    return max(WINDOW_ROWS, min(len(reference_rows(ctx)), USER_WINDOW_ROWS_MAX))


def monitoring_env(ctx: RunContext) -> tuple[dict[str, str], Path]:
    """The child Airflow's environment and home for the monitoring DAG.

    The training DAG's (:func:`rehearsal.lifecycle._airflow_env`: same throwaway home and SQLite DB,
    so the run it triggers is there for the retrain stage, the MWAA role's session), or, when a test
    names its own outputs file (``ctx.values["dag_outputs_file"]``, no deployed stack), the same
    Airflow settings with that file and this process's AWS credentials. Either way none of the
    caller's own ``AIRFLOW*`` variables reach the child.
    """
    if "dag_outputs_file" not in ctx.values:
        from rehearsal.lifecycle import _airflow_env

        return _airflow_env(ctx)
    from rehearsal.lifecycle import _airflow_base_env, airflow_home

    home = airflow_home(ctx)
    outputs = str(Path(ctx.values["dag_outputs_file"]).resolve())
    return {**_airflow_base_env(home), "MLOPS_OUTPUTS_FILE": outputs}, home


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


def dag_runs(database: Path, dag_id: str) -> dict[str, dict[str, Any]]:
    """``dag_id``'s runs in the child Airflow's SQLite metadata database (none when it does not exist yet)."""
    import sqlite3

    if not database.is_file():
        return {}
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'dag_run'")
        if tables.fetchone() is None:
            return {}
        rows = db.execute("SELECT run_id, state, conf FROM dag_run WHERE dag_id = ?", (dag_id,)).fetchall()
    return {
        run_id: {"state": state, "conf": json.loads(conf) if isinstance(conf, str | bytes) else conf}
        for run_id, state, conf in rows
    }


def run_monitoring_dag(
    ctx: RunContext, dag_id: str, training_dag_id: str, start: datetime, end: datetime, label: str
) -> dict[str, Any]:
    """Run the monitoring DAG over ``[start, end)`` with ``dag.test()`` in a child Airflow process
    (``rehearsal.airflow_runner``, as the training DAG runs); its task states and the training runs it
    created, read from the child's metadata database."""
    from rehearsal.lifecycle import run_dag_process

    env, home = monitoring_env(ctx)
    database = home / "airflow.db"
    ctx.values["airflow_db"] = str(database)
    before = dag_runs(database, training_dag_id)
    conf = {"window_start": start.isoformat(), "window_end": end.isoformat()}
    log = home / f"{label}.log"
    result = run_dag_process(ctx, dag_id, conf, env, log, "monitoring")
    if "tasks" not in result:
        raise RuntimeError(
            f"the monitoring DAG {dag_id} did not run ({result['state']}): {result}; log {log}"
        )
    after = dag_runs(database, training_dag_id)
    return {
        "run_id": result["run_id"],
        "state": result["state"],
        "tasks": result["tasks"],
        "triggered": {k: v for k, v in after.items() if k not in before},
        "log": str(log),
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
    from rehearsal.catalog import rehearsed_model as rehearsal_model_names
    from rehearsal.stages import endpoint_weights

    assert ctx.emulator is not None
    env, _ = monitoring_env(ctx)
    outputs = json.loads(Path(env["MLOPS_OUTPUTS_FILE"]).read_text())
    model = rehearsal_model_names(ctx)
    endpoint = str(
        ctx.values.get("serving_endpoint")
        or ctx.values.get("endpoint")
        or (outputs.get("models") or {}).get(model.model, {}).get("endpointName")
        or model.endpoint
    )
    injected = injected_drift(ctx)
    traffic: TrafficSource = ctx.values.get("drift_traffic") or synthetic_traffic(ctx)
    rows = window_rows(ctx)
    capture_bucket = outputs["captureBucket"]
    capture_prefix = f"{model.capture_prefix}/{endpoint}/"

    # labels are regenerated for the synthetic churn traffic only (rehearsal.quality_check); a caller's
    # own traffic or --data rows get no ground truth, so no model-quality check
    labelled = "drift_traffic" not in ctx.values and ctx.options.data is None

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
    training_dag_id = model.training_dag_id
    monitoring_dag = model.monitoring_dag_id
    control = run_monitoring_dag(
        ctx, monitoring_dag, training_dag_id, clean_start, clean_end, "monitor-clean"
    )
    drifted = run_monitoring_dag(
        ctx, monitoring_dag, training_dag_id, drift_start, drift_end, "monitor-drift"
    )
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
        "expected_drift": list(injected.features) if "drift_traffic" not in ctx.values else None,
        "injected_drift": injected.as_dict() if "drift_traffic" not in ctx.values else None,
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
    injected = evidence.get("injected_drift") or {}
    if injected.get("exact"):
        allowed = {*injected["features"], *injected["follows"]}
        unexpected = [f for f in evidence["drifted_features"] if f not in allowed]
        if unexpected:
            return (
                f"the drifted window flags {unexpected}, which the rehearsal did not drift (it drifted "
                f"{injected['features']}; derived from them: {injected['follows']})"
            )
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
