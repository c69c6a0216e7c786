"""IAM on in the rehearsal: steps run as their roles, a missing grant stops the right stage.

One emulator with the dev stack deployed (the lifecycle's own ``emulator`` and ``deploy`` stages, IAM
enforced) is shared by the module; each test runs only the cheap stages it needs (ingest, validate,
as the MWAA execution role) and restores what it changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from rehearsal import lifecycle
from rehearsal import stages as base
from rehearsal.iam import Authorizer, TrustDeniedError
from rehearsal.iam.identities import AIRFLOW_ENV_SERVICE, SAGEMAKER_SERVICE
from rehearsal.iam.stages import IAM_ENV, IamStageError, guarded, iam_mode, iam_stage
from rehearsal.run import RehearsalOptions, RunContext, Stage

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _stage(name: str) -> Stage:
    by_name = {s.name: s for s in lifecycle.lifecycle_stages(RehearsalOptions(quick=True))}
    return by_name[name]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunContext]:
    out = tmp_path_factory.mktemp("iam-lifecycle")
    mp = pytest.MonkeyPatch()
    mp.delenv(IAM_ENV, raising=False)  # the default: enforced
    context = RunContext(options=RehearsalOptions(out=out, quick=True), out=out)
    try:
        for name in ("emulator", "deploy", "data"):
            stage = _stage(name)
            evidence = stage.run(context)
            assert stage.check(evidence, context) is None, name
        yield context
    finally:
        problems = context.close()
        mp.undo()
        assert not problems


def _authorizer(ctx: RunContext) -> Authorizer:
    assert ctx.emulator is not None
    assert isinstance(ctx.emulator.authorizer, Authorizer)
    return ctx.emulator.authorizer


def _outputs(ctx: RunContext) -> dict[str, Any]:
    assert ctx.deployment is not None
    return ctx.deployment.outputs


def _run(ctx: RunContext, name: str) -> str | None:
    stage = _stage(name)
    try:
        evidence = stage.run(ctx)
    except IamStageError as exc:
        return str(exc)
    return stage.check(evidence, ctx)


def test_enforcement_is_the_default_and_every_stage_is_guarded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(IAM_ENV, raising=False)
    assert iam_mode() == "enforce"
    monkeypatch.setenv(IAM_ENV, "loose")
    with pytest.raises(ValueError, match="enforce, record, off"):
        iam_mode()
    names = [s.name for s in lifecycle.lifecycle_stages(RehearsalOptions(quick=True))]
    assert names[-1] == "iam"
    assert names.index("ingest") < names.index("train")


def test_ingest_and_validate_run_as_the_mwaa_execution_role(ctx: RunContext) -> None:
    authorizer = _authorizer(ctx)
    assert authorizer.enforce
    assert _run(ctx, "ingest") is None
    assert _run(ctx, "validate") is None
    role = str(_outputs(ctx)["airflowExecutionRoleArn"])
    raw = str(_outputs(ctx)["rawBucket"])
    made = {(c.role_arn, c.action, c.resource) for c in authorizer.authorized}
    assert any(
        r == role and a == "s3:PutObject" and res.startswith(f"arn:aws:s3:::{raw}/raw/") for r, a, res in made
    )
    assert (role, "kms:GenerateDataKey", str(_outputs(ctx)["dataLakeKeyArn"])) in made
    # the deployer (root) is never recorded: only role sessions are judged
    assert all(":role/" in c.role_arn for c in authorizer.authorized)


def _without(policy: dict[str, Any], action: str, resource_part: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(policy))
    kept = []
    for statement in copy["Statement"]:
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if statement["Effect"] == "Allow" and any(resource_part in r for r in resources):
            actions = [a for a in actions if a != action]
            if not actions:
                continue
            statement["Action"] = actions
        kept.append(statement)
    copy["Statement"] = kept
    return copy


def test_a_grant_removed_from_a_copy_of_the_policy_fails_ingest_naming_role_action_resource(
    ctx: RunContext,
) -> None:
    assert ctx.emulator is not None
    iam = ctx.emulator.client("iam")
    role_arn = str(_outputs(ctx)["airflowExecutionRoleArn"])
    role = role_arn.rsplit("/", 1)[-1]
    raw = str(_outputs(ctx)["rawBucket"])
    saved = {
        name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
    }
    assert any("s3:PutObject" in json.dumps(doc) and raw in json.dumps(doc) for doc in saved.values()), (
        "the MWAA role no longer grants s3:PutObject on the raw bucket: update this test"
    )
    try:
        for name, document in saved.items():
            doc = document if isinstance(document, dict) else json.loads(document)
            iam.put_role_policy(
                RoleName=role, PolicyName=name, PolicyDocument=json.dumps(_without(doc, "s3:PutObject", raw))
            )
        # a batch not landed yet (ingest is content-addressed: the first one is already present)
        original = Path(ctx.values["data_file"])
        fresh = original.with_name(f"fresh-{original.name}")
        lines = original.read_text().splitlines(keepends=True)
        fresh.write_text("".join([lines[0], *reversed(lines[1:])]))
        ctx.values["data_file"] = fresh
        reason = _run(ctx, "ingest")
    finally:
        for name, document in saved.items():
            text = document if isinstance(document, str) else json.dumps(document)
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=text)
    assert reason is not None, "ingest passed without s3:PutObject on the raw bucket"
    assert f"role {role_arn}" in reason
    assert "s3:PutObject" in reason
    assert f"arn:aws:s3:::{raw}/" in reason
    assert "components/airflow.py" in reason  # the hint: which component's policy to change
    # the grant restored, the same stage passes again
    assert _run(ctx, "ingest") is None
    ctx.values["data_file"] = original


def test_the_stack_trust_policies_are_enforced(ctx: RunContext) -> None:
    assert ctx.emulator is not None
    authorizer = _authorizer(ctx)
    outputs = _outputs(ctx)
    airflow_role = str(outputs["airflowExecutionRoleArn"])
    env_arn = (
        f"arn:aws:airflow:{ctx.emulator.region}:{ctx.emulator.account_id}:environment/"
        f"{outputs['airflowEnvironmentName']}"
    )
    assert authorizer.issue_credentials(airflow_role, service=AIRFLOW_ENV_SERVICE, source_arn=env_arn)
    with pytest.raises(TrustDeniedError):  # a service the trust does not name
        authorizer.issue_credentials(airflow_role, service=SAGEMAKER_SERVICE, source_arn=env_arn)
    with pytest.raises(TrustDeniedError):  # another environment: aws:SourceArn unmet
        authorizer.issue_credentials(
            airflow_role, service=AIRFLOW_ENV_SERVICE, source_arn=env_arn.rsplit("/", 1)[0] + "/other"
        )
    with pytest.raises(TrustDeniedError):  # SageMaker acting for another account: aws:SourceAccount unmet
        authorizer.issue_credentials(
            str(outputs["sagemakerExecutionRoleArn"]),
            service=SAGEMAKER_SERVICE,
            source_account="210987654321",
        )


def _as(ctx: RunContext, service: str, credentials: dict[str, str]) -> Any:
    assert ctx.emulator is not None
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=ctx.emulator.endpoint_url,
        region_name=ctx.emulator.region,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"],
    )


def test_the_raw_bucket_policy_refuses_plain_http_and_another_key(ctx: RunContext) -> None:
    assert ctx.emulator is not None
    authorizer = _authorizer(ctx)
    outputs = _outputs(ctx)
    s3 = _as(ctx, "s3", base.airflow_role_credentials(ctx) or {})
    raw, lake_key = str(outputs["rawBucket"]), str(outputs["dataLakeKeyArn"])
    put = {"Bucket": raw, "Key": "raw/churn/iam-test.csv", "Body": b"a,b\n"}
    s3.put_object(**put, ServerSideEncryption="aws:kms", SSEKMSKeyId=lake_key)
    other = ctx.emulator.client("kms").create_key(Description="not the lake key")["KeyMetadata"]["Arn"]
    with pytest.raises(ClientError) as wrong_key:
        s3.put_object(**put, ServerSideEncryption="aws:kms", SSEKMSKeyId=other)
    assert wrong_key.value.response["Error"]["Code"] == "AccessDenied"
    authorizer.secure_transport = False
    try:
        with pytest.raises(ClientError) as plain:
            s3.put_object(**put, ServerSideEncryption="aws:kms", SSEKMSKeyId=lake_key)
    finally:
        authorizer.secure_transport = True
    assert plain.value.response["Error"]["Code"] == "AccessDenied"
    assert "aws:SecureTransport" in str(plain.value) or "bucket policy" in str(plain.value)


def test_dataset_versions_are_write_once_by_bucket_policy_and_s3(ctx: RunContext) -> None:
    """The deployed lake policy refuses an overwritable PutObject on a version prefix; S3 refuses a
    second conditional write with 412; the working prefixes (the Spark job's) stay writable."""
    assert ctx.emulator is not None
    outputs = _outputs(ctx)
    s3 = _as(ctx, "s3", base.airflow_role_credentials(ctx) or {})
    curated, features = str(outputs["curatedBucket"]), str(outputs["featuresBucket"])
    enc = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": str(outputs["dataLakeKeyArn"])}
    written: list[tuple[str, str]] = []
    try:
        for bucket, key in (
            (curated, "curated/churn/validated/versions/0iamtest/data.parquet"),
            (features, "features/churn/splits/test/versions/0iamtest/part-00000.parquet"),
        ):
            with pytest.raises(ClientError) as unconditional:
                s3.put_object(Bucket=bucket, Key=key, Body=b"rows", **enc)
            assert unconditional.value.response["Error"]["Code"] == "AccessDenied"
            assert "bucket policy" in str(unconditional.value)
            s3.put_object(Bucket=bucket, Key=key, Body=b"rows", IfNoneMatch="*", **enc)
            written.append((bucket, key))
            with pytest.raises(ClientError) as second:
                s3.put_object(Bucket=bucket, Key=key, Body=b"other rows", IfNoneMatch="*", **enc)
            assert second.value.response["Error"]["Code"] == "PreconditionFailed"
            assert second.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
        # multipart: creating and uploading parts is exempt (no conditional header there), completing is not
        key = "features/churn/versions/0iamtest/part-00001.parquet"
        upload = s3.create_multipart_upload(Bucket=features, Key=key, **enc)["UploadId"]
        etag = s3.upload_part(Bucket=features, Key=key, UploadId=upload, PartNumber=1, Body=b"rows")["ETag"]
        parts = {"Parts": [{"ETag": etag, "PartNumber": 1}]}
        with pytest.raises(ClientError) as incomplete:
            s3.complete_multipart_upload(Bucket=features, Key=key, UploadId=upload, MultipartUpload=parts)
        assert incomplete.value.response["Error"]["Code"] == "AccessDenied"
        s3.complete_multipart_upload(
            Bucket=features, Key=key, UploadId=upload, MultipartUpload=parts, IfNoneMatch="*"
        )
        written.append((features, key))
        # the working prefixes, which the Spark job writes through S3A/EMRFS, take plain writes
        working = "features/churn/ingest_date=2026-01-01/part-iamtest.parquet"
        s3.put_object(Bucket=features, Key=working, Body=b"rows", **enc)
        s3.put_object(Bucket=features, Key=working, Body=b"rows again", **enc)
        written.append((features, working))
    finally:
        root = ctx.emulator.client("s3")
        for bucket, key in written:
            root.delete_object(Bucket=bucket, Key=key)


def test_dataset_version_objects_cannot_be_deleted_by_the_pipeline_roles(ctx: RunContext) -> None:
    """The lake policy's DenyDatasetVersionDeletes: DeleteObject (with or without a version id) of a
    version object is AccessDenied to the MWAA role, DeleteObjects answers that key with an AccessDenied
    entry (HTTP 200) and deletes the rest, a working object of the same bucket is still deleted; the
    other roles with deletes on features/ (EMR job role) are refused too. The version stays immutable."""
    assert ctx.emulator is not None
    outputs = _outputs(ctx)
    authorizer = _authorizer(ctx)
    s3 = _as(ctx, "s3", base.airflow_role_credentials(ctx) or {})
    root = ctx.emulator.client("s3")
    features = str(outputs["featuresBucket"])
    enc = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": str(outputs["dataLakeKeyArn"])}
    version_key = "features/churn/versions/0deltest/part-00000.parquet"
    working_key = "features/churn/ingest_date=2026-01-02/part-deltest.parquet"
    s3.put_object(Bucket=features, Key=version_key, Body=b"rows", IfNoneMatch="*", **enc)
    try:
        version_id = root.head_object(Bucket=features, Key=version_key)["VersionId"]
        for extra in ({}, {"VersionId": version_id}):
            with pytest.raises(ClientError) as refused:
                s3.delete_object(Bucket=features, Key=version_key, **extra)
            assert refused.value.response["Error"]["Code"] == "AccessDenied"
            assert "DenyDatasetVersionDeletes" in str(refused.value)
        assert authorizer.denials[-1].action == "s3:DeleteObjectVersion"
        for _ in range(2):  # the working object: deleted by the role that could before (twice: idempotent)
            s3.put_object(Bucket=features, Key=working_key, Body=b"rows", **enc)
            result = s3.delete_objects(
                Bucket=features, Delete={"Objects": [{"Key": version_key}, {"Key": working_key}]}
            )
            assert result["ResponseMetadata"]["HTTPStatusCode"] == 200
            assert [(e["Key"], e["Code"]) for e in result.get("Errors", [])] == [
                (version_key, "AccessDenied")
            ]
            assert [d["Key"] for d in result.get("Deleted", [])] == [working_key]
        assert authorizer.denials[-1].operation == "s3:DeleteObjects"
        assert authorizer.denials[-1].resource == f"arn:aws:s3:::{features}/{version_key}"
        emr_role = str(outputs["emrJobExecutionRoleArn"])
        for key, refused_as in ((version_key, "DenyDatasetVersionDeletes"), (working_key, None)):
            denial = authorizer.authorize_call(
                emr_role, "s3", "DeleteObject", {"Bucket": features, "Key": key}
            )
            assert (denial is not None and refused_as in str(denial)) if refused_as else denial is None
        # still there, still the same bytes, still not writable again
        assert root.get_object(Bucket=features, Key=version_key)["Body"].read() == b"rows"
        with pytest.raises(ClientError) as again:
            s3.put_object(Bucket=features, Key=version_key, Body=b"other", IfNoneMatch="*", **enc)
        assert again.value.response["Error"]["Code"] == "PreconditionFailed"
    finally:
        root.delete_object(Bucket=features, Key=version_key)  # the deployer (root) is not judged


def test_the_iam_stage_reports_a_known_unused_grant(ctx: RunContext) -> None:
    stage = iam_stage()
    evidence = stage.run(ctx)
    assert stage.check(evidence, ctx) is None
    role = str(_outputs(ctx)["airflowExecutionRoleArn"])
    assert role in evidence["roles_acting"]
    # no training job was started in this module: the MWAA role's CreateTrainingJob grant is unused
    unused = evidence["unused_grant_report"]["roles"][role]
    assert any(g["action"] == "sagemaker:CreateTrainingJob" for g in unused)
    record = json.loads(Path(evidence["record_file"]).read_text())
    assert {"ingest", "validate"} <= {c["stage"] for c in record["calls"] if c["role"] == role}


def test_a_denial_inside_a_step_surfaces_as_the_stage_failure(ctx: RunContext) -> None:
    def refused(context: RunContext) -> dict[str, Any]:
        s3 = _as(context, "s3", base.airflow_role_credentials(context) or {})
        s3.delete_bucket(Bucket=str(_outputs(context)["rawBucket"]))  # no role may delete a lake bucket
        return {}

    stage = guarded(Stage("refused", refused, "a call IAM refuses", lambda e, c: None))
    with pytest.raises(IamStageError) as failure:
        stage.run(ctx)
    assert "s3:DeleteBucket" in str(failure.value)
    assert str(_outputs(ctx)["airflowExecutionRoleArn"]) in str(failure.value)
