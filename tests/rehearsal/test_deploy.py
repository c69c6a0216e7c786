"""Deploying the dev stack into the emulator: real resources, real IDs, updates through real calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.settings import load_settings
from rehearsal.deploy import DeployResult, deploy
from rehearsal.emulator import Emulator
from rehearsal.featurestore import FeatureStoreRuntime
from stacks.config.contracts import read_contract_schema
from stacks.config.data_science import feature_group_plan

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, DeployResult, Path]]:
    out = tmp_path_factory.mktemp("deploy")
    with Emulator(extensions=[FeatureStoreRuntime()]) as emu:
        yield emu, deploy(emu, out_dir=out), out


def test_dev_resources_exist_in_the_emulator_under_the_output_names(
    dev: tuple[Emulator, DeployResult, Path],
) -> None:
    emu, result, out = dev
    outputs = json.loads((out / "outputs.json").read_text())
    assert outputs["endpointUrl"] == emu.endpoint_url

    buckets = {b["Name"] for b in emu.client("s3").list_buckets()["Buckets"]}
    for key in (
        "rawBucket",
        "curatedBucket",
        "featuresBucket",
        "artifactsBucket",
        "captureBucket",
        "accessLogsBucket",
    ):
        assert outputs[key] in buckets
    s3 = emu.client("s3")
    rules = s3.get_bucket_encryption(Bucket=outputs["rawBucket"])["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == outputs["dataLakeKeyArn"]
    assert s3.get_bucket_versioning(Bucket=outputs["rawBucket"])["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=outputs["rawBucket"])["PublicAccessBlockConfiguration"][
        "BlockPublicPolicy"
    ]
    assert "DenyInsecureTransport" in s3.get_bucket_policy(Bucket=outputs["rawBucket"])["Policy"]
    logging = s3.get_bucket_logging(Bucket=outputs["rawBucket"])["LoggingEnabled"]
    assert logging["TargetBucket"] == outputs["accessLogsBucket"]

    key = emu.client("kms").describe_key(KeyId=outputs["dataLakeKeyArn"])["KeyMetadata"]
    assert key["Arn"] == outputs["dataLakeKeyArn"]
    assert key["KeyState"] == "Enabled"
    assert emu.client("kms").get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]

    role_name = outputs["sagemakerExecutionRoleArn"].rsplit("/", 1)[1]
    assert (
        emu.client("iam").get_role(RoleName=role_name)["Role"]["Arn"] == outputs["sagemakerExecutionRoleArn"]
    )
    group = emu.client("sagemaker").describe_model_package_group(
        ModelPackageGroupName=outputs["modelPackageGroupName"]
    )
    assert group["ModelPackageGroupArn"].endswith(f"model-package-group/{outputs['modelPackageGroupName']}")
    cluster = emu.client("emr-containers").describe_virtual_cluster(id=outputs["emrVirtualClusterId"])[
        "virtualCluster"
    ]
    assert cluster["containerProvider"]["info"]["eksInfo"]["namespace"] == "spark-features"
    assert (
        emu.client("eks").describe_cluster(name=outputs["clusterName"])["cluster"]["endpoint"]
        == outputs["clusterEndpoint"]
    )
    assert emu.client("glue").get_table(
        DatabaseName=outputs["glueDatabaseName"], Name=outputs["glueCuratedTable"]
    )
    assert emu.client("athena").get_work_group(WorkGroup=outputs["athenaWorkgroup"])
    assert emu.client("sns").get_topic_attributes(TopicArn=outputs["alertTopicArn"])["Attributes"]["Policy"]
    subnets = emu.client("ec2").describe_subnets(SubnetIds=outputs["privateSubnetIds"])["Subnets"]
    assert {s["VpcId"] for s in subnets} == {outputs["vpcId"]}
    alarms = emu.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert {a["AlarmName"] for a in alarms} >= {"mlops-dev-churn-training-ingest-failed"}
    assert emu.client("codepipeline").get_pipeline(name=outputs["deliveryPipelineName"])
    # The synth recording still works: the built platform's outputs came back resolved.
    assert result.synth.outputs["rawBucket"] == outputs["rawBucket"]


def test_outputs_file_is_the_pipeline_settings(dev: tuple[Emulator, DeployResult, Path]) -> None:
    emu, _, out = dev
    settings = load_settings(out / "outputs.json")
    assert settings.endpoint_for("s3") == emu.endpoint_url
    assert settings.raw_bucket
    assert settings.raw_bucket.startswith("mlops-dev-raw-")
    assert settings.emr_virtual_cluster_id
    assert settings.private_subnet_ids
    assert settings.private_subnet_ids[0].startswith("subnet-")
    emu.client("emr-containers").describe_virtual_cluster(id=settings.emr_virtual_cluster_id)


def test_feature_groups_are_created_from_the_contract(dev: tuple[Emulator, DeployResult, Path]) -> None:
    """CreateFeatureGroup with the component's inputs: definitions, offline store, Glue table, key, role."""
    emu, result, out = dev
    outputs = json.loads((out / "outputs.json").read_text())
    assert "aws:sagemaker/featureGroup:FeatureGroup" not in result.unsupported_types
    (model, name), *_ = outputs["featureGroupNames"].items()
    group = emu.client("sagemaker").describe_feature_group(FeatureGroupName=name)
    plan = feature_group_plan(read_contract_schema(outputs["models"][model]["contract"]))
    assert group["RecordIdentifierFeatureName"] == plan.record_identifier
    assert group["EventTimeFeatureName"] == plan.event_time_feature
    assert [(d["FeatureName"], d["FeatureType"]) for d in group["FeatureDefinitions"]] == list(plan.features)
    offline = group["OfflineStoreConfig"]
    assert offline["S3StorageConfig"]["S3Uri"].startswith(f"s3://{outputs['featuresBucket']}/feature-store/")
    assert offline["S3StorageConfig"]["KmsKeyId"] == outputs["dataLakeKeyArn"]
    assert "/sagemaker/" in offline["S3StorageConfig"]["ResolvedOutputS3Uri"]
    assert offline["TableFormat"] == "Iceberg"
    assert offline["DataCatalogConfig"] == {
        "Catalog": "AwsDataCatalog",
        "Database": outputs["glueDatabaseName"],
        "TableName": outputs["featureOfflineTables"][model],
    }
    assert group["RoleArn"] == outputs["featureIngestionRoleArn"]
    assert group["Description"].startswith(f"Features of model {model}")
    assert "OnlineStoreConfig" not in group  # off in dev


def test_unsupported_types_are_recorded_and_listed(dev: tuple[Emulator, DeployResult, Path]) -> None:
    _, result, out = dev
    assert "aws:mwaa/environment:Environment" in result.unsupported_types
    assert "aws:eks/addon:Addon" in result.unsupported_types
    assert ("aws:mwaa/environment:Environment", "mlops-dev-environment") in result.recorded
    resources = json.loads((out / "resources.json").read_text())["resources"]
    mwaa = next(r for r in resources if r["type"] == "aws:mwaa/environment:Environment")
    assert mwaa["in_emulator"] is False
    # Recorded only: nothing half-created, no call made for it.
    assert not [c for c in result.calls if "mwaa" in c.resource]


def test_redeploy_without_changes_makes_no_calls(dev: tuple[Emulator, DeployResult, Path]) -> None:
    emu, result, _ = dev
    again = deploy(emu, previous=result.state)
    assert again.changed() == []
    assert again.calls == []
    assert again.outputs["rawBucket"] == result.outputs["rawBucket"]


def test_a_changed_input_is_applied_through_the_update_calls(
    dev: tuple[Emulator, DeployResult, Path],
) -> None:
    """Runs last: longer log retention updates the log groups in place (no create, no delete)."""
    emu, result, _ = dev
    changed = deploy(
        emu, previous=result.state, config_overrides={"mlops-platform:retention": {"logDays": 30}}
    )
    updates = [c for c in changed.changed() if c.action == "update"]
    assert updates
    assert {c.type for c in updates} == {"aws:cloudwatch/logGroup:LogGroup"}
    assert all(c.calls == ("logs:put_retention_policy",) for c in updates)
    assert not [c for c in changed.changes if c.action in ("create", "replace", "delete")]
    name = result.outputs["emrLogGroupName"]
    groups = emu.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert groups[0]["retentionInDays"] == 30
