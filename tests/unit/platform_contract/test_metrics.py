"""The metrics contract: publishers and the Observability component agree on names and dimensions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.observability import Observability, ObservabilityArgs, PipelineSteps, WatchedEndpoint
from pipelines.aws import AwsClients
from pipelines.monitoring.drift import DriftReport, FeatureDrift
from pipelines.monitoring.metrics import drift_metric_data, publish_retrain_triggered
from pipelines.monitoring.metrics import publish_step_status as publish_monitor_status
from pipelines.monitoring.quality import QualityReport, SegmentQuality, publish_quality_metrics
from pipelines.settings import PipelineSettings
from pipelines.step_metrics import publish_step_status
from platform_contract import metrics as contract
from platform_contract.naming import model_names
from stacks.synth import SynthResult, run_program
from tests.conftest import BASE_CONFIG

Key = tuple[str, str, frozenset[str]]


class _RecordingCloudWatch:
    """Stands in for a CloudWatch client: records every PutMetricData entry."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any]]] = []

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:  # noqa: N803
        self.entries += [(Namespace, entry) for entry in MetricData]

    def keys(self) -> set[Key]:
        return {
            (ns, e["MetricName"], frozenset(d["Name"] for d in e["Dimensions"])) for ns, e in self.entries
        }


class _Clients(AwsClients):
    def __init__(self, cloudwatch: _RecordingCloudWatch) -> None:
        super().__init__(PipelineSettings(environment="dev"))
        self._cloudwatch = cloudwatch

    def client(self, service: str) -> Any:
        assert service == "cloudwatch"
        return self._cloudwatch


def _report() -> DriftReport:
    feature = FeatureDrift("tenure", "numeric", "ks", 0.2, 0.05, True, "drift", 100, 100, 0, 0.0, 0.0)
    return DriftReport([feature], None, True, 1.0, ["tenure"], 1, 0.0, 100, 100, {}, "drift")


def _published() -> _RecordingCloudWatch:
    """Run every publisher the pipeline has once."""
    cloudwatch = _RecordingCloudWatch()
    publish_step_status(_Clients(cloudwatch), "churn-training", "train", failed=False)
    publish_monitor_status(cloudwatch, "dev", contract.MONITORING_PIPELINE, "monitor", failed=True)
    publish_retrain_triggered(cloudwatch, "dev", "churn-training", triggered=True)
    for entry in drift_metric_data(_report(), "dev", "mlops-dev-churn"):
        cloudwatch.entries.append((contract.MONITORING_NAMESPACE, entry))
    publish_quality_metrics(cloudwatch, _quality_report(), "dev", "mlops-dev-churn")
    return cloudwatch


def _quality_report() -> QualityReport:
    segment = SegmentQuality("region", "north", 10, 10, 1.0, "ok", {"auc": 0.8})
    estimate = {"metrics": {"accuracy": {"estimate": 0.8, "low": 0.7, "high": 0.9}}}
    return QualityReport(
        "binary_classification", 10, 10, 1.0, "ok", 1, {"auc": 0.8}, [segment], {}, [], 0, 0, 0, 0,
        estimate=estimate,
    )  # fmt: skip


def _observability() -> SynthResult:
    names = model_names("mlops-dev", "churn")
    args = ObservabilityArgs(
        name_prefix="mlops-dev",
        environment="dev",
        region="us-east-1",
        topic_key_arn="arn:aws:kms:us-east-1:123456789012:key/ml",
        pipelines=[
            PipelineSteps(pipeline=names.pipeline, steps=["ingest", "train"]),
            PipelineSteps(pipeline=contract.MONITORING_PIPELINE, steps=["monitor"]),
        ],
        endpoints=[WatchedEndpoint(model=names.slug, endpoint_name=names.endpoint)],
    )

    def program() -> dict[str, Any]:
        obs = Observability("obs", args)
        return {"dashboard": obs.dashboard_name}

    return run_program(program, BASE_CONFIG)


def _declared(result: SynthResult) -> set[Key]:
    """Every (namespace, metric, dimension names) the component alarms on or charts."""
    keys: set[Key] = set()
    for alarm in result.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        inputs = alarm.inputs
        keys.add((inputs["namespace"], inputs["metricName"], frozenset(inputs["dimensions"])))
    (dashboard,) = result.of_type("aws:cloudwatch/dashboard:Dashboard")
    for widget in json.loads(dashboard.inputs["dashboardBody"])["widgets"]:
        for row in widget["properties"]["metrics"]:
            plain = [item for item in row if not isinstance(item, dict)]
            namespace, name, pairs = plain[0], plain[1], plain[2:]
            keys.add((namespace, name, frozenset(pairs[::2])))
    return keys


def test_every_metric_the_component_watches_is_one_the_publishers_emit() -> None:
    declared = _declared(_observability())
    published = _published().keys()
    ours = {k for k in declared if k[0] != contract.SAGEMAKER_NAMESPACE}
    assert ours, "the component declares no pipeline metric"
    assert ours <= published, f"alarms/widgets on metrics nobody publishes: {ours - published}"
    sagemaker = {k for k in declared if k[0] == contract.SAGEMAKER_NAMESPACE}
    assert sagemaker <= {m.key for m in contract.METRICS}, "an AWS/SageMaker metric outside the contract"


def test_publishers_emit_only_contract_metrics_with_their_units() -> None:
    cloudwatch = _published()
    assert cloudwatch.keys() == {m.key for m in contract.PUBLISHED_BY_PIPELINE}
    for namespace, entry in cloudwatch.entries:
        assert entry["Unit"] == contract.metric(namespace, entry["MetricName"]).unit


def test_a_partial_dimension_set_is_refused() -> None:
    with pytest.raises(KeyError, match="missing \\['Step'\\]"):
        contract.STEP_FAILED.dimension_list({contract.ENVIRONMENT: "dev", contract.PIPELINE: "p"})
    with pytest.raises(KeyError, match="not a metric"):
        contract.metric("MLOps/Pipeline", "Nope")
