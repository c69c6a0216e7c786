"""Typed stack configuration: one model, parsed once from the stack's Pulumi config.

Every environment (dev, staging, prod) is the same program with a different
``stacks/Pulumi.<env>.yaml``. This module turns that file's values into a validated
:class:`PlatformConfig` *before any resource is declared*, so a typo or an unsafe value fails
with a message that names the config key, the bad value and the rule, instead of a half-applied
``pulumi up``.

Keys are camelCase in YAML (Pulumi's convention) and snake_case in Python. Nested sections are
Pulumi structured config objects, e.g.::

    config:
      aws:region: eu-west-1
      mlops-platform:environment: prod
      mlops-platform:network:
        cidr: 10.30.0.0/16
        azCount: 3
        natStrategy: per_az
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

PROJECT = "mlops-platform"
"""The Pulumi project name; also the config namespace (``mlops-platform:<key>``)."""

ENVIRONMENTS = ("dev", "staging", "prod")

# CloudWatch Logs accepts only these retention values (PutRetentionPolicy, "retentionInDays").
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
CLOUDWATCH_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_TAG_VALUE = re.compile(r"^[\w\s.:/=+\-@]{1,256}$")


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


# Sections of later layers subclass _Section, so they are imported after it; stacks/__init__.py
# imports this module first, so importing a section module first also works.
from stacks.config_compute import AnalyticsConfig, ClusterConfig, SparkConfig  # noqa: E402
from stacks.config_ml import (  # noqa: E402
    AirflowConfig,
    DeliveryConfig,
    EndpointConfig,
    ObservabilityConfig,
    RegistryConfig,
)


class NetworkConfig(_Section):
    """VPC layout. The CIDR must be private (RFC 1918) and big enough for the subnets."""

    cidr: str = Field(default="10.0.0.0/16", description="VPC IPv4 CIDR; RFC 1918, /16 to /20.")
    az_count: int = Field(default=2, description="Availability zones to span (2-4).")
    nat_strategy: Literal["single", "per_az"] = Field(
        default="single",
        description="`single`: one NAT gateway (cheap, one AZ is a point of failure); "
        "`per_az`: one per AZ (resilient; use in prod).",
    )
    flow_log_traffic: Literal["ALL", "REJECT", "ACCEPT"] = Field(
        default="ALL", description="Which traffic VPC flow logs record."
    )

    @field_validator("cidr")
    @classmethod
    def _private_cidr(cls, value: str) -> str:
        try:
            net = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"must be an IPv4 network like 10.0.0.0/16 ({exc})") from None
        private = [ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
        if not any(net.subnet_of(p) for p in private):
            raise ValueError(
                "must be a private RFC 1918 range (10/8, 172.16/12 or 192.168/16), not a public one"
            )
        if not 16 <= net.prefixlen <= 20:
            raise ValueError(
                "prefix length must be between /16 and /20 so each AZ gets a /20-or-smaller pair"
            )
        return value

    @field_validator("az_count")
    @classmethod
    def _az_count(cls, value: int) -> int:
        if not 2 <= value <= 4:
            raise ValueError("must be between 2 and 4: one AZ has no redundancy and EKS/MWAA require two")
        return value


class RetentionConfig(_Section):
    """How long logs and old object versions are kept."""

    log_days: int = Field(default=30, description="CloudWatch log group retention (an allowed value).")
    noncurrent_version_days: int = Field(
        default=30, description="Days before noncurrent S3 object versions expire."
    )
    access_log_days: int = Field(default=90, description="Days before S3 server access logs expire.")
    capture_days: int = Field(default=90, description="Days before endpoint data-capture objects expire.")
    kms_deletion_window_days: int = Field(
        default=30, description="Waiting period before a deleted KMS key is destroyed (7-30)."
    )

    @field_validator("log_days")
    @classmethod
    def _log_days(cls, value: int) -> int:
        if value not in CLOUDWATCH_RETENTION_DAYS:
            raise ValueError(f"CloudWatch Logs accepts only {', '.join(map(str, CLOUDWATCH_RETENTION_DAYS))}")
        return value

    @field_validator("noncurrent_version_days", "access_log_days", "capture_days")
    @classmethod
    def _positive_days(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be a positive number of days")
        return value

    @field_validator("kms_deletion_window_days")
    @classmethod
    def _kms_window(cls, value: int) -> int:
        if not 7 <= value <= 30:
            raise ValueError("KMS accepts a pending-deletion window of 7 to 30 days")
        return value


class DataProtectionConfig(_Section):
    """Whether data survives a ``pulumi destroy``."""

    protect_data: bool = Field(
        default=True,
        description="Mark data buckets and KMS keys `protect` + `retainOnDelete` so Pulumi refuses to "
        "delete them (prod).",
    )
    force_destroy_buckets: bool = Field(
        default=False,
        description="Allow `pulumi destroy` to empty and delete non-empty buckets (dev only).",
    )


class PlatformConfig(_Section):
    """The whole stack configuration. Sections default to secure values."""

    environment: Literal["dev", "staging", "prod"] = Field(description="Environment name.")
    region: str = Field(description="AWS region (from `aws:region`).")
    owner: str = Field(description="Owning team, written to the `owner` tag.")
    cost_center: str = Field(description="Cost center, written to the `cost-center` tag.")
    extra_tags: dict[str, str] = Field(default_factory=dict, description="More tags for every resource.")
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    data_protection: DataProtectionConfig = Field(default_factory=DataProtectionConfig)
    # --- sections of later layers: one line each, the model in stacks/config_<layer>.py ---
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    airflow: AirflowConfig = Field(default_factory=AirflowConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError("must be an AWS region code such as us-east-1 or eu-west-1")
        return value

    @field_validator("owner", "cost_center")
    @classmethod
    def _tag_value(cls, value: str) -> str:
        if not _TAG_VALUE.match(value):
            raise ValueError("must be 1-256 characters of letters, digits, spaces and _ . : / = + - @")
        return value

    @model_validator(mode="after")
    def _environment_rules(self) -> PlatformConfig:
        if self.environment == "prod":
            if self.data_protection.force_destroy_buckets:
                raise ValueError(
                    "dataProtection.forceDestroyBuckets must be false in prod: it lets `pulumi destroy` "
                    "delete every object in the lake"
                )
            if not self.data_protection.protect_data:
                raise ValueError("dataProtection.protectData must be true in prod")
        return self

    @property
    def name_prefix(self) -> str:
        """Short prefix for physical names: ``mlops-<env>``."""
        return f"mlops-{self.environment}"

    @property
    def tags(self) -> dict[str, str]:
        """Tags applied to every taggable resource of the platform."""
        return {
            "project": PROJECT,
            "environment": self.environment,
            "owner": self.owner,
            "cost-center": self.cost_center,
            "managed-by": "pulumi",
            **self.extra_tags,
        }


def _key_for(loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic error location into the config key a user writes in YAML."""
    parts = [str(p) for p in loc]
    if not parts:
        return f"{PROJECT}:<root>"
    if parts[0] == "region":
        return "aws:region"
    head, rest = parts[0], parts[1:]
    return f"{PROJECT}:{head}" + "".join(f".{p}" for p in rest)


def _describe(errors: list[Any]) -> list[str]:
    problems = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        msg = str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        if err.get("type") == "missing":
            problems.append(f"{_key_for(loc)} is required but not set")
            continue
        if err.get("type") == "extra_forbidden":
            problems.append(
                f"{_key_for(loc)} is not a known setting (check the spelling; see docs/configuration.md)"
            )
            continue
        value = err.get("input")
        shown = json.dumps(value, default=str) if not isinstance(value, Mapping) else "{...}"
        if not loc:  # model-level rule: the message names its keys
            problems.append(msg)
        else:
            problems.append(f"{_key_for(loc)} = {shown}: {msg}")
    return problems


def parse_config(raw: Mapping[str, Any]) -> PlatformConfig:
    """Validate a dict of config values (camelCase keys, ``region`` for ``aws:region``).

    Raises:
        ConfigError: listing each invalid key, its value and the rule it broke.
    """
    try:
        return PlatformConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors())) from None


# Top-level keys read from the project namespace. Keep in sync with Pulumi.yaml's `config:` block.
CONFIG_KEYS = tuple(
    field.alias or name for name, field in PlatformConfig.model_fields.items() if name != "region"
)


def load_config() -> PlatformConfig:
    """Read the current stack's config through ``pulumi.Config`` and validate it.

    Structured values (objects) arrive as JSON strings; scalars as strings that pydantic coerces.
    """
    import pulumi  # imported here so the model stays importable without the Pulumi runtime

    project = pulumi.Config(PROJECT)
    raw: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        value = project.get(key)
        if value is None:
            continue
        raw[key] = _decode(value)
    region = pulumi.Config("aws").get("region")
    if region is not None:
        raw["region"] = region
    return parse_config(raw)


def _decode(value: str) -> Any:
    """Config values are strings; objects and arrays are JSON-encoded, scalars are left to pydantic."""
    if value.lstrip().startswith(("{", "[")):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
