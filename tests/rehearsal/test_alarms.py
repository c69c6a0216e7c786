"""The alarm evaluator judges stored metrics the way CloudWatch does (statistic, M of N, missing data)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rehearsal.alarms import AlarmEvaluator, TimeScale, statistic
from rehearsal.emulator import Emulator

SCALE = 60.0  # a 60 s period is one wall-clock second


@pytest.fixture
def emu() -> Iterator[Emulator]:
    # a tick of a million emulated seconds: the thread stays idle, the tests call evaluate() themselves
    with Emulator(extensions=[AlarmEvaluator(time_scale=SCALE, tick_seconds=1e6)]) as emulator:
        yield emulator


def evaluator(emu: Emulator) -> AlarmEvaluator:
    ext = emu.extension("cloudwatch-alarms")
    assert isinstance(ext, AlarmEvaluator)
    return ext


DIMS = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}]


def put(emu: Emulator, metric: str, value: float, at: datetime, dims: list[dict[str, str]] = DIMS) -> None:
    emu.client("cloudwatch").put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[{"MetricName": metric, "Value": value, "Dimensions": dims, "Timestamp": at}],
    )


def alarm(emu: Emulator, name: str, **kwargs: Any) -> None:
    request: dict[str, Any] = {
        "AlarmName": name,
        "Namespace": "AWS/SageMaker",
        "MetricName": "ModelLatency",
        "Dimensions": DIMS,
        "Statistic": "Average",
        "Period": 60,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2,
        "Threshold": 500_000,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        **kwargs,
    }
    emu.client("cloudwatch").put_metric_alarm(**request)


def state(emu: Emulator, name: str) -> str:
    return emu.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]


def test_m_of_n_datapoints_with_the_alarm_statistic() -> None:
    with Emulator(extensions=[AlarmEvaluator(time_scale=SCALE, tick_seconds=1e6)]) as emu:
        now = datetime.now(UTC)
        alarm(emu, "latency")
        # newest period: average (900k + 100k) / 2 = 500k, not above; the two before: above
        put(emu, "ModelLatency", 900_000, now - timedelta(seconds=0.3))
        put(emu, "ModelLatency", 100_000, now - timedelta(seconds=0.4))
        put(emu, "ModelLatency", 600_000, now - timedelta(seconds=1.5))
        evaluator(emu).evaluate(now)
        assert state(emu, "latency") == "OK"  # one breaching period of three, two needed
        put(emu, "ModelLatency", 700_000, now - timedelta(seconds=2.5))
        evaluator(emu).evaluate(now)
        assert state(emu, "latency") == "ALARM"
        # data with other dimensions (a different metric) does not count
        alarm(
            emu,
            "other-dims",
            Dimensions=[DIMS[0]],
            Statistic="Maximum",
            EvaluationPeriods=1,
            DatapointsToAlarm=1,
        )
        evaluator(emu).evaluate(now)
        assert state(emu, "other-dims") == "OK"


def test_missing_data_is_treated_as_configured(emu: Emulator) -> None:
    for treat in ("notBreaching", "breaching", "missing", "ignore"):
        alarm(emu, f"quiet-{treat}", TreatMissingData=treat)
    assert state(emu, "quiet-ignore") == "OK"  # moto's initial state...
    evaluator(emu).evaluate()
    assert state(emu, "quiet-notBreaching") == "OK"
    assert state(emu, "quiet-breaching") == "ALARM"
    assert state(emu, "quiet-missing") == "INSUFFICIENT_DATA"
    assert state(emu, "quiet-ignore") == "INSUFFICIENT_DATA"  # ...is CloudWatch's INSUFFICIENT_DATA, kept


def test_transitions_are_recorded_and_notified(emu: Emulator) -> None:
    sns = emu.client("sns")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    alarm(
        emu,
        "errors",
        MetricName="Invocation5XXErrors",
        Statistic="Sum",
        EvaluationPeriods=1,
        DatapointsToAlarm=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[topic],
    )
    now = datetime.now(UTC)
    put(emu, "Invocation5XXErrors", 0, now - timedelta(seconds=0.2))
    evaluator(emu).evaluate(now)
    put(emu, "Invocation5XXErrors", 1, now - timedelta(seconds=0.1))
    made = evaluator(emu).evaluate(now)
    assert [(t.old_state, t.new_state) for t in made] == [("OK", "ALARM")]
    assert "Threshold Crossed" in made[0].reason
    history = emu.client("cloudwatch").describe_alarm_history(AlarmName="errors")["AlarmHistoryItems"]
    assert [h["HistorySummary"] for h in history] == [
        "Alarm updated from OK to ALARM",
        "Alarm updated from INSUFFICIENT_DATA to OK",
    ]
    assert json.loads(history[0]["HistoryData"])["newState"]["stateValue"] == "ALARM"
    from moto.sns.models import sns_backends

    sent = sns_backends[emu.account_id][emu.region].topics[topic].sent_notifications
    assert len(sent) == 1
    assert json.loads(sent[0][1])["NewStateValue"] == "ALARM"
    # a minute later (one scaled second) the errors have left the window: back to OK
    evaluator(emu).evaluate(now + timedelta(seconds=1.5))
    assert state(emu, "errors") == "OK"


def test_statistics_and_time_scale() -> None:
    assert statistic([1, 2, 3, 10], [], "p50") == 2
    assert statistic([1, 2], [(10.0, 1.0, 9.0, 2.0)], "Average") == pytest.approx(13 / 4)
    assert statistic([1, 2], [(10.0, 1.0, 9.0, 2.0)], "Maximum") == 9
    with pytest.raises(ValueError, match="not one CloudWatch alarms support"):
        statistic([1], [], "Median")
    assert TimeScale(60).wall(120) == 2
    with pytest.raises(ValueError, match="positive"):
        TimeScale(0)
