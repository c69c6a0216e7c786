"""The IAM decision for one (principal, action, resource, context) over a set of policies.

Same-account evaluation as
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html describes it
(no SCPs, permission boundaries or session policies in the emulated account):

1. an explicit ``Deny`` in any applicable policy (identity or resource) denies;
2. otherwise an ``Allow`` in an identity policy, or in a resource policy that names the principal
   itself (its role ARN or session ARN, or ``*``), allows;
3. a resource policy that names only the *account* delegates to IAM: it allows nothing by itself;
4. for KMS keys and role trust policies the resource policy must allow
   (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html): a key policy that
   names the principal allows; one that names the account allows only together with an identity grant.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rehearsal.iam.policy import Context, Policy, Principal, Statement, principal_matches


@dataclass(frozen=True)
class StatementRef:
    """One statement of one policy, as reports name it."""

    policy: str
    kind: str
    label: str
    statement: str
    """The statement's JSON."""

    @classmethod
    def of(cls, policy: Policy, statement: Statement) -> StatementRef:
        """Reference ``statement`` of ``policy``."""
        return cls(policy.name, policy.kind, statement.label, json.dumps(statement.raw, sort_keys=True))


@dataclass(frozen=True)
class Decision:
    """Allowed or not, and which statements decided."""

    allowed: bool
    action: str
    resource: str
    explicit_deny: StatementRef | None = None
    allowed_by: tuple[StatementRef, ...] = ()
    consulted: tuple[str, ...] = ()
    reason: str = ""


@dataclass
class _Matches:
    identity_allow: list[StatementRef] = field(default_factory=list)
    resource_allow: list[StatementRef] = field(default_factory=list)
    resource_allow_via_account: list[StatementRef] = field(default_factory=list)
    deny: list[StatementRef] = field(default_factory=list)


def _statement_applies(statement: Statement, action: str, resource: str, context: Context) -> bool:
    if not statement.action_matches(action):
        return False
    if (statement.resources or statement.not_resources) and not statement.resource_matches(resource, context):
        return False
    return statement.conditions_hold(context)


def _principal_applies(statement: Statement, principal: Principal) -> tuple[bool, bool]:
    if statement.principal is not None:
        return principal_matches(statement.principal, principal)
    if statement.not_principal is not None:
        matched, _ = principal_matches(statement.not_principal, principal)
        return (not matched), False
    return False, False


def evaluate(
    principal: Principal,
    action: str,
    resource: str,
    context: Context,
    identity_policies: Sequence[Policy],
    resource_policy: Policy | None = None,
    *,
    resource_policy_must_allow: bool = False,
) -> Decision:
    """Decide ``action`` on ``resource`` for ``principal`` (see the module docstring)."""
    found = _Matches()
    for policy in identity_policies:
        for statement in policy.statements:
            if _statement_applies(statement, action, resource, context):
                ref = StatementRef.of(policy, statement)
                (found.identity_allow if statement.effect == "Allow" else found.deny).append(ref)
    if resource_policy is not None:
        for statement in resource_policy.statements:
            matched, via_account = _principal_applies(statement, principal)
            if not matched or not _statement_applies(statement, action, resource, context):
                continue
            ref = StatementRef.of(resource_policy, statement)
            if statement.effect == "Deny":
                found.deny.append(ref)  # a deny naming the account applies to all its principals
            elif via_account:
                found.resource_allow_via_account.append(ref)
            else:
                found.resource_allow.append(ref)
    consulted = tuple(p.name for p in identity_policies) + (
        (resource_policy.name,) if resource_policy is not None else ()
    )

    def decision(allowed: bool, reason: str, by: Sequence[StatementRef] = ()) -> Decision:
        return Decision(
            allowed=allowed,
            action=action,
            resource=resource,
            explicit_deny=found.deny[0] if found.deny else None,
            allowed_by=tuple(by),
            consulted=consulted,
            reason=reason,
        )

    if found.deny:
        ref = found.deny[0]
        return decision(False, f"explicitly denied by {ref.label} of {ref.policy}")
    if resource_policy_must_allow:
        if resource_policy is None:
            return decision(False, f"no {action} without a resource policy that allows it")
        if found.resource_allow:
            return decision(True, "allowed by the resource policy", found.resource_allow)
        if found.resource_allow_via_account and found.identity_allow:
            return decision(
                True,
                "allowed by an identity policy, delegated by the resource policy",
                [*found.resource_allow_via_account, *found.identity_allow],
            )
        if found.resource_allow_via_account:
            return decision(
                False,
                f"the {resource_policy.name} delegates to the account's IAM policies, "
                "and no identity policy allows it",
            )
        return decision(False, f"no statement of the {resource_policy.name} allows this principal")
    if found.identity_allow or found.resource_allow:
        return decision(True, "allowed", [*found.identity_allow, *found.resource_allow])
    return decision(False, "no statement allows it (implicit deny)")


def describe(decision: Decision, principal: Principal) -> str:
    """AWS's AccessDenied message for ``decision``."""
    who = principal.session_arn or principal.arn
    base = f"User: {who} is not authorized to perform: {decision.action} on resource: {decision.resource}"
    if decision.explicit_deny is not None:
        kind = "resource-based" if decision.explicit_deny.kind != "identity" else "identity-based"
        return f"{base} with an explicit deny in a {kind} policy"
    return f"{base} because {decision.reason}"


def statement_summary(ref: StatementRef) -> dict[str, Any]:
    """A JSON-able view of a statement reference."""
    return {"policy": ref.policy, "kind": ref.kind, "statement": ref.label, "json": json.loads(ref.statement)}
