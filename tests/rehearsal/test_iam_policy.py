"""The policy engine on its own: matching, condition operators, cross-policy evaluation."""

from __future__ import annotations

import pytest

from rehearsal.iam.evaluate import evaluate
from rehearsal.iam.policy import Policy, PolicyError, Principal, evaluate_condition_block

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-sagemaker-execution"
ME = Principal("AWS", ROLE, ACCOUNT, f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-dev-sagemaker-execution/s")


def identity(*statements: dict) -> Policy:
    return Policy.parse("test identity", {"Version": "2012-10-17", "Statement": list(statements)})


def resource(*statements: dict) -> Policy:
    return Policy.parse(
        "test resource", {"Version": "2012-10-17", "Statement": list(statements)}, kind="resource"
    )


def allow(action: str | list[str], res: str | list[str] = "*", **extra: object) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": res, **extra}


def test_action_wildcards_are_case_insensitive_resources_are_not() -> None:
    policy = identity(allow("S3:Get*", "arn:aws:s3:::bucket/models/*"))
    assert evaluate(ME, "s3:GetObject", "arn:aws:s3:::bucket/models/a", {}, [policy]).allowed
    assert not evaluate(ME, "s3:GetObject", "arn:aws:s3:::bucket/Models/a", {}, [policy]).allowed
    assert not evaluate(ME, "s3:PutObject", "arn:aws:s3:::bucket/models/a", {}, [policy]).allowed


def test_not_action_and_not_resource() -> None:
    policy = identity({"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secret/*"})
    assert evaluate(ME, "s3:GetObject", "arn:aws:s3:::public/a", {}, [policy]).allowed
    assert not evaluate(ME, "s3:GetObject", "arn:aws:s3:::secret/a", {}, [policy]).allowed
    assert not evaluate(ME, "iam:PassRole", "arn:aws:s3:::public/a", {}, [policy]).allowed


def test_explicit_deny_wins_over_any_allow() -> None:
    policy = identity(allow("s3:*"), {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"})
    decision = evaluate(ME, "s3:DeleteObject", "arn:aws:s3:::b/k", {}, [policy])
    assert not decision.allowed
    assert decision.explicit_deny is not None
    assert decision.explicit_deny.label == "Statement[1]"


def test_policy_variables_come_from_the_context() -> None:
    policy = identity(allow("s3:GetObject", "arn:aws:s3:::b/${aws:PrincipalAccount}/*"))
    assert evaluate(
        ME, "s3:GetObject", f"arn:aws:s3:::b/{ACCOUNT}/x", {"aws:PrincipalAccount": ACCOUNT}, [policy]
    ).allowed
    assert not evaluate(ME, "s3:GetObject", f"arn:aws:s3:::b/{ACCOUNT}/x", {}, [policy]).allowed


@pytest.mark.parametrize(
    ("block", "context", "expected"),
    [
        ({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, {"aws:sourceaccount": ACCOUNT}, True),
        ({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, {}, False),
        ({"StringNotEquals": {"aws:SourceAccount": ACCOUNT}}, {}, True),  # negated + absent key
        ({"StringNotEquals": {"k": ["a", "b"]}}, {"k": "b"}, False),
        ({"StringLike": {"k": "ab*"}}, {"k": "abc"}, True),
        ({"StringEqualsIgnoreCase": {"k": "ABC"}}, {"k": "abc"}, True),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:sagemaker:*:*:training-job/*"}},
            {"aws:SourceArn": "arn:aws:sagemaker:us-east-1:1:training-job/x"},
            True,
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:sagemaker:*:*:training-job/*"}},
            {"aws:SourceArn": "arn:aws:sagemaker:us-east-1:1:endpoint/x"},
            False,
        ),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"}, False),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "false"}, True),
        ({"Null": {"s3:x-amz-server-side-encryption": "true"}}, {}, True),
        (
            {"Null": {"s3:x-amz-server-side-encryption": "true"}},
            {"s3:x-amz-server-side-encryption": "aws:kms"},
            False,
        ),
        ({"NumericLessThan": {"s3:TlsVersion": "1.2"}}, {"s3:TlsVersion": "1.3"}, False),
        ({"NumericLessThan": {"s3:TlsVersion": "1.2"}}, {"s3:TlsVersion": "1.0"}, True),
        ({"NumericGreaterThanEquals": {"n": "5"}}, {"n": "5"}, True),
        (
            {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
            {"aws:CurrentTime": "2026-12-01T00:00:00Z"},
            True,
        ),
        (
            {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
            {"aws:CurrentTime": "2026-12-01T00:00:00Z"},
            False,
        ),
        ({"StringEqualsIfExists": {"k": "a"}}, {}, True),
        ({"StringEqualsIfExists": {"k": "a"}}, {"k": "b"}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}, {"aws:TagKeys": ["env", "team"]}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}, {}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}}, {"aws:TagKeys": ["env"]}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}, {"aws:TagKeys": ["env", "team"]}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}, {}, True),
        ({"StringEquals": {"a": "1"}, "StringLike": {"b": "x*"}}, {"a": "1", "b": "y"}, False),  # ANDed
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}, True),
    ],
)
def test_condition_operators(block: dict, context: dict, expected: bool) -> None:
    assert evaluate_condition_block(block, context) is expected


def test_unknown_operator_is_an_error_naming_it() -> None:
    with pytest.raises(PolicyError, match="StringSortOf"):
        evaluate_condition_block({"StringSortOf": {"k": "v"}}, {"k": "v"})


def test_resource_policy_naming_the_role_grants_without_identity_grant() -> None:
    bucket = resource(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::b/*",
        }
    )
    assert evaluate(ME, "s3:GetObject", "arn:aws:s3:::b/k", {}, [], bucket).allowed


def test_resource_policy_naming_the_account_delegates_to_iam() -> None:
    bucket = resource(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "s3:*",
            "Resource": "*",
        }
    )
    assert not evaluate(ME, "s3:GetObject", "arn:aws:s3:::b/k", {}, [], bucket).allowed
    assert evaluate(
        ME, "s3:GetObject", "arn:aws:s3:::b/k", {}, [identity(allow("s3:GetObject"))], bucket
    ).allowed


def test_key_policy_must_allow_even_with_an_identity_grant() -> None:
    key_arn = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"
    other = resource(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    grant = [identity(allow("kms:Decrypt", key_arn))]
    decision = evaluate(ME, "kms:Decrypt", key_arn, {}, grant, other, resource_policy_must_allow=True)
    assert not decision.allowed
    assert "no statement of the test resource allows" in decision.reason
    delegating = resource(
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "kms:*", "Resource": "*"}
    )
    assert evaluate(
        ME, "kms:Decrypt", key_arn, {}, grant, delegating, resource_policy_must_allow=True
    ).allowed
    assert not evaluate(
        ME, "kms:Decrypt", key_arn, {}, [], delegating, resource_policy_must_allow=True
    ).allowed


def test_deny_in_a_resource_policy_applies_to_the_accounts_principals() -> None:
    bucket = resource(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    grant = [identity(allow("s3:PutObject"))]
    assert evaluate(
        ME, "s3:PutObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": "true"}, grant, bucket
    ).allowed
    denied = evaluate(ME, "s3:PutObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": "false"}, grant, bucket)
    assert not denied.allowed
    assert denied.explicit_deny is not None


def test_not_principal_deny_spares_the_named_principal() -> None:
    bucket = resource({"Effect": "Deny", "NotPrincipal": {"AWS": ROLE}, "Action": "s3:*", "Resource": "*"})
    grant = [identity(allow("s3:GetObject"))]
    assert evaluate(ME, "s3:GetObject", "arn:aws:s3:::b/k", {}, grant, bucket).allowed
    other = Principal(
        "AWS", f"arn:aws:iam::{ACCOUNT}:role/x", ACCOUNT, f"arn:aws:sts::{ACCOUNT}:assumed-role/x/s"
    )
    assert not evaluate(other, "s3:GetObject", "arn:aws:s3:::b/k", {}, grant, bucket).allowed


def test_policy_parse_errors_name_the_policy_and_statement() -> None:
    with pytest.raises(PolicyError, match=r"mine: Statement\[0\].Effect"):
        Policy.parse("mine", {"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]})
    with pytest.raises(PolicyError, match="needs a Principal"):
        Policy.parse(
            "bucket", {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}, kind="resource"
        )


def test_unused_grants_of_not_resource_statements_count_calls_outside_the_exclusion() -> None:
    from rehearsal.iam.report import AuthorizedCall, unused_grants

    policy = identity(
        {
            "Sid": "AllButSecret",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "NotResource": "arn:aws:s3:::secret/*",
        },
        {"Sid": "Never", "Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"},
    )
    calls = [AuthorizedCall(ROLE, "s3:GetObject", "arn:aws:s3:::b/k", "s3:GetObject")]
    report = unused_grants({ROLE: [policy]}, calls)
    assert [(g.statement, g.action) for g in report.for_role(ROLE)] == [("Never", "s3:DeleteObject")]
