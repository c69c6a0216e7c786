"""The data science layer from config alone: per-environment defaults, wiring to the earlier layers,
outputs, parse-time errors, and the shipped stacks passing the data science policy rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from policies.check import resources_from_records
from policies.core import REGISTRY
from policies.engine import evaluate
from stacks.config import ConfigError, parse_config
from stacks.synth import SynthResult, run_program
from tests.conftest import BASE_CONFIG
from tests.unit.components._helpers import as_list, policy, statements

BASE = {"region": "us-east-1", "owner": "team", "costCenter": "cc"}
DS_RULES = [REGISTRY[r] for r in ("sagemaker-domain-kms", "sagemaker-feature-group-kms",
                                  "sagemaker-mlflow-artifacts-kms", "sagemaker-no-direct-internet")]  # fmt: skip


def _build(config: dict[str, str], stack: str = "dev") -> tuple[SynthResult, Any]:
    from stacks.config import load_config
    from stacks.platform import Platform, build

    built: list[Platform] = []

    def program() -> dict[str, Any]:
        platform = build(load_config())
        built.append(platform)
        return platform.outputs

    result = run_program(program, {**BASE_CONFIG, **config}, stack=stack)
    return result, built[0]


def test_environment_defaults() -> None:
    dev = parse_config({**BASE, "environment": "dev"})
    staging = parse_config(
        {
            **BASE,
            "environment": "staging",
            # staging refuses an empty deployer list (issue 12 item 1)
            "cluster": {"adminRoleArns": ["arn:aws:iam::123456789012:role/mlops-staging-pulumi-deployer"]},
        }
    )
    assert dev.experimentation.studio_enabled("dev")
    assert staging.experimentation.studio_enabled("staging")
    assert not staging.experimentation.studio_enabled("prod")  # prod: Studio is an explicit opt-in
    assert dev.experimentation.mlflow_enabled()
    assert not dev.feature_store.online_enabled("dev")
    assert dev.feature_store.online_enabled("staging")
    assert dev.feature_store.online_enabled("prod")
    explicit = parse_config(
        {
            **BASE,
            "environment": "dev",
            "experimentation": {"studio": {"enabled": False}},
            "featureStore": {"onlineStore": True},
        }
    )
    assert not explicit.experimentation.studio_enabled("dev")
    assert explicit.feature_store.online_enabled("dev")


@pytest.mark.parametrize(
    ("section", "value", "expected"),
    [
        (
            "experimentation",
            {"studio": {"idleTimeoutMinutes": 30}},
            "experimentation.studio.idleTimeoutMinutes = 30",
        ),
        (
            "experimentation",
            {"studio": {"userProfiles": ["jane_doe"]}},
            "experimentation.studio.userProfiles",
        ),
        (
            "experimentation",
            {"studio": {"idleTimeoutMinutes": 600}},
            "maxIdleTimeoutMinutes must be at least",
        ),
        ("experimentation", {"mlflow": {"kind": "server"}}, "experimentation.mlflow.kind"),
        ("experimentation", {"mlflow": {"artifactPrefix": "/mlflow"}}, "ending in '/'"),
        ("experimentation", {"mlflow": {"maintenanceWindow": "03:00"}}, "like Sun:03:00"),
        ("experimentation", {"studo": {}}, "experimentation.studo is not a known setting"),
        ("featureStore", {"onlineTtlDays": 0}, "featureStore.onlineTtlDays = 0"),
    ],
)
def test_bad_values_fail_at_parse_time_naming_the_key(
    section: str, value: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.").replace("(", r"\(")) as info:
        parse_config({**BASE, "environment": "dev", section: value})
    assert "mlops-platform:" in str(info.value)


def test_a_contract_that_cannot_be_a_feature_group_fails_at_parse_time(
    tmp_path: Any, monkeypatch: Any
) -> None:
    import stacks.config.contracts as contracts

    text = (
        (contracts.CONTRACTS_DIR / "churn.yaml")
        .read_text()
        .replace("unique_keys: [customer_id]", "unique_keys: [customer_id, region]")
    )
    (tmp_path / "churn.yaml").write_text(text)
    monkeypatch.setattr(contracts, "CONTRACTS_DIR", tmp_path)
    monkeypatch.setattr(contracts.read_contract_schema, "__defaults__", (tmp_path,))
    with pytest.raises(
        ConfigError, match=r"models\.0\.contract = 'churn': a feature group needs one record identifier"
    ):
        parse_config({**BASE, "environment": "dev", "models": [{"name": "churn", "contract": "churn"}]})
    # ...and the same contract is fine once the feature store is off
    parse_config({**BASE, "environment": "dev", "models": [{"name": "churn", "contract": "churn"}],
                  "featureStore": {"enabled": False}})  # fmt: skip


def test_dev_stack_wires_studio_mlflow_and_feature_groups(synth_stack: Callable[[str], SynthResult]) -> None:
    result = synth_stack("dev")
    out = result.outputs
    [domain] = result.of_type("aws:sagemaker/domain:Domain")
    [app] = result.of_type("aws:sagemaker/mlflowApp:MlflowApp")
    assert out["studioDomainId"] == domain.outputs["id"]
    assert out["mlflowArn"] == app.outputs["arn"]
    assert out["mlflowKind"] == "app"
    assert out["mlflowArtifactUri"] == f"s3://{out['artifactsBucket']}/mlflow/"
    assert app.inputs["artifactStoreUri"] == out["mlflowArtifactUri"]
    assert domain.inputs["subnetIds"] == out["privateSubnetIds"]
    assert domain.inputs["vpcId"] == out["vpcId"]
    assert domain.inputs["kmsKeyId"] == out["mlKeyArn"]
    # MLflow access for the Airflow role and the training (SageMaker execution) role
    callers = {
        str(rp.inputs["role"])
        for rp in result.of_type("aws:iam/rolePolicy:RolePolicy")
        for s in statements(policy(rp))
        if "sagemaker:CallMlflowAppApi" in as_list(s["Action"])
    }
    role_names = {r.outputs["arn"]: r.outputs["name"] for r in result.of_type("aws:iam/role:Role")}
    assert role_names[out["airflowExecutionRoleArn"]] in callers
    assert role_names[out["sagemakerExecutionRoleArn"]] in callers
    assert role_names[out["studioExecutionRoleArn"]] in {
        r.outputs["name"] for r in result.of_type("aws:iam/role:Role")
    }
    # one feature group per model, in the features bucket and the lake's Glue database, offline only in dev
    groups = {
        g.inputs["featureGroupName"]: g.inputs
        for g in result.of_type("aws:sagemaker/featureGroup:FeatureGroup")
    }
    assert set(groups) == set(out["featureGroupNames"].values())
    for model, name in out["featureGroupNames"].items():
        offline = groups[name]["offlineStoreConfig"]
        assert offline["s3StorageConfig"]["s3Uri"].startswith(f"s3://{out['featuresBucket']}/feature-store/")
        assert offline["s3StorageConfig"]["kmsKeyId"] == out["dataLakeKeyArn"]
        assert offline["dataCatalogConfig"]["database"] == out["glueDatabaseName"]
        assert offline["dataCatalogConfig"]["tableName"] == out["featureOfflineTables"][model]
        assert not groups[name].get("onlineStoreConfig")
        assert groups[name]["roleArn"] == out["featureIngestionRoleArn"]
    # the EMR feature job's role may PutRecord into the groups, and nothing else of Feature Store
    writers = [
        rp
        for rp in result.of_type("aws:iam/rolePolicy:RolePolicy")
        for s in statements(policy(rp))
        if "sagemaker:PutRecord" in as_list(s["Action"])
    ]
    emr_role = role_names[out["emrJobExecutionRoleArn"]]
    assert {str(rp.inputs["role"]) for rp in writers} == {emr_role, "mlops-dev-feature-ingestion"}
    job_grant = next(rp for rp in writers if rp.inputs["role"] == emr_role)
    [statement] = statements(policy(job_grant))
    assert sorted(as_list(statement["Resource"])) == sorted(
        f"arn:aws:sagemaker:us-east-1:{out['accountId']}:feature-group/{n}"
        for n in out["featureGroupNames"].values()
    )
    # the DAG workers commit batches to the offline tables: pyarrow sends no SSE-KMS header, so the
    # features bucket's default key must be the groups' offline key
    features_sse = next(
        r.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
        for r in result.of_type(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
        )
        if r.inputs["bucket"] == out["featuresBucket"]
    )
    assert features_sse["kmsMasterKeyId"] == out["dataLakeKeyArn"]
    offline_writers = {
        str(rp.inputs["role"])
        for rp in result.of_type("aws:iam/rolePolicy:RolePolicy")
        for s in statements(policy(rp))
        if s.get("Sid") == "CommitOfflineTables"
    }
    assert offline_writers == {role_names[out["airflowExecutionRoleArn"]]}


def test_prod_stack_has_mlflow_and_online_store_but_no_studio(
    synth_stack: Callable[[str], SynthResult],
) -> None:
    result = synth_stack("prod")
    assert not result.of_type("aws:sagemaker/domain:Domain")
    assert result.outputs["studioDomainId"] is None
    assert result.of_type("aws:sagemaker/mlflowApp:MlflowApp")
    for group in result.of_type("aws:sagemaker/featureGroup:FeatureGroup"):
        online = group.inputs["onlineStoreConfig"]
        assert online["enableOnlineStore"] is True
        assert online["securityConfig"]["kmsKeyId"] == result.outputs["mlKeyArn"]


def test_shipped_stacks_pass_the_data_science_rules(each_stack: SynthResult) -> None:
    env = each_stack.outputs["environment"]
    assert evaluate(resources_from_records(each_stack.resources), env, DS_RULES) == []


def test_tracking_server_and_everything_off_from_config() -> None:
    result, platform = _build(
        {
            "mlops-platform:experimentation": json.dumps(
                {"studio": {"enabled": False}, "mlflow": {"kind": "trackingServer"}}
            )
        }
    )
    assert result.of_type("aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer")
    assert result.outputs["mlflowKind"] == "tracking_server"
    assert ":mlflow-tracking-server/" in result.outputs["mlflowArn"]
    result, platform = _build(
        {
            "mlops-platform:experimentation": json.dumps({"enabled": False}),
            "mlops-platform:featureStore": json.dumps({"enabled": False}),
        }
    )
    assert platform.data_science.experimentation is None
    assert platform.data_science.feature_store is None
    assert not result.of_type("aws:sagemaker/mlflowApp:MlflowApp")
    assert not result.of_type("aws:sagemaker/featureGroup:FeatureGroup")
    assert result.outputs["mlflowArn"] is None
    assert result.outputs["featureGroupNames"] == {}
    assert result.outputs["featureIngestionRoleArn"] is None
