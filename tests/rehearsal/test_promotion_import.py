"""Issue 12 item 8: promotion by copy and re-register, run against the emulator as the promote build's
own role (its policy taken from the Delivery component), so the grants are proven sufficient and scoped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from components.delivery import Delivery, DeliveryArgs, PromotionTarget, Source, Upstream
from pipelines.promotion import (
    DEPLOYED,
    PROMOTED_FROM,
    PromotionImportError,
    import_package,
    mark_deployed,
    plan,
)
from rehearsal.emulator import Emulator
from rehearsal.iam import Authorizer
from rehearsal.sagemaker_extra import SageMakerRegistryExtras
from stacks.synth import run_program
from tests.conftest import BASE_CONFIG

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
RUN = "models/churn/run-1"


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    authorizer = Authorizer()
    with Emulator(authorizer=authorizer, extensions=[SageMakerRegistryExtras()]) as emu:
        kms, s3, sm = emu.client("kms"), emu.client("s3"), emu.client("sagemaker")
        keys = {env: kms.create_key(Description=env)["KeyMetadata"]["Arn"] for env in ("dev", "staging")}
        for env in ("dev", "staging"):
            s3.create_bucket(Bucket=f"{env}-artifacts")
            s3.put_bucket_versioning(Bucket=f"{env}-artifacts", VersioningConfiguration={"Status": "Enabled"})
            sm.create_model_package_group(ModelPackageGroupName=f"mlops-{env}-churn")
        for name, body in (("output/model.tar.gz", b"model"), ("evaluation/evaluation.json", b"{}"),
                           ("evaluation/baseline.json", b"{}")):  # fmt: skip
            s3.put_object(
                Bucket="dev-artifacts", Key=f"{RUN}/{name}", Body=body,
                ServerSideEncryption="aws:kms", SSEKMSKeyId=keys["dev"],
            )  # fmt: skip
        s3.put_object(Bucket="dev-artifacts", Key="code/secret.py", Body=b"x")
        yield {"emu": emu, "authorizer": authorizer, "keys": keys}


def _register(sm: Any, *, deployed: bool, model_key: str = f"{RUN}/output/model.tar.gz") -> str:
    arn = sm.create_model_package(
        ModelPackageGroupName="mlops-dev-churn",
        ModelPackageDescription="churn run-1",
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://dev-artifacts/{model_key}"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://dev-artifacts/{RUN}/evaluation/evaluation.json",
                }
            },
            "ModelDataQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://dev-artifacts/{RUN}/evaluation/baseline.json",
                }
            },
        },
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={
            "model": "churn",
            "contract": "churn",
            "run_id": "run-1",
            **({DEPLOYED: "true"} if deployed else {}),
        },
    )["ModelPackageArn"]
    return str(arn)


def _promote_build_policy(emu: Emulator, keys: dict[str, str]) -> list[dict[str, Any]]:
    """The staging promote build's statements, as the Delivery component declares them."""

    def program() -> dict[str, Any]:
        Delivery(
            "dl",
            DeliveryArgs(
                name_prefix="mlops-staging",
                region=emu.region,
                source=Source(kind="s3"),
                artifacts_bucket_name="staging-artifacts",
                artifacts_bucket_arn="arn:aws:s3:::staging-artifacts",
                artifacts_key_arn=keys["staging"],
                logs_key_arn=keys["staging"],
                promotion_targets=[
                    PromotionTarget(stack="staging", deploy_role_arn="arn:aws:iam::123456789012:role/d")
                ],
                watched_group_names=["mlops-staging-churn"],
                upstream=Upstream(
                    group_names=["mlops-dev-churn"],
                    account_id=emu.account_id,
                    artifacts_bucket_name="dev-artifacts",
                    ml_key_arn=keys["dev"],
                ),
            ),
        )
        return {}

    result = run_program(program, BASE_CONFIG)
    policy = json.loads(result.named("dl-promote-staging-build-policy").inputs["policy"])
    return policy["Statement"]


@pytest.fixture(scope="module")
def build(world: dict[str, Any]) -> dict[str, Any]:
    """boto3 clients with the credentials of the promote build's role (CodeBuild assumes it)."""
    emu, authorizer = world["emu"], world["authorizer"]
    iam = emu.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"Service": "codebuild.amazonaws.com"}}]}  # fmt: skip
    arn = iam.create_role(
        RoleName="mlops-staging-build-promote-staging", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    statements = _promote_build_policy(emu, world["keys"])
    iam.put_role_policy(
        RoleName="mlops-staging-build-promote-staging",
        PolicyName="main",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    env = authorizer.issue_credentials(arn, service="codebuild.amazonaws.com")

    def client(service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=emu.endpoint_url,
            region_name=emu.region,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env["AWS_SESSION_TOKEN"],
        )

    return {"sm": client("sagemaker"), "s3": client("s3")}


def test_a_deployed_upstream_package_is_copied_and_re_registered(
    world: dict[str, Any], build: dict[str, Any]
) -> None:
    emu, keys = world["emu"], world["keys"]
    source = _register(emu.client("sagemaker"), deployed=True)
    chosen = plan(
        build["sm"], build["s3"], ["mlops-staging-churn"], ["mlops-dev-churn"],
        bucket="staging-artifacts", key_arn=keys["staging"],
    )  # fmt: skip
    copy_arn = chosen["mlops-staging-churn"]
    assert ":model-package/mlops-staging-churn/" in copy_arn
    copy = emu.client("sagemaker").describe_model_package(ModelPackageName=copy_arn)
    assert copy["ModelApprovalStatus"] == "Approved"
    assert copy["CustomerMetadataProperties"][PROMOTED_FROM] == source
    assert copy["CustomerMetadataProperties"]["run_id"] == "run-1"  # same metadata
    assert DEPLOYED not in copy["CustomerMetadataProperties"]  # not deployed here yet
    container = copy["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == f"s3://staging-artifacts/{RUN}/output/model.tar.gz"
    assert copy["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"].startswith("s3://staging-artifacts/")
    s3 = emu.client("s3")
    head = s3.head_object(Bucket="staging-artifacts", Key=f"{RUN}/output/model.tar.gz")
    assert head["SSEKMSKeyId"] == keys["staging"]  # this environment's key, not dev's
    assert (
        s3.get_object(Bucket="staging-artifacts", Key=f"{RUN}/output/model.tar.gz")["Body"].read() == b"model"
    )
    # idempotent: a second promotion finds the copy instead of registering another
    again = plan(
        build["sm"], build["s3"], ["mlops-staging-churn"], ["mlops-dev-churn"],
        bucket="staging-artifacts", key_arn=keys["staging"],
    )  # fmt: skip
    assert again == chosen
    # after its pulumi up the build marks the copy deployed: only then may prod import it
    assert mark_deployed(build["sm"], copy_arn) is True
    assert mark_deployed(build["sm"], copy_arn) is False


def test_a_package_not_deployed_upstream_is_not_imported(
    world: dict[str, Any], build: dict[str, Any]
) -> None:
    emu, keys = world["emu"], world["keys"]
    before = plan(build["sm"], build["s3"], ["mlops-staging-churn"], ["mlops-dev-churn"],
                  bucket="staging-artifacts", key_arn=keys["staging"])  # fmt: skip
    _register(emu.client("sagemaker"), deployed=False)  # approved in dev, not yet serving there
    after = plan(build["sm"], build["s3"], ["mlops-staging-churn"], ["mlops-dev-churn"],
                 bucket="staging-artifacts", key_arn=keys["staging"])  # fmt: skip
    assert after == before


def test_the_build_role_reads_only_models_of_the_upstream_bucket(
    world: dict[str, Any], build: dict[str, Any]
) -> None:
    with pytest.raises(ClientError) as exc:
        build["s3"].get_object(Bucket="dev-artifacts", Key="code/secret.py")
    assert exc.value.response["Error"]["Code"] in ("AccessDenied", "403")
    with pytest.raises(ClientError):
        build["s3"].put_object(Bucket="dev-artifacts", Key=f"{RUN}/output/x", Body=b"x")


def test_artifacts_outside_the_shared_prefix_are_refused(
    world: dict[str, Any], build: dict[str, Any]
) -> None:
    emu, keys = world["emu"], world["keys"]
    arn = _register(emu.client("sagemaker"), deployed=True, model_key="code/secret.py")
    with pytest.raises(PromotionImportError, match="outside models/"):
        import_package(
            build["sm"], build["sm"], build["s3"], arn,
            target_group="mlops-staging-churn", target_bucket="staging-artifacts", target_key_arn=keys["staging"],
        )  # fmt: skip


def _card(sm: Any, package_arn: str) -> tuple[dict[str, Any], list[str]]:
    from pipelines.model_card import card_name

    name = card_name(package_arn)
    card = sm.describe_model_card(ModelCardName=name)
    versions = sm.list_model_card_versions(ModelCardName=name)["ModelCardVersionSummaryList"]
    return card, [v["ModelCardStatus"] for v in sorted(versions, key=lambda v: v["ModelCardVersion"])]


def test_the_copy_gets_its_own_card_encrypted_with_this_environments_key(
    world: dict[str, Any], build: dict[str, Any]
) -> None:
    """Issue 15: the imported package's card in staging's registry, written as the promote build: the
    source card's content when readable (same account here), else rebuilt from the package."""
    from pipelines.model_card import card_name

    emu, keys = world["emu"], world["keys"]
    root = emu.client("sagemaker")
    # a source package without a card: the copy's card is rebuilt from the package and its evaluation
    _register(root, deployed=True)
    first = plan(build["sm"], build["s3"], ["mlops-staging-churn"], ["mlops-dev-churn"],
                 bucket="staging-artifacts", key_arn=keys["staging"])["mlops-staging-churn"]  # fmt: skip
    card, versions = _card(root, first)
    assert (versions[0], versions[-1]) == ("Draft", "Approved")  # created Draft, approved with the copy
    assert card["SecurityConfig"]["KmsKeyId"] == keys["staging"]
    content = json.loads(card["Content"])
    assert content["intended_uses"]["risk_rating"] == "Unknown"
    assert "not readable" in content["intended_uses"]["explanations_for_risk_rating"]
    assert content["model_package_details"]["model_package_arn"] == first
    # a source package with its own (dev-key encrypted) card: the copy's card carries its content
    source = _register(root, deployed=True)
    dev_content = {
        "model_overview": {"model_name": "churn", "model_artifact": [f"s3://dev-artifacts/{RUN}/output/model.tar.gz"]},
        "intended_uses": {"purpose_of_model": "churn risk", "risk_rating": "Medium"},
        "model_package_details": {"model_package_arn": source, "model_approval_status": "Approved"},
    }  # fmt: skip
    root.create_model_card(
        ModelCardName=card_name(source), Content=json.dumps(dev_content), ModelCardStatus="Approved",
        SecurityConfig={"KmsKeyId": keys["dev"]},
    )  # fmt: skip
    copy = plan(build["sm"], build["s3"], ["mlops-staging-churn"], ["mlops-dev-churn"],
                bucket="staging-artifacts", key_arn=keys["staging"])["mlops-staging-churn"]  # fmt: skip
    assert copy != first
    card, versions = _card(root, copy)
    assert (versions[0], versions[-1]) == ("Draft", "Approved")  # created Draft, approved with the copy
    assert card["SecurityConfig"]["KmsKeyId"] == keys["staging"]
    content = json.loads(card["Content"])
    assert content["intended_uses"]["risk_rating"] == "Medium"  # carried from the dev card
    assert content["model_overview"]["model_artifact"] == [
        f"s3://staging-artifacts/{RUN}/output/model.tar.gz"
    ]
    details = content["model_package_details"]
    assert (details["model_package_arn"], details["model_approval_status"]) == (copy, "Approved")
    assert content["additional_information"]["custom_details"]["promoted_from"] == source
    exports = emu.client("s3").head_object(Bucket="staging-artifacts", Key=f"{RUN}/evaluation/model_card.md")
    assert exports["SSEKMSKeyId"] == keys["staging"]
    # an import that stopped before the card: the next promotion finds the copy and writes its card
    root.delete_model_card(ModelCardName=card_name(copy))
    imported = import_package(
        build["sm"], build["sm"], build["s3"], source,
        target_group="mlops-staging-churn", target_bucket="staging-artifacts", target_key_arn=keys["staging"],
    )  # fmt: skip
    assert (imported.package_arn, imported.created, imported.model_card) == (copy, False, card_name(copy))
    card, versions = _card(root, copy)
    assert (versions[0], versions[-1]) == ("Draft", "Approved")
    content = json.loads(card["Content"])
    assert content["intended_uses"]["risk_rating"] == "Medium"
    assert content["model_overview"]["model_artifact"] == [
        f"s3://staging-artifacts/{RUN}/output/model.tar.gz"
    ]


def test_a_card_with_a_key_the_caller_cannot_use_is_refused(
    world: dict[str, Any], build: dict[str, Any]
) -> None:
    """The build role may only decrypt dev's key (reading dev cards): encrypting a card with it is denied,
    as SageMaker's kms:GenerateDataKey as the caller would be; an unknown key is a validation error."""
    emu, keys = world["emu"], world["keys"]
    request = {"ModelCardName": "mlops-staging-churn-99", "Content": "{}", "ModelCardStatus": "Draft"}
    with pytest.raises(ClientError) as denied:
        build["sm"].create_model_card(**request, SecurityConfig={"KmsKeyId": keys["dev"]})
    assert denied.value.response["Error"]["Code"] in ("AccessDeniedException", "AccessDenied")
    assert "kms:GenerateDataKey" in denied.value.response["Error"]["Message"]
    missing = keys["dev"].rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    with pytest.raises(ClientError, match="does not exist"):
        emu.client("sagemaker").create_model_card(**request, SecurityConfig={"KmsKeyId": missing})
