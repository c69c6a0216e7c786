"""``mlops monitor run|report``: a monitoring window end to end, or re-render a saved report.

Like every pipeline step, ``run`` reads :class:`~pipelines.settings.PipelineSettings` (``--outputs``
or ``MLOPS_OUTPUTS_FILE``, then ``MLOPS_*``); its options override single settings. Errors exit with
the codes of :class:`~pipelines.errors.ExitCode`. Importing this module imports nothing heavy.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipelines.cli_errors import cli_errors
from pipelines.cli_options import LogLevel

if TYPE_CHECKING:
    from pipelines.settings import ModelTarget, PipelineSettings

app = typer.Typer(name="monitor", help="Drift monitoring over SageMaker data capture.", no_args_is_help=True)


def _parse_when(value: str | None, default: datetime) -> datetime:
    if not value:
        return default
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _monitored_model(settings: PipelineSettings, model: str | None) -> ModelTarget | None:
    """The catalog model being monitored: ``--model``, or the only model of the catalog; None without a catalog."""
    from pipelines.settings import ModelSelectionError

    if model is None and len(settings.models) == 1:
        model = next(iter(settings.models))
    if model is None:
        if settings.models:
            raise ModelSelectionError(
                f"pass --model with one of: {', '.join(sorted(settings.models))} (the catalog has several models)"
            )
        return None
    if model not in settings.models and settings.models:
        raise ModelSelectionError(
            f"--model {model!r} is not in the model catalog: {', '.join(sorted(settings.models))}"
        )
    contract = settings.models[model].contract if model in settings.models else model
    return settings.model_target(contract, model)


def _download_baseline(s3: Any, uri: str, target: Path) -> Path:
    if not uri.startswith("s3://"):
        raise typer.BadParameter(f"{uri!r} is not an s3:// URI", param_hint="--baseline-s3-uri")
    bucket, _, prefix = uri[5:].partition("/")
    prefix = prefix.rstrip("/") + "/"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("baseline.json", "baseline_sample.parquet", "metadata.json"):
        try:
            s3.download_file(bucket, prefix + name, str(target / name))
        except Exception:
            if name != "metadata.json":
                raise
    return target


@app.command("run")
def run(
    outputs: Annotated[
        Path | None,
        typer.Option(
            "--outputs", "-o", envvar="MLOPS_OUTPUTS_FILE", help="Stack outputs JSON (mlops synth --outputs)."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Model of the catalog (default: the only one); names the endpoint."
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(help="SageMaker endpoint name (default: the model's endpoint from the settings)."),
    ] = None,
    capture_bucket: Annotated[
        str | None, typer.Option(help="Bucket SageMaker writes data capture to (default: captureBucket).")
    ] = None,
    capture_prefix: Annotated[
        str | None, typer.Option(help="Prefix of the capture destination URI (default: the model's).")
    ] = None,
    variant: Annotated[str | None, typer.Option(help="Only this production variant (default: all).")] = None,
    start: Annotated[
        str | None, typer.Option(help="Window start, ISO 8601 UTC (default: previous full hour).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Window end, ISO 8601 UTC, exclusive.")] = None,
    baseline_dir: Annotated[
        Path | None,
        typer.Option(help="Local folder with baseline.json, baseline_sample.parquet, metadata.json."),
    ] = None,
    baseline_s3_uri: Annotated[
        str | None, typer.Option(help="s3:// prefix of the evaluation folder holding the baseline files.")
    ] = None,
    output_dir: Annotated[Path, typer.Option(help="Where report files are written.")] = Path(
        "monitoring-report"
    ),
    artifacts_bucket: Annotated[
        str | None,
        typer.Option(help="Upload reports here (monitoring/<endpoint>/...; default: artifactsBucket)."),
    ] = None,
    kms_key_id: Annotated[
        str | None, typer.Option(help="KMS key for uploaded reports (default: the ML key, mlKeyArn).")
    ] = None,
    environment: Annotated[
        str | None, typer.Option(help="Environment dimension of the metrics (default: the settings').")
    ] = None,
    publish_metrics: Annotated[bool, typer.Option(help="Publish CloudWatch metrics.")] = True,
    drift_config: Annotated[Path | None, typer.Option(help="JSON file of DriftConfig overrides.")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region (default: the settings' region).")] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="AWS endpoint URL, an emulator (default: MLOPS_ENDPOINT_URL).")
    ] = None,
    retrain_dag_id: Annotated[
        str | None, typer.Option(help="Training DAG to trigger when retraining is due.")
    ] = None,
    airflow_url: Annotated[str | None, typer.Option(help="Airflow API base URL (REST trigger).")] = None,
    mwaa_environment: Annotated[
        str | None, typer.Option(help="MWAA environment (invoke_rest_api trigger).")
    ] = None,
    max_model_age_days: Annotated[float, typer.Option(help="Scheduled refresh age.")] = 30.0,
    log_level: Annotated[LogLevel, typer.Option(help="Log level.")] = LogLevel.INFO,
) -> None:
    """Compute drift for a capture window, write reports, publish metrics, optionally trigger retraining."""
    import logging

    logging.basicConfig(level=log_level.value.upper())
    with cli_errors():
        _run(**locals())


def _run(
    *,
    outputs: Path | None,
    model: str | None,
    endpoint: str | None,
    capture_bucket: str | None,
    capture_prefix: str | None,
    variant: str | None,
    start: str | None,
    end: str | None,
    baseline_dir: Path | None,
    baseline_s3_uri: str | None,
    output_dir: Path,
    artifacts_bucket: str | None,
    kms_key_id: str | None,
    environment: str | None,
    publish_metrics: bool,
    drift_config: Path | None,
    region: str | None,
    endpoint_url: str | None,
    retrain_dag_id: str | None,
    airflow_url: str | None,
    mwaa_environment: str | None,
    max_model_age_days: float,
    **_: Any,
) -> None:
    import tempfile

    from pipelines.aws import AwsClients
    from pipelines.monitoring.drift import DriftConfig, load_reference
    from pipelines.monitoring.metrics import publish_retrain_triggered, publish_step_status
    from pipelines.monitoring.monitor import run_monitor
    from pipelines.monitoring.report import report_prefix
    from pipelines.monitoring.retrain import RetrainPolicy, dag_run_id_for, decide_retrain, trigger_once
    from pipelines.settings import load_settings
    from platform_contract.metrics import MONITORING_PIPELINE

    overrides: dict[str, Any] = {
        k: v
        for k, v in {
            "region": region,
            "endpoint_url": endpoint_url,
            "environment": environment,
            "capture_bucket": capture_bucket,
            "artifacts_bucket": artifacts_bucket,
            "ml_key_arn": kms_key_id,
        }.items()
        if v is not None
    }
    settings = load_settings(outputs, **overrides)
    clients = AwsClients(settings)
    target = _monitored_model(settings, model)
    endpoint_name = endpoint or (target.endpoint_name if target else None) or settings.endpoint_name
    if not endpoint_name:
        raise typer.BadParameter(
            "no endpoint: pass --endpoint, or --outputs whose 'models' entry (or 'endpointName') names it",
            param_hint="--endpoint",
        )
    endpoint = endpoint_name
    capture_bucket = settings.require("capture_bucket")
    if capture_prefix is None:
        capture_prefix = target.capture_prefix if target else ""
    artifacts_bucket, kms_key_id, environment = (
        settings.artifacts_bucket,
        settings.ml_key_arn,
        settings.environment,
    )
    retrain_pipeline = target.pipeline if target else retrain_dag_id
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    window_end = _parse_when(end, now)
    window_start = _parse_when(start, window_end - timedelta(hours=1))
    s3 = clients.s3
    cloudwatch = clients.client("cloudwatch") if publish_metrics else None
    if (baseline_dir is None) == (baseline_s3_uri is None):
        raise typer.BadParameter("give exactly one of --baseline-dir or --baseline-s3-uri")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            directory = baseline_dir or _download_baseline(s3, str(baseline_s3_uri), Path(scratch))
            reference = load_reference(directory)
            metadata_path = directory / "metadata.json"
            metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
            config = (
                DriftConfig.from_mapping(json.loads(drift_config.read_text()))
                if drift_config
                else DriftConfig()
            )
            result = run_monitor(
                s3=s3,
                reference=reference,
                capture_bucket=capture_bucket,
                capture_prefix=capture_prefix,
                endpoint_name=endpoint,
                start=window_start,
                end=window_end,
                output_dir=output_dir,
                variant=variant,
                config=config,
                environment=environment,
                artifacts_bucket=artifacts_bucket,
                kms_key_id=kms_key_id,
                cloudwatch=cloudwatch,
            )
    except Exception:
        if cloudwatch is not None:
            publish_step_status(cloudwatch, environment, MONITORING_PIPELINE, "monitor", failed=True)
        raise
    if cloudwatch is not None:
        publish_step_status(cloudwatch, environment, MONITORING_PIPELINE, "monitor", failed=False)
    report = result.report
    typer.echo(
        f"{endpoint} {result.window}: {report.status}, {len(report.drifted_features)}/{report.evaluated_features} "
        f"features drifted ({', '.join(report.drifted_features) or 'none'}), {report.current_rows} rows, "
        f"{result.capture.malformed_lines} malformed lines; reports in {output_dir}"
    )
    created = metadata.get("created_at")
    decision = decide_retrain(
        report,
        RetrainPolicy(max_model_age_days=max_model_age_days),
        model_created_at=datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None,
    )
    typer.echo(f"retrain: {decision.retrain} {list(decision.reasons)}")
    if not (decision.retrain and retrain_dag_id and artifacts_bucket):
        return
    trigger: Any
    if mwaa_environment:
        from pipelines.monitoring.retrain import MwaaTrigger

        trigger = MwaaTrigger(clients.client("mwaa"), mwaa_environment)
    elif airflow_url:
        import httpx

        from pipelines.monitoring.retrain import AirflowRestTrigger

        trigger = AirflowRestTrigger(
            airflow_url, httpx.Client(timeout=30), token=os.environ.get("AIRFLOW_TOKEN")
        )
    else:
        raise typer.BadParameter("--retrain-dag-id needs --airflow-url or --mwaa-environment")
    outcome = trigger_once(
        decision,
        trigger,
        s3=s3,
        bucket=artifacts_bucket,
        marker_key=report_prefix(endpoint, window_start, window_end) + "retrain-trigger.json",
        dag_id=retrain_dag_id,
        dag_run_id=dag_run_id_for(endpoint, result.window),
        conf={"endpoint_name": endpoint, "window": result.window},
        kms_key_id=kms_key_id,
    )
    if cloudwatch is not None:
        publish_retrain_triggered(
            cloudwatch, environment, retrain_pipeline or retrain_dag_id, outcome.status == "triggered"
        )
    typer.echo(f"retrain trigger: {outcome.status} {outcome.dag_run_id or ''}")


@app.command("report")
def report(
    report_json: Annotated[Path, typer.Argument(help="A report.json written by 'mlops monitor run'.")],
    html_out: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
) -> None:
    """Print a saved drift report as a table and (optionally) re-render its HTML."""
    from rich.console import Console
    from rich.table import Table

    from pipelines.monitoring.drift import DriftReport
    from pipelines.monitoring.report import render_html

    try:
        loaded = DriftReport.from_dict(json.loads(report_json.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise typer.BadParameter(f"{report_json}: not a drift report ({error})") from error
    table = Table(title=f"{loaded.status}: drift share {loaded.drift_share:.2f}, {loaded.current_rows} rows")
    for column in ("feature", "kind", "test", "statistic", "threshold", "verdict", "missing"):
        table.add_column(column)
    for item in loaded.features + ([loaded.prediction] if loaded.prediction else []):
        table.add_row(
            item.name,
            item.kind,
            item.method,
            "-" if item.statistic is None else f"{item.statistic:.4g}",
            "-" if item.threshold is None else f"{item.threshold:g}",
            item.status,
            f"{item.current_missing_rate:.2%}",
        )
    Console().print(table)
    if html_out is not None:
        html_out.write_text(render_html(loaded), encoding="utf-8")
        typer.echo(f"wrote {html_out}")
