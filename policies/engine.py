"""Run the rules over a stack's resources: one code path for the offline checker and the pack."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import policies.rules  # noqa: F401 - registers the rules
from policies.core import (
    ENVIRONMENTS,
    REGISTRY,
    STRICTEST_ENVIRONMENT,
    Context,
    Level,
    Resource,
    Rule,
    Stack,
    tags_of,
)
from policies.exceptions import AcceptedException, exception_for


@dataclass(frozen=True)
class Violation:
    """One rule broken by one resource."""

    rule: Rule
    resource: Resource
    message: str
    level: Level
    accepted: AcceptedException | None = None

    @property
    def blocking(self) -> bool:
        """True for a mandatory violation no accepted exception covers."""
        return self.level is Level.MANDATORY and self.accepted is None

    def to_json(self) -> dict[str, object]:
        """The shape ``mlops check --json`` prints."""
        return {
            "rule": self.rule.id,
            "level": str(self.level),
            "accepted": self.accepted.name if self.accepted else None,
            "acceptedReason": self.accepted.reason if self.accepted else None,
            "resource": self.resource.name,
            "type": self.resource.type,
            "urn": self.resource.urn,
            "message": self.message,
            "title": self.rule.title,
            "why": self.rule.why,
            "fix": self.rule.fix,
            "mirrors": list(self.rule.mirrors),
        }


def all_rules() -> list[Rule]:
    """Every registered rule, sorted by ID."""
    return [REGISTRY[k] for k in sorted(REGISTRY)]


def stack_environment(resources: Iterable[Resource], fallback: str | None = None) -> str:
    """The environment of a stack: the most common ``environment`` tag, else ``fallback``, else prod."""
    counts = Counter(
        str(env) for r in resources if (env := tags_of(r.props).get("environment")) in ENVIRONMENTS
    )
    if counts:
        return counts.most_common(1)[0][0]
    return fallback if fallback in ENVIRONMENTS else STRICTEST_ENVIRONMENT


def resource_environment(resource: Resource, default: str) -> str:
    """A resource's own ``environment`` tag when it is a known environment, else the stack's."""
    env = tags_of(resource.props).get("environment")
    return str(env) if env in ENVIRONMENTS else default


def check_resource(rule: Rule, resource: Resource, ctx: Context) -> list[str]:
    """Messages of one resource rule for one resource (empty: compliant or not applicable)."""
    if rule.check_resource is None or not rule.applies_to(resource.type):
        return []
    return list(rule.check_resource(resource.type, resource.props, ctx))


def evaluate(
    resources: Sequence[Resource], environment: str, rules: Sequence[Rule] | None = None
) -> list[Violation]:
    """Every violation of ``rules`` (default: all) in a stack checked as ``environment``."""
    rules = list(rules) if rules is not None else all_rules()
    stack = Stack(resources=resources)
    found: list[Violation] = []
    for rule in rules:
        if rule.check_resource is not None:
            for resource in resources:
                env = resource_environment(resource, environment)
                for message in check_resource(rule, resource, Context(env)):
                    found.append(_violation(rule, resource, message, env))
        if rule.check_stack is not None:
            for resource, message in rule.check_stack(stack, Context(environment)):
                found.append(_violation(rule, resource, message, environment))
    return found


def _violation(rule: Rule, resource: Resource, message: str, environment: str) -> Violation:
    return Violation(
        rule=rule,
        resource=resource,
        message=message,
        level=rule.level(environment),
        accepted=exception_for(rule.id, resource.name, message, environment),
    )
