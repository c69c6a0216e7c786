"""Publish ``MLOps/Pipeline`` ``StepFailed`` metrics (read by the Observability alarms)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.aws import AwsClients

NAMESPACE = "MLOps/Pipeline"
log = logging.getLogger(__name__)


def publish_step_status(clients: AwsClients, pipeline: str, step: str, failed: bool) -> bool:
    """Put ``StepFailed`` (1 failed, 0 succeeded) for ``step``; return False (and log) if publishing failed.

    Best effort: a monitoring outage must not fail the pipeline step itself.
    """
    try:
        clients.client("cloudwatch").put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": "StepFailed",
                    "Dimensions": [
                        {"Name": "Environment", "Value": clients.settings.environment},
                        {"Name": "Pipeline", "Value": pipeline},
                        {"Name": "Step", "Value": step},
                    ],
                    "Value": 1.0 if failed else 0.0,
                    "Unit": "Count",
                }
            ],
        )
    except Exception as exc:
        log.warning("could not publish StepFailed for %s/%s: %s", pipeline, step, exc)
        return False
    return True
