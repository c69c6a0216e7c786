"""A promotion runs as on AWS: the approval rule's role starts the promotion pipeline, its CodeBuild action
runs as the project's role (issued through the codebuild.amazonaws.com trust), which assumes the deploy
role for the stack deploy; a grant missing from the deploy role stops the deploy-model stage naming it.

One emulator with the dev stack deployed (the lifecycle's ``emulator`` and ``deploy`` stages, IAM
enforced); the package is a small trained model registered as the administrator (no DAG run).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rehearsal import lifecycle, promotion
from rehearsal.iam import Authorizer
from rehearsal.iam.stages import IAM_ENV, IamStageError
from rehearsal.run import RehearsalOptions, RunContext, Stage
from tests.rehearsal.endpoint_fixtures import IMAGE, model_tarball

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _stage(name: str) -> Stage:
    return {s.name: s for s in lifecycle.lifecycle_stages(RehearsalOptions(quick=True))}[name]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunContext]:
    out = tmp_path_factory.mktemp("iam-promotion")
    mp = pytest.MonkeyPatch()
    mp.delenv(IAM_ENV, raising=False)  # the default: enforced
    context = RunContext(options=RehearsalOptions(out=out, quick=True), out=out)
    try:
        for name in ("emulator", "deploy"):
            stage = _stage(name)
            assert stage.check(stage.run(context), context) is None, name
        context.values["packages"] = [_register_package(context, out)]
        yield context
    finally:
        problems = context.close()
        mp.undo()
        assert not problems


def _register_package(ctx: RunContext, tmp: Path) -> str:
    """An approved package of the rehearsed model, its artifact in the artifacts bucket under the ML key."""
    assert ctx.emulator is not None
    assert ctx.deployment is not None
    outputs = ctx.deployment.outputs
    s3, sm = ctx.emulator.client("s3"), ctx.emulator.client("sagemaker")
    bucket, key = str(outputs["artifactsBucket"]), "models/churn/promotion-test/output/model.tar.gz"
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=model_tarball(tmp),
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=str(outputs["mlKeyArn"]),
    )
    container = {
        "Image": IMAGE,
        "ModelDataUrl": f"s3://{bucket}/{key}",
        "Environment": {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        },
    }
    return str(
        sm.create_model_package(
            ModelPackageGroupName=lifecycle._group(ctx),  # pyright: ignore[reportPrivateUsage]
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [container],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
        )["ModelPackageArn"]
    )


def _authorizer(ctx: RunContext) -> Authorizer:
    assert ctx.emulator is not None
    assert isinstance(ctx.emulator.authorizer, Authorizer)
    return ctx.emulator.authorizer


def _run(ctx: RunContext, name: str) -> str | None:
    stage = _stage(name)
    try:
        evidence = stage.run(ctx)
    except IamStageError as exc:
        return str(exc)
    return stage.check(evidence, ctx)


def test_promotion_runs_through_the_pipeline_as_build_and_deploy_roles(
    ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    authorizer = _authorizer(ctx)
    original = promotion.promotion_deploy_statements

    def without_pass_role(*args: Any) -> list[dict[str, Any]]:
        return [s for s in original(*args) if s["Sid"] != "PassSageMakerRole"]

    # a copy of the deploy role's policy without iam:PassRole: the stage fails naming role, action, resource
    monkeypatch.setattr(promotion, "promotion_deploy_statements", without_pass_role)
    problem = _run(ctx, "deploy-model")
    assert problem is not None
    assert "iam:PassRole" in problem
    assert "role/mlops-dev-pulumi-deployer" in problem
    assert "role/mlops-dev-sagemaker-execution" in problem  # the resource: the role being passed
    assert "deploy role" in problem  # the hint names where the grant lives

    # the failed update's state holds what it applied: the next promotion continues from it
    failed = [d for d in authorizer.denials if d.action == "iam:PassRole"]
    assert failed
    monkeypatch.setattr(promotion, "promotion_deploy_statements", original)
    start = len(authorizer.authorized)
    ctx.values.pop("promoter", None)
    problem = _run(ctx, "deploy-model")
    assert problem is None, problem

    calls = {(c.role_arn.rsplit("/", 1)[-1], c.action) for c in authorizer.authorized[start:]}
    assert ("mlops-dev-start-promotion", "codepipeline:StartPipelineExecution") in calls
    assert ("mlops-dev-promotion", "codebuild:StartBuild") in calls
    assert ("mlops-dev-build-promote-dev", "sagemaker:ListModelPackages") in calls
    assert ("mlops-dev-build-promote-dev", "sts:AssumeRole") in calls
    assert ("mlops-dev-build-promote-dev", "sagemaker:UpdateModelPackage") in calls  # marked deployed
    for action in ("sagemaker:CreateModel", "iam:PassRole", "sagemaker:CreateEndpointConfig"):
        assert ("mlops-dev-pulumi-deployer", action) in calls
    record = ctx.values["promotions"][-1]
    assert record["status"] == "Succeeded"
    assert record["deploy_role"].endswith(":role/mlops-dev-pulumi-deployer")
    assert record["plan"] == {"mlops-dev-churn": ctx.values["packages"][-1]}
    assert record["marked_deployed"] == [ctx.values["packages"][-1]]
