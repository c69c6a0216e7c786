"""Tags: owner, environment and cost center on every taggable AWS resource."""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from policies.core import ENVIRONMENTS, Context, resource_rule, tags_of

REQUIRED_TAGS = ("owner", "environment", "cost-center")


@functools.cache
def is_taggable(resource_type: str) -> bool:
    """True when the pulumi-aws resource type accepts a ``tags`` input."""
    try:
        pkg, module_path, class_name = resource_type.split(":")
    except ValueError:
        return False
    if pkg != "aws":
        return False
    module_name = module_path.split("/")[0]
    try:
        module = importlib.import_module(
            "pulumi_aws" if module_name == "index" else f"pulumi_aws.{module_name}"
        )
    except ImportError:
        return False
    cls = getattr(module, class_name, None)
    init = getattr(cls, "_internal_init", None)
    return init is not None and "tags" in inspect.signature(init).parameters


@resource_rule(
    "tags-required",
    ["*"],
    why="Owner, environment and cost center are how costs are charged back and an orphaned resource finds its team.",
    fix="Set mlops-platform:owner and mlops-platform:costCenter in the stack config; components tag every child.",
)
def required_tags(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Every taggable AWS resource carries ``owner``, ``environment`` and ``cost-center`` tags.

    Mirrors: none (AWS tagging best practices; awsguard has no tag rule)
    """
    if not is_taggable(resource_type):
        return
    tags = tags_of(props)
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if missing:
        yield f"missing tags: {', '.join(missing)}"
    env = tags.get("environment")
    if env and env not in ENVIRONMENTS:
        yield f"environment tag {env!r} is not one of {', '.join(ENVIRONMENTS)}"
