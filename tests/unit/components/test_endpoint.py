"""ModelEndpoint under the recording mock: guardrails, rollback alarms, content-named configs,
capture with the ML key, VPC/isolation, auto scaling, serverless limits, and the stack wiring
(no endpoint without an approved package)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.endpoint import (
    AutoScaling,
    Guardrails,
    ModelEndpoint,
    ModelEndpointArgs,
    ServerlessCapacity,
    ShadowVariant,
    has_local_storage,
)
from stacks.config import load_config
from stacks.platform import build
from stacks.synth import SynthResult, is_taggable, read_stack_config, run_program, stack_config_file
from tests.conftest import BASE_CONFIG

ML_KEY = "arn:aws:kms:us-east-1:123456789012:key/ml"
ROLE = "arn:aws:iam::123456789012:role/mlops-test-sagemaker-execution"
TOPIC = "arn:aws:sns:us-east-1:123456789012:mlops-test-alerts"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-test-churn/{}"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
MODEL = "aws:sagemaker/model:Model"


def _args(**overrides: Any) -> ModelEndpointArgs:
    values: dict[str, Any] = {
        "name_prefix": "mlops-test",
        "endpoint_name": "churn",
        "execution_role_arn": ROLE,
        "model_package_arn": PACKAGE.format(3),
        "kms_key_arn": ML_KEY,
        "capture_bucket_name": "lake-capture",
        "capture_prefix": "datacapture",
        "instance_type": "ml.m5.large",
        "instance_count": 2,
        "subnet_ids": ["subnet-a", "subnet-b"],
        "vpc_id": "vpc-1",
        "vpc_cidr": "10.0.0.0/16",
        "s3_prefix_list_id": "pl-63a5400a",
        "capture_sampling_percent": 40,
        "guardrails": Guardrails(strategy="CANARY", canary_size_percent=10, wait_interval_seconds=600),
        "alarm_actions": [TOPIC],
        "autoscaling": AutoScaling(min_instances=2, max_instances=6, target_invocations_per_instance=150),
        "tags": {"project": "mlops-platform"},
    }
    values.update(overrides)
    return ModelEndpointArgs(**values)


def _run(args: ModelEndpointArgs) -> SynthResult:
    def program() -> dict[str, Any]:
        ep = ModelEndpoint("ep", args)
        return {"name": ep.endpoint_name, "config": ep.endpoint_config_name, "model": ep.model_name}

    return run_program(program, BASE_CONFIG)


@pytest.fixture(scope="module")
def canary() -> SynthResult:
    return _run(_args())


@pytest.mark.parametrize(
    ("guardrails", "routing"),
    [
        (
            Guardrails(strategy="ALL_AT_ONCE", wait_interval_seconds=120),
            {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 120},
        ),
        (
            Guardrails(strategy="CANARY", canary_size_percent=20, wait_interval_seconds=600),
            {
                "type": "CANARY",
                "waitIntervalInSeconds": 600,
                "canarySize": {"type": "CAPACITY_PERCENT", "value": 20},
            },
        ),
        (
            Guardrails(strategy="LINEAR", linear_step_percent=25, wait_interval_seconds=300),
            {
                "type": "LINEAR",
                "waitIntervalInSeconds": 300,
                "linearStepSize": {"type": "CAPACITY_PERCENT", "value": 25},
            },
        ),
    ],
)
def test_blue_green_policy_per_strategy(guardrails: Guardrails, routing: dict[str, Any]) -> None:
    result = _run(_args(guardrails=guardrails))
    (endpoint,) = result.of_type(ENDPOINT)
    assert endpoint.inputs["deploymentConfig"] == {
        "blueGreenUpdatePolicy": {
            "trafficRoutingConfiguration": routing,
            "terminationWaitInSeconds": guardrails.termination_wait_seconds,
            "maximumExecutionTimeoutInSeconds": guardrails.maximum_execution_timeout_seconds,
        },
        "autoRollbackConfiguration": {
            "alarms": [
                {"alarmName": "mlops-test-churn-5xx-errors"},
                {"alarmName": "mlops-test-churn-model-latency"},
            ]
        },
    }
    assert "rollingUpdatePolicy" not in endpoint.inputs["deploymentConfig"]


def test_rollback_alarms_exist_by_name_with_dimensions() -> None:
    result = _run(_args(guardrails=Guardrails(strategy="LINEAR", extra_alarm_names=["team-slo-breach"])))
    (endpoint,) = result.of_type(ENDPOINT)
    named = [
        a["alarmName"] for a in endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]
    ]
    assert named == ["mlops-test-churn-5xx-errors", "mlops-test-churn-model-latency", "team-slo-breach"]
    alarms = {a.inputs["name"]: a for a in result.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert set(alarms) == set(named[:2])  # the extra alarm is the user's, referenced by name only
    errors, latency = alarms[named[0]].inputs, alarms[named[1]].inputs
    for alarm in (errors, latency):
        assert alarm["namespace"] == "AWS/SageMaker"
        assert alarm["dimensions"] == {"EndpointName": "mlops-test-churn", "VariantName": "primary"}
        assert alarm["alarmActions"] == [TOPIC]
    assert errors["metricName"] == "Invocation5XXErrors"
    assert errors["threshold"] == 1
    assert latency["metricName"] == "ModelLatency"
    assert latency["threshold"] == 500_000  # 500 ms in microseconds


def test_endpoint_config_name_changes_with_the_model() -> None:
    first, same, second = _run(_args()), _run(_args()), _run(_args(model_package_arn=PACKAGE.format(4)))
    name = lambda r, t: r.of_type(t)[0].inputs["name"]  # noqa: E731
    # deterministic for the same content
    assert name(first, CONFIG) == name(same, CONFIG)
    assert name(first, MODEL) == name(same, MODEL)
    # a new package: new model and new config names, so Pulumi creates them before deleting the old ones
    assert name(first, MODEL) != name(second, MODEL)
    assert name(first, CONFIG) != name(second, CONFIG)
    assert name(second, CONFIG).startswith("mlops-test-churn-")
    assert len(name(second, CONFIG)) <= 63
    # the endpoint and its variant keep their names: an update, not a replacement
    assert name(first, ENDPOINT) == name(second, ENDPOINT) == "mlops-test-churn"
    variants = [r.of_type(CONFIG)[0].inputs["productionVariants"][0]["variantName"] for r in (first, second)]
    assert variants == ["primary", "primary"]
    cfg = second.of_type(CONFIG)[0]
    assert cfg.inputs["productionVariants"][0]["modelName"] == name(second, MODEL)
    assert second.of_type(ENDPOINT)[0].inputs["endpointConfigName"] == name(second, CONFIG)
    # replaced configs and models are kept for SageMaker's own rollback
    assert cfg.retain_on_delete is True
    assert second.of_type(MODEL)[0].retain_on_delete is True


def test_capacity_change_also_renames_the_config() -> None:
    base, bigger = _run(_args()), _run(_args(instance_count=3))
    assert base.of_type(CONFIG)[0].inputs["name"] != bigger.of_type(CONFIG)[0].inputs["name"]
    assert base.of_type(MODEL)[0].inputs["name"] == bigger.of_type(MODEL)[0].inputs["name"]


def test_data_capture_in_and_out_with_the_ml_key(canary: SynthResult) -> None:
    (cfg,) = canary.of_type(CONFIG)
    assert cfg.inputs["kmsKeyArn"] == ML_KEY
    assert cfg.inputs["dataCaptureConfig"] == {
        "enableCapture": True,
        "initialSamplingPercentage": 40,
        "destinationS3Uri": "s3://lake-capture/datacapture",
        "kmsKeyId": ML_KEY,
        "captureOptions": [{"captureMode": "Input"}, {"captureMode": "Output"}],
        "captureContentTypeHeader": {
            "csvContentTypes": ["text/csv"],
            "jsonContentTypes": ["application/json"],
        },
    }
    assert cfg.inputs["productionVariants"] == [
        {
            "variantName": "primary",
            "modelName": canary.of_type(MODEL)[0].inputs["name"],
            "instanceType": "ml.m5.large",
            "initialInstanceCount": 2,
            "initialVariantWeight": 1,
        }
    ]


def test_model_from_package_in_private_subnets_with_isolation(canary: SynthResult) -> None:
    (model,) = canary.of_type(MODEL)
    (sg,) = canary.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert model.inputs["primaryContainer"] == {"modelPackageName": PACKAGE.format(3)}
    assert model.inputs["executionRoleArn"] == ROLE
    assert model.inputs["enableNetworkIsolation"] is True
    assert model.inputs["vpcConfig"] == {
        "subnets": ["subnet-a", "subnet-b"],
        "securityGroupIds": [sg.outputs["id"]],
    }
    assert sg.inputs["vpcId"] == "vpc-1"
    # a prefix, not a name: a replaced group is created before the old one goes (issue 12 item 22)
    assert "name" not in sg.inputs
    assert sg.inputs["namePrefix"] == "mlops-test-churn-model-"
    assert not sg.inputs.get("ingress")
    assert [
        (e["fromPort"], e["toPort"], e.get("cidrBlocks"), e.get("prefixListIds")) for e in sg.inputs["egress"]
    ] == [
        (443, 443, ["10.0.0.0/16"], None),
        (443, 443, None, ["pl-63a5400a"]),
    ]


def test_image_and_model_data_are_supported() -> None:
    result = _run(
        _args(
            model_package_arn=None,
            image_uri="123.dkr.ecr.us-east-1.amazonaws.com/churn:1",
            model_data_url="s3://a/m.tar.gz",
        )
    )
    assert result.of_type(MODEL)[0].inputs["primaryContainer"] == {
        "image": "123.dkr.ecr.us-east-1.amazonaws.com/churn:1",
        "modelDataUrl": "s3://a/m.tar.gz",
    }


def test_autoscaling_bounds_and_policy(canary: SynthResult) -> None:
    (target,) = canary.of_type("aws:appautoscaling/target:Target")
    (policy,) = canary.of_type("aws:appautoscaling/policy:Policy")
    assert target.inputs["minCapacity"] == 2
    assert target.inputs["maxCapacity"] == 6
    assert target.inputs["resourceId"] == "endpoint/mlops-test-churn/variant/primary"
    assert target.inputs["scalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target.inputs["serviceNamespace"] == "sagemaker"
    assert policy.inputs["policyType"] == "TargetTrackingScaling"
    conf = policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert conf["targetValue"] == 150
    assert conf["predefinedMetricSpecification"] == {
        "predefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert policy.inputs["resourceId"] == target.inputs["resourceId"]


TARGET = "aws:appautoscaling/target:Target"
POLICY = "aws:appautoscaling/policy:Policy"
MARKER = "aws:ssm/parameter:Parameter"
# Inputs whose change replaces the resource (the provider's ForceNew), for the types involved.
FORCE_NEW = {MARKER: {"name"}, TARGET: {"resourceId", "scalableDimension", "serviceNamespace"},
             POLICY: {"name", "resourceId", "scalableDimension", "serviceNamespace"}}  # fmt: skip


def _deleted_first(old: SynthResult, new: SynthResult) -> list[str]:
    """The resources Pulumi's engine deletes *before* anything else of an update from ``old`` to ``new``.

    A resource replaced with ``delete_before_replace`` is deleted before its replacement is created,
    and so is every dependent whose replace-forcing input comes from it, transitively (the engine's
    dependent replacements; pulumi/pulumi's "DeleteReplacement Dependent" steps). Dependents through
    ``depends_on`` only are updated, not deleted.
    """
    before = {r.urn: r for r in old.resources}
    after = {r.urn: r for r in new.resources}
    roots = [
        urn
        for urn, r in before.items()
        if urn in after
        and r.delete_before_replace
        and any(r.inputs.get(k) != after[urn].inputs.get(k) for k in FORCE_NEW.get(r.type, ()))
    ]
    doomed: list[str] = list(roots)
    changed = True
    while changed:
        changed = False
        for urn, r in before.items():
            if urn in doomed:
                continue
            forcing = FORCE_NEW.get(r.type, set())
            if any(set(r.property_dependencies.get(k, ())) & set(doomed) for k in forcing):
                doomed.append(urn)
                changed = True
    return [before[u].type for u in doomed]


def test_instance_type_change_deregisters_scaling_before_the_endpoint_update(canary: SynthResult) -> None:
    """Item 9: SageMaker refuses to change the instance type of an auto-scaled variant; the scaling
    policy and target must go before UpdateEndpoint and come back after it."""
    (marker,) = canary.of_type(MARKER)
    (endpoint,) = canary.of_type(ENDPOINT)
    (target,) = canary.of_type(TARGET)
    (policy,) = canary.of_type(POLICY)
    assert marker.delete_before_replace
    assert marker.inputs["name"] == "/mlops-test/endpoints/churn/autoscaling/primary/ml.m5.large"
    assert json.loads(marker.inputs["value"])["resourceId"] == "endpoint/mlops-test-churn/variant/primary"
    # the endpoint waits for the marker; the target follows the endpoint and the marker
    assert marker.urn in endpoint.dependencies
    assert set(target.property_dependencies["resourceId"]) == {endpoint.urn, marker.urn}
    assert target.urn in policy.property_dependencies["resourceId"]

    bigger = _run(_args(instance_type="ml.c5.xlarge"))
    assert _deleted_first(canary, bigger) == [MARKER, TARGET, POLICY]
    # a new model only: SageMaker allows it with scaling registered, nothing is deleted first
    assert _deleted_first(canary, _run(_args(model_package_arn=PACKAGE.format(4)))) == []
    # new bounds update the target in place
    assert (
        _deleted_first(canary, _run(_args(autoscaling=AutoScaling(min_instances=2, max_instances=8)))) == []
    )


def test_no_scaling_marker_without_autoscaling() -> None:
    result = _run(_args(autoscaling=None))
    assert result.of_type(MARKER) == []
    assert result.of_type(TARGET) == []


def test_shadow_variant_gets_its_own_model() -> None:
    result = _run(_args(shadow=ShadowVariant(model_package_arn=PACKAGE.format(5), traffic_percent=50)))
    (cfg,) = result.of_type(CONFIG)
    models = {m.name: m.inputs for m in result.of_type(MODEL)}
    (shadow,) = cfg.inputs["shadowProductionVariants"]
    assert shadow["variantName"] == "primary-shadow"
    assert shadow["initialVariantWeight"] == 0.5
    assert models["ep-shadow-model"]["primaryContainer"] == {"modelPackageName": PACKAGE.format(5)}
    assert shadow["modelName"] == models["ep-shadow-model"]["name"]


def test_serverless_has_no_capture_vpc_kms_or_scaling() -> None:
    result = _run(
        _args(
            serverless=ServerlessCapacity(memory_size_mb=2048, max_concurrency=5),
            capture_enabled=False,
            network_isolation=False,
            autoscaling=None,
            guardrails=Guardrails(),
            subnet_ids=(),
            vpc_id=None,
            vpc_cidr=None,
        )
    )
    (cfg,) = result.of_type(CONFIG)
    assert cfg.inputs["productionVariants"][0]["serverlessConfig"] == {
        "memorySizeInMb": 2048,
        "maxConcurrency": 5,
    }
    assert "instanceType" not in cfg.inputs["productionVariants"][0]
    assert not cfg.inputs.get("dataCaptureConfig")
    assert not cfg.inputs.get("kmsKeyArn")
    assert not result.of_type(MODEL)[0].inputs.get("vpcConfig")
    assert not result.of_type("aws:appautoscaling/target:Target")
    assert not result.of_type("aws:ec2/securityGroup:SecurityGroup")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"capture_enabled": True}, "capture_enabled"),
        ({"network_isolation": True}, "network_isolation"),
        ({"guardrails": Guardrails(strategy="CANARY")}, "all at once"),
    ],
)
def test_serverless_rejects_unsupported_features(overrides: dict[str, Any], message: str) -> None:
    base = {
        "serverless": ServerlessCapacity(),
        "capture_enabled": False,
        "network_isolation": False,
        "autoscaling": None,
        "guardrails": Guardrails(),
    }
    with pytest.raises(ValueError, match=message):
        _args(**{**base, **overrides})


def test_local_nvme_instance_types_cannot_take_a_kms_key() -> None:
    assert has_local_storage("ml.m5d.large")
    assert has_local_storage("ml.g4dn.xlarge")
    assert has_local_storage("ml.g5.xlarge")
    assert not has_local_storage("ml.m5.large")
    assert not has_local_storage("ml.c6i.large")
    with pytest.raises(ValueError, match="local NVMe"):
        _args(instance_type="ml.m5d.large")
    result = _run(_args(instance_type="ml.m5d.large", encrypt_storage=False))
    cfg = result.of_type(CONFIG)[0].inputs
    assert not cfg.get("kmsKeyArn")
    assert cfg["dataCaptureConfig"]["kmsKeyId"] == ML_KEY  # capture stays encrypted


def test_args_need_exactly_one_model_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        _args(model_package_arn=None)
    with pytest.raises(ValueError, match="autoscaling bounds"):
        _args(instance_count=8)


# --- the stacks: no endpoint without an approved package; with one, guarded in every stack -------


def test_no_endpoint_without_an_approved_package(each_stack: SynthResult) -> None:
    for token in (ENDPOINT, CONFIG, MODEL, "aws:appautoscaling/target:Target"):
        assert each_stack.of_type(token) == []
    assert each_stack.outputs["endpointName"] is None
    assert each_stack.outputs["endpointConfigName"] is None
    assert each_stack.outputs["endpointStatus"].startswith("no endpoint: no approved model package")
    # the rest of the platform is there
    assert each_stack.of_type("aws:sagemaker/modelPackageGroup:ModelPackageGroup")
    assert each_stack.of_type("aws:mwaa/environment:Environment")


def _synth_with_package(stack: str) -> SynthResult:
    """The stack with an approved package on its first model (churn) only."""
    config = read_stack_config(stack_config_file(stack))
    models = json.loads(config["mlops-platform:models"])
    models[0]["endpoint"]["modelPackageArn"] = (
        f"arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-{stack}-churn/7"
    )
    config["mlops-platform:models"] = json.dumps(models)
    return run_program(lambda: build(load_config()).outputs, config, stack=stack)


@pytest.fixture(scope="module", params=["dev", "staging", "prod"])
def with_package(request: pytest.FixtureRequest) -> SynthResult:
    return _synth_with_package(request.param)


def test_approved_package_declares_the_endpoint_in_every_stack(with_package: SynthResult) -> None:
    stack = with_package.stack
    (endpoint,) = with_package.of_type(ENDPOINT)
    (cfg,) = with_package.of_type(CONFIG)
    assert endpoint.inputs["name"] == f"mlops-{stack}-churn"
    assert with_package.outputs["endpointName"] == f"mlops-{stack}-churn"
    assert with_package.outputs["endpointStatus"].startswith("deployed: arn:aws:sagemaker")
    assert with_package.outputs["endpointConfigName"] == cfg.inputs["name"]
    model = with_package.of_type(MODEL)[0].inputs
    assert model["primaryContainer"]["modelPackageName"].endswith(f"mlops-{stack}-churn/7")
    for r in with_package.resources:  # every taggable endpoint child carries the platform tags
        if "mlops:endpoint:ModelEndpoint$aws:" in r.urn and is_taggable(r.type):
            assert r.inputs["tags"]["environment"] == stack, r.name
            assert r.inputs["tags"]["cost-center"], r.name
    # every stack: instances with capture under the ML key into the model's capture prefix, in the
    # private subnets (dev too: serverless cannot capture, and the lifecycle watches dev models)
    ml_key = with_package.outputs["mlKeyArn"]
    assert cfg.inputs["kmsKeyArn"] == ml_key
    assert cfg.inputs["dataCaptureConfig"]["kmsKeyId"] == ml_key
    capture_bucket = with_package.outputs["captureBucket"]
    assert cfg.inputs["dataCaptureConfig"]["destinationS3Uri"] == f"s3://{capture_bucket}/datacapture/churn"
    assert model["vpcConfig"]["subnets"] == with_package.outputs["privateSubnetIds"]
    rollback = endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]
    assert [a["alarmName"] for a in rollback] == with_package.outputs["endpointRollbackAlarmNames"]
    if stack == "prod":
        routing = endpoint.inputs["deploymentConfig"]["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
        assert routing["type"] == "CANARY"
        assert cfg.inputs["productionVariants"][0]["initialInstanceCount"] >= 2
        (target,) = with_package.of_type("aws:appautoscaling/target:Target")
        assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (2, 6)
        # drift alarms watch the endpoint now
        drift = [a for a in with_package.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                 if a.inputs["metricName"] == "DatasetDrift"]  # fmt: skip
        assert drift[0].inputs["dimensions"] == {"Environment": "prod", "EndpointName": "mlops-prod-churn"}


def test_sagemaker_log_groups_exist_first_with_the_logs_key_and_retention(with_package: SynthResult) -> None:
    """Item 18: the endpoint's and the jobs' log groups are declared (key, retention) and the execution
    role cannot create log groups of its own."""
    stack = with_package.stack
    groups = {g.inputs["name"]: g for g in with_package.of_type("aws:cloudwatch/logGroup:LogGroup")}
    logs_key = next(
        k.outputs["arn"]
        for k in with_package.of_type("aws:kms/key:Key")
        if k.inputs["tags"]["data-domain"] == "logs"
    )
    names = [
        f"/aws/sagemaker/Endpoints/mlops-{stack}-churn",
        "/aws/sagemaker/TrainingJobs",
        "/aws/sagemaker/ProcessingJobs",
        "/aws/sagemaker/TransformJobs",
    ]
    for name in names:
        assert groups[name].inputs["kmsKeyId"] == logs_key, name
        assert groups[name].inputs["retentionInDays"] >= 1, name
    (endpoint,) = with_package.of_type(ENDPOINT)
    assert groups[names[0]].urn in endpoint.dependencies
    role_policy = with_package.named(f"mlops-{stack}-sagemaker-policy")
    assert "logs:CreateLogGroup" not in role_policy.inputs["policy"]
