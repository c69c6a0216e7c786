"""Athena and Glue: enforced, encrypted, cost-capped workgroups; encrypted Data Catalog and jobs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.core import Context, Level, Resource, Stack, is_truthy, resource_rule, stack_rule

WORKGROUP = "aws:athena/workgroup:Workgroup"
ATHENA_DATABASE = "aws:athena/database:Database"
GLUE_DATABASE = "aws:glue/catalogDatabase:CatalogDatabase"
GLUE_TABLE = "aws:glue/catalogTable:CatalogTable"
CATALOG_ENCRYPTION = "aws:glue/dataCatalogEncryptionSettings:DataCatalogEncryptionSettings"
CRAWLER = "aws:glue/crawler:Crawler"
GLUE_JOB = "aws:glue/job:Job"


@resource_rule(
    "athena-workgroup-enforced",
    [WORKGROUP],
    why="Unless enforced, a client can override the result location and encryption and write results anywhere.",
    fix="Set configuration.enforceWorkgroupConfiguration: true.",
)
def workgroup_enforced(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Athena workgroups enforce their configuration on clients.

    Mirrors: CKV_AWS_82
    """
    if not is_truthy((props.get("configuration") or {}).get("enforceWorkgroupConfiguration")):
        yield "enforceWorkgroupConfiguration is not true"


@resource_rule(
    "athena-workgroup-encrypted",
    [WORKGROUP],
    why="Query results copy lake data (features, captured requests) to S3; they need the same KMS protection.",
    fix="Set resultConfiguration.encryptionConfiguration {encryptionOption: SSE_KMS, kmsKeyArn: <key>}.",
)
def workgroup_encrypted(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Athena query results are encrypted with a customer-managed KMS key.

    Mirrors: CKV_AWS_159
    """
    result = (props.get("configuration") or {}).get("resultConfiguration") or {}
    enc = result.get("encryptionConfiguration") or {}
    if enc.get("encryptionOption") not in ("SSE_KMS", "CSE_KMS") or not enc.get("kmsKeyArn"):
        yield f"results encryption is {enc.get('encryptionOption')!r} without a customer key"


@resource_rule(
    "athena-bytes-scanned-cutoff",
    [WORKGROUP],
    level=Level.ADVISORY,
    why="Without a per-query cutoff, one unfiltered query over the capture table can scan (and bill) terabytes.",
    fix="Set analytics.bytesScannedCutoffMb in the stack config.",
)
def bytes_cutoff(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Athena workgroups cap the bytes a query may scan.

    Mirrors: none (cost guardrail)
    """
    if not (props.get("configuration") or {}).get("bytesScannedCutoffPerQuery"):
        yield "no bytesScannedCutoffPerQuery"


@resource_rule(
    "athena-database-encrypted",
    [ATHENA_DATABASE],
    why="An Athena database's query results are written to S3 and must be encrypted.",
    fix="Set encryptionConfiguration {encryptionOption: SSE_KMS, kmsKey: <key>}.",
)
def athena_database_encrypted(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Athena databases encrypt their results.

    Mirrors: CKV_AWS_77
    """
    if not (props.get("encryptionConfiguration") or {}).get("encryptionOption"):
        yield "no encryptionConfiguration"


@stack_rule(
    "glue-catalog-encryption",
    why="The Data Catalog holds the lake's schemas and connection passwords; without catalog encryption they are stored with AWS-owned keys only.",
    fix="Declare aws.glue.DataCatalogEncryptionSettings with encryptionAtRest SSE-KMS and connection password encryption on the platform key.",
)
def catalog_encryption(stack: Stack, ctx: Context) -> Iterator[tuple[Resource, str]]:
    """A stack that declares Glue databases encrypts the Data Catalog with a KMS key.

    Mirrors: CKV_AWS_94, CKV_AWS_195
    """
    settings = stack.of_type(CATALOG_ENCRYPTION)
    ok = False
    for s in settings:
        cfg = s.props.get("dataCatalogEncryptionSettings") or {}
        at_rest = cfg.get("encryptionAtRest") or {}
        passwords = cfg.get("connectionPasswordEncryption") or {}
        ok = ok or (
            at_rest.get("catalogEncryptionMode") == "SSE-KMS"
            and bool(at_rest.get("sseAwsKmsKeyId"))
            and is_truthy(passwords.get("returnConnectionPasswordEncrypted"))
        )
    if not ok:
        for database in stack.of_type(GLUE_DATABASE):
            yield (
                database,
                (
                    "no DataCatalogEncryptionSettings with SSE-KMS and encrypted connection passwords in this stack"
                ),
            )


@resource_rule(
    "glue-security-configuration",
    [CRAWLER, GLUE_JOB],
    why="Crawlers and jobs write logs, bookmarks and output; a security configuration encrypts them with KMS.",
    fix="Create an aws.glue.SecurityConfiguration (S3, CloudWatch and job bookmarks SSE-KMS) and reference it.",
)
def glue_security_configuration(resource_type: str, props: Mapping[str, Any], ctx: Context) -> Iterator[str]:
    """Glue crawlers and jobs use an encrypted security configuration.

    Mirrors: CKV_AWS_99, CKV_AWS_195
    """
    if not props.get("securityConfiguration"):
        yield "no securityConfiguration"
