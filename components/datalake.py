"""The S3 data lake: raw, curated, features, artifacts, data capture and access-log buckets."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components._util import account_id, child_opts, partition, policy_document

KeyDomain = Literal["datalake", "ml"]
_ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


@dataclass(frozen=True, kw_only=True)
class BucketSpec:
    """One bucket of the lake."""

    role: str
    """Short name (``raw``, ``curated``...); used in names, outputs and log prefixes."""
    purpose: str
    """What lives there (description tag)."""
    key_domain: KeyDomain
    """Which platform KMS key encrypts it by default."""
    tiering_after_days: int | None = None
    """Move current objects to S3 Intelligent-Tiering after this many days (None: never; small, hot objects
    such as code and model packages gain nothing).
    """
    expire_after_days: int | None = None
    """Delete current objects after this many days (None: keep)."""
    write_once_prefixes: tuple[str, ...] = ()
    """Key patterns (``*`` matches any characters, ``/`` included) where the bucket policy refuses a
    PutObject without ``If-None-Match`` (:func:`write_once_statement`) and any DeleteObject or
    DeleteObjectVersion (:func:`version_delete_statement`): the immutable dataset versions."""


DATASET_VERSION_PREFIXES: dict[str, tuple[str, ...]] = {
    # pipelines.datasets.version_prefix: <kind>/<dataset>/versions/<version>/, written with boto3 and
    # If-None-Match (validated batches, curated tables, feature sets, splits). The working prefixes the
    # Spark job writes through S3A/EMRFS (features/<name>/ingest_date=.../) cannot send the header and
    # are not matched: "*" stands for the dataset name, which never holds "/versions/".
    "curated": ("curated/*/versions/",),
    "features": ("features/*/versions/",),
}
"""Write-once key patterns of the lake buckets, by bucket role (default :class:`BucketSpec` values)."""


def default_bucket_specs(capture_days: int = 90) -> tuple[BucketSpec, ...]:
    """The platform's data buckets (the access-log bucket is always added separately)."""
    return (
        BucketSpec(
            role="raw",
            purpose="Landed source batches, as received",
            key_domain="datalake",
            tiering_after_days=30,
        ),
        BucketSpec(
            role="curated",
            purpose="Validated, typed datasets",
            key_domain="datalake",
            tiering_after_days=30,
            write_once_prefixes=DATASET_VERSION_PREFIXES["curated"],
        ),
        BucketSpec(
            role="features",
            purpose="Feature tables written by the Spark job",
            key_domain="datalake",
            tiering_after_days=30,
            write_once_prefixes=DATASET_VERSION_PREFIXES["features"],
        ),
        BucketSpec(
            role="artifacts", purpose="Models, evaluation reports, code, DAGs, query results", key_domain="ml"
        ),
        BucketSpec(
            role="capture",
            purpose="SageMaker endpoint data capture",
            key_domain="ml",
            expire_after_days=capture_days,
        ),
    )


@dataclass(frozen=True, kw_only=True)
class CrossAccountRead:
    """Other accounts allowed ``s3:GetObject`` below one prefix of one bucket (bucket policy)."""

    role: str
    """Bucket role, e.g. ``artifacts``."""
    prefix: str
    """Key prefix ending in ``/``, e.g. ``models/``."""
    account_ids: Sequence[str]
    """12-digit account IDs; their own IAM policies must also allow the read."""


@dataclass(frozen=True, kw_only=True)
class DataLakeArgs:
    """Arguments of :class:`DataLake`."""

    key_arns: Mapping[str, pulumi.Input[str]]
    """``{"datalake": arn, "ml": arn}`` from :class:`~components.encryption.Encryption`."""
    buckets: Sequence[BucketSpec] = field(default_factory=default_bucket_specs)
    """The data buckets; defaults to :func:`default_bucket_specs`."""
    noncurrent_version_days: int = 30
    """Expire noncurrent versions after this many days."""
    access_log_days: int = 90
    """Expire server access logs after this many days."""
    abort_multipart_days: int = 7
    """Abort incomplete multipart uploads after this many days."""
    protect: bool = True
    """``protect`` + ``retain_on_delete`` on every bucket (prod): Pulumi refuses to delete them, and a removed
    bucket is orphaned rather than deleted.
    """
    force_destroy: bool = False
    """Let ``pulumi destroy`` empty non-empty buckets (dev teardown). Cannot be combined with ``protect``."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every bucket."""
    eventbridge_roles: Sequence[str] = ()
    """Buckets (by role) that send their events to EventBridge, e.g. ``artifacts`` so a rule can start the
    delivery pipeline on an upload of its S3 source (the S3 source action does not poll)."""
    cross_account_reads: Sequence[CrossAccountRead] = ()
    """Read-only grants to other accounts (e.g. ``models/`` of ``artifacts`` for cross-account CreateModel and
    promotion). Empty: the bucket policies admit no other account."""
    version_erasure_role_arns: Sequence[str] = ()
    """IAM role ARNs exempt from the deny on deleting dataset-version objects (a GDPR erasure role, say):
    the only principals that may delete there, with an identity policy of their own that allows it. Empty
    (the default): no principal can; erasing a version then needs a reviewed change to this list first.
    Full role ARNs only, no wildcards (``aws:PrincipalArn`` of a role session is the role's ARN)."""

    def __post_init__(self) -> None:
        if self.protect and self.force_destroy:
            raise ValueError(
                "DataLakeArgs: protect=True and force_destroy=True contradict each other; pick one"
            )
        missing = {b.key_domain for b in self.buckets} - set(self.key_arns)
        if missing:
            raise ValueError(f"DataLakeArgs.key_arns is missing keys for domains {sorted(missing)}")
        roles = [b.role for b in self.buckets]
        if len(set(roles)) != len(roles) or "access-logs" in roles:
            raise ValueError(f"DataLakeArgs.buckets: roles must be unique and not 'access-logs': {roles}")
        unknown = sorted(set(self.eventbridge_roles) - set(roles))
        if unknown:
            raise ValueError(f"DataLakeArgs.eventbridge_roles: no buckets with roles {unknown}")
        bad_erasers = [a for a in self.version_erasure_role_arns if not _ROLE_ARN.match(a)]
        if bad_erasers:
            raise ValueError(
                f"DataLakeArgs.version_erasure_role_arns: {bad_erasers} are not IAM role ARNs like "
                "arn:aws:iam::123456789012:role/name (no wildcards: name each role)"
            )
        for read in self.cross_account_reads:
            if read.role not in roles:
                raise ValueError(f"DataLakeArgs.cross_account_reads: no bucket with role {read.role!r}")
            if not read.prefix.endswith("/") or read.prefix.startswith("/") or "*" in read.prefix:
                raise ValueError(
                    f"DataLakeArgs.cross_account_reads: prefix {read.prefix!r} must end in '/', without '*'"
                )
            bad = [a for a in read.account_ids if not (len(a) == 12 and a.isdigit())]
            if bad or not read.account_ids:
                raise ValueError(
                    f"DataLakeArgs.cross_account_reads[{read.role}]: needs 12-digit account IDs, got {list(read.account_ids)}"
                )


class DataLake(pulumi.ComponentResource):
    """Versioned, KMS-encrypted, private S3 buckets with TLS-only policies, lifecycle and access logs.

    Each data bucket has: versioning; default SSE-KMS with the platform key of its domain and S3
    Bucket Keys; all four Block Public Access settings; ``BucketOwnerEnforced`` (ACLs off); a
    policy denying any request not made over TLS 1.2+; server access logging into the
    access-log bucket under ``<role>/``; lifecycle rules for noncurrent versions, incomplete
    multipart uploads and tiering or expiry where it fits.

    The access-log bucket has the same controls except two that AWS does not allow for a server
    access logging destination: it cannot log to itself, and it uses SSE-S3 (AES-256) rather than
    SSE-KMS. "Enabling Amazon S3 server access logging"
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html) says:
    "You can use default bucket encryption on the target bucket *only* if you use server-side
    encryption with Amazon S3 managed keys (SSE-S3) ... Default server-side encryption with AWS Key
    Management Service (AWS KMS) keys (SSE-KMS) is not supported." (checked 2026-12-01, issue 12 item
    24). aws/aws-cdk#24789/#25350 report that SSE-KMS targets work when the key admits
    ``logging.s3.amazonaws.com``; that is observed behaviour the page does not promise, so the
    platform follows the page.
    Its policy lets only the S3 logging service of this account, for these buckets, write to it.

    Outputs:
        bucket_names: ``{role: bucket name}`` including ``access-logs``.
        bucket_arns: ``{role: bucket ARN}`` including ``access-logs``.
    """

    bucket_names: dict[str, pulumi.Output[str]]
    bucket_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:datalake:DataLake", name, None, opts)
        self._args = args
        self._name = name
        tags = dict(args.tags)
        account = account_id(self)
        protection = {"protect": args.protect, "retain_on_delete": args.protect}

        # --- the access-log bucket first: every other bucket logs into it ---------------------
        logs = aws.s3.Bucket(
            f"{name}-access-logs",
            force_destroy=args.force_destroy,
            tags={**tags, "bucket-role": "access-logs", "purpose": "S3 server access logs"},
            opts=child_opts(self, **protection),
        )
        logs_guards = self._baseline(logs, "access-logs", sse=None)
        self.bucket_names = {"access-logs": logs.bucket}
        self.bucket_arns = {"access-logs": logs.arn}

        data_buckets: list[tuple[BucketSpec, aws.s3.Bucket]] = []
        for spec in args.buckets:
            bucket = aws.s3.Bucket(
                f"{name}-{spec.role}",
                force_destroy=args.force_destroy,
                tags={**tags, "bucket-role": spec.role, "purpose": spec.purpose},
                opts=child_opts(self, **protection),
            )
            data_buckets.append((spec, bucket))
            self.bucket_names[spec.role] = bucket.bucket
            self.bucket_arns[spec.role] = bucket.arn

        # The S3 logging service writes with its own principal; scope it to this account and these
        # source buckets. https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html
        log_delivery = {
            "Sid": "S3ServerAccessLogsPolicy",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": pulumi.Output.concat(logs.arn, "/*"),
            "Condition": {
                "ArnLike": {"aws:SourceArn": [b.arn for _, b in data_buckets]},
                "StringEquals": {"aws:SourceAccount": account},
            },
        }
        logs_policy = aws.s3.BucketPolicy(
            f"{name}-access-logs-policy",
            bucket=logs.id,
            policy=policy_document([*_tls_only_statements(logs.arn), log_delivery]),
            opts=child_opts(self, depends_on=logs_guards),
        )
        self._lifecycle(
            logs,
            "access-logs",
            expire_after_days=args.access_log_days,
            tiering_after_days=None,
        )

        part = partition(self) if args.cross_account_reads else None
        for spec, bucket in data_buckets:
            guards = self._baseline(bucket, spec.role, sse=args.key_arns[spec.key_domain])
            shared = [
                _cross_account_read_statement(bucket.arn, read, part)
                for read in args.cross_account_reads
                if read.role == spec.role
            ]
            aws.s3.BucketPolicy(
                f"{name}-{spec.role}-policy",
                bucket=bucket.id,
                policy=policy_document(
                    [
                        *_tls_only_statements(bucket.arn),
                        *shared,
                        *(
                            [
                                write_once_statement(bucket.arn, spec.write_once_prefixes),
                                version_delete_statement(
                                    bucket.arn, spec.write_once_prefixes, args.version_erasure_role_arns
                                ),
                            ]
                            if spec.write_once_prefixes
                            else []
                        ),
                    ]
                ),
                opts=child_opts(self, depends_on=guards),
            )
            aws.s3.BucketLogging(
                f"{name}-{spec.role}-logging",
                bucket=bucket.id,
                target_bucket=logs.id,
                target_prefix=f"{spec.role}/",
                # Date-partitioned keys so Athena can prune partitions of the logs.
                target_object_key_format=aws.s3.BucketLoggingTargetObjectKeyFormatArgs(
                    partitioned_prefix=aws.s3.BucketLoggingTargetObjectKeyFormatPartitionedPrefixArgs(
                        partition_date_source="EventTime"
                    )
                ),
                opts=child_opts(self, depends_on=[logs_policy]),
            )
            if spec.role in args.eventbridge_roles:
                # All of the bucket's events go to EventBridge, where rules pick what they need
                # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-event-notifications-eventbridge.html).
                # A bucket has one notification configuration: this resource owns it.
                aws.s3.BucketNotification(
                    f"{name}-{spec.role}-notifications",
                    bucket=bucket.id,
                    eventbridge=True,
                    opts=child_opts(self),
                )
            self._lifecycle(
                bucket,
                spec.role,
                expire_after_days=spec.expire_after_days,
                tiering_after_days=spec.tiering_after_days,
            )

        self.register_outputs({"bucket_names": self.bucket_names, "bucket_arns": self.bucket_arns})

    def _baseline(
        self, bucket: aws.s3.Bucket, role: str, *, sse: pulumi.Input[str] | None
    ) -> list[pulumi.Resource]:
        """Ownership, public access block, versioning and default encryption for one bucket."""
        name = f"{self._name}-{role}"
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child_opts(self),
        )
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child_opts(self),
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child_opts(self),
        )
        if sse is None:
            default = (
                aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"
                )
            )
            bucket_key = None
        else:
            default = (
                aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=sse
                )
            )
            bucket_key = True  # S3 Bucket Keys cut KMS request costs by ~99% for SSE-KMS
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=default, bucket_key_enabled=bucket_key
                )
            ],
            opts=child_opts(self),
        )
        self._versioning = getattr(self, "_versioning", {})
        self._versioning[role] = versioning
        return [ownership, public_block, versioning, encryption]

    def _lifecycle(
        self,
        bucket: aws.s3.Bucket,
        role: str,
        *,
        expire_after_days: int | None,
        tiering_after_days: int | None,
    ) -> None:
        args = self._args
        rules: list[aws.s3.BucketLifecycleConfigurationRuleArgs] = [
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="abort-incomplete-multipart-uploads",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=args.abort_multipart_days
                ),
            ),
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-noncurrent-versions",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=args.noncurrent_version_days
                ),
                # Delete markers left behind once all versions are gone.
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                    expired_object_delete_marker=True
                ),
            ),
        ]
        if tiering_after_days is not None:
            rules.append(
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="intelligent-tiering",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    transitions=[
                        aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                            days=tiering_after_days, storage_class="INTELLIGENT_TIERING"
                        )
                    ],
                )
            )
        if expire_after_days is not None:
            rules.append(
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-current-objects",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=expire_after_days),
                )
            )
        aws.s3.BucketLifecycleConfiguration(
            f"{self._name}-{role}-lifecycle",
            bucket=bucket.id,
            rules=rules,
            # Noncurrent-version rules need versioning in place first (provider docs).
            opts=child_opts(self, depends_on=[self._versioning[role]]),
        )


def _cross_account_read_statement(
    bucket_arn: pulumi.Output[str], read: CrossAccountRead, part: pulumi.Output[str] | None
) -> dict[str, Any]:
    """Let ``read.account_ids`` get objects below ``read.prefix`` (their IAM policies must allow it too:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-walkthroughs-managing-access-example2.html)."""
    assert part is not None
    return {
        "Sid": f"CrossAccountRead{read.prefix.strip('/').replace('/', '').title()}",
        "Effect": "Allow",
        "Principal": {
            "AWS": [
                pulumi.Output.format("arn:{0}:iam::{1}:root", part, a) for a in sorted(set(read.account_ids))
            ]
        },
        "Action": "s3:GetObject",
        "Resource": pulumi.Output.concat(bucket_arn, "/", read.prefix, "*"),
    }


def write_once_statement(bucket_arn: pulumi.Output[str], prefixes: Sequence[str]) -> dict[str, Any]:
    """Deny ``s3:PutObject`` below ``prefixes`` unless the request carries ``If-None-Match`` (S3 then
    refuses to replace an existing key: 412), for every principal.

    AWS's form, "Enforce conditional writes on Amazon S3 buckets"
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html): ``Null``
    on ``s3:if-none-match`` (the header is absent), and ``s3:ObjectCreationOperation`` true, which
    exempts CreateMultipartUpload/UploadPart/UploadPartCopy (they take no conditional header; the
    completion does). ``If-None-Match`` accepts only ``*`` on PutObject (other values: 501), so no
    ``StringNotEquals`` statement is needed. CopyObject into these prefixes is refused (403 without
    the header, 501 with it): the platform uploads, it never copies there.
    """
    return {
        "Sid": "DenyOverwritableDatasetWrites",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": [pulumi.Output.concat(bucket_arn, "/", p, "*") for p in prefixes],
        "Condition": {
            "Null": {"s3:if-none-match": "true"},
            "Bool": {"s3:ObjectCreationOperation": "true"},
        },
    }


def version_delete_statement(
    bucket_arn: pulumi.Output[str], prefixes: Sequence[str], erasure_role_arns: Sequence[str] = ()
) -> dict[str, Any]:
    """Deny ``s3:DeleteObject`` and ``s3:DeleteObjectVersion`` below ``prefixes`` for every principal
    except ``erasure_role_arns`` (matched on ``aws:PrincipalArn``, the role's ARN for its sessions).

    Without it a version could be deleted (a delete marker in a versioned bucket) and then written
    again with different bytes: ``If-None-Match: *`` succeeds when the current version is a delete
    marker. DeleteObjects is authorized per key as ``s3:DeleteObject`` (or ``s3:DeleteObjectVersion``
    with a version id), so it is covered too; S3 answers a refused key in the result's ``Error`` list.

    Lifecycle expiration stays possible: S3 Lifecycle acts through S3's internal endpoints, not as a
    principal calling DeleteObject, which is why AWS says denying a user deletes also takes denying
    ``s3:PutLifecycleConfiguration``
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutBucketLifecycleConfiguration.html,
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-and-other-bucket-config.html).
    That action stays with the deployer (no platform role is granted it). ``pulumi destroy`` of a
    force-destroy bucket deletes this policy before the bucket, so dev teardown still empties it.
    """
    statement: dict[str, Any] = {
        "Sid": "DenyDatasetVersionDeletes",
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
        "Resource": [pulumi.Output.concat(bucket_arn, "/", p, "*") for p in prefixes],
    }
    if erasure_role_arns:
        statement["Condition"] = {"ArnNotEquals": {"aws:PrincipalArn": sorted(set(erasure_role_arns))}}
    return statement


def _tls_only_statements(bucket_arn: pulumi.Output[str]) -> list[dict[str, Any]]:
    """Deny every request not over TLS, and any over TLS older than 1.2.

    ``Principal: *`` is correct here: it is a Deny, which narrows access for everyone
    (CKV_AWS_70 flags ``*`` only in Allow statements). Since February 2024 every AWS API endpoint
    requires TLS 1.2, so the second statement is defence in depth, and the place to raise the
    floor to 1.3: https://aws.amazon.com/blogs/storage/enforcing-encryption-in-transit-with-tls1-2-or-higher-with-amazon-s3/
    """
    resources = [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")]
    return [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DenyOutdatedTLS",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        },
    ]
