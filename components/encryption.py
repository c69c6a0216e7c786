"""Customer-managed KMS keys, one per data domain, with rotation, aliases and explicit key policies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components._util import account_id, child_opts, partition, policy_json
from platform_contract.limits import KMS_DELETION_WINDOW_DAYS, within

# Actions a service principal needs to encrypt and decrypt with a key. From the CloudWatch Logs
# guide "Encrypt log data in CloudWatch Logs using AWS KMS":
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
SERVICE_USE_ACTIONS = (
    "kms:Encrypt*",
    "kms:Decrypt*",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:Describe*",
)


@dataclass(frozen=True, kw_only=True)
class ServiceGrant:
    """A service principal allowed to use a key directly (not through a caller's IAM role)."""

    service: str
    """The principal, e.g. ``logs.{region}.amazonaws.com``; ``{region}`` is filled in."""
    actions: Sequence[str] = SERVICE_USE_ACTIONS
    """KMS actions granted."""
    encryption_context_arn_like: str | None = None
    """If set, the grant only applies when the request's encryption context key ``context_key`` matches this
    ARN pattern (``{region}``/``{account}``/ ``{partition}`` are filled in). This is how AWS recommends
    scoping the logs service.
    """
    context_key: str = "kms:EncryptionContext:aws:logs:arn"
    """The encryption context key checked by the condition above."""
    source_account_condition: bool = False
    """Add ``aws:SourceAccount`` = this account (confused-deputy guard)."""


@dataclass(frozen=True, kw_only=True)
class KeySpec:
    """One data domain's key."""

    domain: str
    """Short name (``datalake``, ``logs``, ``ml``); used in the alias and outputs."""
    description: str
    """What the key protects; shown in the KMS console."""
    service_grants: Sequence[ServiceGrant] = ()
    """Service principals that use the key on their own behalf."""


def default_key_specs() -> tuple[KeySpec, ...]:
    """The platform's four domains: lake data, logs, ML artifacts/endpoints, and compute (EKS secrets).

    Compute has its own key so that a grant on the ML key (SageMaker, MWAA, CI, SNS) never also opens the
    cluster's envelope-encrypted Kubernetes secrets, and either key can be rotated or disabled alone."""
    return (
        KeySpec(
            domain="datalake",
            description="Data lake objects (raw, curated, features) and the Glue/Athena data on them",
        ),
        KeySpec(
            domain="logs",
            description="CloudWatch log groups of the platform (flow logs, EKS, jobs, MWAA)",
            service_grants=(
                ServiceGrant(
                    service="logs.{region}.amazonaws.com",
                    encryption_context_arn_like="arn:{partition}:logs:{region}:{account}:log-group:*",
                ),
            ),
        ),
        KeySpec(
            domain="ml",
            description="ML artifacts, model data, endpoint storage and data capture",
        ),
        KeySpec(
            domain="compute",
            description="Envelope encryption of the EKS cluster's Kubernetes secrets",
        ),
    )


@dataclass(frozen=True, kw_only=True)
class EncryptionArgs:
    """Arguments of :class:`Encryption`."""

    name_prefix: str
    """Prefix for aliases, e.g. ``mlops-prod`` gives ``alias/mlops-prod/logs``."""
    region: str
    """Region the keys live in (fills ``{region}`` in service principals)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every key."""
    keys: Sequence[KeySpec] = field(default_factory=default_key_specs)
    """The keys to create; defaults to :func:`default_key_specs`."""
    deletion_window_days: int = 30
    """Pending-deletion window (7-30 days) when a key is destroyed."""
    protect: bool = False
    """Mark keys ``protect`` and ``retain_on_delete`` (prod): destroying a key destroys every object encrypted
    with it.
    """
    extra_service_grants: Mapping[str, Sequence[ServiceGrant]] = field(default_factory=dict)
    """``{domain: grants}`` added to those domains' key specs, so later layers can name the services that use
    a key (e.g. CloudWatch publishing to an encrypted topic).
    """
    cross_account_s3_decrypt: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """``{domain: account IDs}``: those accounts may ``kms:Decrypt`` with the domain's key only through S3
    in this region (``kms:ViaService``), i.e. read SSE-KMS objects their bucket grants let them read (a
    SageMaker model created in another account loading a ``model.tar.gz``). Empty: no cross-account use.
    """

    def __post_init__(self) -> None:
        if not within(self.deletion_window_days, KMS_DELETION_WINDOW_DAYS):
            raise ValueError(
                f"EncryptionArgs.deletion_window_days={self.deletion_window_days}: KMS accepts 7-30"
            )
        domains = [k.domain for k in self.keys]
        if len(set(domains)) != len(domains):
            raise ValueError(f"EncryptionArgs.keys: duplicate domains in {domains}")
        for required in ("datalake", "logs", "ml", "compute"):
            if required not in domains:
                raise ValueError(f"EncryptionArgs.keys: the platform needs a {required!r} key")
        unknown = sorted(set(self.extra_service_grants) - set(domains))
        if unknown:
            raise ValueError(f"EncryptionArgs.extra_service_grants: no key for domains {unknown}")
        unknown = sorted(set(self.cross_account_s3_decrypt) - set(domains))
        if unknown:
            raise ValueError(f"EncryptionArgs.cross_account_s3_decrypt: no key for domains {unknown}")
        for domain, accounts in self.cross_account_s3_decrypt.items():
            bad = [a for a in accounts if not (len(a) == 12 and a.isdigit())]
            if bad:
                raise ValueError(
                    f"EncryptionArgs.cross_account_s3_decrypt[{domain!r}]: {bad} are not 12-digit account IDs"
                )


class Encryption(pulumi.ComponentResource):
    """Customer-managed KMS keys (rotation on) per data domain, each with an alias and a key policy.

    Every key policy lets the account root administer the key (so IAM policies can grant use and
    the key can never become unmanageable) and names the service principals that use it directly,
    with the conditions AWS documents for each. Roles elsewhere in the platform get ``kms:Decrypt``
    / ``kms:GenerateDataKey`` on the specific key ARN through their own IAM policies.

    Outputs:
        key_arns: ``{domain: key ARN}``.
        key_ids: ``{domain: key ID}``.
        alias_names: ``{domain: alias name}``.
    """

    key_arns: dict[str, pulumi.Output[str]]
    key_ids: dict[str, pulumi.Output[str]]
    alias_names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: EncryptionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:encryption:Encryption", name, None, opts)
        account = account_id(self)
        part = partition(self)
        self.key_arns, self.key_ids, self.alias_names = {}, {}, {}
        for spec in args.keys:
            extra = tuple(args.extra_service_grants.get(spec.domain, ()))
            if extra:
                spec = KeySpec(  # the spec plus the later layers' grants
                    domain=spec.domain,
                    description=spec.description,
                    service_grants=(*spec.service_grants, *extra),
                )
            readers = tuple(args.cross_account_s3_decrypt.get(spec.domain, ()))
            policy = pulumi.Output.all(account, part).apply(
                lambda ap, spec=spec, readers=readers: _key_policy(
                    spec, region=args.region, account=ap[0], partition=ap[1], s3_readers=readers
                )
            )
            key = aws.kms.Key(
                f"{name}-{spec.domain}",
                description=f"{args.name_prefix}: {spec.description}",
                enable_key_rotation=True,
                deletion_window_in_days=args.deletion_window_days,
                key_usage="ENCRYPT_DECRYPT",
                customer_master_key_spec="SYMMETRIC_DEFAULT",
                bypass_policy_lockout_safety_check=False,
                policy=policy,
                tags={**args.tags, "data-domain": spec.domain},
                opts=child_opts(self, protect=args.protect, retain_on_delete=args.protect),
            )
            alias = aws.kms.Alias(
                f"{name}-{spec.domain}-alias",
                name=f"alias/{args.name_prefix}/{spec.domain}",
                target_key_id=key.key_id,
                opts=child_opts(self),
            )
            self.key_arns[spec.domain] = key.arn
            self.key_ids[spec.domain] = key.key_id
            self.alias_names[spec.domain] = alias.name
        self.register_outputs(
            {"key_arns": self.key_arns, "key_ids": self.key_ids, "alias_names": self.alias_names}
        )

    def key_arn(self, domain: str) -> pulumi.Output[str]:
        """The ARN of one domain's key, with a clear error for an unknown domain."""
        try:
            return self.key_arns[domain]
        except KeyError:
            raise KeyError(f"no KMS key for domain {domain!r}; have {sorted(self.key_arns)}") from None


def _key_policy(
    spec: KeySpec, *, region: str, account: str, partition: str, s3_readers: Sequence[str] = ()
) -> str:
    fill = {"region": region, "account": account, "partition": partition}
    statements: list[dict[str, Any]] = [
        {
            # The default key policy statement: lets IAM policies in this account grant use of the
            # key and keeps the account able to manage it.
            # https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
            "Sid": "EnableAccountAdministration",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    for i, grant in enumerate(spec.service_grants):
        statement: dict[str, Any] = {
            "Sid": f"AllowService{i}",
            "Effect": "Allow",
            "Principal": {"Service": grant.service.format(**fill)},
            "Action": list(grant.actions),
            "Resource": "*",
        }
        condition: dict[str, Any] = {}
        if grant.encryption_context_arn_like:
            condition["ArnLike"] = {grant.context_key: grant.encryption_context_arn_like.format(**fill)}
        if grant.source_account_condition:
            condition["StringEquals"] = {"aws:SourceAccount": account}
        if condition:
            statement["Condition"] = condition
        statements.append(statement)
    if s3_readers:
        # Another account reads SSE-KMS objects of this account's bucket: S3 decrypts for the caller, so
        # the caller needs kms:Decrypt on the key, here only when S3 in this region asks for it
        # (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service;
        # cross-account key use: https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html).
        # The other account's roles still need kms:Decrypt on this key ARN in their own policies.
        statements.append(
            {
                "Sid": "CrossAccountDecryptThroughS3",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:{partition}:iam::{a}:root" for a in sorted(set(s3_readers))]},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            }
        )
    return policy_json(statements)
