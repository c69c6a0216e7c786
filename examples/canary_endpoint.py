"""A guarded endpoint on its own: canary traffic shifting under its alarms, a shadow variant, auto scaling.

It runs in an existing VPC (IDs below) with an existing execution role and ML key, the way a team
adds one model endpoint to a platform another stack owns.
"""

from __future__ import annotations

from typing import Any

from components.endpoint import AutoScaling, Guardrails, ModelEndpoint, ModelEndpointArgs, ShadowVariant

ACCOUNT = "123456789012"
PACKAGE = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/mlops-prod-churn/7"
CANDIDATE = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/mlops-prod-churn/8"


def main() -> dict[str, Any]:
    """Declare the endpoint; return its name, config name and rollback alarms."""
    # --8<-- [start:endpoint]
    endpoint = ModelEndpoint(
        "churn",
        ModelEndpointArgs(
            name_prefix="mlops-prod",
            endpoint_name="churn",
            execution_role_arn=f"arn:aws:iam::{ACCOUNT}:role/mlops-prod-sagemaker",
            kms_key_arn=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/ml",
            capture_bucket_name="mlops-prod-capture",
            model_package_arn=PACKAGE,
            instance_type="ml.c6i.xlarge",
            instance_count=3,
            subnet_ids=["subnet-0a1b2c3d", "subnet-1a2b3c4d"],
            vpc_id="vpc-0123456789abcdef0",
            vpc_cidr="10.30.0.0/16",
            guardrails=Guardrails(
                strategy="CANARY",
                canary_size_percent=20,  # one instance of three first
                wait_interval_seconds=600,  # ten minutes under the alarms before the rest
                termination_wait_seconds=900,
                maximum_execution_timeout_seconds=3600,
            ),
            latency_threshold_ms=250,
            shadow=ShadowVariant(model_package_arn=CANDIDATE, traffic_percent=25),
            autoscaling=AutoScaling(min_instances=3, max_instances=8, target_invocations_per_instance=300),
        ),
    )
    # --8<-- [end:endpoint]
    return {
        "endpoint": endpoint.endpoint_name,
        "config": endpoint.endpoint_config_name,
        "alarms": endpoint.alarm_names,
    }
