"""A promotion deploys autoscaled variants with the capacity they run now (issue 12 item 9)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from stacks.config.live_counts import main, retained_counts, sagemaker_live_count

PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-prod-churn/3"


def _models(**endpoint: Any) -> list[dict[str, Any]]:
    base = {"modelPackageArn": PACKAGE, "instanceCount": 2, "minInstances": 2, "maxInstances": 6}
    return [
        {"name": "churn", "contract": "churn", "endpoint": {**base, **endpoint}},
        {"name": "housing", "contract": "housing", "endpoint": {"mode": "batch"}},
    ]


def test_a_scaled_out_variant_keeps_its_capacity_clamped_to_the_bounds() -> None:
    seen: list[tuple[str, str]] = []

    def live(endpoint: str, variant: str) -> int:
        seen.append((endpoint, variant))
        return 9

    assert retained_counts(_models(), "mlops-prod", live) == {"models[0].endpoint.instanceCount": 6}
    assert seen == [("mlops-prod-churn", "primary")]  # the batch model has no endpoint to ask


def test_the_configured_count_is_a_floor_and_missing_or_unscaled_endpoints_are_left_alone() -> None:
    assert retained_counts(_models(), "mlops-prod", lambda e, v: 1) == {}
    assert retained_counts(_models(), "mlops-prod", lambda e, v: None) == {}
    assert retained_counts(_models(autoscaling=False), "mlops-prod", lambda e, v: 5) == {}
    assert retained_counts(_models(modelPackageArn=""), "mlops-prod", lambda e, v: 5) == {}


@mock_aws
def test_the_live_count_is_read_from_describe_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    live = sagemaker_live_count(sm)
    assert live("mlops-prod-churn", "primary") is None
    sm.create_model(
        ModelName="m",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/i:1"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": "m",
                "InitialInstanceCount": 4,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName="mlops-prod-churn", EndpointConfigName="c")
    assert live("mlops-prod-churn", "primary") == 4
    assert live("mlops-prod-churn", "other") is None


def test_the_command_names_its_usage_and_a_bad_models_value() -> None:
    assert main([]) == 2
    assert main(["not json", "mlops-prod"]) == 2
