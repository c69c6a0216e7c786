"""Register an evaluated model as a SageMaker model package (idempotent).

The package carries the inference image, the model data, the evaluation and baseline files as model
metrics, and metadata (data hash, code version, run id). Its approval status comes from settings:
in dev a model that passed the gate may be approved at once; staging and prod stay pending.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.aws import object_exists, split_s3_uri
from pipelines.evaluate import evaluation_prefix, load_model_archive

if TYPE_CHECKING:
    from pipelines.aws import AwsClients


class RegistrationError(RuntimeError):
    """The model cannot be registered (gate failed, artifacts missing, group not configured)."""


@dataclass(frozen=True)
class Registration:
    """The model package registered (or found) for a model."""

    model_package_arn: str
    approval_status: str
    created: bool
    registration_key: str


def registration_key(metadata: dict[str, Any]) -> str:
    """Identity of a model for idempotency: hash of training data hash, code version and hyperparameters."""
    identity = {
        "model_name": metadata["model_name"],
        "training_data_sha256": metadata["training_data_sha256"],
        "code_version": metadata["code_version"],
        "hyperparameters": metadata["hyperparameters"],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def inference_image(region: str, version: str) -> str:
    """The prebuilt SageMaker scikit-learn inference image URI."""
    from sagemaker.core import image_uris

    return image_uris.retrieve("sklearn", region=region, version=version, image_scope="inference")


def find_registered(sm: Any, group: str, key: str) -> dict[str, Any] | None:
    """The package in ``group`` whose ``registration_key`` metadata equals ``key``, if any."""
    paginator = sm.get_paginator("list_model_packages")
    for page in paginator.paginate(ModelPackageGroupName=group):
        for summary in page["ModelPackageSummaryList"]:
            package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            if package.get("CustomerMetadataProperties", {}).get("registration_key") == key:
                return package
    return None


def package_request(
    clients: AwsClients, model_uri: str, metadata: dict[str, Any], evaluation: dict[str, Any], key: str
) -> dict[str, Any]:
    """The CreateModelPackage request."""
    settings = clients.settings
    artifacts = settings.require("artifacts_bucket")
    prefix = f"s3://{artifacts}/{evaluation_prefix(metadata['model_name'], str(metadata['run_id']))}"
    approve = settings.approve_on_pass and evaluation["gate"]["passed"]
    image = inference_image(settings.region, settings.sklearn_image_version)
    return {
        "ModelPackageGroupName": settings.require("model_package_group_name"),
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


def register_model(clients: AwsClients, model_uri: str, allow_failed_gate: bool = False) -> Registration:
    """Register ``model.tar.gz`` at ``model_uri`` using its evaluation report; return the existing package
    when the same model (data hash, code version, hyperparameters) is already registered."""
    s3, sm = clients.s3, clients.sagemaker
    settings = clients.settings
    group = settings.require("model_package_group_name")
    bucket, key = split_s3_uri(model_uri)
    if not object_exists(s3, bucket, key):
        raise RegistrationError(f"model artifact not found: {model_uri} (did the training upload fail?)")
    loaded = load_model_archive(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    metadata = loaded.metadata
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
        raise RegistrationError(f"the evaluation gate failed, not registering: {reasons}")
    identity = registration_key(metadata)
    existing = find_registered(sm, group, identity)
    if existing is not None:
        return Registration(existing["ModelPackageArn"], existing["ModelApprovalStatus"], False, identity)
    request = package_request(clients, model_uri, metadata, evaluation, identity)
    if not evaluation["gate"]["passed"]:
        request["ModelApprovalStatus"] = "PendingManualApproval"
    arn = sm.create_model_package(**request)["ModelPackageArn"]
    return Registration(arn, request["ModelApprovalStatus"], True, identity)
