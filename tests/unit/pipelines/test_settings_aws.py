"""Settings from stack outputs and env vars; the client factory's retries, timeouts and endpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.aws import AwsClients, put_bytes
from pipelines.settings import PipelineSettings, SettingMissingError, load_settings
from tests.unit.pipelines.conftest import Platform
from tests.unit.pipelines.helpers import inject_errors as _inject

OUTPUTS = {
    "environment": "staging",
    "region": "eu-west-1",
    "rawBucket": "raw-b",
    "curatedBucket": "cur-b",
    "featuresBucket": "feat-b",
    "artifactsBucket": "art-b",
    "captureBucket": "cap-b",
    "dataLakeKeyArn": "arn:aws:kms:eu-west-1:1:key/lake",
    "mlKeyArn": "arn:aws:kms:eu-west-1:1:key/ml",
    "privateSubnetIds": ["subnet-a", "subnet-b"],
    "trainingSecurityGroupId": "sg-training",
    "endpointSecurityGroupId": "sg-endpoints",
    "vpcId": "vpc-1",
    "modelPackageGroupName": "mlops-staging-models",
    "sagemakerExecutionRoleArn": "arn:aws:iam::1:role/sm",
    "emrVirtualClusterId": "vc-123",
    "emrJobExecutionRoleArn": "arn:aws:iam::1:role/emr-job",
    "emrLogGroupName": "/mlops/staging/emr/features",
    "emrLogsS3Uri": "s3://art-b/logs/emr-on-eks/vc-123/",
}


def test_settings_from_stack_outputs_file(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    settings = load_settings(path)
    assert settings.environment == "staging"
    assert settings.region == "eu-west-1"
    assert settings.raw_bucket == "raw-b"
    assert settings.ml_key_arn == "arn:aws:kms:eu-west-1:1:key/ml"
    assert settings.private_subnet_ids == ["subnet-a", "subnet-b"]
    # training jobs get their own group (egress to S3 and the endpoints), not the endpoints' (issue 12 item 5)
    assert settings.training_security_group_id == "sg-training"
    assert settings.model_package_group_name == "mlops-staging-models"
    assert settings.sagemaker_role_arn == "arn:aws:iam::1:role/sm"
    assert settings.emr_virtual_cluster_id == "vc-123"
    assert settings.emr_job_role_arn == "arn:aws:iam::1:role/emr-job"
    assert settings.emr_log_group_name == "/mlops/staging/emr/features"
    assert settings.emr_logs_s3_uri == "s3://art-b/logs/emr-on-eks/vc-123/"
    assert settings.approve_on_pass is False


def test_env_vars_win_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    monkeypatch.setenv("MLOPS_OUTPUTS_FILE", str(path))
    monkeypatch.setenv("MLOPS_RAW_BUCKET", "from-env")
    monkeypatch.setenv("MLOPS_ENDPOINT_URLS", '{"s3": "http://127.0.0.1:5000"}')
    settings = load_settings()
    assert settings.raw_bucket == "from-env"
    assert settings.curated_bucket == "cur-b"
    assert settings.endpoint_for("s3") == "http://127.0.0.1:5000"
    assert settings.endpoint_for("sagemaker") is None


def test_synth_outputs_keys_all_map_to_settings() -> None:
    from pipelines.settings import outputs_to_fields
    from stacks.platform import OUTPUT_KEYS

    fields = outputs_to_fields(dict.fromkeys(OUTPUT_KEYS, "x"))
    for key in (
        "rawBucket",
        "curatedBucket",
        "featuresBucket",
        "artifactsBucket",
        "captureBucket",
        "dataLakeKeyArn",
        "mlKeyArn",
        "region",
    ):
        assert key in OUTPUT_KEYS
    assert {
        "raw_bucket",
        "curated_bucket",
        "features_bucket",
        "artifacts_bucket",
        "capture_bucket",
        "data_lake_key_arn",
        "ml_key_arn",
        "region",
    } <= set(fields)


def test_missing_setting_names_the_variable() -> None:
    with pytest.raises(SettingMissingError, match=r"MLOPS_EMR_VIRTUAL_CLUSTER_ID.*emrVirtualClusterId"):
        PipelineSettings().require("emr_virtual_cluster_id")
    with pytest.raises(SettingMissingError, match="not found"):
        load_settings("/nonexistent/outputs.json")


def test_clients_use_standard_retries_timeouts_and_endpoint() -> None:
    settings = PipelineSettings(endpoint_url="http://127.0.0.1:5999", read_timeout=12, max_attempts=4)
    s3 = AwsClients(settings).s3
    assert s3.meta.endpoint_url == "http://127.0.0.1:5999"
    assert s3.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert s3.meta.config.read_timeout == 12
    assert AwsClients(settings).client("s3") is not s3
    clients = AwsClients(settings)
    assert clients.s3 is clients.client("s3")


def test_s3_throttling_is_retried(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)
    s3 = platform.clients.s3
    calls = _inject(s3, "PutObject", 503, "SlowDown", times=2)
    put_bytes(s3, platform.settings.raw_bucket, "k", b"x", platform.settings.data_lake_key_arn)
    assert len(calls) == 3
    assert platform.s3.get_object(Bucket=platform.settings.raw_bucket, Key="k")["Body"].read() == b"x"


def test_sagemaker_throttling_is_retried(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)
    sm = platform.clients.sagemaker
    calls = _inject(sm, "ListModelPackages", 400, "ThrottlingException", times=3)
    assert sm.list_model_packages(ModelPackageGroupName="mlops-test-models")["ModelPackageSummaryList"] == []
    assert len(calls) == 4


def test_throttling_gives_up_after_max_attempts(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    monkeypatch.setattr("time.sleep", lambda _s: None)
    sm = platform.clients.sagemaker
    calls = _inject(sm, "ListModelPackages", 400, "ThrottlingException", times=99)
    with pytest.raises(ClientError, match="ThrottlingException"):
        sm.list_model_packages(ModelPackageGroupName="mlops-test-models")
    assert len(calls) == platform.settings.max_attempts


def test_emr_release_label_defaults_to_the_platform_version() -> None:
    from platform_contract.versions import EMR_ON_EKS_RELEASE_LABEL

    assert PipelineSettings().emr_release_label == EMR_ON_EKS_RELEASE_LABEL
    assert EMR_ON_EKS_RELEASE_LABEL.startswith("emr-7.")
