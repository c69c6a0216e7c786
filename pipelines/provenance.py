"""Lineage: what is serving and where it came from, read only from what the platform records.

For an endpoint: its variants and weights -> the model package each serves (status, approval: who,
when, why) -> the MLflow run (id, params, metrics; found through the package's ``mlflow_run_id``
metadata, else through the run tagged with the package ARN) -> the training job -> the data batch(es)
(URIs and hashes) -> their validation reports -> the contract -> the code version. Every link comes
from the model registry, the tracking store or S3, so the same code answers on AWS and in the
rehearsal. A link that is not recorded is reported under ``missing`` with what to do, never guessed.

``mlops lineage`` prints it (a rich tree, or ``--json``); the rehearsal report includes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.errors import NotConfiguredError, PipelineError

if TYPE_CHECKING:
    from rich.tree import Tree

    from pipelines.aws import AwsClients
    from pipelines.tracking import Tracker

SCHEMA_VERSION = 1


class LineageError(PipelineError):
    """The lineage cannot be followed from what was asked (an unknown endpoint or package)."""


class RunNotRecordedError(NotConfiguredError):
    """A package has no MLflow run (registered before tracking existed, or with tracking off)."""


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (str(value) if value is not None else None)


def approval_of(package: dict[str, Any]) -> dict[str, Any]:
    """Who approved (or rejected) the package, when and why, from the registry's own fields and metadata."""
    metadata = package.get("CustomerMetadataProperties") or {}
    modified_by = package.get("LastModifiedBy") or {}
    created_by = package.get("CreatedBy") or {}
    return {
        "status": package.get("ModelApprovalStatus"),
        "approved_by": metadata.get("approved_by"),
        "approved_at": metadata.get("approved_at"),
        "reason": metadata.get("approval_reason"),
        "description": package.get("ApprovalDescription"),
        "registered_at": _iso(package.get("CreationTime")),
        "registered_by": (created_by.get("IamIdentity") or {}).get("Arn")
        or created_by.get("UserProfileName"),
        "last_modified_at": _iso(package.get("LastModifiedTime")),
        "last_modified_by": (modified_by.get("IamIdentity") or {}).get("Arn")
        or modified_by.get("UserProfileName"),
    }


def _find_run(tracker: Tracker, package: dict[str, Any]) -> tuple[Any | None, str]:
    """The package's MLflow run and how it was found (its metadata, else the run tagged with its ARN)."""
    from pipelines.tracking import PACKAGE_TAG, RUN_ID_KEY

    metadata = package.get("CustomerMetadataProperties") or {}
    run_id = metadata.get(RUN_ID_KEY)
    if run_id:
        return tracker.client.get_run(run_id), f"package metadata {RUN_ID_KEY}"
    # the experiment is the model package group (pipelines.tracking.experiment_name)
    experiment = tracker.client.get_experiment_by_name(str(package.get("ModelPackageGroupName")))
    if experiment is None:
        return None, ""
    arn = str(package["ModelPackageArn"])
    runs = tracker.client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{PACKAGE_TAG}` = '{arn}'", max_results=1
    )
    return (runs[0], f"run tag {PACKAGE_TAG}") if runs else (None, "")


def _run_lineage(tracker: Tracker, run: Any) -> dict[str, Any]:
    """The run's id, params, metrics, tags and the dataset identity it recorded."""
    import json

    from pipelines.tracking import DATASET_ARTIFACT

    dataset: dict[str, Any] | None = None
    try:
        path = tracker.client.download_artifacts(run.info.run_id, DATASET_ARTIFACT)
        with open(path, encoding="utf-8") as handle:
            dataset = json.load(handle)
    except Exception:  # a run logged by another tool may lack it; reported as missing
        dataset = None
    tags = dict(run.data.tags)
    return {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "started_at": run.info.start_time,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": {k: v for k, v in tags.items() if k.startswith("mlops.")},
        "dataset": dataset,
    }


def _tuning_lineage(tracker: Tracker, run: Any) -> dict[str, Any] | None:
    """The tuning job behind a training run (its child run tagged ``mlops.step=tuning``, nested there by
    :func:`pipelines.tuning.nest_tuning_run`) with every trial (that run's children); None when the model
    was not tuned."""
    experiment = [run.info.experiment_id]
    children = tracker.client.search_runs(
        experiment,
        filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}' and tags.`mlops.step` = 'tuning'",
        max_results=1,
    )
    if not children:
        return None
    tuning = children[0]
    trials = tracker.client.search_runs(
        experiment, filter_string=f"tags.`mlflow.parentRunId` = '{tuning.info.run_id}'", max_results=1000
    )
    tags = dict(tuning.data.tags)
    return {
        "run_id": tuning.info.run_id,
        "tuning_job": tags.get("mlops.tuning_job"),
        "objective": tags.get("mlops.objective"),
        "best_training_job": tags.get("mlops.best_training_job"),
        "metrics": dict(tuning.data.metrics),
        "trials": sorted(
            (
                {
                    "run_id": t.info.run_id,
                    "training_job": t.data.tags.get("mlops.training_job"),
                    "status": t.data.tags.get("mlops.status"),
                    "best": t.data.tags.get("mlops.best") == "True",
                    "params": dict(t.data.params),
                    "metrics": dict(t.data.metrics),
                }
                for t in trials
            ),
            key=lambda t: str(t["training_job"]),
        ),
    }


def _training_job(clients: AwsClients, name: str | None) -> dict[str, Any] | None:
    """The training job's status and output (None when it is not found, e.g. a local training run)."""
    from botocore.exceptions import ClientError

    if not name:
        return None
    try:
        job = clients.sagemaker.describe_training_job(TrainingJobName=name)
    except ClientError:
        return None
    return {
        "name": name,
        "status": job.get("TrainingJobStatus"),
        "created_at": _iso(job.get("CreationTime")),
        "ended_at": _iso(job.get("TrainingEndTime")),
        "model_artifacts": (job.get("ModelArtifacts") or {}).get("S3ModelArtifacts"),
        "image": (job.get("AlgorithmSpecification") or {}).get("TrainingImage"),
    }


def _datasets(clients: AwsClients, metadata: dict[str, Any], missing: list[str]) -> list[dict[str, Any]]:
    """The training data's versions (pipelines.datasets manifests): feature set, splits, curated table,
    validated batches, raw uploads."""
    from pipelines.datasets import dataset_chain

    uri = metadata.get("dataset_manifest")
    if not uri or uri == "none":
        missing.append("dataset manifests: the package names none (trained before versioned datasets)")
        return []
    splits = {
        k[len("dataset_manifest_") :]: v for k, v in metadata.items() if k.startswith("dataset_manifest_")
    }
    chain = dataset_chain(clients.s3, str(uri), splits)
    missing.extend(f"dataset manifest {e['manifest_uri']}: {e['error']}" for e in chain if "error" in e)
    return chain


def package_lineage(clients: AwsClients, package_arn: str, tracker: Tracker | None = None) -> dict[str, Any]:
    """Lineage of one model package: approval, MLflow run, training job, batches, validation, contract, code.

    Raises:
        LineageError: the package does not exist.
    """
    from botocore.exceptions import ClientError

    from pipelines.tracking import DATASET_ARTIFACT, open_tracker

    try:
        package = clients.sagemaker.describe_model_package(ModelPackageName=package_arn)
    except ClientError as exc:
        raise LineageError(f"model package {package_arn} not found: {exc}") from None
    metadata = dict(package.get("CustomerMetadataProperties") or {})
    container = (package.get("InferenceSpecification") or {}).get("Containers", [{}])[0]
    missing: list[str] = []
    node: dict[str, Any] = {
        "model_package_arn": package_arn,
        "group": package.get("ModelPackageGroupName"),
        "version": package.get("ModelPackageVersion"),
        "model": metadata.get("model"),
        "model_data_url": container.get("ModelDataUrl"),
        "approval": approval_of(package),
        "training_run_id": metadata.get("run_id"),
        "code_version": metadata.get("code_version")
        or (package.get("MetadataProperties") or {}).get("CommitId"),
        "contract": {"name": metadata.get("contract"), "version": None, "sha256": None},
        "validated_data_sha256": metadata.get("validated_data_sha256"),
        "evaluation_uri": (
            ((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}
        ).get("S3Uri"),
        "mlflow_run": None,
        "training_job": _training_job(clients, metadata.get("run_id")),
        "batches": [],
        "missing": missing,
    }
    if node["training_job"] is None:
        missing.append(
            f"training job {metadata.get('run_id')!r} is not in SageMaker (trained locally, or expired)"
        )
    node["datasets"] = _datasets(clients, metadata, missing)
    tracker = tracker or open_tracker(clients.settings)
    if tracker is None:
        missing.append(
            "MLflow run: tracking is not configured (set MLOPS_MLFLOW_TRACKING_URI or the stack output mlflowArn)"
        )
        return node
    run, found_by = _find_run(tracker, package)
    if run is None:
        missing.append(
            f"MLflow run: {package_arn} records no mlflow_run_id and no run is tagged with it "
            "(registered before run tracking, or with tracking off); re-train to get a tracked package"
        )
        return node
    tracked = _run_lineage(tracker, run)
    tracked["found_by"] = found_by
    tracked["tuning"] = _tuning_lineage(tracker, run)
    node["mlflow_run"] = tracked
    dataset = tracked.pop("dataset")
    if dataset is None:
        missing.append(f"dataset identity: run {run.info.run_id} has no {DATASET_ARTIFACT} artifact")
        return node
    node["contract"] = {
        "name": dataset.get("contract") or node["contract"]["name"],
        "version": dataset.get("contract_version"),
        "sha256": dataset.get("contract_sha256"),
    }
    node["validated_data_sha256"] = dataset.get("validated_data_sha256") or node["validated_data_sha256"]
    node["training_rows"] = dataset.get("training_rows")
    node["batches"] = list(dataset.get("batches") or [])
    for batch in node["batches"]:
        if not batch.get("batch_uri"):
            missing.append(f"raw batch of {batch.get('curated_uri')} (not found when the run was tracked)")
        if not batch.get("validation_report_uri"):
            missing.append(f"validation report of {batch.get('curated_uri')}")
    if not node["batches"]:
        missing.append("data batches: the model's features recorded no curated sources (_lineage.json)")
    return node


def endpoint_lineage(clients: AwsClients, endpoint: str, tracker: Tracker | None = None) -> dict[str, Any]:
    """Lineage of an endpoint: each production variant, its weight and its package's lineage.

    Raises:
        LineageError: the endpoint does not exist.
    """
    from pipelines.promote import served_packages
    from pipelines.tracking import open_tracker

    rows = served_packages(clients, {endpoint: endpoint})[endpoint]
    if len(rows) == 1 and rows[0].get("status") == "not deployed":
        raise LineageError(
            f"endpoint {endpoint} not found: is it deployed in this environment's account/region?"
        )
    tracker = tracker or open_tracker(clients.settings)
    variants = []
    for row in rows:
        arn = row.get("model_package_arn")
        variants.append(
            {
                "variant": row.get("variant"),
                "weight": row.get("weight"),
                "model": row.get("model"),
                "package": package_lineage(clients, str(arn), tracker) if arn else None,
                "model_data_url": row.get("model_data_url"),
                "missing": []
                if arn
                else [f"variant {row.get('variant')} serves model data, not a model package"],
            }
        )
    return {"endpoint": endpoint, "status": rows[0].get("status") if rows else None, "variants": variants}


def environment_endpoints(clients: AwsClients) -> list[str]:
    """The environment's endpoints: the catalog models' endpoints, else the one-model ``endpoint_name``."""
    settings = clients.settings
    names = [e.endpoint_name for e in settings.models.values() if e.endpoint_name]
    if not names and settings.models:
        names = [
            settings.model_target(e.contract, m).names.endpoint for m, e in sorted(settings.models.items())
        ]
    if not names and settings.endpoint_name:
        names = [settings.endpoint_name]
    if not names:
        raise NotConfiguredError(
            "no endpoints to trace: the stack outputs name no models with endpoints; pass --endpoint or "
            "--package, or set MLOPS_ENDPOINT_NAME"
        )
    return sorted(set(names))


def lineage(
    clients: AwsClients, endpoint: str | None = None, package_arn: str | None = None
) -> dict[str, Any]:
    """The lineage document for a package, an endpoint, or (neither) every endpoint of the environment."""
    from pipelines.tracking import open_tracker

    tracker = open_tracker(clients.settings)
    base = {"schema_version": SCHEMA_VERSION, "environment": clients.settings.environment}
    if package_arn:
        return {**base, "packages": [package_lineage(clients, package_arn, tracker)]}
    endpoints = [endpoint] if endpoint else environment_endpoints(clients)
    return {**base, "endpoints": [endpoint_lineage(clients, name, tracker) for name in endpoints]}


def missing_links(document: dict[str, Any]) -> list[str]:
    """Every ``missing`` entry of a lineage document (empty: the chain is complete)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            found.extend(str(m) for m in value.get("missing") or [])
            for key, child in value.items():
                if key != "missing":
                    walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(document)
    return found


# --- rendering ---------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    from rich.markup import escape

    return escape(str(value)) if value is not None else "[dim]-[/]"


def _package_tree(parent: Tree, node: dict[str, Any]) -> None:
    approval = node["approval"]
    branch = parent.add(f"[bold]package[/] {_fmt(node['model_package_arn'])} [{approval['status']}]")
    branch.add(
        f"approval: by {_fmt(approval['approved_by'])} at {_fmt(approval['approved_at'])}: "
        f"{_fmt(approval['reason'] or approval['description'])}"
    )
    branch.add(f"registered {_fmt(approval['registered_at'])}; model data {_fmt(node['model_data_url'])}")
    run = node.get("mlflow_run")
    if run:
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(run["metrics"].items()))
        run_branch = branch.add(
            f"[bold]MLflow run[/] {_fmt(run['run_id'])} ({_fmt(run['status'])}) {metrics}"
        )
        params = ", ".join(
            f"{k}={v}" for k, v in sorted(run["params"].items()) if "sha256" not in k and k != "batch_uris"
        )
        run_branch.add(f"params: {_fmt(params)}")
        tuning = run.get("tuning")
        if tuning:
            tuning_branch = run_branch.add(
                f"[bold]tuning run[/] {_fmt(tuning['run_id'])} job {_fmt(tuning['tuning_job'])} "
                f"({_fmt(tuning['objective'])}): {len(tuning['trials'])} trials"
            )
            for trial in tuning["trials"]:
                scores = ", ".join(f"{k}={v:.4g}" for k, v in sorted(trial["metrics"].items()))
                marker = " [green]best[/]" if trial["best"] else ""
                tuning_branch.add(
                    f"trial {_fmt(trial['training_job'])} {_fmt(trial['status'])} {_fmt(scores)}{marker}"
                )
    job = node.get("training_job")
    job_branch = branch.add(
        f"[bold]training job[/] {_fmt(node['training_run_id'])} {_fmt(job['status']) if job else '[dim](not found)[/]'}"
    )
    for batch in node.get("batches") or []:
        item = job_branch.add(f"[bold]batch[/] {_fmt(batch.get('batch_uri') or batch.get('curated_uri'))}")
        item.add(f"sha256 {_fmt(batch.get('batch_sha256'))}")
        validation = batch.get("validation") or {}
        item.add(
            f"validation {_fmt(batch.get('validation_report_uri'))}: "
            f"{'passed' if validation.get('passed') else _fmt(validation.get('passed'))}, {_fmt(validation.get('rows'))} rows"
        )
    contract = node["contract"]
    job_branch.add(
        f"contract {_fmt(contract['name'])} v{_fmt(contract['version'])} sha256 {_fmt(contract['sha256'])}; "
        f"validated data sha256 {_fmt(node.get('validated_data_sha256'))}"
    )
    job_branch.add(f"code version {_fmt(node.get('code_version'))}")
    datasets = node.get("datasets") or []
    if datasets:
        data_branch = job_branch.add("[bold]datasets[/] (manifests; parents follow)")
        for entry in datasets:
            if "error" in entry:
                continue
            if entry.get("manifest_uri"):
                data_branch.add(
                    f"{_fmt(entry['kind'])} {_fmt(entry['dataset'])} v{_fmt(entry['version'])}: "
                    f"{_fmt(entry['row_count'])} rows, run {_fmt(entry['producing_run'])}, {_fmt(entry['manifest_uri'])}"
                )
            else:
                data_branch.add(
                    f"{_fmt(entry['kind'])} {_fmt(entry['uri'])} sha256 {_fmt(entry['content_sha256'])}"
                )
    for gap in node.get("missing") or []:
        branch.add(f"[yellow]missing:[/] {_fmt(gap)}")


def render_tree(document: dict[str, Any]) -> Tree:
    """The lineage document as a rich tree."""
    from rich.tree import Tree

    root = Tree(f"[bold]lineage[/] ({_fmt(document.get('environment'))})")
    for endpoint in document.get("endpoints") or []:
        branch = root.add(f"[bold]endpoint[/] {_fmt(endpoint['endpoint'])} {_fmt(endpoint['status'])}")
        for variant in endpoint["variants"]:
            item = branch.add(f"variant {_fmt(variant['variant'])} weight {_fmt(variant['weight'])}")
            if variant["package"]:
                _package_tree(item, variant["package"])
            for gap in variant["missing"]:
                item.add(f"[yellow]missing:[/] {_fmt(gap)}")
    for package in document.get("packages") or []:
        _package_tree(root, package)
    return root
