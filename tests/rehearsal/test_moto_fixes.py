"""moto fixes: requests AWS accepts are accepted, and what AWS denies is still denied."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from rehearsal.emulator import Emulator
from rehearsal.moto_fixes import _condition_holds


def _deny(sid: str, bucket: str, condition: dict[str, object], action: str = "s3:*") -> dict[str, object]:
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": condition,
    }


def test_bucket_policy_conditions_are_evaluated() -> None:
    with Emulator() as emu:
        s3 = emu.client("s3")
        s3.create_bucket(Bucket="lake-raw")
        statements = [
            _deny("DenyInsecureTransport", "lake-raw", {"Bool": {"aws:SecureTransport": "false"}}),
            _deny("DenyOutdatedTLS", "lake-raw", {"NumericLessThan": {"s3:TlsVersion": "1.2"}}),
        ]
        s3.put_bucket_policy(
            Bucket="lake-raw", Policy=json.dumps({"Version": "2012-10-17", "Statement": statements})
        )
        s3.put_object(Bucket="lake-raw", Key="k", Body=b"x")  # TLS-guarded denies do not apply
        assert s3.get_object(Bucket="lake-raw", Key="k")["Body"].read() == b"x"

        statements.append(
            _deny("DenyReads", "lake-raw", {"Bool": {"aws:SecureTransport": "true"}}, "s3:GetObject")
        )
        s3.put_bucket_policy(
            Bucket="lake-raw", Policy=json.dumps({"Version": "2012-10-17", "Statement": statements})
        )
        with pytest.raises(ClientError, match="403"):
            s3.get_object(Bucket="lake-raw", Key="k")


def test_condition_operators() -> None:
    assert _condition_holds("Bool", "false", "true") is False
    assert _condition_holds("NumericLessThan", "1.2", "1.3") is False
    assert _condition_holds("NumericLessThan", "1.2", "1.0") is True
    assert _condition_holds("StringNotEquals", ["a", "b"], "c") is True
    assert _condition_holds("ArnLike", "arn:aws:s3:::raw-*", "arn:aws:s3:::raw-1") is True
    assert _condition_holds("StringEquals", "a", None) is False  # a missing key fails the condition
    assert _condition_holds("StringEqualsIfExists", "a", None) is True
    assert _condition_holds("Null", "true", None) is True
    assert _condition_holds("DateLessThan", "2020-01-01", "2019-01-01") is None  # not known here


def test_codebuild_codepipeline_source_needs_no_location_and_logging_accepts_star_principals() -> None:
    with Emulator() as emu:
        emu.client("iam").create_role(RoleName="build", AssumeRolePolicyDocument="{}")
        project = emu.client("codebuild").create_project(
            name="test",
            source={"type": "CODEPIPELINE", "buildspec": "version: 0.2"},
            artifacts={"type": "CODEPIPELINE"},
            environment={
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/standard:7.0",
                "computeType": "BUILD_GENERAL1_SMALL",
            },
            serviceRole="arn:aws:iam::123456789012:role/build",
        )["project"]
        assert project["source"]["type"] == "CODEPIPELINE"
        with pytest.raises(ClientError, match="location is required"):  # S3 still needs one, as in AWS
            emu.client("codebuild").create_project(
                name="s3-source",
                source={"type": "S3"},
                artifacts={"type": "NO_ARTIFACTS"},
                environment={
                    "type": "LINUX_CONTAINER",
                    "image": "aws/codebuild/standard:7.0",
                    "computeType": "BUILD_GENERAL1_SMALL",
                },
                serviceRole="arn:aws:iam::123456789012:role/build",
            )

        s3 = emu.client("s3")
        s3.create_bucket(Bucket="logs-target")
        s3.create_bucket(Bucket="logged")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                _deny("DenyInsecureTransport", "logs-target", {"Bool": {"aws:SecureTransport": "false"}}),
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": "arn:aws:s3:::logs-target/*",
                },
            ],
        }
        s3.put_bucket_policy(Bucket="logs-target", Policy=json.dumps(policy))
        s3.put_bucket_logging(
            Bucket="logged",
            BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": "logs-target", "TargetPrefix": "x/"}},
        )
        assert s3.get_bucket_logging(Bucket="logged")["LoggingEnabled"]["TargetBucket"] == "logs-target"


def test_update_model_package_changes_only_what_the_request_gives() -> None:
    with Emulator() as emu:
        sm = emu.client("sagemaker")
        sm.create_model_package_group(ModelPackageGroupName="g")
        arn = sm.create_model_package(
            ModelPackageGroupName="g",
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties={"mlflow_run_id": "abc", "contract": "churn"},
            InferenceSpecification={
                "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/i:1"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"deployed": "true"})
        package = sm.describe_model_package(ModelPackageName=arn)
        assert package["ModelApprovalStatus"] == "Approved"
        assert package["CustomerMetadataProperties"] == {
            "mlflow_run_id": "abc",
            "contract": "churn",
            "deployed": "true",
        }
        sm.update_model_package(ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["contract"])
        package = sm.describe_model_package(ModelPackageName=arn)
        assert package["CustomerMetadataProperties"] == {"mlflow_run_id": "abc", "deployed": "true"}
