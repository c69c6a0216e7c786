"""Observability under the recording mock and in the stacks: encrypted topic, alarms on the metric
names and dimensions of the pipeline contract, the dashboard, and the key grant CloudWatch needs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.encryption import EncryptionArgs, ServiceGrant
from components.observability import (
    MONITORING_NAMESPACE,
    PIPELINE_NAMESPACE,
    Observability,
    ObservabilityArgs,
    PipelineSteps,
    WatchedEndpoint,
)
from stacks.synth import SynthResult, run_program
from tests.conftest import BASE_CONFIG
from tests.unit.components._helpers import policy, statements

ML_KEY = "arn:aws:kms:us-east-1:123456789012:key/ml"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _args(**overrides: Any) -> ObservabilityArgs:
    values: dict[str, Any] = {
        "name_prefix": "mlops-test",
        "environment": "test",
        "region": "us-east-1",
        "topic_key_arn": ML_KEY,
        "alert_emails": ["oncall@example.com"],
        "pipelines": [
            PipelineSteps(pipeline="churn-training", steps=["ingest", "train"]),
            PipelineSteps(pipeline="monitoring", steps=["monitor"]),
        ],
        "endpoints": [
            WatchedEndpoint(model="churn", endpoint_name="mlops-test-churn", drift_share_threshold=0.3)
        ],
    }
    values.update(overrides)
    return ObservabilityArgs(**values)


def _run(args: ObservabilityArgs) -> SynthResult:
    def program() -> dict[str, Any]:
        obs = Observability("obs", args)
        return {"topic": obs.topic_arn, "alarms": obs.alarm_names, "dashboard": obs.dashboard_name}

    return run_program(program, BASE_CONFIG)


@pytest.fixture(scope="module")
def result() -> SynthResult:
    return _run(_args())


def test_topic_encrypted_and_tls_only(result: SynthResult) -> None:
    (topic,) = result.of_type("aws:sns/topic:Topic")
    assert topic.inputs["kmsMasterKeyId"] == ML_KEY
    (topic_policy,) = result.of_type("aws:sns/topicPolicy:TopicPolicy")
    stmts = {s["Sid"]: s for s in statements(policy(topic_policy))}
    assert stmts["CloudWatchAlarmsPublish"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert stmts["CloudWatchAlarmsPublish"]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"}
    }
    assert stmts["DenyInsecureTransport"]["Effect"] == "Deny"
    assert stmts["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (sub,) = result.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert (sub.inputs["protocol"], sub.inputs["endpoint"]) == ("email", "oncall@example.com")


def test_step_failed_alarm_per_step_with_full_dimensions(result: SynthResult) -> None:
    alarms = [a.inputs for a in result.of_type(ALARM) if a.inputs["metricName"] == "StepFailed"]
    dims = sorted((a["dimensions"]["Pipeline"], a["dimensions"]["Step"]) for a in alarms)
    assert dims == [("churn-training", "ingest"), ("churn-training", "train"), ("monitoring", "monitor")]
    for a in alarms:
        assert a["namespace"] == PIPELINE_NAMESPACE == "MLOps/Pipeline"
        assert set(a["dimensions"]) == {"Environment", "Pipeline", "Step"}
        assert a["dimensions"]["Environment"] == "test"
        assert a["threshold"] == 1
        assert a["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert a["treatMissingData"] == "notBreaching"
        assert a["alarmActions"] == [result.outputs["topic"]]


def test_drift_alarms_on_the_contract_metrics(result: SynthResult) -> None:
    drift = {
        a.inputs["metricName"]: a.inputs
        for a in result.of_type(ALARM)
        if a.inputs["namespace"] == MONITORING_NAMESPACE
    }
    assert set(drift) == {"DatasetDrift", "DriftShare", "MissingValueRate"}
    for a in drift.values():
        assert a["dimensions"] == {"Environment": "test", "EndpointName": "mlops-test-churn"}
    assert drift["DriftShare"]["threshold"] == 0.3
    assert drift["DatasetDrift"]["threshold"] == 1


def test_each_watched_endpoint_gets_its_own_drift_alarms() -> None:
    two = [WatchedEndpoint(model=m, endpoint_name=f"mlops-test-{m}") for m in ("churn", "housing")]
    names = {a.inputs["name"] for a in _run(_args(endpoints=two)).of_type(ALARM)}
    for m in ("churn", "housing"):
        assert {
            f"mlops-test-{m}-dataset-drift",
            f"mlops-test-{m}-drift-share",
            f"mlops-test-{m}-missing-values",
        } <= names


def test_no_drift_alarms_without_an_endpoint() -> None:
    result = _run(_args(endpoints=[]))
    assert {a.inputs["metricName"] for a in result.of_type(ALARM)} == {"StepFailed"}


def test_dashboard_is_valid_json_with_widgets(result: SynthResult) -> None:
    (dash,) = result.of_type("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dash.inputs["dashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles == [
        "Pipeline step failures",
        "churn: endpoint invocations and errors",
        "churn: endpoint model latency (microseconds)",
        "churn: drift",
    ]
    latency = body["widgets"][2]["properties"]["metrics"][0]
    assert latency[:6] == [
        "AWS/SageMaker",
        "ModelLatency",
        "EndpointName",
        "mlops-test-churn",
        "VariantName",
        "primary",
    ]


def test_args_validation() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        WatchedEndpoint(model="churn", endpoint_name="e", drift_share_threshold=1.5)
    with pytest.raises(ValueError, match="one entry per model"):
        _args(endpoints=[WatchedEndpoint(model="a", endpoint_name="e")] * 2)
    with pytest.raises(ValueError, match="listed twice"):
        _args(pipelines=[PipelineSteps(pipeline="p", steps=["a", "a"])])


def test_extra_key_grants_need_a_known_domain() -> None:
    grant = ServiceGrant(service="cloudwatch.amazonaws.com", actions=("kms:Decrypt",))
    with pytest.raises(ValueError, match="no key for domains"):
        EncryptionArgs(name_prefix="x", region="us-east-1", extra_service_grants={"alerts": [grant]})


def test_stacks_alert_topic_and_key_grant(each_stack: SynthResult) -> None:
    (topic,) = each_stack.of_type("aws:sns/topic:Topic")
    assert topic.inputs["kmsMasterKeyId"] == each_stack.outputs["mlKeyArn"]
    assert (
        each_stack.outputs["alertTopicArn"]
        == f"arn:aws:sns:us-east-1:123456789012:mlops-{each_stack.stack}-alerts"
    )
    ml_key = next(k for k in each_stack.of_type("aws:kms/key:Key") if k.inputs["tags"]["data-domain"] == "ml")
    cw = [s for s in statements(policy(ml_key)) if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert [s["Action"] for s in cw] == [["kms:Decrypt", "kms:GenerateDataKey*"]]
    # item 13: only CloudWatch acting for this account
    assert cw[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    # the pipeline's steps each have an alarm (contract: Pipeline churn-training, monitoring)
    steps = {(a.inputs["dimensions"]["Pipeline"], a.inputs["dimensions"]["Step"])
             for a in each_stack.of_type(ALARM) if a.inputs["metricName"] == "StepFailed"}  # fmt: skip
    assert ("churn-training", "train") in steps
    assert ("monitoring", "monitor") in steps


def test_model_quality_alarms_on_the_contract_floors() -> None:
    watched = WatchedEndpoint(
        model="churn",
        endpoint_name="mlops-test-churn",
        quality_min={"auc": 0.7},
        quality_max={"log_loss": 0.6},
    )
    alarms = {
        a.inputs["name"]: a.inputs
        for a in _run(_args(endpoints=[watched])).of_type(ALARM)
        if a.inputs["metricName"] == "ModelQuality"
    }
    assert set(alarms) == {"mlops-test-churn-quality-auc-min", "mlops-test-churn-quality-log-loss-max"}
    floor = alarms["mlops-test-churn-quality-auc-min"]
    assert floor["namespace"] == MONITORING_NAMESPACE
    assert floor["dimensions"] == {
        "Environment": "test",
        "EndpointName": "mlops-test-churn",
        "QualityMetric": "auc",
    }
    assert (floor["threshold"], floor["comparisonOperator"], floor["statistic"]) == (
        0.7,
        "LessThanThreshold",
        "Minimum",
    )
    assert floor["treatMissingData"] == "notBreaching"
    ceiling = alarms["mlops-test-churn-quality-log-loss-max"]
    assert (ceiling["threshold"], ceiling["comparisonOperator"]) == (0.6, "GreaterThanThreshold")


def test_the_stack_reads_the_floors_from_the_contract() -> None:
    # stacks/ml_services.py passes these to WatchedEndpoint for every model with an endpoint
    from stacks.config.contracts import read_contract_schema

    schema = read_contract_schema("churn")
    assert schema.quality_min == (("auc", 0.7),)
    assert schema.quality_max == ()
