"""Register an evaluated model as a SageMaker model package (idempotent).

The package carries the inference image, the model data, the evaluation and baseline files as model
metrics, and metadata (data hash, code version, run id). Its approval status comes from settings:
in dev a model that passed the gate may be approved at once; staging and prod stay pending.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pipelines.aws import object_exists, split_s3_uri
from pipelines.errors import ExitCode, PipelineError
from pipelines.evaluate import evaluation_prefix, load_model_archive

if TYPE_CHECKING:
    from pipelines.aws import AwsClients
    from pipelines.contract import DatasetContract
    from pipelines.model_card import CardRecord
    from pipelines.settings import ModelTarget
    from pipelines.tracking import TrackedTraining


class RegistrationError(PipelineError):
    """The model cannot be registered (gate failed, artifacts missing, group not configured)."""


class GateFailedError(RegistrationError):
    """The model did not pass the evaluation gate, so it is not registered; exit code 4."""

    exit_code: ClassVar[int] = ExitCode.GATE_FAILED


class ModelMismatchError(RegistrationError):
    """The package's contract is not the contract of the group's model; exit code 2."""

    exit_code: ClassVar[int] = ExitCode.INPUT_REJECTED


@dataclass(frozen=True)
class Registration:
    """The model package registered (or found) for a model."""

    model_package_arn: str
    approval_status: str
    created: bool
    registration_key: str
    model_card_name: str | None = None
    """The package's SageMaker Model Card (Draft until the package is approved)."""


def registration_key(metadata: dict[str, Any]) -> str:
    """Identity of a model for idempotency: the validated data, the contract, code version and hyperparameters.

    The data is the validated (curated) data the features were built from (``data_lineage``), not the
    feature files: the pandas and Spark engines write different part files from the same data, and
    the same data and contract must give one package. Models trained on features without lineage
    fall back to the feature files' hash.
    """
    lineage = metadata.get("data_lineage") or {}
    identity = {
        "model_name": metadata["model_name"],
        "validated_data_sha256": lineage.get("validated_data_sha256") or metadata["training_data_sha256"],
        "contract_sha256": metadata.get("contract_sha256") or lineage.get("contract_sha256"),
        "code_version": metadata["code_version"],
        "hyperparameters": metadata["hyperparameters"],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def inference_image(region: str, version: str) -> str:
    """The prebuilt SageMaker scikit-learn inference image URI."""
    from pipelines.train import sklearn_image_uri

    return sklearn_image_uri(region, version, "inference")


def find_registered(sm: Any, group: str, key: str, contract: str | None = None) -> dict[str, Any] | None:
    """The package in ``group`` whose ``registration_key`` metadata equals ``key``, if any.

    Raises:
        ModelMismatchError: ``contract`` is given and the group holds a package of another contract.
    """
    from pipelines.packages import package_contract

    paginator = sm.get_paginator("list_model_packages")
    for page in paginator.paginate(ModelPackageGroupName=group):
        for summary in page["ModelPackageSummaryList"]:
            package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            theirs = package_contract(package)
            if contract is not None and theirs not in (None, contract):
                raise ModelMismatchError(
                    f"model package group '{group}' holds packages of contract '{theirs}' "
                    f"({package['ModelPackageArn']}); this model was trained on contract '{contract}'. "
                    "Register it into its own model's group: pass --model, or add the model to the "
                    "stack's model catalog (stack output 'models')"
                )
            if package.get("CustomerMetadataProperties", {}).get("registration_key") == key:
                return package
    return None


def package_request(
    clients: AwsClients,
    model_uri: str,
    metadata: dict[str, Any],
    evaluation: dict[str, Any],
    key: str,
    model: ModelTarget | None = None,
) -> dict[str, Any]:
    """The CreateModelPackage request (into ``model``'s group; default: the model of the archive's contract)."""
    target = model or clients.settings.model_target(str(metadata["model_name"]))
    lineage = metadata.get("data_lineage") or {}
    settings = clients.settings
    artifacts = settings.require("artifacts_bucket")
    prefix = f"s3://{artifacts}/{evaluation_prefix(metadata['model_name'], str(metadata['run_id']))}"
    approve = settings.approve_on_pass and evaluation["gate"]["passed"]
    image = inference_image(settings.region, settings.sklearn_image_version)
    return {
        "ModelPackageGroupName": target.require_group(),
        "ModelPackageDescription": f"{metadata['model_name']} run {metadata['run_id']} ({metadata['task']})"[
            :1000
        ],
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": image,
                    "ModelDataUrl": model_uri,
                    # The scikit-learn container imports SAGEMAKER_PROGRAM from SAGEMAKER_SUBMIT_DIRECTORY;
                    # training writes that code into the model at code/, which the endpoint unpacks
                    # to /opt/ml/model/code (sagemaker_sklearn_container.serving, ServingEnv.module_dir).
                    "Environment": {
                        "SAGEMAKER_PROGRAM": "inference.py",
                        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                        "MLOPS_MODEL_NAME": metadata["model_name"],
                    },
                    "Framework": "SKLEARN",
                    "FrameworkVersion": settings.sklearn_image_version.split("-")[0],
                }
            ],
            "SupportedContentTypes": ["text/csv", "application/json", "application/x-npy"],
            "SupportedResponseMIMETypes": ["application/json", "text/csv"],
        },
        "ModelMetrics": {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": prefix + "evaluation.json"}
            },
            "ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": prefix + "baseline.json"}
            },
        },
        "ModelApprovalStatus": "Approved" if approve else "PendingManualApproval",
        "MetadataProperties": {
            "CommitId": str(metadata["code_version"])[:1024],
            "GeneratedBy": str(metadata["run_id"]),
        },
        "CustomerMetadataProperties": {
            "registration_key": key,
            "model": target.model,
            "contract": str(metadata["model_name"]),
            "validated_data_sha256": str(lineage.get("validated_data_sha256", "unknown")),
            # the training data's immutable version (pipelines.datasets); mlops reproduce starts here
            "dataset_manifest": str(lineage.get("manifest_uri", "none"))[:256],
            # and its splits' versions (the rows each split of training used)
            **{
                f"dataset_manifest_{split}"[:128]: str(ref.get("manifest_uri"))[:256]
                for split, ref in sorted(dict(lineage.get("split_manifests") or {}).items())
            },
            "run_id": str(metadata["run_id"]),
            "code_version": str(metadata["code_version"]),
            "serving_runtime": str(evaluation.get("serving_runtime", {}).get("runtime", "unchecked")),
            "training_data_sha256": metadata["training_data_sha256"],
            "model_sha256": metadata["model_sha256"],
            "task": metadata["task"],
            # An undefined metric (e.g. AUC on a one-class test set) is null in evaluation.json.
            **{
                f"metric_{k}": "undefined" if v is None else f"{v:.6g}"
                for k, v in evaluation["metrics"].items()
            },
        },
        "Tags": [
            {"Key": "mlops:model", "Value": metadata["model_name"]},
            {"Key": "mlops:environment", "Value": settings.environment},
        ],
    }


def register_model(
    clients: AwsClients,
    model_uri: str,
    allow_failed_gate: bool = False,
    model: ModelTarget | None = None,
    mlflow_run: TrackedTraining | None = None,
) -> Registration:
    """Register ``model.tar.gz`` at ``model_uri`` into ``model``'s group using its evaluation report.

    ``model`` defaults to the catalog model of the archive's contract. Returns the existing package
    when the same model (validated data, contract, code version, hyperparameters) is already registered.
    ``mlflow_run`` (the run :func:`pipelines.tracking.track_training_run` recorded) goes into the
    package's metadata (``mlflow_run_id``, ``mlflow_experiment_id``).

    Raises:
        ModelMismatchError: the archive's contract is not the model's, or the group holds another
            contract's packages.
        GateFailedError: the evaluation gate failed (and ``allow_failed_gate`` is False).
    """
    s3, sm = clients.s3, clients.sagemaker
    settings = clients.settings
    bucket, key = split_s3_uri(model_uri)
    if not object_exists(s3, bucket, key):
        raise RegistrationError(f"model artifact not found: {model_uri} (did the training upload fail?)")
    loaded = load_model_archive(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), unpickle=False)
    metadata = loaded.metadata
    contract = str(metadata["model_name"])
    target = model or settings.model_target(contract)
    if target.contract != contract:
        raise ModelMismatchError(
            f"model '{target.model}' uses contract '{target.contract}', but {model_uri} was trained on "
            f"contract '{contract}'; pass the --model whose contract is '{contract}'"
        )
    group = target.require_group()
    artifacts = settings.require("artifacts_bucket")
    prefix = evaluation_prefix(metadata["model_name"], str(metadata["run_id"]))
    for name in ("evaluation.json", "baseline.json", "baseline_sample.parquet"):
        if not object_exists(s3, artifacts, prefix + name):
            raise RegistrationError(
                f"s3://{artifacts}/{prefix}{name} is missing: run the evaluate step first"
            )
    evaluation = json.loads(s3.get_object(Bucket=artifacts, Key=prefix + "evaluation.json")["Body"].read())
    if not evaluation["gate"]["passed"] and not allow_failed_gate:
        reasons = "; ".join(evaluation["gate"]["reasons"])
        raise GateFailedError(f"the evaluation gate failed, not registering: {reasons}")
    identity = registration_key(metadata)
    existing = find_registered(sm, group, identity, contract)
    if existing is not None:
        return Registration(existing["ModelPackageArn"], existing["ModelApprovalStatus"], False, identity)
    request = package_request(clients, model_uri, metadata, evaluation, identity, target)
    if not evaluation["gate"]["passed"]:
        request["ModelApprovalStatus"] = "PendingManualApproval"
    _record_provenance(request, mlflow_run, settings.environment)
    arn = sm.create_model_package(**request)["ModelPackageArn"]
    card = register_card(clients, loaded.contract, metadata, evaluation, {**request, "ModelPackageArn": arn})
    return Registration(arn, request["ModelApprovalStatus"], True, identity, card.name)


def _record_provenance(request: dict[str, Any], mlflow_run: TrackedTraining | None, environment: str) -> None:
    """Add the MLflow run and, for a package approved at registration, who approved it, when and why.

    The registry keeps no approver for a package created Approved (CreateModelPackage has no
    ApprovalDescription), so the approval metadata :func:`pipelines.promote.approve_package` writes is
    written here too. Metadata stays within the registry's limits (50 entries; keys 128 and values 256
    characters of letters, digits, spaces and ``_.:/=+-@``).
    """
    from datetime import UTC, datetime

    from pipelines.tracking import EXPERIMENT_ID_KEY, RUN_ID_KEY

    metadata = request["CustomerMetadataProperties"]
    if mlflow_run is not None:
        metadata[RUN_ID_KEY] = mlflow_run.run_id
        if mlflow_run.experiment_id:
            metadata[EXPERIMENT_ID_KEY] = mlflow_run.experiment_id
    if request["ModelApprovalStatus"] == "Approved":
        metadata["approved_by"] = "registration:auto-approve"
        # values allow letters, digits, spaces and _.:/=+-@ only (CustomerMetadataMap in the API model)
        metadata["approval_reason"] = f"passed the evaluation gate - {environment} approves passing models"
        metadata["approved_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def register_card(
    clients: AwsClients,
    contract: DatasetContract,
    metadata: dict[str, Any],
    evaluation: dict[str, Any],
    package: dict[str, Any],
) -> CardRecord:
    """The package's model card: created Draft; approved at once when the package was registered Approved
    (dev's approve-on-pass), so its versions still record Draft then Approved."""
    from pipelines.model_card import approve_card, create_draft_card

    evaluation_uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    card = create_draft_card(clients, contract, metadata, evaluation, package, evaluation_uri)
    if package.get("ModelApprovalStatus") == "Approved":
        approved = approve_card(
            clients, str(package["ModelPackageArn"]), "approved on passing the gate (dev)"
        )
        return approved or card
    return card
