"""Offline check: the policy pack over a stack synthesized under Pulumi's mock engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.core import Resource
from policies.engine import Violation, evaluate, stack_environment


@dataclass
class CheckReport:
    """Result of checking one stack: its environment, resource count and violations."""

    stack: str
    environment: str
    resources: int
    violations: list[Violation] = field(default_factory=list)

    @property
    def blocking(self) -> list[Violation]:
        """Mandatory violations without an accepted exception (these fail the check)."""
        return [v for v in self.violations if v.blocking]

    def to_json(self) -> dict[str, Any]:
        """The document ``mlops check --json`` prints."""
        return {
            "stack": self.stack,
            "environment": self.environment,
            "resources": self.resources,
            "blocking": len(self.blocking),
            "violations": [v.to_json() for v in self.violations],
        }


def resources_from_records(records: Any) -> list[Resource]:
    """Policy resources from ``stacks.synth.RecordedResource`` records (cloud resources only)."""
    out: list[Resource] = []
    for r in records:
        if not r.custom:
            continue
        ids = {str(v) for k, v in r.outputs.items() if k in ("id", "arn", "name", "bucket") and v}
        out.append(
            Resource(urn=r.urn, type=r.type, name=r.name, props=r.inputs, parent=r.parent, ids=frozenset(ids))
        )
    return out


def check_stack(stack: str, stacks_dir: Path | None = None) -> CheckReport:
    """Synthesize ``stack`` offline and run every rule over it.

    Raises ``FileNotFoundError`` for an unknown stack and ``stacks.config.ConfigError`` for an
    invalid stack config (the CLI turns both into exit code 2).
    """
    from stacks.synth import STACKS_DIR, read_stack_config, stack_config_file, synthesize

    folder = stacks_dir or STACKS_DIR
    configured = read_stack_config(stack_config_file(stack, folder)).get("mlops-platform:environment")
    result = synthesize(stack, folder)
    resources = resources_from_records(result.resources)
    environment = stack_environment(resources, configured)
    return CheckReport(
        stack=stack,
        environment=environment,
        resources=len(resources),
        violations=evaluate(resources, environment),
    )
