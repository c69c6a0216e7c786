"""CloudWatch Logs and SNS: KMS encryption and retention."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.core import Context, resource_rule

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
TOPIC = "aws:sns/topic:Topic"
PROD_MIN_RETENTION_DAYS = 365


@resource_rule(
    "logs-kms",
    [LOG_GROUP],
    why="Logs carry request payloads, job output and identifiers; a customer key puts reads behind a key policy.",
    fix="Set kmsKeyId to the logs key (the key policy must allow logs.<region>.amazonaws.com).",
)
def logs_kms(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Log groups are encrypted with a customer-managed KMS key.

    Mirrors: CKV_AWS_158
    """
    if not props.get("kmsKeyId"):
        yield "no kmsKeyId"


@resource_rule(
    "logs-retention",
    [LOG_GROUP],
    why="Without retention logs are kept (and billed) forever; prod keeps at least a year for audits.",
    fix="Set retention.logDays in the stack config (365 or more in prod).",
)
def logs_retention(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Log groups have a retention period, at least one year in prod.

    Mirrors: CKV_AWS_338
    """
    days = props.get("retentionInDays")
    if not days:
        yield "no retentionInDays: logs are kept forever"
    elif ctx.is_prod and float(days) < PROD_MIN_RETENTION_DAYS:
        yield f"retentionInDays {days:g} is below {PROD_MIN_RETENTION_DAYS} in prod"


@resource_rule(
    "sns-kms",
    [TOPIC],
    why="Alert messages name endpoints, models and failures; SSE with a customer key keeps them under the key policy.",
    fix="Set kmsMasterKeyId to the platform's key (the key policy must allow cloudwatch.amazonaws.com to use it).",
)
def sns_kms(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """SNS topics are encrypted with a customer-managed KMS key.

    Mirrors: CKV_AWS_26
    """
    key = str(props.get("kmsMasterKeyId") or "")
    if not key or key == "alias/aws/sns":
        yield f"kmsMasterKeyId is {key or 'unset'!r}"
