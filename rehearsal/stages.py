"""The rehearsal's stages that run today: emulator, deploy, data, ingest, validate.

Each stage does the work through the same code the platform runs (the stack program, the pipeline
functions, boto3 against the emulator's endpoint) and returns its evidence; its check reads the
evidence and asks the emulator whether the claim holds.

The lifecycle after validate (train through the training DAG, deploy the package, serve, canary,
rollback) is in :mod:`rehearsal.lifecycle`; :func:`default_stages` returns its stage list.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from pathlib import Path
from typing import Any

from rehearsal.run import Evidence, RehearsalOptions, RunContext, Stage

# Static credentials of the emulated account: the pipeline's default credential chain reads them.
_EMULATOR_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _set_env(ctx: RunContext, values: dict[str, str]) -> None:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)

    def restore() -> None:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    ctx.on_close("environment", restore)


# --- emulator ---------------------------------------------------------------------------------


def start_emulator(ctx: RunContext) -> Evidence:
    """Start the emulated account (moto on loopback with the installed extensions)."""
    from rehearsal.emulator import Emulator

    emulator = Emulator()
    ctx.on_close("emulator", emulator.stop)
    emulator.start()
    ctx.emulator = emulator
    _set_env(ctx, {**_EMULATOR_ENV, "AWS_DEFAULT_REGION": emulator.region})
    ctx.event("emulator", f"emulator on {emulator.endpoint_url}")
    return {
        "endpoint_url": emulator.endpoint_url,
        "port": emulator.port,
        "account_id": emulator.account_id,
        "region": emulator.region,
        "extensions": [e.name for e in emulator.extensions],
    }


def check_emulator(evidence: Evidence, ctx: RunContext) -> str | None:
    """The port answers and STS says we are in the emulator's account."""
    assert ctx.emulator is not None
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", int(evidence["port"]))) != 0:
            return f"nothing listens on 127.0.0.1:{evidence['port']}"
    account = ctx.emulator.client("sts").get_caller_identity()["Account"]
    if account != evidence["account_id"]:
        return f"STS answers for account {account}, expected {evidence['account_id']}"
    return None


# --- deploy -------------------------------------------------------------------------------------


def deploy_dev(ctx: RunContext) -> Evidence:
    """Deploy the dev stack into the emulator; write ``stack/outputs.json`` (the pipeline settings)."""
    from rehearsal.deploy import deploy

    assert ctx.emulator is not None
    result = deploy(ctx.emulator, stack="dev", out_dir=ctx.out / "stack")
    ctx.deployment = result
    ctx.event(
        "deploy",
        "dev stack deployed",
        created=len(result.changed()),
        endpoint=result.outputs.get("endpointName"),
        weights=endpoint_weights(ctx, result.outputs.get("endpointName")),
    )
    created = [c for c in result.changes if c.action == "create"]
    return {
        "outputs_file": str(result.outputs_file),
        "created": len(created),
        "recorded": len(result.recorded),
        "recorded_types": result.unsupported_types,
        "aws_calls": len(result.calls),
        "raw_bucket": result.outputs.get("rawBucket"),
        "model_package_group": result.outputs.get("modelPackageGroupName"),
        "emr_virtual_cluster_id": result.outputs.get("emrVirtualClusterId"),
        "endpoint": result.outputs.get("endpointName"),
    }


def endpoint_weights(ctx: RunContext, endpoint: str | None) -> dict[str, float]:
    """The live traffic split of ``endpoint`` (variant -> share of traffic), empty without an endpoint."""
    if not endpoint or ctx.emulator is None:
        return {}
    variants = (
        ctx.emulator.client("sagemaker")
        .describe_endpoint(EndpointName=endpoint)
        .get("ProductionVariants", [])
    )
    weights = {v["VariantName"]: float(v.get("CurrentWeight", 1.0)) for v in variants}
    total = sum(weights.values()) or 1.0
    return {name: weight / total for name, weight in weights.items()}


_BUCKET_OUTPUTS = ("rawBucket", "curatedBucket", "featuresBucket", "artifactsBucket", "captureBucket")


def check_deploy(evidence: Evidence, ctx: RunContext) -> str | None:
    """The outputs file loads as settings, and the resources it names exist in the emulator."""
    from pipelines.settings import load_settings

    assert ctx.emulator is not None
    assert ctx.deployment is not None
    settings = load_settings(evidence["outputs_file"])
    if settings.endpoint_for("s3") != ctx.emulator.endpoint_url:
        return f"outputs.json points the pipeline at {settings.endpoint_for('s3')}, not the emulator"
    outputs = ctx.deployment.outputs
    buckets = {b["Name"] for b in ctx.emulator.client("s3").list_buckets()["Buckets"]}
    missing = [k for k in _BUCKET_OUTPUTS if outputs.get(k) not in buckets]
    if missing:
        return f"buckets named in outputs.json do not exist: {missing}"
    sagemaker = ctx.emulator.client("sagemaker")
    sagemaker.describe_model_package_group(ModelPackageGroupName=settings.require("model_package_group_name"))
    ctx.emulator.client("emr-containers").describe_virtual_cluster(
        id=settings.require("emr_virtual_cluster_id")
    )
    if evidence["created"] == 0:
        return "the deploy created nothing in the emulator"
    return None


# --- data ---------------------------------------------------------------------------------------


def _contract(ctx: RunContext) -> Any:
    from rehearsal.catalog import contract_of

    return contract_of(ctx)


def prepare_data(ctx: RunContext) -> Evidence:
    """Generate the seeded churn data (or take the user's ``--data`` file) into ``data/``, and fix
    the rehearsed model (:func:`rehearsal.catalog.rehearsed_model`) every later stage acts on."""
    import pandas as pd

    from pipelines.synthetic import generate, write_frame
    from rehearsal.catalog import rehearsed_model

    options: RehearsalOptions = ctx.options
    contract = _contract(ctx)
    folder = ctx.out / "data"
    folder.mkdir(parents=True, exist_ok=True)
    if options.data is not None:
        path = folder / options.data.name
        shutil.copyfile(options.data, path)
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        source = f"user data {options.data}"
    else:
        frame = generate(contract.name, rows=options.rows, seed=options.seed)
        path = write_frame(frame, folder / f"{contract.name}.csv")
        source = f"generated ({contract.name}, seed {options.seed})"
    ctx.values["data_file"] = path
    model = rehearsed_model(ctx)
    evidence: Evidence = {
        "source": source,
        "file": str(path),
        "rows": len(frame),
        "columns": list(frame.columns),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "dataset": contract.name,
        "task": contract.task,
        "target": contract.target,
        "model": model.model,
        "model_package_group": model.model_package_group,
        "endpoint": model.endpoint,
        "training_dag": model.training_dag_id,
    }
    if contract.target in frame.columns:
        target: Any = frame[contract.target]
        numeric: Any = pd.to_numeric(target, errors="coerce")
        evidence["target_mean"] = round(float(numeric.mean()), 4)
        evidence["target_classes"] = int(target.nunique())
        evidence["target_numeric_share"] = round(float(numeric.notna().mean()), 4) if len(frame) else 0.0
    return evidence


def check_data(evidence: Evidence, ctx: RunContext) -> str | None:
    """Rows exist, every contract column is present, and a classification target has both classes."""
    contract = _contract(ctx)
    if evidence["rows"] == 0:
        return "the dataset has no rows"
    missing = [c for c in contract.column_names if c not in evidence["columns"]]
    if missing:
        return f"columns of the contract missing from the data: {missing}"
    if contract.is_classification and evidence.get("target_classes", 0) < 2:
        return f"target '{contract.target}' has fewer than two classes"
    if not contract.is_classification and evidence.get("target_numeric_share", 0.0) < 1.0:
        return f"regression target '{contract.target}' has values that are not numbers"
    return None


# --- ingest / validate ------------------------------------------------------------------------------


def airflow_role_credentials(ctx: RunContext) -> dict[str, str] | None:
    """The MWAA execution role's session, as MWAA's workers get it (None: the emulator has no IAM).

    MWAA assumes the role as ``airflow-env.amazonaws.com`` for its environment, so the trust's
    ``aws:SourceAccount`` / ``aws:SourceArn`` conditions are evaluated against the environment's ARN
    (https://docs.aws.amazon.com/mwaa/latest/userguide/cross-service-confused-deputy-prevention.html).
    One session per rehearsal; a trust refusal raises ``rehearsal.iam.TrustDeniedError``.
    """
    from rehearsal.iam.identities import AIRFLOW_ENV_SERVICE, authorizer_of

    emulator = ctx.emulator
    if authorizer_of(emulator) is None or emulator is None:
        return None
    if "airflow_credentials" not in ctx.values:
        assert ctx.deployment is not None, "the deploy stage did not run"
        outputs = ctx.deployment.outputs
        role, environment = outputs.get("airflowExecutionRoleArn"), outputs.get("airflowEnvironmentName")
        if not role or not environment:
            raise RuntimeError(
                "the stack has no MWAA environment (airflowExecutionRoleArn/airflowEnvironmentName are "
                "null): the DAG tasks have no role to run as; enable airflow in the stack config"
            )
        source = f"arn:aws:airflow:{emulator.region}:{emulator.account_id}:environment/{environment}"
        authorizer = authorizer_of(emulator)
        assert authorizer is not None
        ctx.values["airflow_credentials"] = authorizer.issue_credentials(
            str(role), service=AIRFLOW_ENV_SERVICE, source_arn=source, session_name="airflow"
        )
    return dict(ctx.values["airflow_credentials"])


def _clients(ctx: RunContext) -> Any:
    """The pipeline's clients as the DAG tasks have them: the MWAA execution role's session."""
    import boto3

    from pipelines.aws import AwsClients
    from pipelines.settings import load_settings

    if "clients" not in ctx.values:
        assert ctx.deployment is not None
        assert ctx.deployment.outputs_file is not None
        settings = load_settings(ctx.deployment.outputs_file)
        credentials = airflow_role_credentials(ctx)
        session = (
            boto3.Session(
                region_name=settings.region,
                aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=credentials["AWS_SESSION_TOKEN"],
            )
            if credentials is not None
            else None
        )
        ctx.values["clients"] = AwsClients(settings, session=session)
    return ctx.values["clients"]


def ingest(ctx: RunContext) -> Evidence:
    """Land the batch in the raw bucket with the pipeline's ingest step."""
    from pipelines.ingest import ingest_file

    contract = _contract(ctx)
    batch = ingest_file(_clients(ctx), contract.name, Path(ctx.values["data_file"]))
    ctx.values["batch"] = batch
    return {
        "uri": batch.uri,
        "sha256": batch.sha256,
        "ingest_date": batch.ingest_date,
        "already_present": batch.already_present,
    }


def check_ingest(evidence: Evidence, ctx: RunContext) -> str | None:
    """The object is in the raw bucket, encrypted with the data lake key, byte for byte the file."""
    clients = _clients(ctx)
    batch = ctx.values["batch"]
    head = clients.s3.head_object(Bucket=batch.bucket, Key=batch.key)
    expected_key = clients.settings.data_lake_key_arn
    if head.get("ServerSideEncryption") != "aws:kms" or head.get("SSEKMSKeyId") != expected_key:
        return f"{evidence['uri']} is not SSE-KMS with the data lake key (got {head.get('ServerSideEncryption')}, {head.get('SSEKMSKeyId')})"
    size = Path(ctx.values["data_file"]).stat().st_size
    if head["ContentLength"] != size:
        return f"{evidence['uri']} has {head['ContentLength']} bytes, the file {size}"
    return None


def validate(ctx: RunContext) -> Evidence:
    """Validate the landed batch against the contract and curate it (the pipeline's validate step)."""
    from pipelines.validate import validate_batch

    outcome = validate_batch(_clients(ctx), _contract(ctx), ctx.values["batch"])
    ctx.values["validation"] = outcome
    return {
        "passed": outcome.report.passed,
        "rows": outcome.report.rows,
        "failures": len(outcome.report.failures),
        "report_uri": outcome.report_uri,
        "curated_uri": outcome.curated_uri,
    }


def check_validate(evidence: Evidence, ctx: RunContext) -> str | None:
    """The batch passed every check and its curated Parquet is in the curated bucket."""
    if not evidence["passed"]:
        return f"the batch failed {evidence['failures']} checks; see {evidence['report_uri']}"
    bucket, _, key = evidence["curated_uri"].removeprefix("s3://").partition("/")
    if bucket != _clients(ctx).settings.curated_bucket:
        return f"curated data went to {bucket}, not the curated bucket"
    head = _clients(ctx).s3.head_object(Bucket=bucket, Key=key)
    if head["ContentLength"] == 0:
        return f"{evidence['curated_uri']} is empty"
    return None


# --- headlines (one line each for the terminal summary) ---------------------------------------


def headline_emulator(evidence: Evidence) -> str:
    """``8 extensions on http://127.0.0.1:PORT``."""
    extensions = evidence.get("extensions") or []
    where = f"account {evidence.get('account_id')} on {evidence.get('endpoint_url')}"
    return f"{len(extensions)} extensions; {where}" if extensions else where


def headline_deploy(evidence: Evidence) -> str:
    """``188 resources created, 12 recorded (236 AWS calls)``."""
    return (
        f"{evidence.get('created')} resources created, {evidence.get('recorded')} recorded"
        f" ({evidence.get('aws_calls')} AWS calls)"
    )


def headline_data(evidence: Evidence) -> str:
    """``20000 rows, 12 columns; generated (churn, seed 42); target mean 0.357``."""
    text = (
        f"{evidence.get('rows')} rows, {len(evidence.get('columns') or [])} columns; {evidence.get('source')}"
    )
    mean = evidence.get("target_mean")
    return f"{text}; target mean {mean:.3f}" if isinstance(mean, (int, float)) else text


def headline_ingest(evidence: Evidence) -> str:
    """``batch 6cf6b2679e87 landed for 2026-12-01``."""
    again = " (already present)" if evidence.get("already_present") else ""
    return f"batch {str(evidence.get('sha256', ''))[:12]} landed for {evidence.get('ingest_date')}{again}"


def headline_validate(evidence: Evidence) -> str:
    """``20000 rows passed the contract, 0 failures; curated``."""
    verdict = "passed" if evidence.get("passed") else "failed"
    return f"{evidence.get('rows')} rows {verdict} the contract, {evidence.get('failures')} failures; curated"


def default_stages(options: RehearsalOptions) -> list[Stage]:
    """The stages of the rehearsal, in order: :func:`rehearsal.lifecycle.lifecycle_stages`."""
    from rehearsal.lifecycle import lifecycle_stages

    return lifecycle_stages(options)


def base_stages(options: RehearsalOptions) -> list[Stage]:
    """The first stages alone (emulator without extensions, deploy, data, ingest, validate)."""
    data_claim = (
        "the user's dataset has the contract's columns" if options.data else "seeded churn data generated"
    )
    return [
        Stage(
            "emulator",
            start_emulator,
            "an empty AWS account answers on loopback",
            check_emulator,
            headline_emulator,
        ),
        Stage(
            "deploy",
            deploy_dev,
            "the dev stack exists in the emulator; outputs are the settings",
            check_deploy,
            headline_deploy,
        ),
        Stage("data", prepare_data, data_claim, check_data, headline_data),
        Stage(
            "ingest",
            ingest,
            "the batch is in the raw bucket, SSE-KMS with the lake key",
            check_ingest,
            headline_ingest,
        ),
        Stage(
            "validate",
            validate,
            "the batch passes its contract and is curated",
            check_validate,
            headline_validate,
        ),
    ]
