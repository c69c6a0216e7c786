"""KMS: rotation, a defined key policy without wildcard principals, no lockout-check bypass."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.core import Context, Level, is_truthy, policy_statements, principals, resource_rule

KEY = "aws:kms/key:Key"


@resource_rule(
    "kms-key-rotation",
    [KEY],
    why="Yearly rotation limits how much data one key version protects and is required by most audits.",
    fix="Set enableKeyRotation: true (the Encryption component does).",
)
def key_rotation(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Symmetric customer-managed keys rotate automatically.

    Mirrors: CKV_AWS_7, cmk-backing-key-rotation-enabled
    """
    spec = props.get("customerMasterKeySpec") or props.get("keySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and not is_truthy(props.get("enableKeyRotation")):
        yield "enableKeyRotation is not true"


@resource_rule(
    "kms-key-policy-defined",
    [KEY],
    why="Without an explicit key policy AWS applies the default one, which delegates all use to IAM in the account.",
    fix="Pass a key policy that names the key's administrators and users.",
)
def key_policy_defined(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Every key has an explicit key policy.

    Mirrors: CKV2_AWS_64
    """
    if not props.get("policy"):
        yield "no key policy: the default policy applies"


@resource_rule(
    "kms-no-wildcard-principal",
    [KEY],
    why="A key policy allowing Principal * without a condition lets any AWS account use the key.",
    fix="Name the roles or account root instead of *, or add aws:PrincipalAccount / kms:CallerAccount conditions.",
)
def no_wildcard_principal(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Key policies never allow an unconditioned ``*`` principal.

    Mirrors: CKV_AWS_33
    """
    for statement in policy_statements(props.get("policy")):
        if (
            statement.get("Effect") == "Allow"
            and not statement.get("Condition")
            and any(v == "*" for _, v in principals(statement))
        ):
            yield f"statement {statement.get('Sid', '(no Sid)')!r} allows Principal * without a condition"


@resource_rule(
    "kms-no-lockout-bypass",
    [KEY],
    why="Bypassing the lockout safety check can create a key nobody can ever administer again.",
    fix="Leave bypassPolicyLockoutSafetyCheck unset or false.",
)
def no_lockout_bypass(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Keys never bypass the policy lockout safety check.

    Mirrors: aws-kms-key-disallow-bypass-policy-lockout-safety-check
    """
    if is_truthy(props.get("bypassPolicyLockoutSafetyCheck")):
        yield "bypassPolicyLockoutSafetyCheck is true"


@resource_rule(
    "kms-prod-deletion-window",
    [KEY],
    level=Level.ADVISORY,
    prod=Level.MANDATORY,
    why="A scheduled key deletion destroys every object encrypted with the key; prod keeps the longest window to notice and cancel.",
    fix="Set retention.kmsDeletionWindowDays: 30 in the prod stack config.",
)
def prod_deletion_window(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Prod keys have the maximum 30-day deletion window.

    Mirrors: none (platform rule)
    """
    window = props.get("deletionWindowInDays")
    if ctx.is_prod and (window is None or float(window) < 30):
        yield f"deletionWindowInDays is {window!r}, below 30 in prod"
