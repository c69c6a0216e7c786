"""Config sections of the foundation layer: ``network``, ``retention`` and ``dataProtection``."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from platform_contract.limits import CLOUDWATCH_RETENTION_DAYS, KMS_DELETION_WINDOW_DAYS, within
from stacks.config.base import _Section

_ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")

if TYPE_CHECKING:  # component args are built lazily in to_args(): importing this module needs no Pulumi
    import pulumi

    from components.network import NetworkArgs


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

    def to_args(
        self,
        *,
        availability_zones: Sequence[str],
        region: str,
        flow_log_key_arn: pulumi.Input[str],
        flow_log_retention_days: int,
        tags: Mapping[str, str],
    ) -> NetworkArgs:
        """The :class:`~components.network.NetworkArgs` of this section over ``availability_zones``."""
        from components.network import NetworkArgs

        return NetworkArgs(
            cidr=self.cidr,
            availability_zones=availability_zones,
            region=region,
            nat_strategy=self.nat_strategy,
            flow_log_key_arn=flow_log_key_arn,
            flow_log_retention_days=flow_log_retention_days,
            flow_log_traffic=self.flow_log_traffic,
            tags=tags,
        )


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
        if not within(value, KMS_DELETION_WINDOW_DAYS):
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
    dataset_erasure_role_arns: list[str] = Field(
        default_factory=list,
        description="IAM role ARNs that may still delete dataset-version objects (the lake bucket "
        "policies deny `s3:DeleteObject`/`s3:DeleteObjectVersion` on `*/versions/` to everyone else), "
        "e.g. an administrator role for GDPR erasure; that role needs its own identity grant too. Full "
        "role ARNs, no wildcards. Empty: nobody can delete a version until this list is changed and "
        "deployed (docs/pipelines.md, datasets).",
    )

    @field_validator("dataset_erasure_role_arns")
    @classmethod
    def _erasure_arns(cls, value: list[str]) -> list[str]:
        bad = [arn for arn in value if not _ROLE_ARN.match(arn)]
        if bad:
            raise ValueError(
                f"{bad} are not IAM role ARNs like arn:aws:iam::123456789012:role/name (no wildcards)"
            )
        return value
