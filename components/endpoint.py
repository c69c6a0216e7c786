"""A guarded SageMaker real-time endpoint: model, content-named endpoint config, endpoint, alarms,
blue/green deployment guardrails with auto-rollback, and auto scaling.

**Deployment model.** Deploying a model is a stack update: the model package ARN is an input.
A new ARN gives a new model and a new endpoint config (their physical names carry a hash of their
content), and the endpoint is *updated* to the new config: SageMaker runs a blue/green update
with the configured traffic shifting and rolls back when one of the alarms fires.

**Why content-hashed names.** An endpoint config is immutable, so any change replaces it. With a
fixed name the replacement must delete the old config first, while the endpoint still uses it, and
the update fails ("Could not find endpoint configuration"; the known Terraform/pulumi-aws failure
https://github.com/hashicorp/terraform-provider-aws/issues/40048). A name that changes with the
content lets Pulumi create the new config, update the endpoint, and only then delete the old one
(Pulumi's default create-before-delete replacement; ``delete_before_replace`` is never set).
Because SageMaker may still *roll back* to the old config after the update call returned
(https://github.com/hashicorp/terraform-provider-aws/pull/49020), replaced configs and models are
kept in AWS by default (``retain_on_delete``; they cost nothing).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components._util import child_opts
from platform_contract.limits import (
    CANARY_SIZE_PERCENT,
    LINEAR_STEP_PERCENT,
    MAXIMUM_EXECUTION_TIMEOUT_SECONDS,
    WAIT_INTERVAL_SECONDS,
    has_local_storage,
    within,
)

Strategy = Literal["ALL_AT_ONCE", "CANARY", "LINEAR"]


def content_name(base: str, content: Any) -> str:
    """``<base>-<8 hex>``: a physical name that changes whenever ``content`` (JSON-able) changes."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{base}-{digest}"


@dataclass(frozen=True, kw_only=True)
class ServerlessCapacity:
    """Serverless Inference capacity (no instances)."""

    memory_size_mb: int = 2048
    """1024-6144 in 1024 MB steps."""
    max_concurrency: int = 5
    """Concurrent invocations (1-200)."""


@dataclass(frozen=True, kw_only=True)
class ShadowVariant:
    """A shadow variant that receives a copy of live traffic (responses discarded)."""

    model_package_arn: str
    """Package the shadow serves."""
    instance_type: str = "ml.m5.large"
    """Its instance type."""
    instance_count: int = 1
    """Its instance count."""
    traffic_percent: int = 100
    """Share of requests copied to it (1-100)."""


@dataclass(frozen=True, kw_only=True)
class Guardrails:
    """Blue/green deployment guardrails of an endpoint update."""

    strategy: Strategy = "ALL_AT_ONCE"
    """``ALL_AT_ONCE``, ``CANARY`` (``canary_size_percent`` first, then the rest) or ``LINEAR``
    (``linear_step_percent`` per step).
    """
    canary_size_percent: int = 10
    """Canary share of the fleet's capacity (1-50)."""
    linear_step_percent: int = 20
    """Share shifted per linear step (10-50)."""
    wait_interval_seconds: int = 300
    """Bake time after each shift, watched by the alarms (0-3600)."""
    termination_wait_seconds: int = 300
    """How long the old fleet is kept after the shift (0-3600)."""
    maximum_execution_timeout_seconds: int = 1800
    """Upper bound of the update (600-14400)."""
    extra_alarm_names: Sequence[str] = ()
    """More alarms (beyond the endpoint's own) that roll an update back."""

    def __post_init__(self) -> None:
        # CanarySize <= 50% and LinearStepSize 10-50% of the variant's instances, WaitIntervalInSeconds
        # 0-3600: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html
        if not within(self.canary_size_percent, CANARY_SIZE_PERCENT):
            raise ValueError(f"Guardrails.canary_size_percent={self.canary_size_percent}: use 1-50")
        if not within(self.linear_step_percent, LINEAR_STEP_PERCENT):
            raise ValueError(f"Guardrails.linear_step_percent={self.linear_step_percent}: use 10-50")
        for attr in ("wait_interval_seconds", "termination_wait_seconds"):
            if not within(getattr(self, attr), WAIT_INTERVAL_SECONDS):
                raise ValueError(f"Guardrails.{attr}={getattr(self, attr)}: use 0-3600")
        if not within(self.maximum_execution_timeout_seconds, MAXIMUM_EXECUTION_TIMEOUT_SECONDS):
            raise ValueError("Guardrails.maximum_execution_timeout_seconds: use 600-14400")


def traffic_routing(guardrails: Guardrails) -> dict[str, Any]:
    """The ``TrafficRoutingConfiguration`` of a blue/green policy for the guardrails' strategy
    (API reference: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html)."""
    routing: dict[str, Any] = {
        "type": guardrails.strategy,
        "wait_interval_in_seconds": guardrails.wait_interval_seconds,
    }
    if guardrails.strategy == "CANARY":
        routing["canary_size"] = {"type": "CAPACITY_PERCENT", "value": guardrails.canary_size_percent}
    elif guardrails.strategy == "LINEAR":
        routing["linear_step_size"] = {"type": "CAPACITY_PERCENT", "value": guardrails.linear_step_percent}
    return routing


@dataclass(frozen=True, kw_only=True)
class AutoScaling:
    """Target tracking on ``SageMakerVariantInvocationsPerInstance``.

    **Instance counts across updates.** ``UpdateEndpoint`` resets a variant to the new config's
    ``InitialInstanceCount`` unless it is called with ``RetainAllVariantProperties``
    (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html). pulumi-aws (7.51, the
    bridged Terraform ``aws_sagemaker_endpoint``) does not expose that flag
    (hashicorp/terraform-provider-aws#48990, PR #49069 still open), so every deploy starts the variant at
    ``ModelEndpointArgs.instance_count``. The promote build therefore raises the stack's
    ``instanceCount`` to the variant's live count before ``pulumi up`` (:mod:`stacks.config.live_counts`),
    and a hand-run ``pulumi up`` starts at the configured count, so set it to the usual busy-hour count,
    not to ``min_instances``.
    """

    min_instances: int = 1
    """Lower bound."""
    max_instances: int = 2
    """Upper bound."""
    target_invocations_per_instance: int = 100
    """Invocations per instance per minute to hold."""
    scale_in_cooldown_seconds: int = 300
    """Wait after a scale-in."""
    scale_out_cooldown_seconds: int = 60
    """Wait after a scale-out."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_instances <= self.max_instances:
            raise ValueError(
                f"AutoScaling: need 1 <= min_instances <= max_instances (got {self.min_instances}, "
                f"{self.max_instances})"
            )


@dataclass(frozen=True, kw_only=True)
class ModelEndpointArgs:
    """Arguments of :class:`ModelEndpoint`."""

    name_prefix: str
    """Prefix of physical names (``mlops-prod``)."""
    endpoint_name: str
    """Short name; the endpoint is ``<prefix>-<endpoint_name>`` and never changes."""
    execution_role_arn: pulumi.Input[str]
    """SageMaker execution role of the model (reads the model, writes capture)."""
    kms_key_arn: pulumi.Input[str]
    """ML key: storage volume and data capture encryption."""
    capture_bucket_name: pulumi.Input[str]
    """Capture bucket."""
    model_package_arn: str | None = None
    """The approved model package to serve, or None with ``image_uri``."""
    image_uri: str | None = None
    """Serving image (alternative to a package), with ``model_data_url``."""
    model_data_url: str | None = None
    """``s3://`` URL of the model.tar.gz served by ``image_uri``."""
    variant_name: str = "primary"
    """Production variant name; stable across updates (blue/green requires it)."""
    instance_type: str = "ml.m5.large"
    """Instance type of the production variant."""
    instance_count: int = 1
    """Initial instance count."""
    serverless: ServerlessCapacity | None = None
    """Serverless capacity instead of instances (no VPC, isolation, capture, shadow)."""
    shadow: ShadowVariant | None = None
    """Optional shadow variant."""
    network_isolation: bool = True
    """Model container without network access."""
    subnet_ids: Sequence[pulumi.Input[str]] = ()
    """Private subnets of the model (instance variants)."""
    vpc_id: pulumi.Input[str] | None = None
    """VPC of the model's security group."""
    vpc_cidr: pulumi.Input[str] | None = None
    """VPC CIDR (HTTPS egress to the interface endpoints)."""
    s3_prefix_list_id: pulumi.Input[str] | None = None
    """S3 gateway endpoint prefix list (HTTPS egress to S3 for model data)."""
    encrypt_storage: bool = True
    """Put ``kms_key_arn`` on the endpoint config; False for instance types with local NVMe storage (AWS
    rejects a ``KmsKeyId`` for them).
    """
    capture_enabled: bool = True
    """Capture requests and responses."""
    capture_sampling_percent: int = 100
    """Share of requests captured."""
    capture_prefix: str = "datacapture"
    """Key prefix in it (the Glue capture table reads below it)."""
    guardrails: Guardrails = field(default_factory=Guardrails)
    """Blue/green update policy."""
    latency_threshold_ms: int = 500
    """Rollback alarm on average ``ModelLatency``."""
    error_threshold: int = 1
    """Rollback alarm on ``Invocation5XXErrors`` per minute."""
    alarm_actions: Sequence[pulumi.Input[str]] = ()
    """SNS topics notified by the alarms."""
    autoscaling: AutoScaling | None = None
    """Auto scaling of the variant (instance variants only); None: off."""
    retain_replaced: bool = True
    """Keep replaced models and configs in AWS (see module docs)."""
    logs_key_arn: pulumi.Input[str] | None = None
    """Key of the endpoint's log group ``/aws/sagemaker/Endpoints/<name>``; None: SSE by CloudWatch."""
    log_retention_days: int = 30
    """Retention of that log group."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child."""

    def __post_init__(self) -> None:
        if bool(self.model_package_arn) == bool(self.image_uri):
            raise ValueError(
                "ModelEndpointArgs: set exactly one of model_package_arn or image_uri (+ model_data_url); "
                "without an approved model, do not declare a ModelEndpoint"
            )
        if self.image_uri and not self.model_data_url:
            raise ValueError("ModelEndpointArgs.image_uri needs model_data_url")
        if not 1 <= self.capture_sampling_percent <= 100:
            raise ValueError("ModelEndpointArgs.capture_sampling_percent: use 1-100")
        if self.serverless is not None:
            unsupported = {
                "capture_enabled": self.capture_enabled,
                "network_isolation": self.network_isolation,
                "shadow": self.shadow is not None,
                "autoscaling": self.autoscaling is not None,
            }
            bad = [k for k, on in unsupported.items() if on]
            if bad:
                raise ValueError(
                    f"ModelEndpointArgs: serverless endpoints do not support {bad}; turn them off or use "
                    "instances (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html)"
                )
            if self.guardrails.strategy != "ALL_AT_ONCE":
                raise ValueError(
                    "ModelEndpointArgs: serverless endpoints update all at once; use instances for canary/linear"
                )
        else:
            if not self.subnet_ids or self.vpc_id is None or self.vpc_cidr is None:
                raise ValueError(
                    "ModelEndpointArgs: instance variants run in the VPC; set subnet_ids, vpc_id and vpc_cidr"
                )
            if self.instance_count < 1:
                raise ValueError("ModelEndpointArgs.instance_count must be at least 1")
            types = [self.instance_type] + ([self.shadow.instance_type] if self.shadow else [])
            if self.encrypt_storage and any(has_local_storage(t) for t in types):
                raise ValueError(
                    f"ModelEndpointArgs: {types} include local NVMe storage and AWS rejects a KmsKeyId for it; "
                    "set encrypt_storage=False or pick a type without local storage"
                )
            if self.autoscaling and not (
                self.autoscaling.min_instances <= self.instance_count <= self.autoscaling.max_instances
            ):
                raise ValueError("ModelEndpointArgs: instance_count must lie within the autoscaling bounds")

    @property
    def full_name(self) -> str:
        """The endpoint's physical name."""
        return f"{self.name_prefix}-{self.endpoint_name}"

    @property
    def alarm_names(self) -> dict[str, str]:
        """The endpoint's own rollback alarm names by kind (``errors``, ``latency``)."""
        return {"errors": f"{self.full_name}-5xx-errors", "latency": f"{self.full_name}-model-latency"}


class ModelEndpoint(pulumi.ComponentResource):
    """A SageMaker endpoint serving an approved model package behind blue/green guardrails.

    Children: the model (from the package or image + data, in the private subnets with its own
    security group and network isolation), an endpoint config with a content-hashed name (KMS,
    data capture of input and output to the capture bucket with the ML key, production and shadow
    variants), the endpoint (blue/green update policy with auto-rollback on its 5XX and latency
    alarms plus any extra alarms), the two alarms (dimensions ``EndpointName`` + ``VariantName``),
    and target-tracking auto scaling of the production variant.

    Outputs:
        endpoint_name: Endpoint name (stable).
        endpoint_arn: Endpoint ARN.
        endpoint_config_name: The current endpoint config's name (changes with its content).
        model_name: The current model's name (changes with the package).
        variant_name: The production variant name.
        alarm_names: Names of the alarms that roll an update back.
        security_group_id: The model's security group (None for serverless).
        scaling_registration_name: SSM parameter marking the variant's scaling registration (None
            without auto scaling); see :meth:`_scaling_registration`.
    """

    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    endpoint_config_name: pulumi.Output[str]
    model_name: pulumi.Output[str]
    variant_name: str
    alarm_names: list[str]
    security_group_id: pulumi.Output[str] | None
    scaling_registration_name: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:endpoint:ModelEndpoint", name, None, opts)
        tags = dict(args.tags)
        full = args.full_name
        retain = {"retain_on_delete": args.retain_replaced, "delete_before_replace": False}

        # --- alarms first: the endpoint's deployment config names them --------------------------
        dims = {"EndpointName": full, "VariantName": args.variant_name}
        errors = aws.cloudwatch.MetricAlarm(
            f"{name}-5xx-errors",
            name=args.alarm_names["errors"],
            alarm_description=f"{full}: model container 5XX errors (rolls back a deployment)",
            namespace="AWS/SageMaker",
            metric_name="Invocation5XXErrors",
            dimensions=dims,
            statistic="Sum",
            period=60,
            evaluation_periods=1,
            threshold=args.error_threshold,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=list(args.alarm_actions),
            ok_actions=list(args.alarm_actions),
            tags=tags,
            opts=child_opts(self),
        )
        latency = aws.cloudwatch.MetricAlarm(
            f"{name}-model-latency",
            name=args.alarm_names["latency"],
            alarm_description=f"{full}: average model latency above {args.latency_threshold_ms} ms "
            "(rolls back a deployment)",
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",  # microseconds
            dimensions=dims,
            statistic="Average",
            period=60,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            threshold=args.latency_threshold_ms * 1000,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=list(args.alarm_actions),
            ok_actions=list(args.alarm_actions),
            tags=tags,
            opts=child_opts(self),
        )
        self.alarm_names = [
            args.alarm_names["errors"],
            args.alarm_names["latency"],
            *args.guardrails.extra_alarm_names,
        ]

        # --- network ----------------------------------------------------------------------------
        vpc_config: Any = None
        self.security_group_id = None
        if args.serverless is None:
            egress: list[Any] = [
                {
                    "description": "HTTPS to the interface VPC endpoints (ECR, STS, CloudWatch)",
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": [args.vpc_cidr],
                }
            ]
            if args.s3_prefix_list_id is not None:
                egress.append(
                    {
                        "description": "HTTPS to S3 through the gateway endpoint (model data)",
                        "protocol": "tcp",
                        "from_port": 443,
                        "to_port": 443,
                        "prefix_list_ids": [args.s3_prefix_list_id],
                    }
                )
            sg = aws.ec2.SecurityGroup(
                f"{name}-model-sg",
                # a prefix: a replacement creates the new group before deleting the old (issue 12 item 22)
                name_prefix=f"{full}-model-",
                description=f"SageMaker model of {full}: no ingress, HTTPS egress inside the VPC",
                vpc_id=args.vpc_id,
                egress=egress,
                tags={**tags, "Name": f"{full}-model"},
                opts=child_opts(self),
            )
            self.security_group_id = sg.id
            vpc_config = {"subnets": list(args.subnet_ids), "security_group_ids": [sg.id]}

        # --- model: named after its content ---------------------------------------------------
        container: Any = (
            {"model_package_name": args.model_package_arn}
            if args.model_package_arn
            else {"image": args.image_uri, "model_data_url": args.model_data_url}
        )
        isolation = args.network_isolation and args.serverless is None
        model_content = {
            "container": container,
            "isolation": isolation,
            "role": args.execution_role_arn,
            "vpc": vpc_config,
        }
        model = aws.sagemaker.Model(
            f"{name}-model",
            name=pulumi.Output.json_dumps(model_content).apply(lambda c: content_name(full, c)),
            execution_role_arn=args.execution_role_arn,
            primary_container=container,
            enable_network_isolation=isolation,
            vpc_config=vpc_config,
            tags={**tags, "endpoint": full},
            opts=child_opts(self, **retain),
        )
        shadow_model: aws.sagemaker.Model | None = None
        if args.shadow is not None:
            shadow_container: Any = {"model_package_name": args.shadow.model_package_arn}
            shadow_model = aws.sagemaker.Model(
                f"{name}-shadow-model",
                name=pulumi.Output.json_dumps({**model_content, "container": shadow_container}).apply(
                    lambda c: content_name(f"{full}-shadow", c)
                ),
                execution_role_arn=args.execution_role_arn,
                primary_container=shadow_container,
                enable_network_isolation=isolation,
                vpc_config=vpc_config,
                tags={**tags, "endpoint": full},
                opts=child_opts(self, **retain),
            )

        # --- endpoint config: named after its content --------------------------------------------
        variant: Any = {"variant_name": args.variant_name, "model_name": model.name}
        if args.serverless is not None:
            variant["serverless_config"] = {
                "memory_size_in_mb": args.serverless.memory_size_mb,
                "max_concurrency": args.serverless.max_concurrency,
            }
        else:
            variant.update(
                instance_type=args.instance_type,
                initial_instance_count=args.instance_count,
                initial_variant_weight=1,
            )
        shadow_variants: list[Any] = []
        if args.shadow is not None and shadow_model is not None:
            shadow_variants.append(
                {
                    "variant_name": f"{args.variant_name}-shadow",
                    "model_name": shadow_model.name,
                    "instance_type": args.shadow.instance_type,
                    "initial_instance_count": args.shadow.instance_count,
                    "initial_variant_weight": args.shadow.traffic_percent / 100,
                }
            )
        capture: Any = None
        if args.capture_enabled:
            capture = {
                "enable_capture": True,
                "initial_sampling_percentage": args.capture_sampling_percent,
                "destination_s3_uri": pulumi.Output.format(
                    "s3://{0}/{1}", args.capture_bucket_name, args.capture_prefix
                ),
                "kms_key_id": args.kms_key_arn,
                "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
                "capture_content_type_header": {
                    "csv_content_types": ["text/csv"],
                    "json_content_types": ["application/json"],
                },
            }
        # Serverless variants have no storage volume for a KmsKeyId to encrypt.
        storage_key = args.kms_key_arn if args.encrypt_storage and args.serverless is None else None
        config_content = {
            "variants": [variant],
            "shadow": shadow_variants,
            "capture": capture,
            "kms": storage_key,
        }
        config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            name=pulumi.Output.json_dumps(config_content).apply(lambda c: content_name(full, c)),
            production_variants=[variant],
            shadow_production_variants=shadow_variants or None,
            data_capture_config=capture,
            kms_key_arn=storage_key,
            tags={**tags, "endpoint": full},
            opts=child_opts(self, **retain),
        )

        # --- the endpoint: stable name, updated in place through blue/green --------------------
        deployment_config: Any = None
        if args.serverless is None:
            deployment_config = {
                "blue_green_update_policy": {
                    "traffic_routing_configuration": traffic_routing(args.guardrails),
                    "termination_wait_in_seconds": args.guardrails.termination_wait_seconds,
                    "maximum_execution_timeout_in_seconds": args.guardrails.maximum_execution_timeout_seconds,
                },
                "auto_rollback_configuration": {"alarms": [{"alarm_name": n} for n in self.alarm_names]},
            }
        # The container logs go to /aws/sagemaker/Endpoints/<name>; the execution role cannot create
        # log groups, so it exists first, with the logs key and a retention
        # (https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html).
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/sagemaker/Endpoints/{full}",
            kms_key_id=args.logs_key_arn,
            retention_in_days=args.log_retention_days,
            tags=tags,
            opts=child_opts(self),
        )
        registration = (
            self._scaling_registration(name, args, tags)
            if args.autoscaling is not None and args.serverless is None
            else None
        )
        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=full,
            endpoint_config_name=config.name,
            deployment_config=deployment_config,
            tags=tags,
            opts=child_opts(
                self, depends_on=[errors, latency, log_group, *([registration] if registration else [])]
            ),
        )

        # --- auto scaling of the production variant, once the endpoint exists ------------------
        if args.autoscaling is not None and registration is not None:
            target = aws.appautoscaling.Target(
                f"{name}-scaling-target",
                service_namespace="sagemaker",
                scalable_dimension="sagemaker:variant:DesiredInstanceCount",
                # The registration marker is part of the value's dependencies: when it is replaced, the
                # engine deletes this target (and its policy) first; see scaling_registration below.
                resource_id=pulumi.Output.all(endpoint.name, registration.name).apply(
                    lambda v: f"endpoint/{v[0]}/variant/{args.variant_name}"
                ),
                min_capacity=args.autoscaling.min_instances,
                max_capacity=args.autoscaling.max_instances,
                tags=tags,
                opts=child_opts(self),
            )
            # https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-add-code-define.html
            aws.appautoscaling.Policy(
                f"{name}-scaling-policy",
                name=f"{full}-invocations-per-instance",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration={
                    "target_value": args.autoscaling.target_invocations_per_instance,
                    "predefined_metric_specification": {
                        "predefined_metric_type": "SageMakerVariantInvocationsPerInstance"
                    },
                    "scale_in_cooldown": args.autoscaling.scale_in_cooldown_seconds,
                    "scale_out_cooldown": args.autoscaling.scale_out_cooldown_seconds,
                },
                opts=child_opts(self),
            )

        self.scaling_registration_name = registration.name if registration is not None else None
        self.endpoint_name = endpoint.name
        self.endpoint_arn = endpoint.arn
        self.endpoint_config_name = config.name
        self.model_name = model.name
        self.variant_name = args.variant_name
        self.register_outputs(
            {
                "endpoint_name": self.endpoint_name,
                "endpoint_arn": self.endpoint_arn,
                "endpoint_config_name": self.endpoint_config_name,
                "model_name": self.model_name,
                "variant_name": self.variant_name,
                "alarm_names": self.alarm_names,
                "security_group_id": self.security_group_id,
                "scaling_registration_name": self.scaling_registration_name,
            }
        )

    def _scaling_registration(
        self, name: str, args: ModelEndpointArgs, tags: Mapping[str, str]
    ) -> aws.ssm.Parameter:
        """A marker of the variant's scaling registration, replaced (old one first) when its instance type
        or variant changes, so that the scalable target is deregistered *before* the endpoint update.

        SageMaker fails an ``UpdateEndpoint`` that changes the instance type of (or removes) a variant
        registered with Application Auto Scaling; the documented order is: delete the policy, deregister
        the target, update the endpoint, register and attach the policy again
        (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html).

        Why a marker, in Pulumi's terms: the target must follow the endpoint on creation (registering a
        variant that does not exist fails), so the engine only reaches the target *after* it has updated
        the endpoint; replacing the target itself (``replace_on_changes``, ``replacement_trigger``) comes
        too late. A resource replaced with ``delete_before_replace`` makes the engine first delete every
        dependent whose inputs would force a replacement (the dependents of a delete-before-replace are
        deleted eagerly, pulumi/pulumi's "DeleteReplacement Dependent" steps). This marker is declared
        before the endpoint (which depends on it), its name carries the variant and instance type
        (``name`` forces replacement), and the target's ``resourceId`` (forces replacement) depends on it.
        An instance-type change then runs: delete policy, deregister target, replace marker, update
        endpoint, register target, put policy. A model-only change leaves the marker alone and the
        scaling registered, which SageMaker allows.
        """
        assert args.autoscaling is not None
        resource_id = f"endpoint/{args.full_name}/variant/{args.variant_name}"
        return aws.ssm.Parameter(
            f"{name}-scaling-registration",
            name=f"/{args.name_prefix}/endpoints/{args.endpoint_name}/autoscaling/{args.variant_name}/"
            f"{args.instance_type}",
            type="String",
            tier="Standard",
            description=f"Auto scaling registration of {resource_id} (replaced when its instance type changes)",
            value=json.dumps(
                {
                    "resourceId": resource_id,
                    "instanceType": args.instance_type,
                    "minCapacity": args.autoscaling.min_instances,
                    "maxCapacity": args.autoscaling.max_instances,
                },
                sort_keys=True,
            ),
            tags=dict(tags),
            opts=child_opts(self, delete_before_replace=True),
        )
