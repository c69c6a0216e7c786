"""Publish ``MLOps/Pipeline`` ``StepFailed`` metrics (read by the Observability alarms).

Names, dimensions and unit come from :mod:`platform_contract.metrics`, the contract the alarms use.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from platform_contract.metrics import ENVIRONMENT, PIPELINE, PIPELINE_NAMESPACE, STEP, STEP_FAILED

if TYPE_CHECKING:
    from pipelines.aws import AwsClients

NAMESPACE = PIPELINE_NAMESPACE
log = logging.getLogger(__name__)


def publish_step_status(clients: AwsClients, pipeline: str, step: str, failed: bool) -> bool:
    """Put ``StepFailed`` (1 failed, 0 succeeded) for ``step``; return False (and log) if publishing failed.

    ``pipeline`` is the model's ``Pipeline`` dimension (``naming.ModelNames.pipeline``,
    ``<slug>-training``). Best effort: a monitoring outage must not fail the pipeline step itself.
    """
    datum = STEP_FAILED.datum(
        1.0 if failed else 0.0,
        {ENVIRONMENT: clients.settings.environment, PIPELINE: pipeline, STEP: step},
    )
    try:
        clients.client("cloudwatch").put_metric_data(Namespace=STEP_FAILED.namespace, MetricData=[datum])
    except Exception as exc:
        log.warning("could not publish StepFailed for %s/%s: %s", pipeline, step, exc)
        return False
    return True
