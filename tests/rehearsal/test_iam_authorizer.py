"""The authorizer in front of the emulator: trust policies, resource policies, denials, unused grants."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from rehearsal.emulator import Emulator
from rehearsal.iam import Authorizer, TrustDeniedError
from rehearsal.sagemaker_extra import SageMakerRegistryExtras

ACCOUNT = "123456789012"
SAGEMAKER = "sagemaker.amazonaws.com"


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Emulator, Authorizer]]:
    authorizer = Authorizer()
    with Emulator(authorizer=authorizer, extensions=[SageMakerRegistryExtras()]) as emu:
        yield emu, authorizer


@pytest.fixture
def emu(stack: tuple[Emulator, Authorizer]) -> Iterator[Emulator]:
    emulator, authorizer = stack
    authorizer.clear()
    authorizer.secure_transport = True
    yield emulator
    authorizer.secure_transport = True


@pytest.fixture
def authorizer(stack: tuple[Emulator, Authorizer]) -> Authorizer:
    return stack[1]


def trust(service: str, condition: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def make_role(
    emu: Emulator, name: str, statements: list[dict[str, Any]], trust_policy: str | None = None
) -> str:
    iam = emu.client("iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy or trust(SAGEMAKER))["Role"][
        "Arn"
    ]
    if not statements:
        return arn
    iam.put_role_policy(
        RoleName=name,
        PolicyName="main",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    return arn


def as_role(emu: Emulator, env: dict[str, str], service: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=emu.endpoint_url,
        region_name=emu.region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
    )


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


# --- trust policies -------------------------------------------------------------------------------


def test_a_role_whose_trust_does_not_name_the_service_cannot_be_assumed(
    emu: Emulator, authorizer: Authorizer
) -> None:
    arn = make_role(emu, "mlops-dev-airflow-execution", [], trust("airflow-env.amazonaws.com"))
    with pytest.raises(TrustDeniedError, match="mlops-dev-airflow-execution") as exc:
        authorizer.issue_credentials(arn, service=SAGEMAKER)
    assert exc.value.denials[0].action == "sts:AssumeRole"
    assert "trust policy of role mlops-dev-airflow-execution" in exc.value.denials[0].decisive
    assert authorizer.issue_credentials(arn, service="airflow-env.amazonaws.com")["AWS_SESSION_TOKEN"]


def test_a_trust_condition_the_caller_does_not_satisfy_refuses_the_session(
    emu: Emulator, authorizer: Authorizer
) -> None:
    condition = {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/*"},
    }
    arn = make_role(emu, "trust-cond-sagemaker", [], trust(SAGEMAKER, condition))
    job = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/churn-1"
    assert authorizer.issue_credentials(arn, service=SAGEMAKER, source_arn=job)["AWS_ACCESS_KEY_ID"]
    with pytest.raises(TrustDeniedError):
        authorizer.issue_credentials(arn, service=SAGEMAKER, source_arn=job, source_account="999999999999")
    with pytest.raises(TrustDeniedError):
        authorizer.issue_credentials(
            arn, service=SAGEMAKER, source_arn=job.replace("training-job", "endpoint")
        )
    with pytest.raises(TrustDeniedError):
        authorizer.issue_credentials(arn, service=SAGEMAKER)  # no SourceArn at all


def _jwt(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def test_irsa_web_identity_is_checked_against_the_oidc_trust(emu: Emulator, authorizer: Authorizer) -> None:
    issuer = "oidc.eks.us-east-1.amazonaws.com/id/ABC123"
    provider = emu.client("iam").create_open_id_connect_provider(
        Url=f"https://{issuer}", ClientIDList=["sts.amazonaws.com"], ThumbprintList=["a" * 40]
    )["OpenIDConnectProviderArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringLike": {f"{issuer}:sub": "system:serviceaccount:spark:emr-containers-sa-*"},
                    "StringEquals": {f"{issuer}:aud": "sts.amazonaws.com"},
                },
            }
        ],
    }
    arn = make_role(emu, "irsa-emr-job", [], json.dumps(policy))
    good = _jwt(
        {
            "iss": f"https://{issuer}",
            "sub": "system:serviceaccount:spark:emr-containers-sa-x",
            "aud": "sts.amazonaws.com",
        }
    )
    bad = _jwt(
        {"iss": f"https://{issuer}", "sub": "system:serviceaccount:default:other", "aud": "sts.amazonaws.com"}
    )
    assert authorizer.issue_credentials(arn, web_identity_token=good)["AWS_SESSION_TOKEN"]
    with pytest.raises(TrustDeniedError):
        authorizer.issue_credentials(arn, web_identity_token=bad)
    # the SDK's own (unsigned) AssumeRoleWithWebIdentity call is judged the same way
    sts = boto3.client("sts", endpoint_url=emu.endpoint_url, region_name=emu.region)
    assert sts.assume_role_with_web_identity(RoleArn=arn, RoleSessionName="spark", WebIdentityToken=good)[
        "Credentials"
    ]
    with pytest.raises(ClientError) as exc:
        sts.assume_role_with_web_identity(RoleArn=arn, RoleSessionName="spark", WebIdentityToken=bad)
    assert error_code(exc) == "AccessDenied"


# --- resource policies ----------------------------------------------------------------------------


def _data_bucket(emu: Emulator, name: str, key_arn: str) -> None:
    s3 = emu.client("s3")
    s3.create_bucket(Bucket=name)
    # the DataLake's TLS-only and right-key statements (components/datalake.py)
    s3.put_bucket_policy(
        Bucket=name,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                    {
                        "Sid": "DenyOtherKmsKeys",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:PutObject",
                        "Resource": f"arn:aws:s3:::{name}/*",
                        "Condition": {
                            "StringNotEqualsIfExists": {
                                "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn
                            }
                        },
                    },
                ],
            }
        ),
    )


def test_put_without_tls_or_with_another_key_is_denied_by_the_bucket_policy(
    emu: Emulator, authorizer: Authorizer
) -> None:
    kms = emu.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    other_key = kms.create_key()["KeyMetadata"]["Arn"]
    _data_bucket(emu, "mlops-dev-curated", key)
    role = make_role(
        emu,
        "writer-sagemaker",
        [
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::mlops-dev-curated/*"},
            {"Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": [key, other_key]},
        ],
    )
    s3 = as_role(emu, authorizer.issue_credentials(role, service=SAGEMAKER), "s3")
    s3.put_object(
        Bucket="mlops-dev-curated", Key="a", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key
    )
    with pytest.raises(ClientError) as exc:
        s3.put_object(
            Bucket="mlops-dev-curated",
            Key="b",
            Body=b"x",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=other_key,
        )
    assert error_code(exc) == "AccessDenied"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "DenyOtherKmsKeys" in authorizer.denials[-1].decisive
    assert "components/datalake.py" in authorizer.denials[-1].hint
    authorizer.secure_transport = False
    with pytest.raises(ClientError) as exc:
        s3.put_object(
            Bucket="mlops-dev-curated", Key="c", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key
        )
    assert error_code(exc) == "AccessDenied"
    assert "DenyInsecureTransport" in authorizer.denials[-1].decisive
    assert (
        emu.client("s3").list_objects_v2(Bucket="mlops-dev-curated")["KeyCount"] == 1
    )  # nothing else written


def test_a_key_policy_that_does_not_admit_the_role_blocks_its_decrypt(
    emu: Emulator, authorizer: Authorizer
) -> None:
    kms = emu.client("kms")
    writer_arn = f"arn:aws:iam::{ACCOUNT}:role/key-writer-sagemaker"
    key_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Admins",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": ["kms:Create*", "kms:Describe*", "kms:Put*"],
                "Resource": "*",
            },
            {
                "Sid": "Writer",
                "Effect": "Allow",
                "Principal": {"AWS": writer_arn},
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": "*",
            },
        ],
    }
    key = kms.create_key(Policy=json.dumps(key_policy))["KeyMetadata"]["Arn"]
    emu.client("s3").create_bucket(Bucket="mlops-dev-models")
    grants = [
        {
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject"],
            "Resource": "arn:aws:s3:::mlops-dev-models/*",
        },
        {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key},
    ]
    writer = make_role(emu, "key-writer-sagemaker", grants)
    reader = make_role(emu, "key-reader-sagemaker", grants)  # same IAM grant, not in the key policy
    put = as_role(emu, authorizer.issue_credentials(writer, service=SAGEMAKER), "s3")
    put.put_object(
        Bucket="mlops-dev-models", Key="m.tar.gz", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key
    )
    assert put.get_object(Bucket="mlops-dev-models", Key="m.tar.gz")["Body"].read() == b"x"
    get = as_role(emu, authorizer.issue_credentials(reader, service=SAGEMAKER), "s3")
    with pytest.raises(ClientError) as exc:
        get.get_object(Bucket="mlops-dev-models", Key="m.tar.gz")
    assert error_code(exc) == "AccessDenied"
    denial = authorizer.denials[-1]
    assert (denial.action, denial.resource) == ("kms:Decrypt", key)
    assert "key policy" in denial.decisive
    assert "components/encryption.py" in denial.hint
    # the KMS API itself answers in its JSON shape
    blob = emu.client("kms").encrypt(KeyId=key, Plaintext=b"secret")["CiphertextBlob"]
    with pytest.raises(ClientError) as exc:
        as_role(emu, authorizer.issue_credentials(reader, service=SAGEMAKER), "kms").decrypt(
            CiphertextBlob=blob
        )
    assert error_code(exc) == "AccessDeniedException"


def test_model_package_group_policy_naming_the_role_grants(emu: Emulator, authorizer: Authorizer) -> None:
    sm = emu.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="churn")
    group_arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package-group/churn"
    role = make_role(
        emu,
        "registry-reader-sagemaker",
        [
            {"Effect": "Allow", "Action": "sagemaker:ListModelPackages", "Resource": "*"},
        ],
    )
    client = as_role(emu, authorizer.issue_credentials(role, service=SAGEMAKER), "sagemaker")
    package = sm.create_model_package(
        ModelPackageGroupName="churn",
        InferenceSpecification={
            "Containers": [{"Image": "i"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    with pytest.raises(ClientError) as exc:
        client.describe_model_package(ModelPackageName=package)
    assert error_code(exc) == "AccessDeniedException"
    sm.put_model_package_group_policy(
        ModelPackageGroupName="churn",
        ResourcePolicy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": role},
                        "Action": "sagemaker:DescribeModelPackage",
                        "Resource": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/churn/*",
                    }
                ],
            }
        ),
    )
    assert client.describe_model_package(ModelPackageName=package)["ModelPackageGroupName"] == "churn"
    assert group_arn  # the group the policy is stored for


# --- identity policies, PassRole, denials ---------------------------------------------------------

PIPELINE_POLICY = [
    {
        "Sid": "ReadFeatures",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::mlops-dev-features/*",
    },
    {
        "Sid": "ListFeatures",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::mlops-dev-features",
        "Condition": {"StringLike": {"s3:prefix": ["features/*"]}},
    },
    {
        "Sid": "Train",
        "Effect": "Allow",
        "Action": ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob"],
        "Resource": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:training-job/*",
    },
    {
        "Sid": "PassSageMakerRole",
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-sagemaker-execution",
        "Condition": {"StringEquals": {"iam:PassedToService": SAGEMAKER}},
    },
    {
        "Sid": "CleanUp",
        "Effect": "Allow",
        "Action": "s3:DeleteObject",
        "Resource": "arn:aws:s3:::mlops-dev-features/*",
    },
]


def _training_request(role_arn: str) -> dict[str, Any]:
    return {
        "TrainingJobName": "churn-20261201",
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "RoleArn": role_arn,
        "OutputDataConfig": {"S3OutputPath": "s3://mlops-dev-models/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }


def test_a_missing_grant_gives_a_denial_naming_role_action_and_resource(
    emu: Emulator, authorizer: Authorizer
) -> None:
    emu.client("s3").create_bucket(Bucket="mlops-dev-features")
    emu.client("s3").put_object(Bucket="mlops-dev-features", Key="features/x.parquet", Body=b"p")
    full = make_role(emu, "mlops-dev-airflow-full", PIPELINE_POLICY, trust("airflow-env.amazonaws.com"))
    trimmed = copy.deepcopy(PIPELINE_POLICY)
    trimmed.remove(next(s for s in trimmed if s["Sid"] == "ReadFeatures"))
    short = make_role(emu, "mlops-dev-airflow-trimmed", trimmed, trust("airflow-env.amazonaws.com"))
    for role in (full, short):
        s3 = as_role(emu, authorizer.issue_credentials(role, service="airflow-env.amazonaws.com"), "s3")
        assert s3.list_objects_v2(Bucket="mlops-dev-features", Prefix="features/")["KeyCount"] == 1
        if role == full:
            assert s3.get_object(Bucket="mlops-dev-features", Key="features/x.parquet")["Body"].read() == b"p"
            continue
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket="mlops-dev-features", Key="features/x.parquet")
        assert error_code(exc) == "AccessDenied"
        with pytest.raises(ClientError):
            s3.list_objects_v2(Bucket="mlops-dev-features", Prefix="raw/")  # the s3:prefix condition
    refused = [d for d in authorizer.denials if d.role_arn == short]
    assert [(d.action, d.resource) for d in refused] == [
        ("s3:GetObject", "arn:aws:s3:::mlops-dev-features/features/x.parquet"),
        ("s3:ListBucket", "arn:aws:s3:::mlops-dev-features"),
    ]
    assert "no statement allows" in refused[0].decisive
    assert "components/airflow.py" in refused[0].hint
    with pytest.raises(Exception, match="mlops-dev-airflow-trimmed may not s3:GetObject"):
        authorizer.raise_for_denials()


def test_create_training_job_needs_pass_role_to_sagemaker(emu: Emulator, authorizer: Authorizer) -> None:
    execution = make_role(emu, "mlops-dev-sagemaker-execution", [])
    no_pass = [s for s in PIPELINE_POLICY if s["Sid"] != "PassSageMakerRole"]
    wrong_service = copy.deepcopy(PIPELINE_POLICY)
    next(s for s in wrong_service if s["Sid"] == "PassSageMakerRole")["Condition"]["StringEquals"][
        "iam:PassedToService"
    ] = "glue.amazonaws.com"
    for name, statements in (("no-pass", no_pass), ("wrong-service", wrong_service)):
        role = make_role(emu, f"mlops-dev-airflow-{name}", statements, trust("airflow-env.amazonaws.com"))
        sm = as_role(
            emu, authorizer.issue_credentials(role, service="airflow-env.amazonaws.com"), "sagemaker"
        )
        with pytest.raises(ClientError) as exc:
            sm.create_training_job(**_training_request(execution))
        assert error_code(exc) == "AccessDeniedException"
        assert (authorizer.denials[-1].action, authorizer.denials[-1].resource) == ("iam:PassRole", execution)
    role = make_role(emu, "mlops-dev-airflow-pass", PIPELINE_POLICY, trust("airflow-env.amazonaws.com"))
    sm = as_role(emu, authorizer.issue_credentials(role, service="airflow-env.amazonaws.com"), "sagemaker")
    sm.create_training_job(**_training_request(execution))
    assert sm.describe_training_job(TrainingJobName="churn-20261201")["TrainingJobName"] == "churn-20261201"


def test_the_unused_grant_report_finds_a_known_unused_grant(emu: Emulator, authorizer: Authorizer) -> None:
    emu.client("s3").create_bucket(Bucket="mlops-dev-features")
    emu.client("s3").put_object(Bucket="mlops-dev-features", Key="features/y.parquet", Body=b"p")
    role = make_role(emu, "mlops-dev-airflow-report", PIPELINE_POLICY, trust("airflow-env.amazonaws.com"))
    idle = make_role(emu, "mlops-dev-airflow-idle", PIPELINE_POLICY, trust("airflow-env.amazonaws.com"))
    s3 = as_role(emu, authorizer.issue_credentials(role, service="airflow-env.amazonaws.com"), "s3")
    s3.get_object(Bucket="mlops-dev-features", Key="features/y.parquet")
    s3.list_objects_v2(Bucket="mlops-dev-features", Prefix="features/")
    report = authorizer.unused_grant_report([role, idle])
    unused = {(g.statement, g.action) for g in report.for_role(role)}
    assert ("CleanUp", "s3:DeleteObject") in unused  # granted, never called
    assert ("ReadFeatures", "s3:GetObject") not in unused
    assert ("ListFeatures", "s3:ListBucket") not in unused
    assert report.unused_roles == [idle]
    assert json.dumps(report.as_dict())


# --- enforcement switch and error shapes ----------------------------------------------------------


def test_the_root_deployer_is_not_enforced_and_bad_tokens_are_refused(
    emu: Emulator, authorizer: Authorizer
) -> None:
    emu.client("s3").create_bucket(Bucket="deployer-owned")  # no policy grants the root anything here
    assert not authorizer.denials
    role = make_role(emu, "token-check-sagemaker", [])
    env = authorizer.issue_credentials(role, service=SAGEMAKER)
    with pytest.raises(ClientError) as exc:
        as_role(emu, {**env, "AWS_SESSION_TOKEN": "forged"}, "s3").list_objects_v2(Bucket="deployer-owned")
    assert error_code(exc) == "InvalidClientTokenId"


def test_rest_json_services_answer_access_denied_exception(emu: Emulator, authorizer: Authorizer) -> None:
    role = make_role(emu, "emr-caller-emr-job", [])
    emr = as_role(emu, authorizer.issue_credentials(role, service=SAGEMAKER), "emr-containers")
    with pytest.raises(ClientError) as exc:
        emr.describe_job_run(id="run1", virtualClusterId="vc1")
    assert error_code(exc) == "AccessDeniedException"
    assert (
        authorizer.denials[-1].resource
        == f"arn:aws:emr-containers:us-east-1:{ACCOUNT}:/virtualclusters/vc1/jobruns/run1"
    )
    assert "components/spark.py" in authorizer.denials[-1].hint


def test_a_permissions_boundary_caps_the_role(emu: Emulator, authorizer: Authorizer) -> None:
    iam = emu.client("iam")
    boundary = iam.create_policy(
        PolicyName="only-read",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            }
        ),
    )["Policy"]["Arn"]
    emu.client("s3").create_bucket(Bucket="bounded-bucket")
    role = make_role(
        emu,
        "bounded-sagemaker",
        [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": "arn:aws:s3:::bounded-bucket/*",
            },
        ],
    )
    iam.put_role_permissions_boundary(RoleName="bounded-sagemaker", PermissionsBoundary=boundary)
    s3 = as_role(emu, authorizer.issue_credentials(role, service=SAGEMAKER), "s3")
    with pytest.raises(ClientError):
        s3.put_object(Bucket="bounded-bucket", Key="k", Body=b"x")
    assert "permissions boundary" in authorizer.denials[-1].decisive


def test_service_side_calls_are_judged_through_the_same_mapping(
    emu: Emulator, authorizer: Authorizer
) -> None:
    """What an executor does for SageMaker: read the training channel as the job's role."""
    emu.client("s3").create_bucket(Bucket="channel-bucket")
    emu.client("s3").put_object(Bucket="channel-bucket", Key="train/a.csv", Body=b"1,2\n")
    role = make_role(
        emu,
        "channel-sagemaker",
        [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::channel-bucket/train/*"},
        ],
    )
    assert (
        authorizer.authorize_call(role, "s3", "GetObject", {"Bucket": "channel-bucket", "Key": "train/a.csv"})
        is None
    )
    denial = authorizer.authorize_call(
        role, "s3", "PutObject", {"Bucket": "channel-bucket", "Key": "model/m.tar.gz"}
    )
    assert denial is not None
    assert (denial.role_arn, denial.action, denial.resource) == (
        role,
        "s3:PutObject",
        "arn:aws:s3:::channel-bucket/model/m.tar.gz",
    )
    assert ("s3:GetObject", "arn:aws:s3:::channel-bucket/train/a.csv") in {
        (c.action, c.resource) for c in authorizer.authorized if c.role_arn == role
    }


def test_role_chaining_over_sts_checks_the_target_trust(emu: Emulator, authorizer: Authorizer) -> None:
    caller = make_role(
        emu,
        "mlops-dev-build-deploy",
        [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"},
        ],
    )
    trusted = make_role(
        emu,
        "chain-target-deploy",
        [],
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": caller}, "Action": "sts:AssumeRole"}],
            }
        ),
    )
    untrusting = make_role(emu, "chain-other-deploy", [], trust(SAGEMAKER))
    sts = as_role(emu, authorizer.issue_credentials(caller, service=SAGEMAKER), "sts")
    assert sts.assume_role(RoleArn=trusted, RoleSessionName="deploy")["Credentials"]["AccessKeyId"]
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=untrusting, RoleSessionName="deploy")
    assert error_code(exc) == "AccessDenied"
    assert authorizer.denials[-1].resource == untrusting


def test_with_enforcement_off_denials_are_recorded_but_not_answered(
    emu: Emulator, authorizer: Authorizer
) -> None:
    emu.client("s3").create_bucket(Bucket="audit-only")
    role = make_role(emu, "audit-sagemaker", [])
    s3 = as_role(emu, authorizer.issue_credentials(role, service=SAGEMAKER), "s3")
    authorizer.enforce = False
    try:
        s3.put_object(Bucket="audit-only", Key="k", Body=b"x")
    finally:
        authorizer.enforce = True
    assert [(d.action, d.resource) for d in authorizer.denials] == [
        ("s3:PutObject", "arn:aws:s3:::audit-only/k")
    ]
    with pytest.raises(ClientError):
        s3.put_object(Bucket="audit-only", Key="k2", Body=b"x")


def test_a_missing_key_answers_404_only_to_a_caller_who_may_list_the_bucket(
    emu: Emulator, authorizer: Authorizer
) -> None:
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html: without s3:ListBucket a
    # missing key is 403, so an existence check by HeadObject needs the listing grant too
    emu.client("s3").create_bucket(Bucket="mlops-dev-missing")
    emu.client("s3").put_object(Bucket="mlops-dev-missing", Key="there.json", Body=b"{}")
    objects = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::mlops-dev-missing/*"}
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::mlops-dev-missing"}
    blind = make_role(emu, "mlops-dev-reader-blind", [objects])
    lister = make_role(emu, "mlops-dev-reader-lister", [objects, listing])
    for role, missing in ((blind, "403"), (lister, "404")):
        s3 = as_role(emu, authorizer.issue_credentials(role, service=SAGEMAKER), "s3")
        assert s3.head_object(Bucket="mlops-dev-missing", Key="there.json")["ContentLength"] == 2
        with pytest.raises(ClientError) as exc:
            s3.head_object(Bucket="mlops-dev-missing", Key="absent.json")
        assert error_code(exc) == missing
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket="mlops-dev-missing", Key="absent.json")
        assert error_code(exc) == ("AccessDenied" if missing == "403" else "NoSuchKey")
    refused = [d for d in authorizer.denials if d.role_arn == blind]
    assert [(d.operation, d.action, d.resource) for d in refused] == [
        ("s3:HeadObject", "s3:ListBucket", "arn:aws:s3:::mlops-dev-missing"),
        ("s3:GetObject", "s3:ListBucket", "arn:aws:s3:::mlops-dev-missing"),
    ]
    assert "only to a caller allowed s3:ListBucket" in refused[0].decisive
    assert not [d for d in authorizer.denials if d.role_arn == lister]
