"""Observability: an encrypted SNS alert topic, alarms on the metrics the pipeline publishes, and one
platform dashboard.

The metric names, dimensions and units come from :mod:`platform_contract.metrics`, the contract the
pipeline's publishers use too: ``MLOps/Pipeline`` ``StepFailed`` (``Environment``, ``Pipeline``,
``Step``) and ``MLOps/Monitoring`` ``DatasetDrift``/``DriftShare``/``MissingValueRate``
(``Environment``, ``EndpointName``). A CloudWatch
alarm matches a metric only with *all* its dimensions, so there is one ``StepFailed`` alarm per
pipeline step. The endpoint's own 5XX and latency alarms belong to
:class:`~components.endpoint.ModelEndpoint` (they drive its auto-rollback) and notify this topic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components._util import account_id, child_opts, policy_document
from platform_contract import metrics as contract

PIPELINE_NAMESPACE = contract.PIPELINE_NAMESPACE
"""Namespace of ``StepFailed`` and ``RetrainTriggered`` (pipeline contract)."""
MONITORING_NAMESPACE = contract.MONITORING_NAMESPACE
"""Namespace of the drift metrics (pipeline contract)."""


def _alarm_metric(metric: contract.Metric, dimensions: Mapping[str, str]) -> dict[str, Any]:
    """The ``namespace``/``metric_name``/``dimensions`` of an alarm on ``metric`` (all its dimensions)."""
    metric.dimension_list(dimensions)  # raises when the set is not the metric's whole set
    return {"namespace": metric.namespace, "metric_name": metric.name, "dimensions": dict(dimensions)}


def _widget_metric(metric: contract.Metric, dimensions: Mapping[str, str], *extra: Any) -> list[Any]:
    """A dashboard metric row ``[namespace, name, dim, value, ...]`` with every dimension of ``metric``."""
    row: list[Any] = [metric.namespace, metric.name]
    for item in metric.dimension_list(dimensions):
        row += [item["Name"], item["Value"]]
    return [*row, *extra]


@dataclass(frozen=True, kw_only=True)
class PipelineSteps:
    """A pipeline and the steps that publish ``StepFailed``."""

    pipeline: str
    """Value of the ``Pipeline`` dimension (e.g. ``churn-training``)."""
    steps: Sequence[str]
    """Values of the ``Step`` dimension."""


@dataclass(frozen=True, kw_only=True)
class WatchedEndpoint:
    """An endpoint whose drift the monitoring DAG publishes: its alarms and dashboard widgets."""

    model: str
    """The model's slug; alarm names are ``<prefix>-<model>-dataset-drift`` and so on."""
    endpoint_name: str
    """The endpoint's full name (the ``EndpointName`` dimension)."""
    variant_name: str = "primary"
    """Production variant (dashboard widgets)."""
    drift_share_threshold: float = 0.3
    """Alarm when ``DriftShare`` exceeds this."""
    missing_value_rate_threshold: float = 0.1
    """Alarm when ``MissingValueRate`` exceeds this."""
    quality_min: Mapping[str, float] = field(default_factory=dict)
    """Metric -> floor from the contract (``monitoring.quality_min``): alarm when ``ModelQuality`` is below."""
    quality_max: Mapping[str, float] = field(default_factory=dict)
    """Metric -> ceiling (``monitoring.quality_max``): alarm when ``ModelQuality`` is above."""

    def __post_init__(self) -> None:
        for threshold in ("drift_share_threshold", "missing_value_rate_threshold"):
            if not 0 < getattr(self, threshold) < 1:
                raise ValueError(f"WatchedEndpoint.{threshold} must be between 0 and 1")


@dataclass(frozen=True, kw_only=True)
class ObservabilityArgs:
    """Arguments of :class:`Observability`."""

    name_prefix: str
    """Prefix of physical names (``mlops-prod``)."""
    environment: str
    """Value of the ``Environment`` dimension."""
    region: str
    """Region of the dashboard's widgets."""
    topic_key_arn: pulumi.Input[str]
    """KMS key encrypting the topic; its key policy must let ``cloudwatch.amazonaws.com`` use it (see
    ``stacks/ml_services.py``).
    """
    alert_emails: Sequence[str] = ()
    """E-mail subscribers (each confirms by mail)."""
    pipelines: Sequence[PipelineSteps] = ()
    """Pipeline steps that get a ``StepFailed`` alarm."""
    endpoints: Sequence[WatchedEndpoint] = ()
    """Endpoints the drift alarms and endpoint widgets watch (one set each); empty: none yet."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child."""

    def __post_init__(self) -> None:
        models = [e.model for e in self.endpoints]
        if len(set(models)) != len(models):
            raise ValueError(f"ObservabilityArgs.endpoints: one entry per model, got {models}")
        pairs = [(p.pipeline, s) for p in self.pipelines for s in p.steps]
        if len(set(pairs)) != len(pairs):
            raise ValueError("ObservabilityArgs.pipelines: a pipeline step is listed twice")


def _slug(value: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in value.lower()).strip("-")


class Observability(pulumi.ComponentResource):
    """SNS alert topic (KMS-encrypted, TLS-only publishing), alarms and the platform dashboard.

    Alarms (all notify the topic, all with the full dimension set of their metric):
    one ``StepFailed`` alarm per configured pipeline step; with an endpoint, ``DatasetDrift``,
    ``DriftShare`` and ``MissingValueRate`` alarms for it. Missing data is not breaching: the
    pipeline publishes only when it runs.

    Outputs:
        topic_arn: Alert topic ARN.
        topic_name: Alert topic name.
        alarm_names: Names of the alarms created here.
        dashboard_name: The dashboard's name.
    """

    topic_arn: pulumi.Output[str]
    topic_name: pulumi.Output[str]
    alarm_names: list[pulumi.Output[str]]
    dashboard_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:observability:Observability", name, None, opts)
        tags = dict(args.tags)
        account = account_id(self)

        topic = aws.sns.Topic(
            f"{name}-alerts",
            name=f"{args.name_prefix}-alerts",
            display_name=f"{args.name_prefix} ML platform alerts",
            kms_master_key_id=args.topic_key_arn,
            tags=tags,
            opts=child_opts(self),
        )
        aws.sns.TopicPolicy(
            f"{name}-alerts-policy",
            arn=topic.arn,
            policy=policy_document(
                [
                    {
                        # CloudWatch alarms of this account publish to the topic:
                        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html
                        "Sid": "CloudWatchAlarmsPublish",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        "Action": "sns:Publish",
                        "Resource": topic.arn,
                        "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                    },
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": {"AWS": "*"},
                        "Action": "sns:Publish",
                        "Resource": topic.arn,
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                ]
            ),
            opts=child_opts(self),
        )
        for i, email in enumerate(args.alert_emails):
            aws.sns.TopicSubscription(
                f"{name}-alerts-email-{i}",
                topic=topic.arn,
                protocol="email",
                endpoint=email,
                opts=child_opts(self),
            )

        actions = [topic.arn]
        alarms: list[aws.cloudwatch.MetricAlarm] = []

        def alarm(role: str, **kwargs: Any) -> None:
            alarms.append(
                aws.cloudwatch.MetricAlarm(
                    f"{name}-{role}",
                    name=f"{args.name_prefix}-{role}",
                    treat_missing_data="notBreaching",
                    alarm_actions=actions,
                    ok_actions=actions,
                    tags=tags,
                    opts=child_opts(self),
                    **kwargs,
                )
            )

        for steps in args.pipelines:
            for step in steps.steps:
                alarm(
                    f"{_slug(steps.pipeline)}-{_slug(step)}-failed",
                    alarm_description=f"Pipeline {steps.pipeline}: step {step} failed",
                    **_alarm_metric(
                        contract.STEP_FAILED,
                        {
                            contract.ENVIRONMENT: args.environment,
                            contract.PIPELINE: steps.pipeline,
                            contract.STEP: step,
                        },
                    ),
                    statistic="Maximum",
                    period=300,
                    evaluation_periods=1,
                    threshold=1,
                    comparison_operator="GreaterThanOrEqualToThreshold",
                )
        for ep in args.endpoints:
            drift_dims = {contract.ENVIRONMENT: args.environment, contract.ENDPOINT_NAME: ep.endpoint_name}
            alarm(
                f"{_slug(ep.model)}-dataset-drift",
                alarm_description=f"{ep.endpoint_name}: the monitor's dataset-level verdict is drift",
                **_alarm_metric(contract.DATASET_DRIFT, drift_dims),
                statistic="Maximum",
                period=3600,
                evaluation_periods=1,
                threshold=1,
                comparison_operator="GreaterThanOrEqualToThreshold",
            )
            alarm(
                f"{_slug(ep.model)}-drift-share",
                alarm_description=f"{ep.endpoint_name}: more than {ep.drift_share_threshold:.0%} of "
                "features drifted",
                **_alarm_metric(contract.DRIFT_SHARE, drift_dims),
                statistic="Maximum",
                period=3600,
                evaluation_periods=1,
                threshold=ep.drift_share_threshold,
                comparison_operator="GreaterThanThreshold",
            )
            alarm(
                f"{_slug(ep.model)}-missing-values",
                alarm_description=f"{ep.endpoint_name}: missing-value rate of captured rows above "
                f"{ep.missing_value_rate_threshold:.0%}",
                **_alarm_metric(contract.MISSING_VALUE_RATE, drift_dims),
                statistic="Maximum",
                period=3600,
                evaluation_periods=1,
                threshold=ep.missing_value_rate_threshold,
                comparison_operator="GreaterThanThreshold",
            )
            # model quality against ground truth: the contract's floors (published only from windows
            # with enough labels, so missing data stays not breaching)
            for bound, limits, operator in (
                ("min", ep.quality_min, "LessThanThreshold"),
                ("max", ep.quality_max, "GreaterThanThreshold"),
            ):
                for metric_name, limit in sorted(limits.items()):
                    alarm(
                        f"{_slug(ep.model)}-quality-{_slug(metric_name)}-{bound}",
                        alarm_description=f"{ep.endpoint_name}: realized {metric_name} "
                        f"{'below' if bound == 'min' else 'above'} {limit:g} (contract monitoring.quality_{bound})",
                        **_alarm_metric(
                            contract.MODEL_QUALITY, {**drift_dims, contract.QUALITY_METRIC: metric_name}
                        ),
                        statistic="Minimum" if bound == "min" else "Maximum",
                        period=3600,
                        evaluation_periods=1,
                        threshold=limit,
                        comparison_operator=operator,
                    )

        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=f"{args.name_prefix}-ml-platform",
            dashboard_body=pulumi.Output.json_dumps({"widgets": self._widgets(args)}),
            opts=child_opts(self),
        )

        self.topic_arn = topic.arn
        self.topic_name = topic.name
        self.alarm_names = [a.name for a in alarms]
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs(
            {
                "topic_arn": self.topic_arn,
                "topic_name": self.topic_name,
                "alarm_names": self.alarm_names,
                "dashboard_name": self.dashboard_name,
            }
        )

    @staticmethod
    def _widgets(args: ObservabilityArgs) -> list[dict[str, Any]]:
        def metric_widget(title: str, metrics: list[list[Any]], stat: str, x: int, y: int) -> dict[str, Any]:
            return {
                "type": "metric",
                "x": x,
                "y": y,
                "width": 12,
                "height": 6,
                "properties": {
                    "title": title,
                    "region": args.region,
                    "stat": stat,
                    "period": 300,
                    "view": "timeSeries",
                    "metrics": metrics,
                },
            }

        env = args.environment
        step_rows = [
            _widget_metric(
                contract.STEP_FAILED,
                {contract.ENVIRONMENT: env, contract.PIPELINE: p.pipeline, contract.STEP: s},
            )
            for p in args.pipelines
            for s in p.steps
        ]
        widgets = [metric_widget("Pipeline step failures", step_rows, "Maximum", 0, 0)] if step_rows else []
        for i, ep in enumerate(args.endpoints):
            y = 12 * i
            variant_dims = {
                contract.ENDPOINT_NAME: ep.endpoint_name,
                contract.VARIANT_NAME: ep.variant_name,
            }
            drift_dims = {contract.ENVIRONMENT: env, contract.ENDPOINT_NAME: ep.endpoint_name}
            widgets += [
                metric_widget(
                    f"{ep.model}: endpoint invocations and errors",
                    [
                        _widget_metric(m, variant_dims, {"stat": "Sum"})
                        for m in (
                            contract.INVOCATIONS,
                            contract.INVOCATION_4XX_ERRORS,
                            contract.INVOCATION_5XX_ERRORS,
                        )
                    ],
                    "Sum",
                    12,
                    y,
                ),
                metric_widget(
                    f"{ep.model}: endpoint model latency (microseconds)",
                    [_widget_metric(contract.MODEL_LATENCY, variant_dims)],
                    "p90",
                    0,
                    y + 6,
                ),
                metric_widget(
                    f"{ep.model}: drift",
                    [
                        _widget_metric(m, drift_dims)
                        for m in (contract.DATASET_DRIFT, contract.DRIFT_SHARE, contract.MISSING_VALUE_RATE)
                    ],
                    "Maximum",
                    12,
                    y + 6,
                ),
            ]
        return widgets
