"""What the authorizer records: denials with a fix hint, authorized calls, and unused grants.

The unused-grant report is the emulator's counterpart of IAM Access Analyzer's unused-access findings
(https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-findings.html#unused-access-findings):
per role, each (action pattern, resource pattern) of an ``Allow`` statement in its identity policies
that no authorized call of that role matched. It is finer than Access Analyzer's, which reports
unused actions and services, not unused resource patterns.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rehearsal.iam.evaluate import Decision, StatementRef
from rehearsal.iam.policy import Policy, wildcard_match

# role name pattern -> the component whose policy grants that role its permissions
ROLE_HINTS: tuple[tuple[str, str], ...] = (
    (
        "*pulumi-deployer*",
        "the stack's deploy role (created before the platform, docs/first-deploy.md; the rehearsal's copy: "
        "rehearsal/promotion.py promotion_deploy_statements)",
    ),
    ("*start-promotion*", "components/delivery.py (Delivery: the EventBridge role starting the promotion)"),
    ("*airflow*", "components/airflow.py (Airflow: the MWAA execution role's policy)"),
    ("*sagemaker*", "components/registry.py (ModelRegistry: the SageMaker execution role's policy)"),
    ("*emr*", "components/spark.py (SparkOnEks: the EMR job execution role's policy)"),
    ("*spark*", "components/spark.py (SparkOnEks: the EMR job execution role's policy)"),
    ("*-build-*", "components/delivery.py (Delivery: the CodeBuild role's policy)"),
    ("*promot*", "components/delivery.py (Delivery: the promotion role's policy)"),
    ("*deploy*", "components/delivery.py (Delivery: the deploy role's policy)"),
    ("*pipeline*", "components/delivery.py (Delivery: the CodePipeline role's policy)"),
    ("*node*", "components/cluster.py (Cluster: the node role)"),
    ("*cluster*", "components/cluster.py (Cluster: the cluster/IRSA roles)"),
    ("*flow*", "components/network.py (Network: the flow-logs role)"),
)
# resource policy kind -> the component that writes it
RESOURCE_POLICY_HINTS: Mapping[str, str] = {
    "s3": "components/datalake.py (DataLake: the bucket policy)",
    "kms": "components/encryption.py (Encryption: the key policy)",
    "sns": "components/observability.py (Observability: the topic policy)",
    "sagemaker-group": "components/registry.py (ModelRegistry: the model package group policy)",
    "trust": "the component that creates the role (its assume-role policy)",
}


def role_hint(role_name: str) -> str:
    """The component whose policy grants ``role_name`` (first matching pattern)."""
    lowered = role_name.lower()
    for pattern, component in ROLE_HINTS:
        if fnmatch.fnmatchcase(lowered, pattern):
            return component
    return "the component that creates this role (no hint pattern matches its name)"


@dataclass(frozen=True)
class Denial:
    """A request the authorizer refused, with what decided and where to fix it."""

    role_arn: str
    session_arn: str
    operation: str
    """``service:Operation`` of the API call."""
    action: str
    resource: str
    decisive: str
    """The explicit deny statement, or "no statement allows" with the policies consulted."""
    hint: str
    statement: StatementRef | None = None
    consulted: tuple[str, ...] = ()

    def __str__(self) -> str:
        return (
            f"AccessDenied: {self.role_arn} may not {self.action} on {self.resource} "
            f"(during {self.operation}): {self.decisive}. Fix: {self.hint}"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "role": self.role_arn,
            "session": self.session_arn,
            "operation": self.operation,
            "action": self.action,
            "resource": self.resource,
            "decisive": self.decisive,
            "statement": json.loads(self.statement.statement) if self.statement else None,
            "consulted": list(self.consulted),
            "hint": self.hint,
        }


def make_denial(
    role_arn: str,
    session_arn: str,
    operation: str,
    decision: Decision,
    resource_policy_kind: str | None,
) -> Denial:
    """The denial record of ``decision``, with its fix hint."""
    role_name = role_arn.rsplit("/", 1)[-1]
    deny = decision.explicit_deny
    if deny is not None:
        decisive = f"explicit Deny {deny.label} in {deny.policy}: {deny.statement}"
        if deny.kind == "identity":
            hint = role_hint(role_name)
        else:
            hint = RESOURCE_POLICY_HINTS.get(resource_policy_kind or "", "the resource's policy")
    else:
        decisive = f"{decision.reason}; policies consulted: {', '.join(decision.consulted) or 'none'}"
        if resource_policy_kind == "trust":
            hint = f"the assume-role policy of the role, in {role_hint(role_name)}"
        elif decision.reason.startswith("no statement of the") and resource_policy_kind:
            hint = RESOURCE_POLICY_HINTS.get(resource_policy_kind, "the resource's policy")
        else:
            hint = f"grant {decision.action} on {decision.resource} in {role_hint(role_name)}"
    return Denial(
        role_arn=role_arn,
        session_arn=session_arn,
        operation=operation,
        action=decision.action,
        resource=decision.resource,
        decisive=decisive,
        hint=hint,
        statement=deny,
        consulted=decision.consulted,
    )


@dataclass(frozen=True)
class AuthorizedCall:
    """A (role, action, resource) the authorizer allowed."""

    role_arn: str
    action: str
    resource: str
    operation: str


@dataclass(frozen=True)
class UnusedGrant:
    """An Allow (action pattern, resource pattern) of a role's policy that no authorized call used."""

    role_arn: str
    policy: str
    statement: str
    action: str
    resource: str


@dataclass
class UnusedGrantReport:
    """Per role: its unused grants, and whether the role made any call at all."""

    unused: dict[str, list[UnusedGrant]] = field(default_factory=dict)
    unused_roles: list[str] = field(default_factory=list)

    def for_role(self, role_arn: str) -> list[UnusedGrant]:
        """The unused grants of ``role_arn``."""
        return self.unused.get(role_arn, [])

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form: role -> list of unused grants."""
        return {
            "unused_roles": list(self.unused_roles),
            "roles": {
                role: [
                    {"policy": g.policy, "statement": g.statement, "action": g.action, "resource": g.resource}
                    for g in grants
                ]
                for role, grants in self.unused.items()
            },
        }


def unused_grants(
    role_policies: Mapping[str, Sequence[Policy]], calls: Iterable[AuthorizedCall]
) -> UnusedGrantReport:
    """Compare each role's Allow statements with the calls authorized for it."""
    by_role: dict[str, list[AuthorizedCall]] = {}
    for call in calls:
        by_role.setdefault(call.role_arn, []).append(call)
    report = UnusedGrantReport()
    for role_arn, policies in sorted(role_policies.items()):
        used = by_role.get(role_arn, [])
        if not used:
            report.unused_roles.append(role_arn)
        grants: list[UnusedGrant] = []
        for policy in policies:
            for statement in policy.statements:
                if statement.effect != "Allow" or not statement.actions:
                    continue  # NotAction grants are reported as a whole by policy linters, not here
                if statement.not_resources:
                    resources = tuple(f"NotResource {r}" for r in statement.not_resources)
                else:
                    resources = statement.resources or ("*",)
                for action in statement.actions:
                    for resource in resources:
                        hit = any(
                            wildcard_match(action, call.action, ignore_case=True)
                            and _resource_hits(statement.not_resources, resource, call.resource)
                            for call in used
                        )
                        if not hit:
                            grants.append(
                                UnusedGrant(role_arn, policy.name, statement.label, action, resource)
                            )
        if grants:
            report.unused[role_arn] = grants
    return report


def _resource_hits(not_resources: tuple[str, ...], pattern: str, resource: str) -> bool:
    if not_resources:
        return not any(_resource_pattern_hits(p, resource) for p in not_resources)
    return _resource_pattern_hits(pattern, resource)


def _resource_pattern_hits(pattern: str, resource: str) -> bool:
    # a policy variable stands for whatever the request carried: count it as any value
    if "${" in pattern:
        import re

        pattern = re.sub(r"\$\{[^}]+\}", "*", pattern)
    return wildcard_match(pattern, resource)
