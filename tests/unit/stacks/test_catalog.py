"""The model catalog (``mlops-platform:models``): parse-time rules, and two models side by side in dev."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from platform_contract.limits import SPARK_DRIFT_MIN_BYTES
from platform_contract.naming import model_names
from stacks.config import ConfigError, parse_config
from stacks.synth import SynthResult, read_stack_config, run_program, stack_config_file

VALID = {"environment": "dev", "region": "us-east-1", "owner": "ml-team", "costCenter": "cc-1"}
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-dev-{model}/1"


def _problems(models: list[dict[str, Any]], **overrides: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config({**VALID, "models": models, **overrides})
    return str(info.value)


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        (
            [{"name": "churn", "contract": "churn"}, {"name": "churn", "contract": "housing"}],
            ["mlops-platform:models[1].name = 'churn'", "listed twice"],
        ),
        (
            [{"name": "my_dataset", "contract": "churn"}, {"name": "my-dataset", "contract": "housing"}],
            ["mlops-platform:models[1].name = 'my-dataset'", "becomes 'my-dataset' like 'my_dataset'"],
        ),
        (
            [{"name": "9lives", "contract": "churn"}],
            ["mlops-platform:models[0].name = '9lives'", "start with a letter"],
        ),
        ([{"name": "x" * 40, "contract": "churn"}], ["mlops-platform:models[0].name", "at most"]),
        (
            [{"name": "__", "contract": "churn"}],
            ["mlops-platform:models[0].name = '__'", "no letters or digits"],
        ),
        (
            [{"name": "sales", "contract": "sales"}],
            ["mlops-platform:models['sales'].contract = 'sales'", "no contract file", "churn, housing"],
        ),
        ([], ["mlops-platform:models needs at least one model"]),
        (
            [{"name": "churn", "contract": "churn", "endpoint": {"strategy": "CANARY", "instanceCount": 1}}],
            ["mlops-platform:models['churn'].endpoint", "CANARY needs endpoint.instanceCount of at least 2"],
        ),
        (
            [
                {
                    "name": "churn",
                    "contract": "churn",
                    "endpoint": {"strategy": "LINEAR", "autoscaling": False},
                }
            ],
            ["LINEAR needs endpoint.instanceCount of at least 2", "one instance cannot shift"],
        ),
        (
            [{"name": "churn", "contract": "churn", "endpoint": {"mode": "stream"}}],
            ["mlops-platform:models['churn'].endpoint.mode", "'realtime', 'batch' or 'none'"],
        ),
        (
            [{"name": "churn", "contract": "churn", "monitoring": {"schedule": "hourly"}}],
            ["mlops-platform:models['churn'].monitoring.schedule", "@hourly"],
        ),
        (
            [{"name": "churn", "contract": "churn", "monitoring": {"driftShareThreshold": 2}}],
            ["mlops-platform:models['churn'].monitoring.driftShareThreshold", "between 0 and 1"],
        ),
    ],
)
def test_each_catalog_mistake_fails_at_parse_time(models: list[dict[str, Any]], expected: list[str]) -> None:
    message = _problems(models)
    for part in expected:
        assert part in message


def test_environment_rules_name_the_model_entry() -> None:
    endpoint = {"captureEnabled": False, "instanceCount": 2, "strategy": "LINEAR", "minInstances": 2}
    message = _problems(
        [
            {"name": "churn", "contract": "churn"},
            {"name": "housing", "contract": "housing", "endpoint": endpoint},
        ],
        environment="staging",
    )
    assert "mlops-platform:models['housing'].endpoint.captureEnabled must be true in staging" in message
    assert "models['churn'].endpoint.captureEnabled" not in message
    # a batch-only model has no endpoint to guard
    parse_config(
        {
            **VALID,
            "environment": "staging",
            "cluster": {"adminRoleArns": ["arn:aws:iam::123456789012:role/mlops-staging-pulumi-deployer"]},
            "models": [
                {"name": "churn", "contract": "churn", "endpoint": {"mode": "batch", "captureEnabled": False}}
            ],
        }
    )


def test_staging_guarded_shifting_has_two_instances() -> None:
    flat = read_stack_config(stack_config_file("staging"))
    for model in json.loads(flat["mlops-platform:models"]):
        assert model["endpoint"]["strategy"] == "LINEAR"
        assert model["endpoint"]["instanceCount"] >= 2


def _dev_with_packages() -> SynthResult:
    """The dev stack with an approved package on both models (as the promotion pipeline sets it)."""
    from stacks.config import load_config
    from stacks.platform import build

    flat = read_stack_config(stack_config_file("dev"))
    models = json.loads(flat["mlops-platform:models"])
    for model in models:
        model["endpoint"]["modelPackageArn"] = ARN.format(model=model["name"])
    flat["mlops-platform:models"] = json.dumps(models)

    def program() -> Mapping[str, Any]:
        return build(load_config()).outputs

    return run_program(program, flat, stack="dev")


@pytest.fixture(scope="module")
def dev_two_models() -> SynthResult:
    return _dev_with_packages()


def test_two_models_get_their_own_resources(dev_two_models: SynthResult) -> None:
    result = dev_two_models
    groups = {
        g.inputs["modelPackageGroupName"]: g.inputs["tags"]
        for g in result.of_type("aws:sagemaker/modelPackageGroup:ModelPackageGroup")
    }
    assert groups.keys() == {"mlops-dev-churn", "mlops-dev-housing"}
    assert groups["mlops-dev-churn"]["mlops:contract"] == "churn"
    assert groups["mlops-dev-housing"]["mlops:contract"] == "housing"

    endpoints = {e.inputs["name"]: e.inputs for e in result.of_type("aws:sagemaker/endpoint:Endpoint")}
    assert endpoints.keys() == {"mlops-dev-churn", "mlops-dev-housing"}
    configs = result.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    destinations = sorted(c.inputs["dataCaptureConfig"]["destinationS3Uri"].split("/", 3)[3] for c in configs)
    assert destinations == ["datacapture/churn", "datacapture/housing"]
    for c in configs:
        variant = c.inputs["productionVariants"][0]
        assert (variant["instanceType"], variant["initialInstanceCount"]) == ("ml.m5.large", 2)
        assert c.inputs["dataCaptureConfig"]["enableCapture"] is True
    for e in endpoints.values():
        policy = e["deploymentConfig"]["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
        assert policy["type"] == "CANARY"
        assert policy["canarySize"] == {"type": "CAPACITY_PERCENT", "value": 50}
    assert not result.of_type("aws:appautoscaling/target:Target")  # auto scaling off in dev

    alarms = {a.inputs["name"]: a.inputs for a in result.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    for model in ("churn", "housing"):
        # rollback alarms watch the model's own endpoint
        rollback = [
            a for a in alarms.values() if a.get("dimensions", {}).get("EndpointName") == f"mlops-dev-{model}"
        ]
        assert rollback, model
        # step-failure alarms on the model's Pipeline dimension
        steps = [a for a in alarms.values() if a.get("dimensions", {}).get("Pipeline") == f"{model}-training"]
        assert {a["dimensions"]["Step"] for a in steps} == {
            "ingest", "validate", "features", "train", "evaluate", "register"
        }  # fmt: skip
        assert f"mlops-dev-{model}-drift-share" in alarms

    tables = {t.inputs["name"] for t in result.of_type("aws:glue/catalogTable:CatalogTable")}
    assert {"churn_capture", "housing_capture", "churn_curated", "housing_features"} <= tables


def test_models_output_and_first_model_keys(dev_two_models: SynthResult) -> None:
    outputs = dev_two_models.outputs
    models = outputs["models"]
    assert list(models) == ["churn", "housing"]
    for name, entry in models.items():
        names = model_names("mlops-dev", name)
        assert entry == {
            "contract": name,
            "modelPackageGroupName": names.model_package_group,
            "endpointName": names.endpoint,
            "capturePrefix": names.capture_prefix,
            "glueCaptureTable": names.glue_capture_table,
            "pipeline": names.pipeline,
            "trainingDagId": names.training_dag_id,
            "monitoringDagId": names.monitoring_dag_id,
            "trainingJobPrefix": names.training_job_prefix,
            "monitoringSchedule": "@hourly",
            "sparkDriftMinBytes": SPARK_DRIFT_MIN_BYTES["dev"],  # the environment's default
            "tuningJobPrefix": names.tuning_job_prefix,
            "tuningMaxJobs": 10,
            "tuningMaxParallelJobs": 2,
        }
    assert outputs["modelPackageGroupName"] == "mlops-dev-churn"
    assert outputs["endpointName"] == "mlops-dev-churn"
    assert outputs["glueCaptureTable"] == "churn_capture"
    assert outputs["endpointStatus"].startswith("deployed: ")


def test_airflow_grants_cover_every_model(dev_two_models: SynthResult) -> None:
    policies = [
        json.dumps(p.inputs.get("policy"))
        for p in dev_two_models.resources
        if p.type == "aws:iam/rolePolicy:RolePolicy"
        and p.name == "mlops-dev-platform-policy"  # the MWAA role's
    ]
    assert policies
    text = " ".join(policies)
    for model in ("churn", "housing"):
        assert f"model-package-group/mlops-dev-{model}" in text
        assert f"training-job/mlops-dev-{model}-*" in text


def test_pipeline_readers_take_the_synthesized_catalog(dev_two_models: SynthResult, tmp_path: Path) -> None:
    from pipelines.orchestration import OUTPUTS_FILE_NAME, load_dag_settings
    from pipelines.settings import load_settings

    path = tmp_path / OUTPUTS_FILE_NAME
    path.write_text(json.dumps(dev_two_models.outputs, default=str))
    settings = load_settings(path)
    churn, housing = settings.model_target("churn"), settings.model_target("housing")
    assert (churn.model_package_group_name, churn.endpoint_name) == ("mlops-dev-churn", "mlops-dev-churn")
    assert housing.model_package_group_name == "mlops-dev-housing"
    assert (housing.glue_capture_table, housing.pipeline) == ("housing_capture", "housing-training")
    assert housing.from_catalog

    dags = load_dag_settings(tmp_path)
    by_model = {m.model: m for m in dags.models}
    assert by_model.keys() == {"churn", "housing"}
    assert by_model["housing"].model_package_group == "mlops-dev-housing"
    assert by_model["housing"].endpoint == "mlops-dev-housing"
    assert by_model["housing"].monitoring_schedule == "@hourly"
    assert by_model["housing"].spark_drift_min_bytes == SPARK_DRIFT_MIN_BYTES["dev"]


def test_batch_model_has_no_endpoint_and_a_null_endpoint_name(pulumi_mock: Any) -> None:
    from stacks.config import load_config
    from stacks.platform import build

    flat = read_stack_config(stack_config_file("dev"))
    models = json.loads(flat["mlops-platform:models"])
    models[0]["endpoint"]["modelPackageArn"] = ARN.format(model="churn")
    models[1]["endpoint"] = {"mode": "batch", "modelPackageArn": ARN.format(model="housing")}
    flat["mlops-platform:models"] = json.dumps(models)
    result = run_program(lambda: build(load_config()).outputs, flat, stack="dev")
    assert [e.inputs["name"] for e in result.of_type("aws:sagemaker/endpoint:Endpoint")] == [
        "mlops-dev-churn"
    ]
    assert result.outputs["models"]["housing"]["endpointName"] is None
    assert result.outputs["models"]["housing"]["modelPackageGroupName"] == "mlops-dev-housing"


def test_promote_build_finds_the_packages_model_entry() -> None:
    from stacks.config.promote_key import main

    models = json.dumps([{"name": "churn"}, {"name": "my_dataset"}])
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-prod-my-dataset/3"
    assert main([arn, models]) == 0
    from stacks.config.models import model_config_path

    assert model_config_path(json.loads(models), "mlops-prod-my-dataset", "mlops-prod") == (
        "models[1].endpoint.modelPackageArn"
    )
    with pytest.raises(ValueError, match="no model of the target stack's catalog"):
        model_config_path(json.loads(models), "mlops-prod-sales", "mlops-prod")
    assert main(["not-an-arn", models]) == 2


@pytest.mark.parametrize(
    ("tuning", "message"),
    [
        ({"maxJobs": 0}, "must be 1 to 750"),
        ({"maxJobs": 751}, "must be 1 to 750"),
        ({"maxParallelJobs": 11}, "must be 1 to 10"),
        ({"maxJobs": 2, "maxParallelJobs": 3}, "cannot exceed maxJobs"),
    ],
)
def test_tuning_limits_outside_the_quotas_are_refused(tuning: dict[str, int], message: str) -> None:
    from pydantic import ValidationError

    from stacks.config.models import ModelConfig

    with pytest.raises(ValidationError, match=message):
        ModelConfig.model_validate({"name": "churn", "contract": "churn", "tuning": tuning})
    ok = ModelConfig.model_validate({"name": "churn", "contract": "churn", "tuning": {"maxJobs": 3}})
    assert (ok.tuning.max_jobs, ok.tuning.max_parallel_jobs) == (3, 2)


def test_spark_drift_threshold_is_validated_and_defaults_per_environment() -> None:
    from pydantic import ValidationError

    from stacks.config.models import ModelConfig

    with pytest.raises(ValidationError, match="at least 1 byte"):
        ModelConfig.model_validate(
            {"name": "churn", "contract": "churn", "monitoring": {"sparkDriftMinBytes": 0}}
        )
    with pytest.raises(ValidationError, match="sparkDriftMinBytes"):
        ModelConfig.model_validate(
            {"name": "churn", "contract": "churn", "monitoring": {"sparkDriftMinBytes": "big"}}
        )
    set_ = ModelConfig.model_validate(
        {"name": "churn", "contract": "churn", "monitoring": {"sparkDriftMinBytes": 1024**3}}
    )
    assert set_.monitoring.spark_drift_min_bytes == 1024**3
    assert (
        ModelConfig.model_validate({"name": "churn", "contract": "churn"}).monitoring.spark_drift_min_bytes
        is None
    )
    assert set(SPARK_DRIFT_MIN_BYTES) == {"dev", "staging", "prod"}
