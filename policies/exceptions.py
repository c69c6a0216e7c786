"""Accepted exceptions: mandatory violations of the shipped stacks, each named and reasoned.

An exception never hides a violation: ``mlops check`` still lists it (as *accepted*, with the
reason) and the Pulumi pack reports it through the advisory ``accepted-exceptions`` policy. It only
stops the violation from failing the check. Each entry names the rule, the resource (by logical
name, ``fnmatch`` pattern) and the environments it covers; remove the entry once the platform is fixed.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from policies.core import ENVIRONMENTS


@dataclass(frozen=True)
class AcceptedException:
    """One accepted violation: which rule, which resources, where, and why."""

    name: str
    rule_id: str
    resource_name: str
    reason: str
    message_contains: str = ""
    """Only violations whose message contains this text (empty: any message of the rule)."""
    environments: tuple[str, ...] = ENVIRONMENTS

    def covers(self, rule_id: str, resource_name: str, message: str, environment: str) -> bool:
        """True when this exception accepts ``rule_id``'s violation on ``resource_name`` in ``environment``."""
        return (
            rule_id == self.rule_id
            and environment in self.environments
            and fnmatch.fnmatchcase(resource_name, self.resource_name)
            and self.message_contains in message
        )


EXCEPTIONS: tuple[AcceptedException, ...] = (
    AcceptedException(
        name="glue-catalog-encryption-not-declared",
        rule_id="glue-catalog-encryption",
        resource_name="mlops-*-database",
        reason="Platform defect: the Analytics component declares Glue databases and tables but no "
        "aws.glue.DataCatalogEncryptionSettings, so the catalog (and connection passwords) are not "
        "encrypted with the platform key. The setting is account-and-region wide, so the fix needs "
        "a decision on which stack owns it. Remove this entry when components/analytics.py declares it.",
    ),
    AcceptedException(
        name="describe-log-groups-scoped-to-arn",
        rule_id="iam-resource-arn-matches-action",
        resource_name="mlops-*",
        message_contains="logs:DescribeLogGroups",
        reason="Platform defect: the flow-logs role and the Spark job role grant logs:DescribeLogGroups "
        "on log-group ARNs, but the action supports no resource-level permissions (Service "
        "Authorization Reference), so AWS denies it; it needs its own statement with Resource *. "
        "Remove this entry when components/network.py and components/spark.py are fixed.",
    ),
    AcceptedException(
        name="synth-mock-security-group-arn",
        rule_id="iam-resource-arn-matches-action",
        resource_name="mlops-*",
        message_contains=":sg/sg-",
        reason="Offline-synth artefact, not a platform defect: the mock engine (stacks/synth.py) gives "
        "security groups ARNs of the form ...:sg/sg-..., while AWS uses ...:security-group/sg-...; "
        "the policies take the ARN from the security group's output, so in AWS they match ec2's "
        "security-group resource type. Remove this entry when the mock returns AWS's ARN format.",
    ),
)


def exception_for(
    rule_id: str, resource_name: str, message: str, environment: str
) -> AcceptedException | None:
    """The accepted exception covering this violation, if any."""
    for exc in EXCEPTIONS:
        if exc.covers(rule_id, resource_name, message, environment):
            return exc
    return None
