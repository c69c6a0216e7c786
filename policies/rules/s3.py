"""S3: encryption, versioning, Block Public Access, ownership, TLS-only and public policies, logging.

pulumi-aws 7 configures a bucket through separate resources (``BucketVersioning``,
``BucketServerSideEncryptionConfiguration``...), so most S3 rules are stack rules that look for the
configuration resource referencing each bucket.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.core import (
    Context,
    Level,
    Resource,
    Stack,
    as_list,
    is_truthy,
    policy_statements,
    principals,
    resource_rule,
    stack_rule,
)

BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
ACL = "aws:s3/bucketAcl:BucketAcl"

PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")


def _log_targets(stack: Stack) -> set[str]:
    """URNs of buckets that receive S3 server access logs."""
    targets: set[str] = set()
    for logging in stack.of_type(LOGGING):
        for bucket in stack.of_type(BUCKET):
            if logging.refers_to("targetBucket", bucket):
                targets.add(bucket.urn)
    return targets


def _sse_rules(configs: list[Resource]) -> list[Mapping[str, Any]]:
    rules: list[Mapping[str, Any]] = []
    for cfg in configs:
        rules.extend(r for r in as_list(cfg.props.get("rules")) if isinstance(r, Mapping))
    return rules


@stack_rule(
    "s3-bucket-encryption-kms",
    why="SSE-KMS with a customer key puts every object read behind a key policy and CloudTrail; "
    "SSE-S3 lets anyone with s3:GetObject read the data.",
    fix="Add a BucketServerSideEncryptionConfiguration with sseAlgorithm aws:kms and kmsMasterKeyId "
    "set to the data domain's key (DataLake does this for its buckets).",
)
def bucket_encryption_kms(stack: Stack, ctx: Context) -> Iterator[tuple[Resource, str]]:
    """Every bucket is encrypted by default with a customer-managed KMS key.

    Server access log target buckets may use SSE-S3: log delivery (``logging.s3.amazonaws.com``)
    writes to an SSE-KMS target only if the key policy admits the logging service, which the
    platform does not grant (and older S3 documentation allowed SSE-S3 targets only:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html).

    Mirrors: CKV_AWS_145, aws-s3-bucket-configure-server-side-encryption-customer-managed-key
    """
    log_targets = _log_targets(stack)
    for bucket in stack.of_type(BUCKET):
        rules = _sse_rules(stack.referencing(SSE, "bucket", bucket))
        if not rules:
            yield bucket, "no default encryption configuration references this bucket"
            continue
        for rule in rules:
            default = rule.get("applyServerSideEncryptionByDefault") or {}
            algorithm = default.get("sseAlgorithm")
            if algorithm in ("aws:kms", "aws:kms:dsse"):
                if not default.get("kmsMasterKeyId"):
                    yield bucket, f"sseAlgorithm {algorithm} without kmsMasterKeyId uses the AWS-managed key"
            elif bucket.urn in log_targets and algorithm == "AES256":
                continue
            else:
                yield bucket, f"default encryption is {algorithm!r}, not aws:kms with a customer key"


@stack_rule(
    "s3-bucket-key-enabled",
    level=Level.ADVISORY,
    why="An S3 Bucket Key cuts KMS requests (and their cost and throttling) by up to 99% for SSE-KMS buckets.",
    fix="Set bucketKeyEnabled: true on the bucket's SSE-KMS rule.",
)
def bucket_key_enabled(stack: Stack, ctx: Context) -> Iterator[tuple[Resource, str]]:
    """SSE-KMS buckets use an S3 Bucket Key.

    Mirrors: aws-s3-bucket-enable-server-side-encryption-bucket-key
    """
    for bucket in stack.of_type(BUCKET):
        for rule in _sse_rules(stack.referencing(SSE, "bucket", bucket)):
            default = rule.get("applyServerSideEncryptionByDefault") or {}
            if default.get("sseAlgorithm") == "aws:kms" and not is_truthy(rule.get("bucketKeyEnabled")):
                yield bucket, "SSE-KMS rule without bucketKeyEnabled"


@stack_rule(
    "s3-bucket-versioning",
    why="Versioning keeps every overwritten or deleted object recoverable (datasets, models, captures).",
    fix="Add a BucketVersioning with versioningConfiguration.status Enabled.",
)
def bucket_versioning(stack: Stack, ctx: Context) -> Iterator[tuple[Resource, str]]:
    """Every bucket has versioning enabled.

    Mirrors: CKV_AWS_21
    """
    for bucket in stack.of_type(BUCKET):
        configs = stack.referencing(VERSIONING, "bucket", bucket)
        statuses = [(c.props.get("versioningConfiguration") or {}).get("status") for c in configs]
        if "Enabled" not in statuses:
            yield bucket, f"versioning is not enabled (found: {statuses or 'no BucketVersioning'})"


_PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


@stack_rule(
    "s3-public-access-block",
    why="Block Public Access is the backstop that keeps a mistaken ACL or policy from publishing data.",
    fix="Add a BucketPublicAccessBlock with all four flags true.",
)
def public_access_block(stack: Stack, ctx: Context) -> Iterator[tuple[Resource, str]]:
    """Every bucket blocks all public access (all four Block Public Access flags).

    Mirrors: CKV2_AWS_6, CKV_AWS_53, CKV_AWS_54, CKV_AWS_55, CKV_AWS_56
    """
    for bucket in stack.of_type(BUCKET):
        blocks = stack.referencing(PUBLIC_ACCESS_BLOCK, "bucket", bucket)
        if not blocks:
            yield bucket, "no BucketPublicAccessBlock references this bucket"
            continue
        missing = [f for f in _PAB_FLAGS if not any(is_truthy(b.props.get(f)) for b in blocks)]
        if missing:
            yield bucket, f"Block Public Access flags not set: {', '.join(missing)}"


@stack_rule(
    "s3-ownership-controls",
    why="BucketOwnerEnforced disables ACLs, so objects written by other accounts or services stay the bucket owner's.",
    fix="Add a BucketOwnershipControls with rule.objectOwnership BucketOwnerEnforced.",
)
def ownership_controls(stack: Stack, ctx: Context) -> Iterator[tuple[Resource, str]]:
    """Every bucket enforces bucket-owner object ownership (ACLs disabled).

    Mirrors: CKV2_AWS_65
    """
    for bucket in stack.of_type(BUCKET):
        controls = stack.referencing(OWNERSHIP, "bucket", bucket)
        values = [(c.props.get("rule") or {}).get("objectOwnership") for c in controls]
        if "BucketOwnerEnforced" not in values:
            yield bucket, f"object ownership is not BucketOwnerEnforced (found: {values or 'none'})"


def _denies_insecure_transport(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    condition = statement.get("Condition") or {}
    for operator, values in condition.items():
        if operator.startswith("Bool") and isinstance(values, Mapping):
            value = values.get("aws:SecureTransport")
            if str(value).lower() == "false":
                return True
    return False


@stack_rule(
    "s3-tls-only-policy",
    why="Without a deny on aws:SecureTransport=false, a client can read or write the bucket over plain HTTP.",
    fix="Add a bucket policy statement that denies s3:* when aws:SecureTransport is false.",
)
def tls_only(stack: Stack, ctx: Context) -> Iterator[tuple[Resource, str]]:
    """Every bucket's policy denies requests that do not use TLS.

    Mirrors: Security Hub S3.5
    """
    for bucket in stack.of_type(BUCKET):
        policies = stack.referencing(POLICY, "bucket", bucket)
        statements = [s for p in policies for s in policy_statements(p.props.get("policy"))]
        if not any(_denies_insecure_transport(s) for s in statements):
            yield bucket, "no bucket policy statement denies aws:SecureTransport=false"


@stack_rule(
    "s3-access-logging",
    why="Server access logs are the record of who read or changed which object, for audits and incident response.",
    fix="Add a BucketLogging targeting the access-logs bucket (DataLake does this for its buckets).",
)
def access_logging(stack: Stack, ctx: Context) -> Iterator[tuple[Resource, str]]:
    """Every bucket except the access-log target itself has server access logging.

    Mirrors: CKV_AWS_18, s3-bucket-logging-enabled
    """
    log_targets = _log_targets(stack)
    for bucket in stack.of_type(BUCKET):
        if bucket.urn in log_targets:
            continue
        if not stack.referencing(LOGGING, "bucket", bucket):
            yield bucket, "no BucketLogging references this bucket"


@resource_rule(
    "s3-no-public-policy",
    [POLICY],
    why="An Allow for Principal * without a narrowing condition opens the bucket to the internet.",
    fix="Name the principals (roles, accounts, service principals with aws:SourceAccount) instead of *.",
)
def no_public_policy(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Bucket policies never allow an unconditioned ``*`` principal.

    Mirrors: CKV_AWS_70
    """
    for statement in policy_statements(props.get("policy")):
        if statement.get("Effect") != "Allow" or statement.get("Condition"):
            continue
        if any(value == "*" for _, value in principals(statement)):
            yield f"statement {statement.get('Sid', '(no Sid)')!r} allows Principal * without a condition"


@resource_rule(
    "s3-no-public-acl",
    [ACL, BUCKET],
    why="A public canned ACL makes every object readable (or writable) by anyone.",
    fix="Remove the ACL; with BucketOwnerEnforced, access is granted by policies only.",
)
def no_public_acl(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """No bucket or bucket ACL uses a public canned ACL.

    Mirrors: CKV_AWS_20, CKV_AWS_57
    """
    acl = props.get("acl")
    if acl in PUBLIC_ACLS:
        yield f"canned ACL {acl!r} is public"


@stack_rule(
    "s3-lifecycle-abort-multipart",
    level=Level.ADVISORY,
    why="Incomplete multipart uploads are billed until aborted, and a lifecycle bounds noncurrent versions.",
    fix="Add a BucketLifecycleConfiguration rule with abortIncompleteMultipartUpload.daysAfterInitiation.",
)
def lifecycle(stack: Stack, ctx: Context) -> Iterator[tuple[Resource, str]]:
    """Every bucket has a lifecycle configuration that aborts incomplete multipart uploads.

    Mirrors: CKV2_AWS_61, CKV_AWS_300
    """
    for bucket in stack.of_type(BUCKET):
        configs = stack.referencing(LIFECYCLE, "bucket", bucket)
        rules = [r for c in configs for r in as_list(c.props.get("rules")) if isinstance(r, Mapping)]
        if not any(r.get("abortIncompleteMultipartUpload") and r.get("status") == "Enabled" for r in rules):
            yield bucket, "no enabled lifecycle rule aborts incomplete multipart uploads"


@resource_rule(
    "s3-prod-no-force-destroy",
    [BUCKET],
    level=Level.ADVISORY,
    prod=Level.MANDATORY,
    why="forceDestroy lets `pulumi destroy` delete a bucket with all its objects: prod data must survive a teardown.",
    fix="Set dataProtection.forceDestroyBuckets: false (and protectData: true) in the prod stack config.",
)
def no_force_destroy(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Prod buckets cannot be force-destroyed with their data.

    Mirrors: none (platform rule: prod data protected from deletion)
    """
    if ctx.is_prod and is_truthy(props.get("forceDestroy")):
        yield "forceDestroy is true in prod"
