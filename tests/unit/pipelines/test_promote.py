"""Promotion: approval recorded, delivery pipeline started (Stubber: moto lacks it), served packages reported."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from pipelines.promote import (
    PromotionError,
    approve_package,
    reject_package,
    served_packages,
    start_deployment,
)
from pipelines.settings import SettingMissingError
from tests.unit.pipelines.conftest import ACCOUNT, REGION, Platform

ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlops-test-sagemaker"


def _package(platform: Platform, status: str = "PendingManualApproval") -> str:
    return platform.clients.sagemaker.create_model_package(
        ModelPackageGroupName="mlops-test-models",
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": "s3://b/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus=status,
    )["ModelPackageArn"]


def test_start_deployment_starts_the_delivery_pipeline(platform: Platform) -> None:
    platform.settings.delivery_pipeline_name = "mlops-test-delivery"
    codepipeline = platform.clients.client("codepipeline")
    with Stubber(codepipeline) as stub:
        stub.add_response(
            "start_pipeline_execution", {"pipelineExecutionId": "exec-1"}, {"name": "mlops-test-delivery"}
        )
        assert start_deployment(platform.clients) == "exec-1"
        stub.assert_no_pending_responses()


def test_start_deployment_needs_the_pipeline_name(platform: Platform) -> None:
    with pytest.raises(SettingMissingError, match="MLOPS_DELIVERY_PIPELINE_NAME"):
        start_deployment(platform.clients)


def test_rejected_package_cannot_be_approved(platform: Platform) -> None:
    arn = _package(platform)
    reject_package(platform.clients, arn, "bob", "bias found")
    with pytest.raises(PromotionError, match="rejected"):
        approve_package(platform.clients, arn, "alice", "looks fine")


def test_served_packages_per_environment(platform: Platform) -> None:
    arn = _package(platform, "Approved")
    sm = boto3.client("sagemaker", region_name=REGION)
    sm.create_model(ModelName="churn-m1", PrimaryContainer={"ModelPackageName": arn}, ExecutionRoleArn=ROLE)
    sm.create_endpoint_config(
        EndpointConfigName="churn-ec1",
        ProductionVariants=[
            {
                "VariantName": "blue",
                "ModelName": "churn-m1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    sm.create_endpoint(EndpointName="mlops-dev-churn", EndpointConfigName="churn-ec1")
    report = served_packages(platform.clients, {"dev": "mlops-dev-churn", "prod": "mlops-prod-churn"})
    assert report["dev"][0]["model_package_arn"] == arn
    assert report["dev"][0]["variant"] == "blue"
    assert report["dev"][0]["status"] == "InService"
    assert report["prod"] == [{"endpoint": "mlops-prod-churn", "status": "not deployed"}]


def _package_with_baselines(platform: Platform, run: str) -> str:
    return platform.clients.sagemaker.create_model_package(
        ModelPackageGroupName="mlops-test-models",
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": f"s3://b/{run}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={
            "ModelDataQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://b/{run}/evaluation/stats.json",
                }
            }
        },
        ModelApprovalStatus="Approved",
    )["ModelPackageArn"]


def test_champion_is_the_served_package_not_the_newest_approved(platform: Platform) -> None:
    """A package the guardrail rolled back stays Approved; monitoring must use the one that serves."""
    from pipelines.orchestration import champion_baseline

    served = _package_with_baselines(platform, "run-1")
    _package_with_baselines(platform, "run-2")  # newer, Approved, never served (rolled back)
    sm = boto3.client("sagemaker", region_name=REGION)
    sm.create_model(
        ModelName="churn-m1", PrimaryContainer={"ModelPackageName": served}, ExecutionRoleArn=ROLE
    )
    sm.create_endpoint_config(
        EndpointConfigName="churn-ec1",
        ProductionVariants=[
            {
                "VariantName": "blue",
                "ModelName": "churn-m1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    sm.create_endpoint(EndpointName="mlops-test-churn", EndpointConfigName="churn-ec1")
    platform.settings.endpoint_name = "mlops-test-churn"
    champion = champion_baseline(platform.clients, "churn", "churn")
    assert champion["model_package_arn"] == served
    assert champion["evaluation_prefix"] == "s3://b/run-1/evaluation/"
