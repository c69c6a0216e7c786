"""``mlops pipeline ...``: a typer CLI over every pipeline step, with progress display and plain errors.

Heavy libraries (pandas, scikit-learn, PySpark, boto3) are imported inside the commands, so
``mlops --help`` stays fast and importing this module has no side effects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipelines.cli_errors import cli_errors
from pipelines.cli_options import FeatureEngine, LocalEngine, TrainMode
from pipelines.errors import ExitCode, InputRejectedError

if TYPE_CHECKING:
    from pipelines.aws import AwsClients
    from pipelines.contract import DatasetContract
    from pipelines.settings import ModelTarget

pipeline_app = typer.Typer(
    name="pipeline",
    help="Run the ML pipeline steps: generate-data, ingest, validate, features, train, evaluate, register, promote.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

T = TypeVar("T")


class _Consoles:
    """Rich consoles made on first use (no import-time side effects)."""

    @property
    def out(self) -> Console:
        """Console on stdout."""
        return Console()

    @property
    def err(self) -> Console:
        """Console on stderr."""
        return Console(stderr=True)


_consoles = _Consoles()

OutputsOption = Annotated[
    Path | None,
    typer.Option(
        "--outputs", "-o", envvar="MLOPS_OUTPUTS_FILE", help="Stack outputs JSON (mlops synth --outputs)."
    ),
]
ContractOption = Annotated[
    str, typer.Option("--contract", "-c", help="Contract name in ./contracts or a path to a contract YAML.")
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Model of the stack's model catalog (default: the one whose contract is --contract).",
    ),
]
DateOption = Annotated[
    str | None, typer.Option("--date", "-d", help="Ingest date partition YYYY-MM-DD (default: today, UTC).")
]


def _today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


@contextmanager
def _errors(on_error: Callable[[BaseException], None] | None = None) -> Iterator[None]:
    """Every command's body: a :class:`~pipelines.errors.PipelineError` (or a translated AWS error)
    prints its message and hint and exits with its code; anything else is a bug and keeps its traceback."""
    with cli_errors(_consoles.err, on_error):
        yield


def _step(title: str, fn: Callable[[], T]) -> T:
    with _consoles.out.status(f"[bold]{title}[/]..."):
        result = fn()
    _consoles.out.print(f"[green]done[/] {title}")
    return result


def _clients(outputs: Path | None) -> AwsClients:
    from pipelines.aws import AwsClients
    from pipelines.settings import load_settings

    return AwsClients(load_settings(outputs))


def _contract(name: str) -> tuple[DatasetContract, Path]:
    from pipelines.contract import load_contract, resolve_contract_path

    path = resolve_contract_path(name)
    return load_contract(path), path


def _other_contracts(current: Path) -> list[DatasetContract]:
    from pipelines.contract import ContractError, load_contract

    folder = current.parent
    others = []
    for path in sorted(folder.glob("*.yaml")):
        if path.resolve() != current.resolve():
            try:
                others.append(load_contract(path))
            except ContractError:
                continue
    return others


def _parse_pairs(pairs: list[str], what: str) -> dict[str, Any]:
    from pipelines.train import parse_value

    values: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise typer.BadParameter(f"{what} must look like key=value, got {pair!r}")
        key, _, value = pair.partition("=")
        values[key.strip()] = parse_value(value)
    return values


def _default_run_id(target: ModelTarget) -> str:
    """A new run id, also the training job name: ``mlops-<env>-<slug>-<stamp>`` (the IAM grants' pattern)."""
    return target.training_job_name(datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))


def _target(clients: AwsClients, contract: str, model: str | None) -> ModelTarget:
    return clients.settings.model_target(contract, model)


def _model_uri(clients: AwsClients, dataset: str, run_id: str) -> str:
    from pipelines.train import model_output_key

    return f"s3://{clients.settings.require('artifacts_bucket')}/{model_output_key(dataset, run_id)}"


def _features_uri(clients: AwsClients, dataset: str, day: str) -> str:
    from pipelines.features.local import features_prefix

    return f"s3://{clients.settings.require('features_bucket')}/{features_prefix(dataset, day)}"


# --- commands ----------------------------------------------------------------------------------


@pipeline_app.command("generate-data")
def generate_data(
    dataset: Annotated[str, typer.Argument(help="Generator: churn or housing.")],
    out: Annotated[Path, typer.Option("--out", help="Output .csv or .parquet file.")] = Path(
        "data/batch.csv"
    ),
    rows: Annotated[int, typer.Option(help="Number of rows.")] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 42,
    id_offset: Annotated[int, typer.Option(help="First row ID (keep batches' keys distinct).")] = 0,
    shift: Annotated[list[str], typer.Option(help="Numeric drift column=amount (repeatable).")] = [],  # noqa: B006
    scale: Annotated[list[str], typer.Option(help="Numeric drift column=factor (repeatable).")] = [],  # noqa: B006
    label_shift: Annotated[
        float, typer.Option(help="Label drift (logit shift / relative price shift).")
    ] = 0.0,
    category_weights: Annotated[
        str | None, typer.Option(help='Category drift as JSON: {"column": {"category": weight}}.')
    ] = None,
) -> None:
    """Write a seeded synthetic batch, optionally with injected drift."""
    with _errors():
        from pipelines.synthetic import DriftSpec, generate, write_frame

        try:
            weights = json.loads(category_weights) if category_weights else {}
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--category-weights") from None
        drift = DriftSpec(
            numeric_scale={k: float(v) for k, v in _parse_pairs(scale, "--scale").items()},
            numeric_shift={k: float(v) for k, v in _parse_pairs(shift, "--shift").items()},
            category_weights=weights,
            label_shift=label_shift,
        )
        frame = generate(dataset, rows, seed, drift, id_offset)
        write_frame(frame, out)
        _consoles.out.print(f"wrote {len(frame)} {dataset} rows to {out}")


@pipeline_app.command("validate")
def validate(
    source: Annotated[str, typer.Argument(help="Local .csv/.parquet file, or s3://raw-bucket/raw/... key.")],
    contract: ContractOption = "churn",
    outputs: OutputsOption = None,
    report: Annotated[Path | None, typer.Option(help="Also write the JSON report here.")] = None,
) -> None:
    """Validate a batch against its contract (a local file offline, or a landed batch which is then curated)."""
    with _errors():
        from pipelines.ingest import BatchFileNotFoundError
        from pipelines.validate import BatchValidationError, check_batch

        spec, path = _contract(contract)
        others = _other_contracts(path)
        if source.startswith("s3://"):
            outcome = _validate_landed(_clients(outputs), spec, source, others)
            _consoles.out.print(escape(outcome.report.summary()))
            _consoles.out.print(f"curated: {outcome.curated_uri}")
            return
        file = Path(source)
        if not file.is_file():
            raise BatchFileNotFoundError(f"batch file not found: {file}")
        result, _ = check_batch(file.read_bytes(), file.name, spec, str(file), others)
        if report:
            report.write_text(result.to_json())
        if not result.passed:
            raise BatchValidationError(result)
        _consoles.out.print(escape(result.summary()))


def _validate_landed(
    clients: AwsClients, spec: DatasetContract, uri: str, others: list[DatasetContract]
) -> Any:
    from pipelines.aws import split_s3_uri
    from pipelines.ingest import IngestResult
    from pipelines.validate import validate_batch

    bucket, key = split_s3_uri(uri)
    match = re.match(r"raw/([^/]+)/ingest_date=(\d{4}-\d{2}-\d{2})/([0-9a-f]{16})/([^/]+)$", key)
    if not match:
        raise InputRejectedError(
            f"{uri} is not a raw batch key (raw/<dataset>/ingest_date=YYYY-MM-DD/<sha16>/<file>)",
            hint="pass the 'raw:' URI that 'mlops pipeline ingest' printed",
        )
    dataset, day, sha, name = match.groups()
    batch = IngestResult(dataset, bucket, key, name, sha, day, already_present=True)
    return _step("validating", lambda: validate_batch(clients, spec, batch, others))


@pipeline_app.command("ingest")
def ingest(
    file: Annotated[Path, typer.Argument(help="Batch file (.csv or .parquet).")],
    contract: ContractOption = "churn",
    date: DateOption = None,
    outputs: OutputsOption = None,
    validate_batch: Annotated[
        bool, typer.Option("--validate/--no-validate", help="Validate and curate.")
    ] = True,
) -> None:
    """Land a batch in the raw bucket, then validate it and write the curated copy."""
    with _errors():
        from pipelines.ingest import ingest_file
        from pipelines.validate import validate_batch as run_validation

        spec, path = _contract(contract)
        clients = _clients(outputs)
        batch = _step("landing the batch", lambda: ingest_file(clients, spec.name, file, date or _today()))
        _consoles.out.print(f"raw: {batch.uri}" + (" (already present)" if batch.already_present else ""))
        if validate_batch:
            others = _other_contracts(path)
            outcome = _step("validating", lambda: run_validation(clients, spec, batch, others))
            _consoles.out.print(f"report: {outcome.report_uri}\ncurated: {outcome.curated_uri}")


@pipeline_app.command("features")
def features(
    contract: ContractOption = "churn",
    date: DateOption = None,
    engine: Annotated[
        FeatureEngine, typer.Option(help="spark (local mode), pandas, or emr (EMR on EKS).")
    ] = FeatureEngine.SPARK,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the EMR job run.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the EMR job run.")] = 3600,
    outputs: OutputsOption = None,
) -> None:
    """Build the feature table for one ingest date."""
    with _errors():
        spec, _ = _contract(contract)
        clients = _clients(outputs)
        day = date or _today()
        if engine is FeatureEngine.EMR:
            from pipelines.aws import list_keys
            from pipelines.features.emr import submit_features_job, wait_for_job_run
            from pipelines.features.local import curated_prefix
            from pipelines.lineage import write_lineage

            curated_bucket = clients.settings.require("curated_bucket")
            sources = [
                k
                for k in list_keys(clients.s3, curated_bucket, curated_prefix(spec.name, day))
                if k.endswith(".parquet")
            ]
            run = _step("submitting the EMR on EKS job run", lambda: submit_features_job(clients, spec, day))
            _consoles.out.print(f"job run {run.job_run_id} on virtual cluster {run.virtual_cluster_id}")
            if wait:
                _step("waiting for the job run", lambda: wait_for_job_run(clients, run, timeout))
                write_lineage(clients, spec, run.output_uri, sources)
            _consoles.out.print(f"features: {run.output_uri}")
            return
        from pipelines.features.local import run_features

        result = _step(
            f"building features ({engine.value})", lambda: run_features(clients, spec, day, engine.value)
        )
        _consoles.out.print(f"{result.rows} rows -> {result.uri}")


@pipeline_app.command("train")
def train(
    contract: ContractOption = "churn",
    model: ModelOption = None,
    date: DateOption = None,
    run_id: Annotated[
        str | None,
        typer.Option(help="Run ID, also the training job name (default: mlops-<env>-<model>-<time>)."),
    ] = None,
    mode: Annotated[
        TrainMode, typer.Option(help="local (entry point here) or sagemaker (training job).")
    ] = TrainMode.LOCAL,
    hp: Annotated[list[str], typer.Option(help="Hyperparameter key=value (repeatable).")] = [],  # noqa: B006
    features_uri: Annotated[
        str | None, typer.Option(help="Training data prefix (default: the date's features).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a SageMaker job.")] = 7200,
    outputs: OutputsOption = None,
) -> None:
    """Train a model and write ``model.tar.gz`` to the artifacts bucket."""
    with _errors():
        from pipelines.train import run_training_locally, start_training_job

        spec, path = _contract(contract)
        clients = _clients(outputs)
        target = _target(clients, spec.name, model)
        rid = run_id or _default_run_id(target)
        data = features_uri or _features_uri(clients, spec.name, date or _today())
        hps = _parse_pairs(hp, "--hp")
        if mode is TrainMode.SAGEMAKER:
            uri = _step(
                "running the SageMaker training job",
                lambda: start_training_job(clients, path, rid, data, hps, timeout_s=timeout),
            )
        else:
            uri = _step("training locally", lambda: run_training_locally(clients, path, rid, data, hps))
        _consoles.out.print(f"run {rid}: {uri}")


@pipeline_app.command("evaluate")
def evaluate(
    run_id: Annotated[str, typer.Argument(help="Run ID of the trained model.")],
    contract: ContractOption = "churn",
    model: ModelOption = None,
    date: DateOption = None,
    features_uri: Annotated[
        str | None, typer.Option(help="Features prefix (default: the date's features).")
    ] = None,
    champion: Annotated[
        bool, typer.Option("--champion/--no-champion", help="Compare with the model's approved package.")
    ] = True,
    outputs: OutputsOption = None,
) -> None:
    """Evaluate a trained model, write the evaluation and baselines, and print the gate decision (exit 4 if failed)."""
    with _errors():
        from pipelines.evaluate import evaluate_model

        spec, _ = _contract(contract)
        clients = _clients(outputs)
        target = _target(clients, spec.name, model) if champion else None
        data = features_uri or _features_uri(clients, spec.name, date or _today())
        result = _step(
            "evaluating",
            lambda: evaluate_model(clients, _model_uri(clients, spec.name, run_id), data, champion, target),
        )
        _print_evaluation(result.report)
        if not result.passed:
            raise typer.Exit(ExitCode.GATE_FAILED)


def _print_evaluation(report: dict[str, Any]) -> None:
    table = Table(title=f"evaluation of {report.get('run_id')}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in report["metrics"].items():
        table.add_row(name, "undefined" if value is None or value != value else f"{value:.4f}")
    _consoles.out.print(table)
    verdict = "[green]PASSED[/]" if report["gate"]["passed"] else "[red]FAILED[/]"
    _consoles.out.print(f"gate {verdict}: " + "; ".join(report["gate"]["reasons"]))


@pipeline_app.command("register")
def register(
    run_id: Annotated[str, typer.Argument(help="Run ID of the evaluated model.")],
    contract: ContractOption = "churn",
    model: ModelOption = None,
    outputs: OutputsOption = None,
) -> None:
    """Register the evaluated model into its model's group (returns the existing package if already registered)."""
    with _errors():
        from pipelines.register import register_model

        spec, _ = _contract(contract)
        clients = _clients(outputs)
        target = _target(clients, spec.name, model)
        result = _step(
            "registering",
            lambda: register_model(clients, _model_uri(clients, spec.name, run_id), model=target),
        )
        state = "registered" if result.created else "already registered"
        _consoles.out.print(f"{state}: {result.model_package_arn} ({result.approval_status})")


@pipeline_app.command("promote")
def promote(
    package_arn: Annotated[str, typer.Argument(help="Model package ARN to approve.")],
    approver: Annotated[str, typer.Option(help="Who approves (recorded on the package).")],
    reason: Annotated[str, typer.Option(help="Why (recorded on the package).")],
    model: ModelOption = None,
    deploy: Annotated[bool, typer.Option("--deploy/--no-deploy", help="Start the delivery pipeline.")] = True,
    outputs: OutputsOption = None,
) -> None:
    """Approve a model package of a model and start the environment's deployment."""
    with _errors():
        from pipelines.packages import package_contract
        from pipelines.promote import PromotionError, approve_package, start_deployment

        clients = _clients(outputs)
        package = clients.sagemaker.describe_model_package(ModelPackageName=package_arn)
        contract = package_contract(package)
        if contract is None and model is None:
            raise PromotionError(
                f"{package_arn} does not record its contract; pass --model to say whose package it is"
            )
        target = clients.settings.model_target(contract or "", model)
        approval = _step(
            "approving", lambda: approve_package(clients, package_arn, approver, reason, model=target)
        )
        _consoles.out.print(
            f"approved by {approval.approver} at {approval.approved_at} (model {target.model})"
        )
        if deploy:
            execution = _step("starting the deployment", lambda: start_deployment(clients))
            _consoles.out.print(f"delivery pipeline execution {execution}")


@pipeline_app.command("status")
def status(
    contract: ContractOption = "churn",
    model: ModelOption = None,
    endpoint: Annotated[list[str], typer.Option(help="environment=endpoint-name (repeatable).")] = [],  # noqa: B006
    outputs: OutputsOption = None,
) -> None:
    """Show a model's latest approved package and which package each environment's endpoint serves."""
    with _errors():
        from pipelines.promote import latest_approved, served_packages

        clients = _clients(outputs)
        spec, _ = _contract(contract)
        target = _target(clients, spec.name, model)
        latest = latest_approved(clients, target)
        _consoles.out.print(
            f"model {target.model} (contract {target.contract}, group {target.model_package_group_name}): "
            f"latest approved: {latest['ModelPackageArn'] if latest else 'none'}"
        )
        endpoints = {k: str(v) for k, v in _parse_pairs(endpoint, "--endpoint").items()}
        if not endpoints and target.endpoint_name:
            endpoints = {clients.settings.environment: target.endpoint_name}
        table = Table(title=f"served model packages of {target.model}")
        for column in ("environment", "endpoint", "status", "variant", "weight", "model package"):
            table.add_column(column)
        for env_name, rows in served_packages(clients, endpoints).items():
            for row in rows:
                table.add_row(
                    env_name,
                    row["endpoint"],
                    row["status"],
                    row.get("variant", ""),
                    str(row.get("weight", "")),
                    row.get("model_package_arn") or row.get("model_data_url") or "",
                )
        _consoles.out.print(table)


@pipeline_app.command("run")
def run(
    file: Annotated[Path, typer.Argument(help="Batch file (.csv or .parquet).")],
    contract: ContractOption = "churn",
    model: ModelOption = None,
    date: DateOption = None,
    engine: Annotated[LocalEngine, typer.Option(help="Feature engine: spark or pandas.")] = LocalEngine.SPARK,
    register_model: Annotated[
        bool, typer.Option("--register/--no-register", help="Register if the gate passes.")
    ] = True,
    metrics: Annotated[
        bool, typer.Option("--metrics/--no-metrics", help="Publish MLOps/Pipeline StepFailed per step.")
    ] = True,
    outputs: OutputsOption = None,
) -> None:
    """Run ingest, validate, features, train (local), evaluate and register on one batch (exit 4 if the gate fails)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    started: dict[str, str] = {}

    def say_run_id(_: BaseException) -> None:
        if "run_id" in started:
            _consoles.err.print(
                f"run {started['run_id']} failed at step '{started.get('step', '?')}'", highlight=False
            )

    with _errors(on_error=say_run_id):
        from pipelines.evaluate import evaluate_model
        from pipelines.features.local import run_features
        from pipelines.ingest import ingest_file
        from pipelines.register import register_model as do_register
        from pipelines.step_metrics import publish_step_status
        from pipelines.train import run_training_locally
        from pipelines.validate import validate_batch

        spec, path = _contract(contract)
        clients = _clients(outputs)
        target = _target(clients, spec.name, model)
        day = date or _today()
        rid = _default_run_id(target)
        started["run_id"] = rid
        _consoles.out.print(f"run {rid} (model {target.model})", highlight=False)
        steps = ["ingest", "validate", "features", "train", "evaluate"] + (
            ["register"] if register_model else []
        )
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=_consoles.out
        ) as bar:
            task = bar.add_task("pipeline", total=len(steps))

            def step(name: str, fn: Callable[[], T]) -> T:
                started["step"] = name
                bar.update(task, description=f"[bold]{name}[/]")
                try:
                    result = fn()
                except Exception:
                    if metrics:
                        publish_step_status(clients, target.pipeline, name, failed=True)
                    raise
                if metrics:
                    publish_step_status(clients, target.pipeline, name, failed=False)
                bar.advance(task)
                return result

            batch = step("ingest", lambda: ingest_file(clients, spec.name, file, day))
            step("validate", lambda: validate_batch(clients, spec, batch, _other_contracts(path)))
            feats = step("features", lambda: run_features(clients, spec, day, engine.value))
            model_uri = step("train", lambda: run_training_locally(clients, path, rid, feats.uri))
            evaluation = step("evaluate", lambda: evaluate_model(clients, model_uri, feats.uri, model=target))
            registration = None
            if register_model and evaluation.passed:
                registration = step("register", lambda: do_register(clients, model_uri, model=target))
        _print_evaluation(evaluation.report)
        _consoles.out.print(f"run {rid}: model {model_uri}", highlight=False)
        if registration:
            _consoles.out.print(f"package: {registration.model_package_arn} ({registration.approval_status})")
        if not evaluation.passed:
            raise typer.Exit(ExitCode.GATE_FAILED)
