"""CloudWatch alarm evaluation for the emulated account: alarms change state from the stored metrics.

moto stores ``PutMetricAlarm`` and ``PutMetricData`` but never evaluates an alarm: its state stays
where ``SetAlarmState`` put it. :class:`AlarmEvaluator` does what CloudWatch does
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarm-evaluation):
every tick it takes the last ``EvaluationPeriods`` periods of the alarm's metric (exact namespace,
name and dimension set), computes the statistic per period, fills missing periods per
``TreatMissingData``, and goes to ``ALARM`` when at least ``DatapointsToAlarm`` of them breach the
threshold, to ``OK`` otherwise (``INSUFFICIENT_DATA`` when there is nothing to judge). Each
transition is kept (:attr:`AlarmEvaluator.history`, and ``DescribeAlarmHistory``, which moto lacks)
and the alarm's SNS actions are published.

Time scale: ``time_scale`` emulated seconds pass per wall-clock second, so a 60 s period is a
``60 / time_scale`` s window of wall-clock time (``time_scale=60``: one second). Metric timestamps
stay wall-clock UTC, so what the pipeline reads back through the API is untouched.

Differences from CloudWatch, all deliberate and small: periods slide with the evaluation tick instead
of being aligned to the minute; the newest, still-filling period is evaluated too (CloudWatch may wait
for late data); a period without data under ``TreatMissingData=missing`` is dropped from the M-of-N
count rather than looked up further back; metric-math alarms (``Metrics``) and anomaly-detection
thresholds are not evaluated (they stay ``INSUFFICIENT_DATA`` with a reason that says so).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rehearsal.emulator import Emulator

logger = logging.getLogger(__name__)

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"

_COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}


def _epoch(value: datetime) -> float:
    """Seconds since the epoch; moto keeps naive datetimes in UTC."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _now_naive() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class TimeScale:
    """Emulated seconds per wall-clock second (1 = real time, 60 = a minute per second)."""

    factor: float = 1.0

    def __post_init__(self) -> None:
        if not self.factor > 0:
            raise ValueError(
                f"time_scale={self.factor}: use a positive number of emulated seconds per second"
            )

    def wall(self, emulated_seconds: float) -> float:
        """Wall-clock seconds that ``emulated_seconds`` of AWS time take here."""
        return emulated_seconds / self.factor


@dataclass(frozen=True)
class AlarmTransition:
    """One state change of an alarm (a ``StateUpdate`` history item)."""

    time: datetime
    alarm_name: str
    old_state: str
    new_state: str
    reason: str
    reason_data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the rehearsal report)."""
        return {
            "time": self.time.isoformat(),
            "alarm": self.alarm_name,
            "from": self.old_state,
            "to": self.new_state,
            "reason": self.reason,
        }


def statistic(values: list[float], aggregates: list[tuple[float, float, float, float]], name: str) -> float:
    """One period's statistic from raw values and ``(sum, min, max, count)`` aggregates."""
    total = sum(values) + sum(a[0] for a in aggregates)
    count = len(values) + sum(a[3] for a in aggregates)
    if name == "Sum":
        return total
    if name == "SampleCount":
        return count
    if name == "Average":
        return total / count
    if name == "Minimum":
        return min([*values, *(a[1] for a in aggregates)])
    if name == "Maximum":
        return max([*values, *(a[2] for a in aggregates)])
    if name.startswith("p") and name[1:].replace(".", "", 1).isdigit():
        if aggregates:
            raise ValueError(f"{name} needs raw values; this metric was published as statistic sets")
        ordered = sorted(values)
        rank = max(0, math.ceil(float(name[1:]) / 100 * len(ordered)) - 1)
        return ordered[rank]
    raise ValueError(f"statistic {name!r} is not one CloudWatch alarms support")


class AlarmEvaluator:
    """The emulated CloudWatch alarm engine (an :class:`~rehearsal.emulator.Extension`).

    Args:
        time_scale: Emulated seconds per wall-clock second (see the module docstring).
        tick_seconds: Emulated seconds between evaluations (CloudWatch: about a minute; default 10 so a
            60 s period is judged several times per period).
    """

    name = "cloudwatch-alarms"

    def __init__(self, *, time_scale: float = 1.0, tick_seconds: float = 10.0) -> None:
        self.scale = TimeScale(time_scale)
        self.tick_seconds = tick_seconds
        self.history: list[AlarmTransition] = []
        self._emulator: Emulator | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._index: dict[tuple[str, str, frozenset[tuple[str, str]]], list[Any]] = {}
        self._seen = 0
        self._backend_id = 0
        self._patched: list[tuple[type, str, Any]] = []
        self._sns: Any = None

    # ------------------------------------------------------------------ lifecycle

    def install(self, emulator: Emulator) -> None:
        """Start the evaluation thread and add ``DescribeAlarmHistory`` to the CloudWatch API."""
        from moto.cloudwatch.responses import CloudWatchResponse

        self._emulator = emulator
        evaluator = self

        def describe_alarm_history(response: Any) -> Any:
            from moto.core.responses import ActionResult

            return ActionResult(evaluator._history_items(response._get_param))

        self._patch(CloudWatchResponse, "describe_alarm_history", describe_alarm_history)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cloudwatch-alarms", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and restore moto's CloudWatch responses."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for cls, attr, original in reversed(self._patched):
            if original is None:
                delattr(cls, attr)
            else:
                setattr(cls, attr, original)
        self._patched.clear()

    def _patch(self, cls: type, attr: str, value: Any) -> None:
        self._patched.append((cls, attr, cls.__dict__.get(attr)))
        setattr(cls, attr, value)

    def _run(self) -> None:
        interval = max(0.02, self.scale.wall(self.tick_seconds))
        while not self._stop.wait(interval):
            try:
                self.evaluate()
            except Exception:  # keep evaluating; a bad alarm is reported in its state reason
                logger.exception("alarm evaluation failed")

    # ------------------------------------------------------------------ evaluation

    def backend(self) -> Any:
        """moto's CloudWatch backend of the emulated account and region."""
        from moto.cloudwatch.models import cloudwatch_backends

        assert self._emulator is not None, "install the evaluator first"
        return cloudwatch_backends[self._emulator.account_id][self._emulator.region]

    def _ingest(self, backend: Any) -> None:
        if id(backend) != self._backend_id:
            self._index.clear()
            self._seen = 0
            self._backend_id = id(backend)
        data = backend.metric_data
        for datum in data[self._seen :]:
            key = (datum.namespace, datum.name, frozenset((d.name, d.value) for d in datum.dimensions))
            self._index.setdefault(key, []).append(datum)
        self._seen = len(data)

    def evaluate(self, now: datetime | None = None) -> list[AlarmTransition]:
        """Evaluate every metric alarm once; returns the transitions made."""
        with self._lock:
            backend = self.backend()
            self._ingest(backend)
            moment = now or _now_naive()
            made = []
            for alarm in list(backend.alarms.values()):
                if alarm.rule is not None:
                    continue  # composite alarms are not evaluated
                if alarm.state_reason == "Unchecked: Initial alarm creation":
                    alarm.state_value = INSUFFICIENT  # CloudWatch's initial state (moto starts at OK)
                    alarm.state_reason = "Unchecked: Initial alarm creation (not yet evaluated)"
                state, reason, data = self._judge(alarm, _epoch(moment))
                if state is None or state == alarm.state_value:
                    continue
                transition = AlarmTransition(
                    moment.replace(tzinfo=UTC), alarm.name, alarm.state_value, state, reason, data
                )
                alarm.update_state(reason, json.dumps(data), state)
                self.history.append(transition)
                made.append(transition)
                self._notify(alarm, transition)
            return made

    def _judge(self, alarm: Any, now: float) -> tuple[str | None, str, dict[str, Any]]:
        if alarm.metric_data_queries:
            return INSUFFICIENT, "The emulator does not evaluate metric-math alarms (Metrics)", {}
        comparison = _COMPARISONS.get(alarm.comparison_operator)
        if comparison is None:
            return INSUFFICIENT, f"The emulator does not evaluate {alarm.comparison_operator} alarms", {}
        stat = alarm.extended_statistic or alarm.statistic
        period = float(alarm.period)
        window = self.scale.wall(period)
        periods = int(alarm.evaluation_periods)
        needed = int(alarm.datapoints_to_alarm or periods)
        key = (alarm.namespace, alarm.metric_name, frozenset((d.name, d.value) for d in alarm.dimensions))
        datums = self._index.get(key, [])
        values: list[float | None] = []  # newest period first
        for i in range(periods):
            start, end = now - (i + 1) * window, now - i * window
            raw: list[float] = []
            aggregates: list[tuple[float, float, float, float]] = []
            for datum in datums:
                at = _epoch(datum.timestamp)
                if not start <= at < end:
                    continue
                if hasattr(datum, "value"):
                    raw.append(float(datum.value))
                else:
                    aggregates.append((datum.sum_stat, datum.min_stat, datum.max_stat, datum.sample_count))
            try:
                values.append(statistic(raw, aggregates, stat) if raw or aggregates else None)
            except ValueError as error:
                return INSUFFICIENT, str(error), {}
        treat = alarm.treat_missing_data or "missing"
        compare, wording = comparison
        threshold = float(alarm.threshold)
        judged: list[bool] = []
        for value in values:
            if value is None:
                if treat == "breaching":
                    judged.append(True)
                elif treat == "notBreaching":
                    judged.append(False)
                continue
            judged.append(compare(value, threshold))
        present = [v for v in values if v is not None]
        if not judged:
            if treat == "ignore":
                return None, "", {}
            return INSUFFICIENT, f"Insufficient Data: {periods} datapoints were unknown.", {}
        breaches = sum(judged)
        shown = ", ".join(f"{v:g}" for v in present[:5]) or "no data"
        data = {
            "version": "1.0",
            "statistic": stat,
            "period": int(period),
            "recentDatapoints": present,
            "threshold": threshold,
            "evaluatedDatapoints": len(judged),
        }
        if breaches >= needed:
            reason = (
                f"Threshold Crossed: {breaches} out of the last {periods} datapoints [{shown}] were "
                f"{wording} the threshold ({threshold:g}) (minimum {needed} datapoint(s) for OK -> ALARM transition)."
            )
            return ALARM, reason, data
        reason = (
            f"Threshold Crossed: {breaches} out of the last {periods} datapoints [{shown}] were {wording} "
            f"the threshold ({threshold:g}) (minimum {needed} datapoint(s) for ALARM)."
        )
        return OK, reason, data

    def _notify(self, alarm: Any, transition: AlarmTransition) -> None:
        if not alarm.actions_enabled or self._emulator is None:
            return
        actions = {
            ALARM: alarm.alarm_actions,
            OK: alarm.ok_actions,
            INSUFFICIENT: alarm.insufficient_data_actions,
        }
        targets = [a for a in actions.get(transition.new_state) or [] if a.startswith("arn:aws:sns:")]
        if not targets:
            return
        message = json.dumps(
            {
                "AlarmName": alarm.name,
                "AlarmArn": alarm.alarm_arn,
                "NewStateValue": transition.new_state,
                "OldStateValue": transition.old_state,
                "NewStateReason": transition.reason,
                "StateChangeTime": transition.time.isoformat(),
                "Region": self._emulator.region,
                "AWSAccountId": self._emulator.account_id,
            }
        )
        if self._sns is None:
            self._sns = self._emulator.client("sns")
        sns = self._sns
        for topic in targets:
            try:
                sns.publish(
                    TopicArn=topic,
                    Subject=f'{transition.new_state}: "{alarm.name}" in {self._emulator.region}'[:100],
                    Message=message,
                )
            except Exception as error:  # CloudWatch records a failed action; it does not stop evaluating
                logger.warning("alarm %s: publishing to %s failed: %s", alarm.name, topic, error)

    # ------------------------------------------------------------------ queries

    def state(self, alarm_name: str) -> str:
        """The alarm's current state (``OK``, ``ALARM`` or ``INSUFFICIENT_DATA``)."""
        alarm = self.backend().alarms.get(alarm_name)
        if alarm is None:
            raise KeyError(f"no alarm named {alarm_name!r} in the emulated account")
        return str(alarm.state_value)

    def transitions(self, alarm_names: Iterable[str] | None = None) -> list[AlarmTransition]:
        """Recorded transitions, optionally only of some alarms."""
        names = set(alarm_names) if alarm_names is not None else None
        return [t for t in self.history if names is None or t.alarm_name in names]

    def _history_items(self, param: Callable[..., Any]) -> dict[str, Any]:
        name = param("AlarmName")
        kind = param("HistoryItemType")
        start, end = param("StartDate"), param("EndDate")
        newest_first = param("ScanBy", "TimestampDescending") != "TimestampAscending"
        limit = int(param("MaxRecords") or 100)
        items = []
        for t in self.history:
            if name and t.alarm_name != name:
                continue
            if kind and kind != "StateUpdate":
                continue
            if start is not None and _epoch(t.time) < _epoch(start):
                continue
            if end is not None and _epoch(t.time) > _epoch(end):
                continue
            items.append(
                {
                    "AlarmName": t.alarm_name,
                    "AlarmType": "MetricAlarm",
                    "Timestamp": t.time,
                    "HistoryItemType": "StateUpdate",
                    "HistorySummary": f"Alarm updated from {t.old_state} to {t.new_state}",
                    "HistoryData": json.dumps(
                        {
                            "version": "1.0",
                            "oldState": {"stateValue": t.old_state},
                            "newState": {"stateValue": t.new_state, "stateReason": t.reason},
                        }
                    ),
                }
            )
        if newest_first:
            items.reverse()
        return {"AlarmHistoryItems": items[:limit]}
