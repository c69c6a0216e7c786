"""Train -> evaluate -> register -> approve against moto: S3 layout, encryption, package contents, idempotency."""

from __future__ import annotations

import io
import json
from typing import Any
from unittest import mock

import pandas as pd
import pytest

from pipelines.contract import DatasetContract
from pipelines.evaluate import evaluate_model
from pipelines.promote import PromotionError, approve_package, latest_approved
from pipelines.register import RegistrationError, register_model
from pipelines.train import run_training_locally
from tests.unit.pipelines.conftest import Platform, all_keys
from tests.unit.pipelines.helpers import contract_path, prepare_features


def _train(
    platform: Platform, contract: DatasetContract, run_id: str = "run-1", **hps: Any
) -> tuple[str, str]:
    features = prepare_features(platform, contract)
    uri = run_training_locally(platform.clients, contract_path(contract), run_id, features.uri, hps)
    return uri, features.uri


def _json(platform: Platform, bucket: str, key: str) -> Any:
    return json.loads(platform.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_full_lifecycle_layout_and_encryption(platform: Platform, churn_contract: DatasetContract) -> None:
    model_uri, features_uri = _train(platform, churn_contract)
    artifacts = platform.settings.artifacts_bucket
    assert model_uri == f"s3://{artifacts}/models/churn/run-1/output/model.tar.gz"
    features = all_keys(platform.s3, platform.settings.features_bucket)
    version = [k for k in features if k.startswith("features/churn/versions/")]
    splits = [k for k in features if k.startswith("features/churn/splits/")]
    assert len(splits) == 6  # train, validation, test: each a version with its manifest
    assert [k for k in features if k not in version + splits] == [
        "features/churn/ingest_date=2026-11-24/_lineage.json",
        "features/churn/ingest_date=2026-11-24/part-00000.parquet",
    ]
    # the immutable, content-addressed copy (pipelines.datasets) with the same manifest
    assert [k.rsplit("/", 1)[1] for k in version] == ["_lineage.json", "part-00000.parquet"]

    result = evaluate_model(platform.clients, model_uri, features_uri)
    assert result.passed, result.report["gate"]
    prefix = "models/churn/run-1/evaluation/"
    assert sorted(all_keys(platform.s3, artifacts)) == sorted(
        [
            "models/churn/run-1/output/model.tar.gz",
            prefix + "baseline.json",
            prefix + "baseline_sample.parquet",
            prefix + "evaluation.json",
        ]
    )
    for key in all_keys(platform.s3, artifacts):
        head = platform.s3.head_object(Bucket=artifacts, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == platform.settings.ml_key_arn
    for bucket in ("raw", "curated", "features"):
        name = getattr(platform.settings, f"{bucket}_bucket")
        for key in all_keys(platform.s3, name):
            assert (
                platform.s3.head_object(Bucket=name, Key=key)["SSEKMSKeyId"]
                == platform.settings.data_lake_key_arn
            )

    evaluation = _json(platform, artifacts, prefix + "evaluation.json")
    assert evaluation["schema_version"] == 1
    assert evaluation["task"] == "binary_classification"
    assert set(evaluation["metrics"]) == {"auc", "f1", "precision", "recall", "log_loss", "calibration_error"}
    assert evaluation["gate"]["passed"] is True
    assert evaluation["gate"]["champion"] is None
    assert {b["kind"] for b in evaluation["behavioural"]} == {"invariance", "directional"}
    # the serving fast path is verified against scikit-learn on the held-out rows
    runtime = evaluation["serving_runtime"]
    # the logistic regression is folded through its as_text/imputer/one-hot chain (fused path)
    assert runtime["runtime"] == "fast-path:logistic-binary-fused", runtime
    assert runtime["rows"] == evaluation["test_rows"]
    assert runtime["max_abs_difference"] <= runtime["tolerance"]
    baseline = _json(platform, artifacts, prefix + "baseline.json")
    assert set(baseline["features"]) == set(churn_contract.feature_names)
    tenure = baseline["features"]["tenure_months"]
    assert tenure["kind"] == "numeric"
    assert len(tenure["histogram"]["counts"]) == 10
    assert "0.5" in tenure["quantiles"]
    assert baseline["features"]["region"]["kind"] == "categorical"
    assert sum(baseline["features"]["region"]["frequencies"].values()) == baseline["row_count"]
    sample = pd.read_parquet(
        io.BytesIO(
            platform.s3.get_object(Bucket=artifacts, Key=prefix + "baseline_sample.parquet")["Body"].read()
        )
    )
    assert list(sample.columns) == [*churn_contract.feature_names, "__prediction__"]
    assert len(sample) == baseline["row_count"]

    registration = register_model(platform.clients, model_uri)
    assert registration.created
    assert registration.approval_status == "Approved"
    package = platform.clients.sagemaker.describe_model_package(
        ModelPackageName=registration.model_package_arn
    )
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == model_uri
    assert "sagemaker-scikit-learn" in container["Image"]
    metrics = package["ModelMetrics"]
    assert metrics["ModelQuality"]["Statistics"]["S3Uri"] == f"s3://{artifacts}/{prefix}evaluation.json"
    assert metrics["ModelDataQuality"]["Statistics"]["S3Uri"] == f"s3://{artifacts}/{prefix}baseline.json"
    custom = package["CustomerMetadataProperties"]
    assert custom["run_id"] == "run-1"
    assert custom["code_version"] == "test-sha"
    assert custom["serving_runtime"] == runtime["runtime"]
    assert len(custom["training_data_sha256"]) == 64

    again = register_model(platform.clients, model_uri)
    assert not again.created
    assert again.model_package_arn == registration.model_package_arn
    listed = platform.clients.sagemaker.list_model_packages(ModelPackageGroupName="mlops-test-models")
    assert len(listed["ModelPackageSummaryList"]) == 1


def test_staging_registers_pending_and_approval_is_recorded(
    platform: Platform, churn_contract: DatasetContract
) -> None:
    platform.settings.environment = "staging"
    model_uri, features_uri = _train(platform, churn_contract)
    evaluate_model(platform.clients, model_uri, features_uri)
    registration = register_model(platform.clients, model_uri)
    assert registration.approval_status == "PendingManualApproval"
    assert latest_approved(platform.clients, platform.settings.model_target("churn")) is None
    with pytest.raises(PromotionError, match="approver and a reason"):
        approve_package(platform.clients, registration.model_package_arn, "", "")
    approval = approve_package(platform.clients, registration.model_package_arn, "alice", "AUC up 2 points")
    package = platform.clients.sagemaker.describe_model_package(ModelPackageName=approval.model_package_arn)
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalDescription"] == "approved by alice: AUC up 2 points"
    assert package["CustomerMetadataProperties"]["approved_by"] == "alice"
    latest = latest_approved(platform.clients, platform.settings.model_target("churn"))
    assert latest is not None
    assert latest["ModelPackageArn"] == registration.model_package_arn


def test_challenger_is_compared_with_the_champion(
    platform: Platform, churn_contract: DatasetContract
) -> None:
    model_uri, features_uri = _train(platform, churn_contract, "run-1")
    evaluate_model(platform.clients, model_uri, features_uri)
    champion = register_model(platform.clients, model_uri)
    # a much weaker challenger: heavy regularisation
    weak_uri = run_training_locally(
        platform.clients, contract_path(churn_contract), "run-2", features_uri, {"C": 0.0001}
    )
    result = evaluate_model(platform.clients, weak_uri, features_uri)
    gate = result.report["gate"]
    assert gate["champion"]["model_package_arn"] == champion.model_package_arn
    assert gate["champion"]["source"].startswith("rescored")
    assert not result.passed
    assert any("worse than the champion" in r for r in gate["reasons"]), gate["reasons"]
    with pytest.raises(RegistrationError, match="gate failed"):
        register_model(platform.clients, weak_uri)
    assert (
        len(
            platform.clients.sagemaker.list_model_packages(ModelPackageGroupName="mlops-test-models")[
                "ModelPackageSummaryList"
            ]
        )
        == 1
    )


def test_no_package_when_the_model_upload_failed(platform: Platform, churn_contract: DatasetContract) -> None:
    features = prepare_features(platform, churn_contract)
    real_put = platform.clients.s3.put_object

    def failing_put(**kwargs: Any) -> Any:
        if kwargs["Key"].endswith("model.tar.gz"):
            raise ConnectionError("network dropped during upload")
        return real_put(**kwargs)

    with (
        mock.patch.object(platform.clients.s3, "put_object", side_effect=failing_put),
        pytest.raises(ConnectionError),
    ):
        run_training_locally(platform.clients, contract_path(churn_contract), "run-9", features.uri)
    model_uri = f"s3://{platform.settings.artifacts_bucket}/models/churn/run-9/output/model.tar.gz"
    with pytest.raises(RegistrationError, match="model artifact not found"):
        register_model(platform.clients, model_uri)
    assert all_keys(platform.s3, platform.settings.artifacts_bucket) == []
    assert (
        platform.clients.sagemaker.list_model_packages(ModelPackageGroupName="mlops-test-models")[
            "ModelPackageSummaryList"
        ]
        == []
    )


def test_failed_evaluation_upload_leaves_no_partial_reports(
    platform: Platform, churn_contract: DatasetContract
) -> None:
    model_uri, features_uri = _train(platform, churn_contract)
    real_put = platform.clients.s3.put_object

    def failing_put(**kwargs: Any) -> Any:
        if kwargs["Key"].endswith("baseline_sample.parquet"):
            raise ConnectionError("dropped")
        return real_put(**kwargs)

    with (
        mock.patch.object(platform.clients.s3, "put_object", side_effect=failing_put),
        pytest.raises(ConnectionError),
    ):
        evaluate_model(platform.clients, model_uri, features_uri)
    assert all_keys(platform.s3, platform.settings.artifacts_bucket) == [
        "models/churn/run-1/output/model.tar.gz"
    ]
    with pytest.raises(RegistrationError, match="run the evaluate step first"):
        register_model(platform.clients, model_uri)


def test_failed_feature_job_publishes_nothing(platform: Platform, churn_contract: DatasetContract) -> None:
    from pipelines.features import local

    prepare_features(platform, churn_contract)  # a first, good publication
    before = all_keys(platform.s3, platform.settings.features_bucket)
    with (
        mock.patch.object(local, "build_features_dir", side_effect=RuntimeError("executor lost")),
        pytest.raises(RuntimeError, match="executor lost"),
    ):
        local.run_features(platform.clients, churn_contract, "2026-11-24", engine="pandas")
    assert all_keys(platform.s3, platform.settings.features_bucket) == before


def test_partial_upload_is_rolled_back(platform: Platform) -> None:
    from pipelines.aws import put_all_or_nothing

    bucket = platform.settings.features_bucket
    real_put = platform.clients.s3.put_object

    def failing_put(**kwargs: Any) -> Any:
        if kwargs["Key"].endswith("part-2.parquet"):
            raise ConnectionError("dropped")
        return real_put(**kwargs)

    items = [(f"features/x/part-{i}.parquet", b"data") for i in range(3)]
    with (
        mock.patch.object(platform.clients.s3, "put_object", side_effect=failing_put),
        pytest.raises(ConnectionError),
    ):
        put_all_or_nothing(platform.clients.s3, bucket, items, platform.settings.data_lake_key_arn)
    assert all_keys(platform.s3, bucket) == []
