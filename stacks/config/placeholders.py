"""Example values the committed stack files carry until a platform team replaces them.

``stacks/Pulumi.staging.yaml`` and ``Pulumi.prod.yaml`` name deployer roles, the upstream ML key and
accounts of AWS's documentation account ``123456789012``, the all-zero key ID and ``replace-me`` names, so that the
files parse, synthesize and document their shape. Applying them to a real account would create EKS
access entries for roles that do not exist and grant an upstream key that is not there, so
:func:`placeholder_paths` finds every such value and :mod:`stacks.platform` refuses to apply them in
any account other than the documentation one (the offline synth and the rehearsal run as that
account). docs/first-deploy.md lists the values to replace.
"""

from __future__ import annotations

from typing import Any

DOCUMENTATION_ACCOUNT = "123456789012"
"""The account ID AWS's documentation uses in examples (also the offline mock's and moto's account)."""
PLACEHOLDER_KEY_ID = "00000000-0000-0000-0000-000000000000"
"""The all-zero KMS key ID of the example ``mlKeyArn`` values."""
PLACEHOLDER_MARK = "replace-me"
"""Marks example names (``artifactsBucketName: mlops-staging-artifacts-replace-me``)."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _walk(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _walk(item, f"{path}.{_camel(str(key))}" if path else _camel(str(key)), found)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]", found)
    elif isinstance(value, str) and (
        value == DOCUMENTATION_ACCOUNT
        or f":{DOCUMENTATION_ACCOUNT}:" in value
        or PLACEHOLDER_KEY_ID in value
        or PLACEHOLDER_MARK in value
    ):
        found.append(path)


def placeholder_paths(config: Any) -> list[str]:
    """Config paths (camelCase, as in the stack file) whose value is an example account, ARN or key.

    ``config`` is a :class:`stacks.config.PlatformConfig` (or any pydantic model / plain mapping).
    """
    data = config.model_dump() if hasattr(config, "model_dump") else config
    found: list[str] = []
    _walk(data, "", found)
    return found


class PlaceholderConfigError(ValueError):
    """The stack file still names example accounts or keys while deploying into a real account."""


def refuse_placeholders(environment: str, account_id: str, paths: list[str]) -> str:
    """Raise :class:`PlaceholderConfigError` when ``paths`` is non-empty and ``account_id`` is real.

    Returns ``account_id`` so it can sit in an ``Output.apply`` chain.
    """
    if paths and account_id != DOCUMENTATION_ACCOUNT:
        raise PlaceholderConfigError(
            f"stacks/Pulumi.{environment}.yaml still names AWS's example account {DOCUMENTATION_ACCOUNT} "
            f"or an example name at {', '.join(paths)}, but this deploy runs in account {account_id}: "
            "replace them with this environment's deployer role ARNs and the upstream environment's "
            "account and key ARN (docs/first-deploy.md, 'Before the first apply'), then run `pulumi up` again"
        )
    return account_id
