"""The rule model: rules, levels, the per-run context and the resources rules look at.

A *resource rule* is a function ``(resource_type, props, ctx) -> messages``; a *stack rule* is a
function ``(stack, ctx) -> (resource, message)`` pairs for checks that relate several resources
(an S3 bucket and the separate resources that configure it). Both are registered with
:func:`resource_rule` / :func:`stack_rule`; the first docstring line says what the rule requires
and a ``Mirrors:`` line names the public rule(s) it re-implements.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ENVIRONMENTS = ("dev", "staging", "prod")
"""The environments the platform's stacks are named after."""

STRICTEST_ENVIRONMENT = "prod"
"""Used when no environment can be found: an unknown stack is checked as strictly as prod."""


class Level(enum.StrEnum):
    """How a violation counts: mandatory ones fail ``mlops check`` and block ``pulumi up``."""

    MANDATORY = "mandatory"
    ADVISORY = "advisory"


@dataclass(frozen=True)
class Context:
    """What a rule may know besides the resource: the environment being checked."""

    environment: str

    @property
    def is_prod(self) -> bool:
        """True for the production environment."""
        return self.environment == "prod"

    @property
    def is_dev(self) -> bool:
        """True for the development environment."""
        return self.environment == "dev"


@dataclass(frozen=True)
class Resource:
    """One declared resource as a rule sees it (a pulumi-policy resource or a synth record)."""

    urn: str
    type: str
    name: str
    props: Mapping[str, Any]
    parent: str | None = None
    ids: frozenset[str] = frozenset()
    """Values other resources use to reference this one (ID, ARN, name, bucket name)."""
    deps: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """URNs each input property depends on (known under the Pulumi engine; empty offline)."""

    def refers_to(self, prop: str, target: Resource) -> bool:
        """True when this resource's input ``prop`` references ``target``."""
        if target.urn in self.deps.get(prop, frozenset()):
            return True
        value = self.props.get(prop)
        return isinstance(value, str) and value in target.ids


ResourceCheck = Callable[[str, Mapping[str, Any], Context], Iterable[str]]
StackCheck = Callable[["Stack", Context], Iterable[tuple[Resource, str]]]


@dataclass(frozen=True)
class Rule:
    """One guardrail: what it requires, why, how to fix it, and how it is enforced."""

    id: str
    title: str
    why: str
    fix: str
    mirrors: tuple[str, ...]
    levels: Mapping[str, Level]
    default_level: Level
    resource_types: tuple[str, ...] = ()
    check_resource: ResourceCheck | None = None
    check_stack: StackCheck | None = None
    area: str = ""

    def level(self, environment: str) -> Level:
        """The enforcement level in ``environment`` (prod is never laxer than the default)."""
        return self.levels.get(environment, self.default_level)

    @property
    def level_summary(self) -> str:
        """``mandatory`` / ``advisory``, or the per-environment levels when they differ."""
        levels = {env: self.level(env) for env in ENVIRONMENTS}
        if len(set(levels.values())) == 1:
            return str(self.default_level)
        return ", ".join(f"{env}: {lvl}" for env, lvl in levels.items())

    def applies_to(self, resource_type: str) -> bool:
        """True when this resource rule looks at ``resource_type`` (``"*"``: every type)."""
        return "*" in self.resource_types or resource_type in self.resource_types


REGISTRY: dict[str, Rule] = {}


def _doc_parts(fn: Callable[..., Any]) -> tuple[str, tuple[str, ...]]:
    doc = (fn.__doc__ or "").strip()
    if not doc:
        raise ValueError(f"rule function {fn.__name__} needs a docstring (what it requires; Mirrors: IDs)")
    title = doc.splitlines()[0].strip()
    mirrors: tuple[str, ...] = ()
    for line in doc.splitlines():
        line = line.strip()
        if line.startswith("Mirrors:"):
            text = line.removeprefix("Mirrors:").strip()
            mirrors = tuple(
                p.strip() for p in text.split(",") if p.strip() and not p.strip().startswith("none")
            )
    return title, mirrors


def _register(rule: Rule) -> None:
    if rule.id in REGISTRY:
        raise ValueError(f"duplicate rule id {rule.id!r}")
    REGISTRY[rule.id] = rule


def _levels(level: Level, prod: Level | None, staging: Level | None, dev: Level | None) -> dict[str, Level]:
    out: dict[str, Level] = {}
    for env, value in (("prod", prod), ("staging", staging), ("dev", dev)):
        if value is not None and value != level:
            out[env] = value
    return out


def resource_rule(
    rule_id: str,
    types: Sequence[str],
    *,
    why: str,
    fix: str,
    level: Level = Level.MANDATORY,
    prod: Level | None = None,
    staging: Level | None = None,
    dev: Level | None = None,
) -> Callable[[ResourceCheck], ResourceCheck]:
    """Register a function ``(resource_type, props, ctx) -> messages`` as a resource rule."""

    def wrap(fn: ResourceCheck) -> ResourceCheck:
        title, mirrors = _doc_parts(fn)
        _register(
            Rule(
                id=rule_id,
                title=title,
                why=why,
                fix=fix,
                mirrors=mirrors,
                levels=_levels(level, prod, staging, dev),
                default_level=level,
                resource_types=tuple(types),
                check_resource=fn,
                area=fn.__module__.rsplit(".", 1)[-1],
            )
        )
        return fn

    return wrap


def stack_rule(
    rule_id: str,
    *,
    why: str,
    fix: str,
    level: Level = Level.MANDATORY,
    prod: Level | None = None,
    staging: Level | None = None,
    dev: Level | None = None,
) -> Callable[[StackCheck], StackCheck]:
    """Register a function ``(stack, ctx) -> (resource, message) pairs`` as a stack rule."""

    def wrap(fn: StackCheck) -> StackCheck:
        title, mirrors = _doc_parts(fn)
        _register(
            Rule(
                id=rule_id,
                title=title,
                why=why,
                fix=fix,
                mirrors=mirrors,
                levels=_levels(level, prod, staging, dev),
                default_level=level,
                check_stack=fn,
                area=fn.__module__.rsplit(".", 1)[-1],
            )
        )
        return fn

    return wrap


@dataclass(frozen=True)
class Stack:
    """All resources of one stack, for rules that relate resources to each other."""

    resources: Sequence[Resource]

    def of_type(self, *types: str) -> list[Resource]:
        """Resources of the given type tokens, in declaration order."""
        return [r for r in self.resources if r.type in types]

    def referencing(self, type_token: str, prop: str, target: Resource) -> list[Resource]:
        """Resources of ``type_token`` whose ``prop`` input references ``target``."""
        return [r for r in self.of_type(type_token) if r.refers_to(prop, target)]


# -- helpers shared by rule modules -------------------------------------------------------------


def tags_of(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """The resource's ``tags`` input (empty when absent)."""
    tags = props.get("tags")
    return tags if isinstance(tags, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """A value that may be a single item or a sequence, as a list.

    pulumi-policy hands rules read-only ``Sequence`` proxies rather than lists, so any
    non-string sequence counts.
    """
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    return [value]


def policy_statements(document: Any) -> list[Mapping[str, Any]]:
    """The statements of a policy document given as a JSON string or a mapping."""
    if document is None or document == "":
        return []
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return []
    if not isinstance(document, Mapping):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def principals(statement: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(kind, value)`` pairs of a statement's Principal (``"*"`` yields ``("AWS", "*")``)."""
    principal = statement.get("Principal")
    if principal == "*":
        yield "AWS", "*"
        return
    if isinstance(principal, Mapping):
        for kind, values in principal.items():
            for value in as_list(values):
                yield str(kind), str(value)


def is_truthy(value: Any) -> bool:
    """True for ``True`` and the string ``"true"`` (inputs recorded from JSON-ish configs)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")
