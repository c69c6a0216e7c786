"""The rules as a pulumi-policy ``PolicyPack`` (what ``pulumi preview --policy-pack policies`` runs).

Resource rules become ``ResourceValidationPolicy`` objects calling the same plain functions the
offline checker calls; stack rules become ``StackValidationPolicy`` objects. The enforcement level
of each policy is the rule's level in the environment being previewed (:func:`pack_environment`).
Accepted exceptions (:mod:`policies.exceptions`) are filtered out of their rule and re-reported by
the advisory ``accepted-exceptions`` policy, so they stay visible.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.core import ENVIRONMENTS, STRICTEST_ENVIRONMENT, Context, Level, Resource, Rule
from policies.engine import all_rules, evaluate, resource_environment, stack_environment
from policies.exceptions import exception_for

PACK_NAME = "mlops-platform"


def pack_environment(environ: Mapping[str, str] | None = None) -> str:
    """The environment the pack enforces: ``MLOPS_ENVIRONMENT``, else the stack name, else prod."""
    environ = os.environ if environ is None else environ
    for key in ("MLOPS_ENVIRONMENT", "PULUMI_STACK"):
        value = environ.get(key, "")
        if value in ENVIRONMENTS:
            return value
    return STRICTEST_ENVIRONMENT


def _level(rule: Rule, environment: str) -> EnforcementLevel:
    return (
        EnforcementLevel.MANDATORY
        if rule.level(environment) is Level.MANDATORY
        else EnforcementLevel.ADVISORY
    )


def resource_from_args(args: ResourceValidationArgs) -> Resource:
    """A rule resource from pulumi-policy's resource validation arguments."""
    return Resource(urn=args.urn, type=args.resource_type, name=args.name, props=args.props)


def resource_from_policy_resource(res: PolicyResource) -> Resource:
    """A rule resource from a stack validation's resource (with its property dependencies)."""
    props: Mapping[str, Any] = res.props
    ids = {str(props[k]) for k in ("id", "arn", "name", "bucket") if isinstance(props.get(k), str)}
    deps = {k: frozenset(d.urn for d in v) for k, v in (res.property_dependencies or {}).items()}
    return Resource(
        urn=res.urn,
        type=res.resource_type,
        name=res.name,
        props=props,
        parent=res.parent.urn if res.parent else None,
        ids=frozenset(ids),
        deps=deps,
    )


def _resource_policy(rule: Rule, environment: str) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not rule.applies_to(args.resource_type) or rule.check_resource is None:
            return
        resource = resource_from_args(args)
        env = resource_environment(resource, environment)
        for message in rule.check_resource(args.resource_type, args.props, Context(env)):
            if exception_for(rule.id, args.name, message, env) is None:
                report_violation(f"{message}. Why: {rule.why} Fix: {rule.fix}", None)

    return ResourceValidationPolicy(
        name=rule.id,
        description=rule.title,
        validate=validate,
        enforcement_level=_level(rule, environment),
        remediation_steps=rule.fix,
    )


def _stack_policy(rule: Rule, environment: str) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [resource_from_policy_resource(r) for r in args.resources]
        for v in evaluate(resources, stack_environment(resources, environment), [rule]):
            if v.accepted is None:
                report_violation(f"{v.message}. Why: {rule.why} Fix: {rule.fix}", v.resource.urn)

    return StackValidationPolicy(
        name=rule.id,
        description=rule.title,
        validate=validate,
        enforcement_level=_level(rule, environment),
        remediation_steps=rule.fix,
    )


def _accepted_policy(environment: str) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [resource_from_policy_resource(r) for r in args.resources]
        for v in evaluate(resources, stack_environment(resources, environment)):
            if v.accepted is not None:
                report_violation(
                    f"[{v.rule.id}] {v.message} (accepted: {v.accepted.name}: {v.accepted.reason})",
                    v.resource.urn,
                )

    return StackValidationPolicy(
        name="accepted-exceptions",
        description="Violations accepted by a named exception in policies/exceptions.py, shown so they are never silent.",
        validate=validate,
        enforcement_level=EnforcementLevel.ADVISORY,
    )


def policies_for(environment: str) -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """Every rule as a pulumi-policy policy at its level in ``environment``, plus accepted-exceptions."""
    out: list[ResourceValidationPolicy | StackValidationPolicy] = []
    for rule in all_rules():
        out.append(
            _resource_policy(rule, environment) if rule.check_resource else _stack_policy(rule, environment)
        )
    out.append(_accepted_policy(environment))
    return out
