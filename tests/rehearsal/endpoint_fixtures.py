"""Model artifacts and SageMaker resources for the endpoint tests.

``model_tarball`` packages a model trained by the test model fixture the way a correctly packaged
artifact carries its serving code: the model files at the root, ``code/inference.py`` and the
``pipelines`` package in ``code/`` (``SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code``).
"""

from __future__ import annotations

import io
import shutil
import tarfile
from functools import cache
from pathlib import Path
from typing import Any

from tests.unit.serving.model_fixture import write_artifact

REPO = Path(__file__).resolve().parents[2]
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"

# What the platform ships as code/inference.py (pipelines.train.serving_code_files)
PLATFORM_HANDLERS = "from pipelines.serving.inference import model_fn, transform_fn\n"
FAILING_HANDLERS = (
    "from pipelines.serving.inference import input_fn, model_fn, output_fn\n\n\n"
    "def predict_fn(data, model):\n"
    "    raise RuntimeError('this model fails under traffic')\n"
)


@cache
def _trained_model(root: str) -> Path:
    return write_artifact(Path(root) / "trained-model", rows=400)


def model_tarball(tmp: Path, inference_code: str | None = PLATFORM_HANDLERS) -> bytes:
    """``model.tar.gz`` bytes: the trained model, plus ``code/`` unless ``inference_code`` is None."""
    model_dir = _trained_model(str(tmp))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            archive.add(str(path), arcname=path.name)
        if inference_code is not None:
            staging = tmp / f"code-{abs(hash(inference_code))}"
            if not staging.exists():
                shutil.copytree(
                    REPO / "pipelines", staging / "pipelines", ignore=shutil.ignore_patterns("__pycache__")
                )
                (staging / "inference.py").write_text(inference_code)
            archive.add(str(staging), arcname="code")
    return buffer.getvalue()


def register_model(
    emu: Any,
    tmp: Path,
    name: str,
    inference_code: str | None = PLATFORM_HANDLERS,
    *,
    via_package: bool = False,
) -> str:
    """Upload an artifact and create a SageMaker model (directly, or through a model package)."""
    s3, sm = emu.client("s3"), emu.client("sagemaker")
    bucket = "artifacts"
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket)
    key = f"models/{name}/model.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=model_tarball(tmp, inference_code))
    container: dict[str, Any] = {
        "Image": IMAGE,
        "ModelDataUrl": f"s3://{bucket}/{key}",
        "Environment": {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        },
    }
    if via_package:
        group = "churn-packages"
        groups = sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
        if group not in [g["ModelPackageGroupName"] for g in groups]:
            sm.create_model_package_group(ModelPackageGroupName=group)
        package = sm.create_model_package(
            ModelPackageGroupName=group,
            InferenceSpecification={
                "Containers": [container],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus="Approved",
        )["ModelPackageArn"]
        sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"ModelPackageName": package})
    else:
        sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer=container)
    return name


def endpoint_config(
    emu: Any,
    name: str,
    variants: dict[str, tuple[str, float]],
    capture_uri: str | None = None,
) -> str:
    """An endpoint config with ``{variant: (model, weight)}`` and optional full data capture."""
    request: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": variant,
                "ModelName": model,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
                "InitialVariantWeight": weight,
            }
            for variant, (model, weight) in variants.items()
        ],
    }
    if capture_uri is not None:
        request["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": capture_uri,
            "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {
                "CsvContentTypes": ["text/csv"],
                "JsonContentTypes": ["application/json"],
            },
        }
    emu.client("sagemaker").create_endpoint_config(**request)
    return name


def csv_rows(count: int, seed: int = 11) -> str:
    """``count`` CSV rows (no header) in the model's feature order."""
    from tests.unit.serving.model_fixture import sample_rows

    frame = sample_rows(count, seed)
    return frame.to_csv(header=False, index=False)
