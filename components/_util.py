"""Small helpers shared by the components (no resources are created here)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

POLICY_VERSION = "2012-10-17"


def child_opts(parent: pulumi.Resource, **kwargs: Any) -> pulumi.ResourceOptions:
    """Resource options for a child: parented to the component, plus any extra options."""
    return pulumi.ResourceOptions(parent=parent, **kwargs)


def policy_json(statements: Sequence[Mapping[str, Any]]) -> str:
    """A policy JSON string from plain statements (inside ``.apply`` callbacks, where values are resolved)."""
    return json.dumps({"Version": POLICY_VERSION, "Statement": list(statements)})


def policy_document(statements: Sequence[Mapping[str, Any]]) -> pulumi.Output[str]:
    """An IAM/KMS/S3 policy JSON string; statements may hold Outputs (ARNs of other resources)."""
    return pulumi.Output.json_dumps({"Version": POLICY_VERSION, "Statement": list(statements)})


def account_id(parent: pulumi.Resource) -> pulumi.Output[str]:
    """The deploying account's ID (``sts:GetCallerIdentity``)."""
    return aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=parent)).account_id


def partition(parent: pulumi.Resource) -> pulumi.Output[str]:
    """The AWS partition (``aws``, ``aws-cn``, ``aws-us-gov``) so ARNs work outside the commercial one."""
    return aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=parent)).partition


def service_trust_policy(
    services: Sequence[str],
    *,
    source_account: pulumi.Input[str] | None = None,
    source_arn_like: pulumi.Input[str] | None = None,
) -> pulumi.Output[str]:
    """An ``sts:AssumeRole`` trust policy for AWS service principals.

    With ``source_account``/``source_arn_like`` the trust carries the confused-deputy conditions
    AWS recommends (https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html).
    """
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": list(services) if len(services) > 1 else services[0]},
        "Action": "sts:AssumeRole",
    }
    condition: dict[str, Any] = {}
    if source_account is not None:
        condition["StringEquals"] = {"aws:SourceAccount": source_account}
    if source_arn_like is not None:
        condition["ArnLike"] = {"aws:SourceArn": source_arn_like}
    if condition:
        statement["Condition"] = condition
    return policy_document([statement])
