"""The rehearsal's lifecycle stages: train in real Airflow, deploy, serve, canary, rollback, drift, retrain.

Every stage acts through the platform's own paths (the training DAG under ``dag.test()``, the stack
deploy, ``sagemaker-runtime`` InvokeEndpoint) against the emulator started with every extension, and
its check asks the emulator whether the claim holds.

Time scale: :data:`TIME_SCALE` emulated seconds per wall-clock second (60: a 60 s alarm period is
one second, the stack's 300 s canary bake five seconds). Stages hand values to later ones through
``ctx.values`` (``packages``, ``endpoint``...).

The model they act on is :func:`rehearsed_model` (``rehearsal.catalog``): churn, or the user's model
with ``--data/--contract``; its names come from the deployed stack's outputs (``models`` map).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platform_contract.naming import ModelNames
from rehearsal.catalog import (
    CONTRACTS_ENV,
    catalog_overrides,
    contract_of,
    contracts_folder,
    model_entry,
    rehearsed_model,
)
from rehearsal.iam.stages import iam_mode, with_iam
from rehearsal.run import Evidence, RehearsalOptions, RunContext, Stage
from rehearsal.stages import airflow_role_credentials

if TYPE_CHECKING:
    from rehearsal.airflow_runner import DagService
    from rehearsal.emulator import Emulator

REPO = Path(__file__).resolve().parents[1]

TIME_SCALE = 60.0
"""Emulated seconds per wall-clock second for alarm periods, bakes and deployment waits."""
ALARM_TICK_S = 5.0
"""Emulated seconds between alarm evaluations (a twelfth of a 60 s period)."""
DAG_TIMEOUT_S = 1800.0
"""Guard against a hung DAG run, not a speed target: a healthy second run took over 900 s on this
2-core machine at load average 20-25 (eight sessions sharing it)."""

__all__ = ["rehearsed_model"]


def endpoint_overrides(ctx: RunContext, package_arn: str) -> dict[str, Any]:
    """The dev config change a promotion makes: the rehearsed model's ``modelPackageArn``, nothing else.

    dev itself declares the instance-backed endpoint with data capture and a CANARY blue/green update
    that the lifecycle exercises; the promotion pipeline sets the approved package the same way
    (``stacks.config.promote_key``). See :func:`rehearsal.catalog.catalog_overrides`.
    """
    return catalog_overrides(ctx, {rehearsed_model(ctx).model: package_arn})


def canary_share(ctx: RunContext) -> float:
    """The share of traffic the rehearsed model's dev endpoint gives a canary (``canarySizePercent``)."""
    return float(model_entry(ctx)["endpoint"]["canarySizePercent"]) / 100


# --- emulator -----------------------------------------------------------------------------------


def start_full_emulator(ctx: RunContext) -> Evidence:
    """Start the emulator with every extension (training, registry, alarms, hosting, EMR, CodePipeline,
    MWAA, EKS), time-scaled by :data:`TIME_SCALE`."""
    from rehearsal.alarms import AlarmEvaluator
    from rehearsal.codepipeline import CodePipelineExtension
    from rehearsal.eks import EksExtension
    from rehearsal.emr_containers import EmrContainersExtension
    from rehearsal.emulator import Emulator
    from rehearsal.endpoints import SageMakerHosting
    from rehearsal.featurestore import FeatureStoreRuntime
    from rehearsal.iam import Authorizer
    from rehearsal.lineage_stage import start_tracking_store
    from rehearsal.mwaa import MwaaExtension
    from rehearsal.sagemaker_extra import SageMakerRegistryExtras
    from rehearsal.stages import _EMULATOR_ENV, _set_env
    from rehearsal.training import SageMakerTraining
    from rehearsal.transform import SageMakerTransform
    from rehearsal.tuning import SageMakerTuning

    mode = iam_mode()
    authorizer = None if mode == "off" else Authorizer(enforce=mode == "enforce")
    emulator = Emulator(
        authorizer=authorizer,
        extensions=[
            SageMakerTraining(stop_grace_s=10),
            SageMakerTuning(seed=ctx.options.seed),  # after training: it runs its trials as training jobs
            SageMakerRegistryExtras(),
            AlarmEvaluator(time_scale=TIME_SCALE, tick_seconds=ALARM_TICK_S),
            SageMakerHosting(time_scale=TIME_SCALE, seed=ctx.options.seed),
            SageMakerTransform(),
            EmrContainersExtension(),
            FeatureStoreRuntime(),  # PutRecord from the feature job (rehearsal.featurestore)
            CodePipelineExtension(),
            MwaaExtension(),
            EksExtension(),
        ],
        workdir=(ctx.out / "emulator").resolve(),  # job folders are used from other cwds
    )
    ctx.on_close("emulator", emulator.stop)
    emulator.start()
    ctx.emulator = emulator
    _set_env(ctx, {**_EMULATOR_ENV, "AWS_DEFAULT_REGION": emulator.region})
    start_airflow(ctx)  # MWAA's Airflow, up before the first DAG run: warms up while dev deploys
    start_tracking_store(ctx)  # the MLflow App's database, likewise
    ctx.event("emulator", f"emulator on {emulator.endpoint_url} (time x{TIME_SCALE:g}, IAM {mode})")
    return {
        "iam": mode,
        "endpoint_url": emulator.endpoint_url,
        "port": emulator.port,
        "account_id": emulator.account_id,
        "region": emulator.region,
        "extensions": [e.name for e in emulator.extensions],
        "time_scale": TIME_SCALE,
    }


def check_full_emulator(evidence: Evidence, ctx: RunContext) -> str | None:
    """The port answers, STS names the account, and every extension is installed."""
    from rehearsal.stages import check_emulator

    problem = check_emulator(evidence, ctx)
    if problem:
        return problem
    wanted = {
        "sagemaker-endpoints",
        "cloudwatch-alarms",
        "codepipeline",
        "mwaa",
    }
    missing = wanted - set(evidence["extensions"])
    return f"extensions not installed: {sorted(missing)}" if missing else None


# --- helpers ------------------------------------------------------------------------------------


def _emu(ctx: RunContext) -> Emulator:
    assert ctx.emulator is not None, "the emulator stage did not run"
    return ctx.emulator


def _hosting(ctx: RunContext) -> Any:
    return _emu(ctx).extension("sagemaker-endpoints")


def _outputs(ctx: RunContext) -> dict[str, Any]:
    assert ctx.deployment is not None, "the deploy stage did not run"
    return ctx.deployment.outputs


def model_outputs(ctx: RunContext, model: ModelNames | None = None) -> dict[str, Any]:
    """The deployed stack's ``models`` entry of ``model`` (default: the rehearsed model)."""
    name = (model or rehearsed_model(ctx)).model
    models = _outputs(ctx).get("models") or {}
    if name not in models:
        raise LookupError(f"the deployed stack has no model {name!r} (its models: {sorted(models)})")
    return dict(models[name])


def _group(ctx: RunContext, model: ModelNames | None = None) -> str:
    return str(model_outputs(ctx, model)["modelPackageGroupName"])


def _packages(ctx: RunContext, model: ModelNames | None = None) -> list[dict[str, Any]]:
    """The group's packages, oldest first."""
    sm = _emu(ctx).client("sagemaker")
    found = sm.list_model_packages(
        ModelPackageGroupName=_group(ctx, model), SortBy="CreationTime", SortOrder="Ascending"
    )
    return list(found["ModelPackageSummaryList"])


def _airflow_env(ctx: RunContext) -> tuple[dict[str, str], Path]:
    """The child Airflow's environment: throwaway home and SQLite DB, the outputs file, aws_default."""
    from rehearsal.airflow_runner import write_worker_python
    from rehearsal.lineage_stage import tracking_uri

    emu = _emu(ctx)
    home = airflow_home(ctx)
    outputs_file = home / "mlops_outputs.json"
    outputs = {
        **_outputs(ctx),
        "contractsDir": str(contracts_folder(ctx)),
        "airflowAwsConnId": "aws_default",
        "pollSeconds": 1,
        "workerPython": str(write_worker_python(home)),  # MWAA's worker venv: no Airflow
        "workerPythonPath": str(REPO),
    }
    outputs_file.write_text(json.dumps(outputs, indent=2))
    # the tasks run as the MWAA execution role: the aws_default connection and the workers' SDK chain
    # both carry its session (root credentials only when the emulator runs without IAM)
    role = airflow_role_credentials(ctx)
    extra: dict[str, Any] = {"endpoint_url": emu.endpoint_url, "region_name": emu.region}
    if role is not None:
        extra["aws_session_token"] = role["AWS_SESSION_TOKEN"]
    conn = {
        "conn_type": "aws",
        "login": role["AWS_ACCESS_KEY_ID"] if role else emu.credentials["aws_access_key_id"],
        "password": role["AWS_SECRET_ACCESS_KEY"] if role else emu.credentials["aws_secret_access_key"],
        "extra": extra,
    }
    env = {
        **_airflow_base_env(home),
        # the tasks track training runs in the run folder's MLflow store (rehearsal/lineage_stage.py)
        "MLOPS_MLFLOW_TRACKING_URI": tracking_uri(ctx),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn),
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
        "MLOPS_OUTPUTS_FILE": str(outputs_file),
        # every batch goes to the model's feature group: its offline store by one Iceberg commit; the
        # online store (PutRecord per row) exists only with --ingest-features (catalog_overrides)
        "MLOPS_FEATURE_INGESTION": "true",
        **(role or {}),
    }
    return env, home


def _airflow_base_env(home: Path) -> dict[str, str]:
    """This process's environment without the caller's own Airflow settings, plus the child Airflow's
    settings (throwaway ``home`` and SQLite database, the project's DAG folder, ``PYTHONPATH``): what
    the child reads at start (:func:`rehearsal.airflow_runner.service_identity`)."""
    dags = REPO / "dags"
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},  # not the caller's Airflow
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
            [
                {
                    "name": "dags-folder",
                    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(dags)},
                }
            ]
        ),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }


def airflow_home(ctx: RunContext) -> Path:
    """The child Airflow's home in the run folder (absolute: Airflow refuses a relative SQLite path)."""
    home = (ctx.out / "airflow").resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


AIRFLOW_SERVICE = "airflow_service"
"""``ctx.values`` key of the rehearsal's long-lived child Airflow (:class:`rehearsal.airflow_runner.DagService`)."""


def airflow_service(ctx: RunContext, env: dict[str, str], folder: Path) -> DagService:
    """The rehearsal's child Airflow that can run DAGs under ``env``: the running one, or a new one
    (logging its start-up to ``folder/airflow-runner.log``) when there is none or it was started with
    other Airflow settings."""
    from rehearsal.airflow_runner import DagService

    service = ctx.values.get(AIRFLOW_SERVICE)
    if isinstance(service, DagService) and service.serves(env):
        return service
    if isinstance(service, DagService):
        service.close()
    service = DagService(ctx.spawn, env, str(REPO), folder / "airflow-runner.log")
    ctx.values[AIRFLOW_SERVICE] = service
    ctx.on_close("airflow runner", service.close)
    return service


def start_airflow(ctx: RunContext) -> None:
    """Start the rehearsal's child Airflow now (it warms up while the stack deploys); the DAG stages
    reuse it (:func:`run_dag_process`)."""
    home = airflow_home(ctx)
    airflow_service(ctx, _airflow_base_env(home), home)


def run_dag_process(
    ctx: RunContext, dag_id: str, conf: dict[str, Any], env: dict[str, str], log: Path, kind: str
) -> dict[str, Any]:
    """Run ``dag_id`` with ``dag.test(conf)`` in the rehearsal's child Airflow process
    (``rehearsal.airflow_runner --serve``, started on first use and kept for later runs with the same
    ``env``, as MWAA keeps its scheduler and workers), its output in ``log``; the runner's result
    (final and task states) plus ``log``. A run that breaks the child, or a different ``env``, gets a
    fresh child.

    Raises:
        TimeoutError: the run did not end within :data:`DAG_TIMEOUT_S`.
        RuntimeError: the runner exited or failed without a result.
    """
    service = airflow_service(ctx, env, log.parent)
    try:
        result = service.run(dag_id, conf, log, DAG_TIMEOUT_S, env=env)
    except TimeoutError:
        ctx.values.pop(AIRFLOW_SERVICE, None)
        raise TimeoutError(
            f"the {kind} DAG {dag_id} did not finish within {DAG_TIMEOUT_S:.0f} s; see {log}"
        ) from None
    if result is None or result.get("state") == "runner-error":
        ctx.values.pop(AIRFLOW_SERVICE, None)
        service.close()
        tail = log.read_text(errors="replace")[-1500:]
        why = (
            f"exited {service.returncode} without a result"
            if result is None
            else f"failed: {result.get('error')}"
        )
        raise RuntimeError(f"the Airflow runner {why}; log {log}: {tail}")
    result["log"] = str(log)
    return result


def run_training_dag(
    ctx: RunContext, conf: dict[str, Any], label: str, model: ModelNames | None = None
) -> dict[str, Any]:
    """Run ``model``'s training DAG (default: the rehearsed model's) with ``dag.test(conf)`` in a child
    process; its final and task states."""
    dag_id = str(model_outputs(ctx, model)["trainingDagId"])
    env, home = _airflow_env(ctx)
    return run_dag_process(ctx, dag_id, conf, env, home / f"{label}.log", "training")


def _land_batch(ctx: RunContext, frame: Any, name: str, dataset: str | None = None) -> str:
    """Put a batch under ``landing/<dataset>/`` in the raw bucket (where the training DAG looks);
    ``dataset`` defaults to the rehearsed contract's name."""
    bucket = str(_outputs(ctx)["rawBucket"])
    key = f"landing/{dataset or contract_of(ctx).name}/{name}"
    _emu(ctx).client("s3").put_object(Bucket=bucket, Key=key, Body=frame.to_csv(index=False).encode())
    return f"s3://{bucket}/{key}"


def _training_evidence(
    ctx: RunContext, result: dict[str, Any], before: set[str], model: ModelNames | None = None
) -> Evidence:
    sm = _emu(ctx).client("sagemaker")
    new = [p for p in _packages(ctx, model) if p["ModelPackageArn"] not in before]
    evidence: Evidence = {
        "model": (model or rehearsed_model(ctx)).model,
        "group": _group(ctx, model),
        "dag_state": result.get("state"),
        "tasks": result.get("tasks", {}),
        "dag_log": result.get("log"),
        "new_packages": [p["ModelPackageArn"] for p in new],
    }
    if result.get("errors"):
        evidence["import_errors"] = result["errors"]
    if new:
        package = sm.describe_model_package(ModelPackageName=new[-1]["ModelPackageArn"])
        data_url = package["InferenceSpecification"]["Containers"][0].get("ModelDataUrl", "")
        run_id = data_url.split("/")[-3] if data_url.count("/") >= 3 else ""
        evidence.update(
            package_arn=package["ModelPackageArn"],
            approval=package["ModelApprovalStatus"],
            model_data_url=data_url,
            training_job=run_id,
        )
        try:
            job = sm.describe_training_job(TrainingJobName=run_id)
            evidence["training_status"] = job["TrainingJobStatus"]
            evidence["training_metrics"] = {
                m["MetricName"]: m["Value"] for m in job.get("FinalMetricDataList", [])
            }
        except Exception as exc:
            evidence["training_status"] = f"not found: {exc}"
        from rehearsal.governance import card_evidence

        evidence["model_card"] = card_evidence(ctx, package)

        from rehearsal.tuning_stage import tuning_evidence

        tuning = tuning_evidence(sm, run_id)
        if tuning is not None:
            evidence["tuning"] = tuning
    return evidence


def check_training(evidence: Evidence, ctx: RunContext) -> str | None:
    """The DAG succeeded, a new package is Approved in the model's group, its training job Completed."""
    if evidence["dag_state"] != "success":
        failed = {t: s for t, s in evidence["tasks"].items() if s not in ("success", "skipped")}
        skipped = [t for t, s in evidence["tasks"].items() if s == "skipped"]
        detail = evidence.get("import_errors") or failed or f"skipped: {skipped}"
        return f"the training DAG ended {evidence['dag_state']}: {detail}; log {evidence['dag_log']}"
    skipped = [t for t, s in evidence["tasks"].items() if s != "success"]
    if skipped:
        return f"the training DAG did not run every task (the gate stopped it?): {skipped}"
    if not evidence["new_packages"]:
        return f"the training DAG registered no package in {evidence['group']}"
    package = _emu(ctx).client("sagemaker").describe_model_package(ModelPackageName=evidence["package_arn"])
    if package["ModelApprovalStatus"] != "Approved":
        return f"{evidence['package_arn']} is {package['ModelApprovalStatus']}, not Approved"
    if evidence.get("training_status") != "Completed":
        return f"training job {evidence.get('training_job')} is {evidence.get('training_status')}"
    from rehearsal.governance import check_card
    from rehearsal.tuning_stage import check_tuning, tuning_enabled

    store = evidence.get("feature_store") or {}
    online = ctx.options.ingest_features  # the group has an online store only then
    if store.get("group") and not store.get("offline_rows"):
        return f"feature group {store['group']}'s offline store holds no records after training: {store}"
    if online and store.get("group") and not store.get("records_received"):
        return f"feature group {store['group']} has an online store, yet the feature job PutRecord no records"
    if not online and store.get("records_received"):
        return (
            f"feature group {store['group']} has no online store, yet received {store['records_received']} "
            "PutRecords (the offline store is written by one Iceberg commit per batch)"
        )
    problem = check_card(evidence, package["ModelApprovalStatus"])
    if problem is None and tuning_enabled(ctx):  # every training DAG run of the rehearsed model tunes
        return check_tuning(evidence)
    return problem


def train(ctx: RunContext) -> Evidence:
    """Land the data and run the rehearsed model's training DAG end to end in real Airflow."""
    import pandas as pd

    path = Path(ctx.values["data_file"])
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    uri = _land_batch(ctx, frame, f"batch-1{path.suffix if path.suffix == '.csv' else '.csv'}")
    day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    before = {p["ModelPackageArn"] for p in _packages(ctx)}
    result = run_training_dag(ctx, {"batch_uri": uri, "ingest_date": day}, "training-1")
    evidence = _training_evidence(ctx, result, before)
    evidence["batch_uri"] = uri
    from rehearsal.featurestore import feature_store_evidence  # the feature job's PutRecords

    groups = _outputs(ctx).get("featureGroupNames") or {}
    evidence["feature_store"] = feature_store_evidence(_emu(ctx), groups.get(rehearsed_model(ctx).model))
    if evidence.get("package_arn"):
        ctx.values.setdefault("packages", []).append(evidence["package_arn"])
        ctx.event("register", "model 1 trained and approved", package=evidence["package_arn"])
    return evidence


# --- deploy the approved package ----------------------------------------------------------------


def _deploy_package(ctx: RunContext, arn: str) -> Any:
    return deploy_packages(ctx, {rehearsed_model(ctx).model: arn})


def deploy_packages(ctx: RunContext, packages: dict[str, str]) -> Any:
    """Promote: re-deploy dev with each named catalog model's ``modelPackageArn`` set (an update of the
    stack), through the delivery's promotion pipeline as on AWS (:mod:`rehearsal.promotion`: started as
    the approval rule's role, the CodeBuild action's ``pulumi up`` as the deploy role it assumes).

    Models not named keep the package they were last deployed with (``ctx.values["deployed"]``). Each
    promotion's evidence (execution, roles, plan) is appended to ``ctx.values["promotions"]``.
    """
    from rehearsal.promotion import Promoter

    assert ctx.deployment is not None
    deployed: dict[str, str] = {**ctx.values.get("deployed", {}), **packages}
    promoter = ctx.values.get("promoter")
    if not isinstance(promoter, Promoter):
        promoter = Promoter(_emu(ctx), "dev")
        ctx.values["promoter"] = promoter
    from rehearsal.deploy import DeployError

    started = time.monotonic()
    try:
        run = promoter.promote(
            ctx.deployment,
            catalog_overrides(ctx, deployed),
            packages=sorted(set(packages.values())),
            out_dir=ctx.out / "stack",
        )
    except DeployError as exc:
        if exc.state is not None:  # what the failed update applied: the next one continues from it
            ctx.deployment.state = exc.state
        raise
    assert run.result is not None
    ctx.deployment = run.result
    ctx.values["deployed"] = deployed
    ctx.values.setdefault("promotions", []).append(
        {**run.as_dict(), "seconds": round(time.monotonic() - started, 2)}
    )
    return run.result


def _serving(ctx: RunContext, endpoint: str) -> dict[str, Any]:
    """What the endpoint serves now: live config, status, and the package of each variant's model."""
    sm = _emu(ctx).client("sagemaker")
    desc = sm.describe_endpoint(EndpointName=endpoint)
    config = sm.describe_endpoint_config(EndpointConfigName=desc["EndpointConfigName"])
    variants = {}
    for variant in config["ProductionVariants"]:
        model = sm.describe_model(ModelName=variant["ModelName"])
        container = model.get("PrimaryContainer") or model["Containers"][0]
        variants[variant["VariantName"]] = {
            "model": variant["ModelName"],
            "package": container.get("ModelPackageName"),
        }
    return {"status": desc["EndpointStatus"], "config": desc["EndpointConfigName"], "variants": variants}


def deploy_model(ctx: RunContext) -> Evidence:
    """Promote the approved package: the promotion pipeline's CodeBuild ``pulumi up`` of the stack, run as
    the deploy role the build assumes (:func:`deploy_packages`)."""
    arn = ctx.values["packages"][-1]
    started = time.monotonic()
    result = _deploy_package(ctx, arn)
    endpoint = str(model_outputs(ctx)["endpointName"])
    ctx.values["endpoint"] = endpoint
    serving = _serving(ctx, endpoint)
    ctx.event("deploy", "model 1 deployed", package=arn, weights={"model 1": 1.0})
    sm = _emu(ctx).client("sagemaker")
    package = sm.describe_model_package(ModelPackageName=arn)
    return {
        "package_arn": arn,
        "endpoint": endpoint,
        "deploy_s": round(time.monotonic() - started, 2),
        "calls": sorted({c.operation for c in result.calls if c.service == "sagemaker"}),
        "promotion": ctx.values["promotions"][-1],
        "model_data_url": package["InferenceSpecification"]["Containers"][0].get("ModelDataUrl"),
        "timeline": _hosting(ctx).timeline(endpoint),
        **serving,
    }


def check_deploy_model(evidence: Evidence, ctx: RunContext) -> str | None:
    """The endpoint is InService, its variants serve the package, started from its artifact."""
    serving = _serving(ctx, evidence["endpoint"])
    if serving["status"] != "InService":
        return f"endpoint {evidence['endpoint']} is {serving['status']}"
    packages = {v["package"] for v in serving["variants"].values()}
    if packages != {evidence["package_arn"]}:
        return f"the endpoint serves {packages}, not {evidence['package_arn']}"
    events = [e["event"] for e in evidence["timeline"]]
    if "in-service" not in events:
        return f"the hosting timeline never shows the endpoint in service: {events}"
    bucket, _, key = str(evidence["model_data_url"]).removeprefix("s3://").partition("/")
    _emu(ctx).client("s3").head_object(Bucket=bucket, Key=key)
    return None


# --- serve --------------------------------------------------------------------------------------


def held_out_rows(ctx: RunContext, count: int = 200) -> list[str]:
    """CSV lines (model inputs in the model's order) of the test split the feature job wrote."""
    import pandas as pd

    emu = _emu(ctx)
    contract = contract_of(ctx)
    bucket = str(_outputs(ctx)["featuresBucket"])
    prefix = f"features/{contract.name}/"  # pipelines.features.local.features_prefix
    s3 = emu.client("s3")
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
        frame = frame[frame["__split__"] == "test"]
    rows: Any = frame[contract.feature_names]
    rows = rows.head(count)
    return rows.to_csv(index=False, header=False).strip().splitlines()


@dataclass
class Traffic:
    """Invocations sent by :func:`send`: successes (parsed predictions) and errors."""

    ok: int = 0
    errors: int = 0
    unparsed: int = 0
    misshaped: int = 0
    """Parsed answers that are not the task's predictions (see :func:`prediction_problem`)."""
    predictions: list[Any] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)


def prediction_problem(parsed: Any, rows: int, regression: bool) -> str | None:
    """Why a JSON answer to ``rows`` CSV rows is not the model's predictions, or None.

    The serving codec answers ``{"predictions": [...]}``, one item per row: for a regressor a finite
    number ``score``; for a classifier a ``label``, a ``score`` in [0, 1] and the ``probabilities``.
    """
    import math

    items = parsed.get("predictions") if isinstance(parsed, dict) else None
    if not isinstance(items, list) or len(items) != rows:
        return f"expected {rows} predictions under 'predictions', got {str(parsed)[:200]}"
    for item in items:
        score = item.get("score") if isinstance(item, dict) else None
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            return f"prediction {str(item)[:120]} has no finite numeric 'score'"
        if not regression:
            if "label" not in item or not isinstance(item.get("probabilities"), list):
                return f"classifier prediction {str(item)[:120]} lacks 'label' or 'probabilities'"
            if not 0.0 <= float(score) <= 1.0:
                return f"classifier score {score} is not a probability"
    return None


def send(ctx: RunContext, endpoint: str, rows: list[str], traffic: Traffic, batch: int = 5) -> None:
    """Invoke the endpoint with ``rows`` (``batch`` rows per request); count and parse the answers."""
    runtime = _emu(ctx).client("sagemaker-runtime")
    regression = not contract_of(ctx).is_classification
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        body = "\n".join(chunk)
        try:
            response = runtime.invoke_endpoint(
                EndpointName=endpoint, ContentType="text/csv", Accept="application/json", Body=body.encode()
            )
        except Exception as exc:
            traffic.errors += 1
            if len(traffic.error_samples) < 3:
                traffic.error_samples.append(str(exc)[:300])
            continue
        try:
            parsed = json.loads(response["Body"].read())
        except ValueError:
            traffic.unparsed += 1
            continue
        traffic.ok += 1
        problem = prediction_problem(parsed, len(chunk), regression)
        if problem:
            traffic.misshaped += 1
            if len(traffic.error_samples) < 3:
                traffic.error_samples.append(problem)
        if len(traffic.predictions) < 3:
            traffic.predictions.append(parsed)


class TrafficLoop:
    """Send held-out rows to the endpoint from a thread until stopped (traffic during a bake)."""

    def __init__(self, ctx: RunContext, endpoint: str, rows: list[str]) -> None:
        self.traffic = Traffic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(ctx, endpoint, rows), daemon=True)

    def _loop(self, ctx: RunContext, endpoint: str, rows: list[str]) -> None:
        while not self._stop.is_set():
            send(ctx, endpoint, rows[:20], self.traffic)
            time.sleep(0.05)

    def __enter__(self) -> TrafficLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _capture_objects(ctx: RunContext, model: ModelNames | None = None) -> list[str]:
    """Capture files under the model's capture prefix (``models[<model>].capturePrefix``)."""
    bucket = str(_outputs(ctx)["captureBucket"])
    prefix = str(model_outputs(ctx, model)["capturePrefix"]).rstrip("/") + "/"
    s3 = _emu(ctx).client("s3")
    return [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
        if o["Key"].endswith(".jsonl")
    ]


def serve(ctx: RunContext) -> Evidence:
    """Send held-out rows through InvokeEndpoint and read the predictions back."""
    endpoint = ctx.values["endpoint"]
    rows = held_out_rows(ctx)
    ctx.values["rows"] = rows
    traffic = Traffic()
    started = time.monotonic()
    send(ctx, endpoint, rows, traffic)
    _hosting(ctx).flush_capture()
    captured = _capture_objects(ctx)
    return {
        "endpoint": endpoint,
        "rows_sent": len(rows),
        "requests_ok": traffic.ok,
        "requests_failed": traffic.errors,
        "responses_unparsed": traffic.unparsed,
        "responses_misshaped": traffic.misshaped,
        "task": contract_of(ctx).task,
        "errors": traffic.error_samples,
        "sample_predictions": traffic.predictions[:2],
        "seconds": round(time.monotonic() - started, 2),
        "capture_files": len(captured),
        "capture_sample": captured[:3],
    }


def check_serve(evidence: Evidence, ctx: RunContext) -> str | None:
    """Every response parsed as the task's predictions (numbers for a regressor, labels and
    probabilities for a classifier), none failed, and capture files exist under the model's prefix."""
    if evidence["requests_ok"] == 0:
        return f"no invocation succeeded: {evidence['errors']}"
    if evidence["requests_failed"] or evidence["responses_unparsed"]:
        return f"{evidence['requests_failed']} failed, {evidence['responses_unparsed']} unparsable: {evidence['errors']}"
    if evidence.get("responses_misshaped"):
        return f"{evidence['responses_misshaped']} answers are not {evidence['task']} predictions: {evidence['errors']}"
    if not _capture_objects(ctx):
        prefix = model_outputs(ctx)["capturePrefix"]
        return f"no capture file in s3://{_outputs(ctx)['captureBucket']}/{prefix}"
    return None


# --- canary -------------------------------------------------------------------------------------

SECOND_BATCH_SHARE = 0.9
"""Share of the user's rows in the canary's second batch (a different sample: a different model)."""


def second_batch(ctx: RunContext) -> Any:
    """The canary's training batch: a new seeded batch of the generated data, or, with ``--data``, a
    seeded sample of :data:`SECOND_BATCH_SHARE` of the user's rows (without replacement, so the
    contract's unique keys stay unique)."""
    import pandas as pd

    from pipelines.synthetic import generate

    if ctx.options.data is None:
        return generate(contract_of(ctx).name, rows=ctx.options.rows, seed=ctx.options.seed + 1)
    path = Path(ctx.values["data_file"])
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return frame.sample(frac=SECOND_BATCH_SHARE, random_state=ctx.options.seed + 1).reset_index(drop=True)


def canary(ctx: RunContext) -> Evidence:
    """Train a second model on a new batch (a second DAG run), promote it, deploy it with CANARY."""
    frame = second_batch(ctx)
    uri = _land_batch(ctx, frame, "batch-2.csv")
    before = {p["ModelPackageArn"] for p in _packages(ctx)}
    result = run_training_dag(
        ctx, {"batch_uri": uri, "ingest_date": datetime.now(UTC).strftime("%Y-%m-%d")}, "training-2"
    )
    training = _training_evidence(ctx, result, before)
    problem = check_training(training, ctx)
    if problem:
        raise RuntimeError(f"second training: {problem}")
    arn = training["package_arn"]
    ctx.values["packages"].append(arn)
    endpoint = ctx.values["endpoint"]
    previous = _serving(ctx, endpoint)
    share = canary_share(ctx)
    ctx.event(
        "deploy", "canary update started", package=arn, weights={"model 1": 1 - share, "model 2": share}
    )
    with TrafficLoop(ctx, endpoint, ctx.values["rows"]) as loop:
        _deploy_package(ctx, arn)
    timeline = _hosting(ctx).timeline(endpoint)
    shares = [
        round(e["weights"].get("green", {}).get("share", 0.0), 3)
        for e in timeline
        if e["event"] == "traffic-shifted"
    ]
    ctx.event("traffic", "canary completed", weights={"model 2": 1.0})
    return {
        "package_arn": arn,
        "training": {k: training[k] for k in ("training_job", "training_status", "training_metrics")},
        "previous_config": previous["config"],
        "observed_green_shares": shares,
        "traffic_ok": loop.traffic.ok,
        "traffic_errors": loop.traffic.errors,
        "timeline": timeline,
        **_serving(ctx, endpoint),
    }


def check_canary(evidence: Evidence, ctx: RunContext) -> str | None:
    """The timeline shows the canary share, then full traffic; the new package serves everything."""
    shares = evidence["observed_green_shares"]
    expected = canary_share(ctx)
    if not shares or abs(shares[0] - expected) > 0.01:
        return f"the first traffic shift was not the {expected:.0%} canary: {shares}"
    if shares[-1] != 1.0:
        return f"traffic never went fully to the new package: {shares}"
    events = [e["event"] for e in evidence["timeline"]]
    if "update-completed" not in events:
        return f"the update did not complete: {events}"
    serving = _serving(ctx, ctx.values["endpoint"])
    packages = {v["package"] for v in serving["variants"].values()}
    if packages != {evidence["package_arn"]} or serving["config"] == evidence["previous_config"]:
        return f"the endpoint serves {packages} on {serving['config']}, not the canary's package"
    if evidence["traffic_errors"]:
        return f"{evidence['traffic_errors']} invocations failed during the canary"
    return None


# --- rollback -----------------------------------------------------------------------------------

_BROKEN_INFERENCE = '''"""A model that loads but fails under traffic: predict_fn raises (the rehearsal's bad model)."""


def model_fn(model_dir):
    return {"model_dir": model_dir}


def input_fn(body, content_type):
    return body


def predict_fn(data, model):
    raise RuntimeError("this model fails on every prediction (injected by the rehearsal)")


def output_fn(prediction, accept):
    return str(prediction), "text/plain"
'''


def register_broken_package(ctx: RunContext) -> str:
    """Build a model.tar.gz whose inference code raises on predict; register and approve it."""
    emu = _emu(ctx)
    sm, s3 = emu.client("sagemaker"), emu.client("s3")
    good = sm.describe_model_package(ModelPackageName=ctx.values["packages"][-1])
    spec = good["InferenceSpecification"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = _BROKEN_INFERENCE.encode()
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    bucket = str(_outputs(ctx)["artifactsBucket"])
    key = f"models/{contract_of(ctx).name}/broken-{int(time.time())}/output/model.tar.gz"
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=buffer.getvalue(),
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=str(_outputs(ctx)["mlKeyArn"]),
    )
    container = {**spec["Containers"][0], "ModelDataUrl": f"s3://{bucket}/{key}"}
    container.pop("ModelDataETag", None)
    arn = sm.create_model_package(
        ModelPackageGroupName=_group(ctx),
        ModelPackageDescription="rehearsal: a model that fails under traffic",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [container],
            "SupportedContentTypes": spec["SupportedContentTypes"],
            "SupportedResponseMIMETypes": spec["SupportedResponseMIMETypes"],
        },
    )["ModelPackageArn"]
    sm.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="rehearsal"
    )
    return arn


def rollback(ctx: RunContext) -> Evidence:
    """Deploy a model that fails under traffic while traffic flows; the guardrail must roll it back."""
    from rehearsal.deploy import GuardrailRollbackError

    endpoint = ctx.values["endpoint"]
    before = _serving(ctx, endpoint)
    arn = register_broken_package(ctx)
    share = canary_share(ctx)
    ctx.event(
        "deploy", "bad model update started", package=arn, weights={"model 2": 1 - share, "bad model": share}
    )
    deploy_error: str | None = None
    rolled_back = False
    alarms: Any = _emu(ctx).extension("cloudwatch-alarms")
    history_start = len(alarms.history)
    with TrafficLoop(ctx, endpoint, ctx.values["rows"]) as loop:
        try:
            _deploy_package(ctx, arn)
        except GuardrailRollbackError as exc:
            rolled_back, deploy_error = True, str(exc)
            state = exc.state
            if state is not None and ctx.deployment is not None:
                ctx.deployment.state = state
    after = _serving(ctx, endpoint)
    check_traffic = Traffic()
    send(ctx, endpoint, ctx.values["rows"][:20], check_traffic)
    rollback_alarms = rollback_alarm_names(ctx, endpoint)
    transitions = [{**t.as_dict(), "at": t.time.isoformat()} for t in alarms.history[history_start:]]
    fired = [t for t in transitions if t["to"] == "ALARM"]
    for t in fired:
        ctx.alarms_fired.append(t)
        ctx.event("alarm", f"{t['alarm']} -> ALARM")
    ctx.event("rollback", "guardrail rolled back", weights={"model 2": 1.0})
    return {
        "bad_package_arn": arn,
        "deploy_raised_guardrail_rollback": rolled_back,
        "deploy_error": deploy_error,
        "rollback_alarms": rollback_alarms,
        "alarm_transitions": transitions,
        "traffic_during_update": {"ok": loop.traffic.ok, "errors": loop.traffic.errors},
        "before": before,
        "after": after,
        "after_requests_ok": check_traffic.ok,
        "after_requests_failed": check_traffic.errors,
        "timeline": _hosting(ctx).timeline(endpoint),
    }


def rollback_alarm_names(ctx: RunContext, endpoint: str) -> list[str]:
    """The alarms the deployed endpoint's blue/green update rolls back on (its ``DeploymentConfig``)."""
    assert ctx.deployment is not None
    for resource in ctx.deployment.state.resources.values():
        if resource.type == "aws:sagemaker/endpoint:Endpoint" and resource.outputs.get("name") == endpoint:
            config = resource.inputs.get("deploymentConfig") or {}
            alarms = (config.get("autoRollbackConfiguration") or {}).get("alarms") or []
            return [str(a["alarmName"]) for a in alarms]
    raise LookupError(f"the deployed stack has no endpoint {endpoint!r}")


def check_rollback(evidence: Evidence, ctx: RunContext) -> str | None:
    """A rollback alarm fired from the metrics, the deploy failed as rolled back, the previous package serves."""
    if not evidence["deploy_raised_guardrail_rollback"]:
        return "the deploy of the failing model did not raise GuardrailRollbackError"
    fired = {t["alarm"] for t in evidence["alarm_transitions"] if t["to"] == "ALARM"}
    if not fired & set(evidence["rollback_alarms"]):
        return f"no rollback alarm ({evidence['rollback_alarms']}) went to ALARM; transitions: {evidence['alarm_transitions']}"
    history = _emu(ctx).client("cloudwatch").describe_alarm_history(HistoryItemType="StateUpdate")
    names = {h["AlarmName"] for h in history.get("AlarmHistoryItems", [])}
    if not fired & names:
        return "DescribeAlarmHistory does not show the rollback alarm's transition"
    if evidence["traffic_during_update"]["errors"] == 0:
        return (
            "no invocation failed during the update: the alarm cannot have come from the bad model's metrics"
        )
    serving = _serving(ctx, ctx.values["endpoint"])
    if serving["config"] != evidence["before"]["config"] or serving["status"] != "InService":
        return f"the endpoint is {serving['status']} on {serving['config']}, not back on {evidence['before']['config']}"
    if evidence["after_requests_failed"] or not evidence["after_requests_ok"]:
        return f"the previous package does not serve after the rollback ({evidence['after_requests_failed']} failed)"
    return None


def deploy_dev(ctx: RunContext) -> Evidence:
    """Deploy dev with the rehearsal's catalog (:func:`rehearsal.catalog.catalog_overrides`: the
    rehearsed model in it, no package yet, so no endpoint is declared); the stack reads the
    contracts from the rehearsal's contracts folder."""
    from rehearsal.stages import _set_env

    _set_env(ctx, {CONTRACTS_ENV: str(contracts_folder(ctx))})
    from rehearsal.deploy import deploy

    overrides = catalog_overrides(ctx, {})
    result = deploy(_emu(ctx), stack="dev", config_overrides=overrides, out_dir=ctx.out / "stack")
    ctx.deployment = result
    ctx.values["deployed"] = {}
    ctx.event("deploy", "dev stack deployed", created=len(result.changed()))
    return {
        "outputs_file": str(result.outputs_file),
        "overrides": overrides,
        "rehearsed_model": rehearsed_model(ctx).model,
        "models": sorted(result.outputs.get("models") or {}),
        "created": len([c for c in result.changes if c.action == "create"]),
        "recorded": len(result.recorded),
        "recorded_types": result.unsupported_types,
        "aws_calls": len(result.calls),
        "raw_bucket": result.outputs.get("rawBucket"),
        "model_package_group": _group(ctx),
        "emr_virtual_cluster_id": result.outputs.get("emrVirtualClusterId"),
    }


# --- headlines (one line each for the terminal summary) ---------------------------------------


def _version(arn: Any) -> str:
    """``v3`` for a model package ARN ending ``/3`` (the ARN itself otherwise)."""
    tail = str(arn or "").rsplit("/", 1)[-1]
    return f"v{tail}" if tail.isdigit() else str(arn)


def _serving_versions(state: Any) -> str:
    """The package versions an endpoint description's variants serve (``v2``, ``v1+v2``)."""
    variants = (state or {}).get("variants") or {} if isinstance(state, dict) else {}
    found = [_version(v.get("package")) for v in variants.values() if isinstance(v, dict)]
    return "+".join(found) or "nothing"


def headline_train(evidence: Evidence) -> str:
    """``AUC 0.827; package v1 Approved (training job Completed)``."""
    metrics = evidence.get("training_metrics") or {}
    auc = metrics.get("validation:auc")
    from rehearsal.tuning_stage import headline

    text = headline(evidence)
    text += f"AUC {auc:.3f}; " if isinstance(auc, (int, float)) else ""
    text += f"package {_version(evidence.get('package_arn'))} {evidence.get('approval')}"
    store = evidence.get("feature_store") or {}
    if store.get("group") and store.get("offline_rows"):
        text += f"; {store.get('offline_rows')} feature records offline"
        if store.get("records_received"):
            text += f", {store['records_received']} online"
    return f"{text} (training job {evidence.get('training_status')})"


def headline_deploy_model(evidence: Evidence) -> str:
    """``mlops-dev-churn InService with v1 in 6.5 s``."""
    took = evidence.get("deploy_s")
    text = f"{evidence.get('endpoint')} {evidence.get('status')} with {_version(evidence.get('package_arn'))}"
    return f"{text} in {took:.1f} s" if isinstance(took, (int, float)) else text


def headline_serve(evidence: Evidence) -> str:
    """``40 calls (200 rows), 0 errors; 2 capture files``."""
    return (
        f"{evidence.get('requests_ok')} calls ({evidence.get('rows_sent')} rows),"
        f" {evidence.get('requests_failed')} errors; {evidence.get('capture_files')} capture files"
    )


def headline_canary(evidence: Evidence) -> str:
    """``canary 50% -> 100%, 244 calls, 0 errors; v2 serving``."""
    shares = " -> ".join(f"{float(s):.0%}" for s in evidence.get("observed_green_shares") or [])
    calls = int(evidence.get("traffic_ok") or 0) + int(evidence.get("traffic_errors") or 0)
    return (
        f"canary {shares or 'no share observed'}, {calls} calls, {evidence.get('traffic_errors')} errors;"
        f" {_serving_versions(evidence)} serving"
    )


def headline_rollback(evidence: Evidence) -> str:
    """``rollback by mlops-dev-churn-5xx-errors after 1 failed call; v2 still serving``."""
    fired = [
        t.get("alarm")
        for t in evidence.get("alarm_transitions") or []
        if isinstance(t, dict) and t.get("to") == "ALARM"
    ]
    failed = (evidence.get("traffic_during_update") or {}).get("errors")
    calls = "call" if failed == 1 else "calls"
    by = f"rollback by {fired[0]}" if fired else "rollback"
    return f"{by} after {failed} failed {calls}; {_serving_versions(evidence.get('after'))} still serving"


# --- the stage list -----------------------------------------------------------------------------


def lifecycle_stages(options: RehearsalOptions) -> list[Stage]:
    """The rehearsal's stages in order: the one list to extend (drift and retrain come after rollback)."""
    from rehearsal import stages as base
    from rehearsal.batch_stage import batch_stage
    from rehearsal.lineage_stage import with_lineage
    from rehearsal.monitoring_stage import drift_stage
    from rehearsal.retrain_stage import retrain_stage

    data_claim = (
        "the user's dataset has the contract's columns" if options.data else "seeded churn data generated"
    )

    stages = [
        Stage(
            "emulator",
            start_full_emulator,
            "an empty AWS account answers on loopback, every extension installed",
            check_full_emulator,
            base.headline_emulator,
        ),
        Stage(
            "deploy",
            deploy_dev,
            "the dev stack exists in the emulator; outputs are the settings",
            base.check_deploy,
            base.headline_deploy,
        ),
        Stage("data", base.prepare_data, data_claim, base.check_data, base.headline_data),
        Stage(
            "ingest",
            base.ingest,
            "the batch is in the raw bucket, SSE-KMS with the lake key",
            base.check_ingest,
            base.headline_ingest,
        ),
        Stage(
            "validate",
            base.validate,
            "the batch passes its contract and is curated",
            base.check_validate,
            base.headline_validate,
        ),
        Stage(
            "train",
            train,
            "the training DAG ran in Airflow: a package is Approved, its training job Completed",
            check_training,
            headline_train,
        ),
        Stage(
            "deploy-model",
            deploy_model,
            "the endpoint is InService serving the approved package",
            check_deploy_model,
            headline_deploy_model,
        ),
        Stage(
            "serve",
            serve,
            "held-out rows get parsable predictions; capture files are written",
            check_serve,
            headline_serve,
        ),
        batch_stage(),
        Stage(
            "canary",
            canary,
            "a second model takes the canary share, then all traffic",
            check_canary,
            headline_canary,
        ),
        Stage(
            "rollback",
            rollback,
            "a failing model trips the rollback alarm; the previous model still serves",
            check_rollback,
            headline_rollback,
        ),
    ]
    # with --data the drift is derived from the contract (rehearsal.monitoring_stage.injected_drift)
    stages += [drift_stage(), retrain_stage()]
    return with_iam(with_lineage(stages))
