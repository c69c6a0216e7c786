"""Shared pieces of the config model: the project namespace, :class:`ConfigError` and the section base.

Every section module imports from here and from nowhere else in the package above it, so the package
has no import circle and no import-order requirement.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

PROJECT = "mlops-platform"
"""The Pulumi project name; also the config namespace (``mlops-platform:<key>``)."""

ENVIRONMENTS = ("dev", "staging", "prod")
"""The environments a stack may be (``mlops-platform:environment``)."""


class ConfigError(ValueError):
    """Raised when the stack configuration is invalid; the message lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"invalid stack configuration ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n"
            f"{lines}\nFix the values in stacks/Pulumi.<stack>.yaml (see docs/configuration.md)."
        )


class _Section(BaseModel):
    """Base for config sections: camelCase aliases, unknown keys rejected, immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)
