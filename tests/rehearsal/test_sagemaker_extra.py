"""Model package group policies and DeleteModelPackage, which moto lacks, as the emulator adds them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from rehearsal.emulator import Emulator
from rehearsal.sagemaker_extra import SageMakerRegistryExtras, policy_problems

GROUP = "churn"


@pytest.fixture
def sm(tmp_path: Path) -> Iterator[Any]:
    with Emulator(extensions=[SageMakerRegistryExtras()], workdir=tmp_path / "emu") as emu:
        client = emu.client("sagemaker")
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        yield client


def _policy(group_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DeployAccountsRead",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                    "Action": ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"],
                    "Resource": [group_arn, group_arn.replace("model-package-group", "model-package") + "/*"],
                }
            ],
        }
    )


def _package(sm: Any) -> str:
    return sm.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": "s3://b/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]


def test_a_group_policy_is_stored_returned_and_deleted(sm: Any) -> None:
    arn = sm.describe_model_package_group(ModelPackageGroupName=GROUP)["ModelPackageGroupArn"]
    policy = _policy(arn)
    put = sm.put_model_package_group_policy(ModelPackageGroupName=GROUP, ResourcePolicy=policy)
    assert put["ModelPackageGroupArn"] == arn
    assert sm.get_model_package_group_policy(ModelPackageGroupName=arn)["ResourcePolicy"] == policy
    sm.delete_model_package_group_policy(ModelPackageGroupName=GROUP)
    with pytest.raises(ClientError, match="has no resource policy") as missing:
        sm.get_model_package_group_policy(ModelPackageGroupName=GROUP)
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError, match="has no resource policy"):
        sm.delete_model_package_group_policy(ModelPackageGroupName=GROUP)


def test_policy_calls_on_a_missing_group_fail_as_sagemaker_does(sm: Any) -> None:
    for call, extra in (
        (sm.put_model_package_group_policy, {"ResourcePolicy": _policy("arn:aws:sagemaker:x")}),
        (sm.get_model_package_group_policy, {}),
        (sm.delete_model_package_group_policy, {}),
    ):
        with pytest.raises(
            ClientError, match=r"ModelPackageGroup arn:aws:sagemaker:.*/nope does not exist"
        ) as err:
            call(ModelPackageGroupName="nope", **extra)
        assert err.value.response["Error"]["Code"] == "ValidationException"


def test_an_invalid_policy_is_refused_with_what_is_wrong(sm: Any) -> None:
    with pytest.raises(ClientError, match="not valid JSON"):
        sm.put_model_package_group_policy(ModelPackageGroupName=GROUP, ResourcePolicy="{nope")
    no_principal = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    problems = policy_problems(json.dumps(no_principal))
    assert any("needs a Principal" in p for p in problems)
    assert any("sagemaker:* actions" in p for p in problems)
    assert any("SageMaker ARNs" in p for p in problems)
    with pytest.raises(ClientError, match="needs a Principal"):
        sm.put_model_package_group_policy(
            ModelPackageGroupName=GROUP, ResourcePolicy=json.dumps(no_principal)
        )


def test_delete_model_package_never_reuses_a_version_number(sm: Any) -> None:
    first, second = _package(sm), _package(sm)
    sm.delete_model_package(ModelPackageName=second)
    with pytest.raises(ClientError, match="not found"):
        sm.describe_model_package(ModelPackageName=second)
    third = _package(sm)
    assert third.endswith("/3")  # AWS numbers on; version 2 stays deleted
    listed = sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    assert sorted(p["ModelPackageArn"] for p in listed) == sorted([first, third])
    with pytest.raises(ClientError, match="not found"):
        sm.delete_model_package(ModelPackageName=second)


def test_close_removes_the_added_actions(tmp_path: Path) -> None:
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    original = SageMakerModelBackend.create_model_package
    with Emulator(extensions=[SageMakerRegistryExtras()], workdir=tmp_path / "emu"):
        assert SageMakerModelBackend.create_model_package is not original
    assert SageMakerModelBackend.create_model_package is original
    assert not hasattr(SageMakerResponse, "put_model_package_group_policy")
    assert not hasattr(SageMakerResponse, "delete_model_package")


# --- model cards ------------------------------------------------------------------------------------


def _card(**overrides: Any) -> str:
    content: dict[str, Any] = {
        "intended_uses": {"risk_rating": "Low", "intended_uses": "tests"},
        "evaluation_details": [
            {
                "name": "test",
                "metric_groups": [
                    {"name": "m", "metric_data": [{"name": "auc", "type": "number", "value": 0.8}]}
                ],
            }
        ],
    }
    content.update(overrides)
    return json.dumps(content)


def test_model_card_name_status_and_content_are_validated(sm: Any) -> None:
    for name in ("-churn", "churn_1", "a" * 64):
        with pytest.raises(ClientError, match="Invalid ModelCardName"):
            sm.create_model_card(ModelCardName=name, Content=_card(), ModelCardStatus="Draft")
    with pytest.raises(ClientError, match="ModelCardStatus must be one of"):
        sm.create_model_card(ModelCardName="churn-1", Content=_card(), ModelCardStatus="Done")
    with pytest.raises(ClientError, match="risk_rating 'Severe'"):
        sm.create_model_card(
            ModelCardName="churn-1",
            Content=_card(intended_uses={"risk_rating": "Severe"}),
            ModelCardStatus="Draft",
        )
    with pytest.raises(ClientError, match="unknown section 'notes'"):
        sm.create_model_card(ModelCardName="churn-1", Content=_card(notes="x"), ModelCardStatus="Draft")
    bad_metric = [
        {
            "name": "t",
            "metric_groups": [
                {"name": "m", "metric_data": [{"name": "auc", "type": "number", "value": "high"}]}
            ],
        }
    ]
    with pytest.raises(ClientError, match="value must be a number"):
        sm.create_model_card(
            ModelCardName="churn-1", Content=_card(evaluation_details=bad_metric), ModelCardStatus="Draft"
        )
    huge = _card(additional_information={"ethical_considerations": "x" * 100_001})
    with pytest.raises(ClientError, match="at most 100000 characters"):
        sm.create_model_card(ModelCardName="churn-1", Content=huge, ModelCardStatus="Draft")


def test_model_card_updates_follow_aws(sm: Any) -> None:
    arn = sm.create_model_card(ModelCardName="churn-1", Content=_card(), ModelCardStatus="Draft")[
        "ModelCardArn"
    ]
    with pytest.raises(ClientError, match="cannot update both model card content and model card status"):
        sm.update_model_card(ModelCardName="churn-1", Content=_card(), ModelCardStatus="Approved")
    # a status-only update keeps the content (and the ARN names the card too)
    sm.update_model_card(ModelCardName=arn, ModelCardStatus="Approved")
    card = sm.describe_model_card(ModelCardName="churn-1")
    assert (card["ModelCardStatus"], card["ModelCardVersion"], json.loads(card["Content"])) == (
        "Approved",
        2,
        json.loads(_card()),
    )
    sm.update_model_card(ModelCardName="churn-1", ModelCardStatus="Archived")
    with pytest.raises(ClientError, match="Archived state"):
        sm.update_model_card(ModelCardName="churn-1", Content=_card())
    with pytest.raises(ClientError, match="does not exist"):
        sm.update_model_card(ModelCardName="churn-2", ModelCardStatus="Approved")


def test_a_card_key_must_be_an_enabled_symmetric_key_of_the_account(tmp_path: Path) -> None:
    """SecurityConfig.KmsKeyId: SageMaker asks KMS for a data key of it, which fails for these keys."""
    with Emulator(extensions=[SageMakerRegistryExtras()], workdir=tmp_path / "emu") as emu:
        sm, kms = emu.client("sagemaker"), emu.client("kms")
        good = kms.create_key()["KeyMetadata"]["Arn"]
        disabled = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.disable_key(KeyId=disabled)
        signing = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_2048")["KeyMetadata"]["KeyId"]
        for key, problem in (
            ("alias/no-such-key", "does not exist"),
            (disabled, "is Disabled, not Enabled"),
            (signing, "not a symmetric encryption key"),
        ):
            with pytest.raises(ClientError, match=problem):
                sm.create_model_card(
                    ModelCardName="churn-1", Content=_card(), ModelCardStatus="Draft",
                    SecurityConfig={"KmsKeyId": key},
                )  # fmt: skip
        sm.create_model_card(
            ModelCardName="churn-1",
            Content=_card(),
            ModelCardStatus="Draft",
            SecurityConfig={"KmsKeyId": good},
        )
        sm.update_model_card(ModelCardName="churn-1", ModelCardStatus="Approved")
        card = sm.describe_model_card(ModelCardName="churn-1")
        assert card["SecurityConfig"] == {"KmsKeyId": good}  # kept by every version
        assert card["ModelCardStatus"] == "Approved"
