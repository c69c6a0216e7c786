"""Encryption on its own, under the shared recording mock."""

from __future__ import annotations

import pytest

from components.encryption import Encryption, EncryptionArgs, KeySpec, ServiceGrant, default_key_specs
from tests.unit.components._helpers import policy, statements


def test_extra_service_grant_with_source_account_condition(pulumi_mock) -> None:
    specs = (
        *default_key_specs(),
        KeySpec(
            domain="alerts",
            description="SNS alert topic",
            service_grants=(
                ServiceGrant(
                    service="cloudwatch.amazonaws.com",
                    actions=("kms:Decrypt", "kms:GenerateDataKey*"),
                    source_account_condition=True,
                ),
            ),
        ),
    )

    def program() -> dict[str, object]:
        enc = Encryption(
            "t", EncryptionArgs(name_prefix="mlops-t", region="eu-west-1", keys=specs, tags={"a": "b"})
        )
        return {"alerts": enc.key_arn("alerts")}

    result = pulumi_mock(program)
    key = next(k for k in result.of_type("aws:kms/key:Key") if k.inputs["tags"]["data-domain"] == "alerts")
    grant = next(s for s in statements(policy(key)) if "Service" in s["Principal"])
    assert grant == {
        "Sid": "AllowService0",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
    }
    logs = next(k for k in result.of_type("aws:kms/key:Key") if k.inputs["tags"]["data-domain"] == "logs")
    assert "logs.eu-west-1.amazonaws.com" in logs.inputs["policy"]
    assert result.outputs["alerts"].startswith(
        "arn:aws:kms:us-east-1:123456789012:key/"
    )  # mock region = aws:region
    assert all(r.parent == result.of_type("mlops:encryption:Encryption")[0].urn for r in result.custom())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"deletion_window_days": 3}, "deletion_window_days=3: KMS accepts 7-30"),
        ({"keys": (KeySpec(domain="logs", description="x"),)}, "needs a 'datalake' key"),
        ({"keys": (*default_key_specs(), KeySpec(domain="ml", description="again"))}, "duplicate domains"),
    ],
)
def test_args_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EncryptionArgs(name_prefix="p", region="us-east-1", **kwargs)  # type: ignore[arg-type]


def test_unknown_domain_lookup_is_a_clear_error(pulumi_mock) -> None:
    def program() -> None:
        enc = Encryption("t", EncryptionArgs(name_prefix="p", region="us-east-1"))
        with pytest.raises(
            KeyError, match=r"no KMS key for domain 'nope'; have \['compute', 'datalake', 'logs', 'ml'\]"
        ):
            enc.key_arn("nope")

    pulumi_mock(program)
