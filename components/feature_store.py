"""SageMaker Feature Store: one feature group per model, declared from its dataset contract.

Each group's record identifier is the contract's single unique key and its event time the contract's
``event_time`` column (or the ingestion time, ``event_time``); every other feature the feature job
writes becomes a feature definition with the contract type mapped to a Feature Store type
(:data:`platform_contract.limits.FEATURE_TYPES`). The offline store is an Iceberg table in the Glue database, its data under a
prefix of the features bucket, encrypted with the lake key; the online store is optional (per
environment) and encrypted with the platform's ML key.

One ingestion role, trusted by ``sagemaker.amazonaws.com`` from this account only, is both the
groups' ``RoleArn`` (Feature Store assumes it to write the offline store) and the execution role of
an ingestion job (``PutRecord`` on these groups only). Feature Store API reference:
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateFeatureGroup.html
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components._util import account_id, child_opts, partition, policy_document, service_trust_policy
from platform_contract.limits import (
    FEATURE_GROUP_NAME,
    FEATURE_NAME,
    MAX_FEATURE_DEFINITIONS,
    RESERVED_FEATURE_NAMES,
)

FeatureType = Literal["Integral", "Fractional", "String"]
"""The value types of a Feature Store feature."""

INGESTION_ACTIONS = (
    "sagemaker:PutRecord",
    "sagemaker:GetRecord",
    "sagemaker:BatchGetRecord",
    "sagemaker:DescribeFeatureGroup",
)
"""What an ingestion job calls on its feature groups (never Create/Delete/UpdateFeatureGroup)."""
WRITER_ACTIONS = ("sagemaker:PutRecord", "sagemaker:DescribeFeatureGroup")
"""What a feature job writing into the groups calls: read the definitions, put records."""
OFFLINE_WRITER_ACTIONS = {
    "feature-group": ("sagemaker:DescribeFeatureGroup",),
    # pyiceberg's Glue catalog: load_table is GetTable; a commit is UpdateTable (with the VersionId it read)
    "glue": ("glue:GetTable", "glue:UpdateTable"),
    # data and metadata files are only ever added (a new Iceberg snapshot); nothing is deleted or replaced.
    # No s3:ListBucket: new files are put without a HeadObject probe (offline_store.glue_catalog)
    "objects": ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"),
    "key": ("kms:Decrypt", "kms:GenerateDataKey"),
}
"""What a role committing to and reading the Iceberg offline tables calls, by resource type."""


@dataclass(frozen=True, kw_only=True)
class FeatureGroupSpec:
    """One feature group: its names and its features."""

    name: str
    """Feature group name (``[a-zA-Z0-9]([_-]*[a-zA-Z0-9]){0,63}``)."""
    record_identifier: str
    """Feature whose value identifies a record (the contract's unique key)."""
    event_time_feature: str
    """Feature holding each record's event time (an ISO-8601 ``String`` feature)."""
    features: Sequence[tuple[str, FeatureType]]
    """Every feature with its type, record identifier and event time included."""
    offline_prefix: str
    """Key prefix of the offline store in the bucket (no leading or trailing ``/``)."""
    offline_table: str
    """Glue table of the offline store (lower case letters, digits and ``_``)."""
    description: str = ""
    """Free text (at most 128 characters)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags of this group (the model and contract)."""

    def __post_init__(self) -> None:
        where = f"FeatureGroupSpec({self.name!r})"
        if not FEATURE_GROUP_NAME.match(self.name):
            raise ValueError(
                f"{where}.name: 1-64 letters, digits, '_' and '-', starting and ending alphanumeric"
            )
        names = [n for n, _ in self.features]
        bad = [n for n in names if not FEATURE_NAME.match(n) or n in RESERVED_FEATURE_NAMES]
        if bad:
            raise ValueError(
                f"{where}.features: {bad} are not valid feature names (letters, digits, '_' and '-', "
                f"starting alphanumeric; not {sorted(RESERVED_FEATURE_NAMES)}); rename the contract columns"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"{where}.features: a feature is listed twice")
        if not 1 <= len(names) <= MAX_FEATURE_DEFINITIONS:
            raise ValueError(f"{where}.features: 1-{MAX_FEATURE_DEFINITIONS} features, got {len(names)}")
        types = dict(self.features)
        if self.record_identifier not in types:
            raise ValueError(
                f"{where}.record_identifier {self.record_identifier!r} is not one of its features"
            )
        if types.get(self.event_time_feature) not in ("String", "Fractional"):
            raise ValueError(
                f"{where}.event_time_feature {self.event_time_feature!r} must be a String (ISO-8601) or "
                "Fractional (epoch seconds) feature"
            )
        if self.offline_prefix.startswith("/") or self.offline_prefix.endswith("/"):
            raise ValueError(f"{where}.offline_prefix {self.offline_prefix!r}: no leading or trailing '/'")
        if len(self.description) > 128:
            raise ValueError(f"{where}.description: at most 128 characters")


@dataclass(frozen=True, kw_only=True)
class FeatureStoreArgs:
    """Arguments of :class:`FeatureStore`."""

    name_prefix: str
    """Prefix of the ingestion role's name (``mlops-<env>``)."""
    region: str
    """Region of the feature groups (ARNs in the role's policy)."""
    groups: Sequence[FeatureGroupSpec]
    """The feature groups, one per model."""
    offline_bucket_name: pulumi.Input[str]
    """Bucket of the offline store (the lake's features bucket)."""
    offline_bucket_arn: pulumi.Input[str]
    """ARN of that bucket."""
    offline_key_arn: pulumi.Input[str]
    """KMS key the offline store's objects are written with (the lake key)."""
    glue_database_name: pulumi.Input[str]
    """Glue database of the offline tables."""
    online_store: bool = False
    """Declare an online store per group (low-latency ``GetRecord`` at serving time)."""
    online_key_arn: pulumi.Input[str] | None = None
    """KMS key of the online store (the platform's ML key); required with ``online_store``."""
    online_ttl_days: int | None = None
    """Hard-delete online records this many days after their event time; None keeps them."""
    writer_role_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Roles (by a short key) of jobs that ingest into these groups, e.g. the EMR feature job's role:
    each gets :data:`WRITER_ACTIONS` on these groups' ARNs only."""
    offline_writer_role_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Roles (by a short key) that commit batches straight to the groups' Iceberg offline tables and
    read them back (``pipelines.features.offline_store``, the DAG workers' role): each gets
    :data:`OFFLINE_WRITER_ACTIONS` on these groups, their tables, their offline prefixes and the offline key."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child."""

    def __post_init__(self) -> None:
        if not self.groups:
            raise ValueError("FeatureStoreArgs.groups: declare at least one feature group")
        if self.online_store and self.online_key_arn is None:
            raise ValueError(
                "FeatureStoreArgs.online_key_arn: online_store=True needs the key that encrypts it"
            )
        if self.online_ttl_days is not None and self.online_ttl_days < 1:
            raise ValueError("FeatureStoreArgs.online_ttl_days: at least 1 day, or None")
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError(f"FeatureStoreArgs.groups: feature group names repeat: {names}")


class FeatureStore(pulumi.ComponentResource):
    """Feature groups with an Iceberg offline store in the lake and an optional online store.

    Outputs:
        feature_group_names, feature_group_arns, offline_table_names, offline_store_uris (by group),
        ingestion_role_arn, ingestion_role_name.
    """

    feature_group_names: dict[str, pulumi.Output[str]]
    feature_group_arns: dict[str, pulumi.Output[str]]
    offline_table_names: dict[str, str]
    offline_store_uris: dict[str, pulumi.Output[str]]
    ingestion_role_arn: pulumi.Output[str]
    ingestion_role_name: pulumi.Output[str]

    def __init__(self, name: str, args: FeatureStoreArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:feature_store:FeatureStore", name, None, opts)
        tags = dict(args.tags)
        account = account_id(self)
        part = partition(self)

        role = aws.iam.Role(
            f"{name}-feature-ingestion-role",
            name=f"{args.name_prefix}-feature-ingestion",
            description="Feature Store offline-store writer and feature ingestion jobs",
            # Only SageMaker acting for this account (confused-deputy conditions).
            assume_role_policy=service_trust_policy(["sagemaker.amazonaws.com"], source_account=account),
            tags=tags,
            opts=child_opts(self),
        )
        group_arns = [
            pulumi.Output.format(
                "arn:{0}:sagemaker:{1}:{2}:feature-group/{3}", part, args.region, account, g.name
            )
            for g in args.groups
        ]
        policy = aws.iam.RolePolicy(
            f"{name}-feature-ingestion-permissions",
            role=role.id,
            policy=policy_document(self._statements(args, account, part, group_arns)),
            opts=child_opts(self),
        )

        for key, writer in sorted(args.writer_role_names.items()):
            # PutRecord and DescribeFeatureGroup take the feature-group resource type
            # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html)
            aws.iam.RolePolicy(
                f"{name}-feature-writer-{key}",
                role=writer,
                policy=policy_document(
                    [
                        {
                            "Sid": "PutFeatureRecords",
                            "Effect": "Allow",
                            "Action": list(WRITER_ACTIONS),
                            "Resource": list(group_arns),
                        }
                    ]
                ),
                opts=child_opts(self),
            )

        for key, writer in sorted(args.offline_writer_role_names.items()):
            aws.iam.RolePolicy(
                f"{name}-offline-writer-{key}",
                role=writer,
                policy=policy_document(self._offline_writer_statements(args, account, part, group_arns)),
                opts=child_opts(self),
            )

        self.feature_group_names, self.feature_group_arns = {}, {}
        self.offline_table_names, self.offline_store_uris = {}, {}
        for spec in args.groups:
            uri = pulumi.Output.concat("s3://", args.offline_bucket_name, "/", spec.offline_prefix)
            online: aws.sagemaker.FeatureGroupOnlineStoreConfigArgs | None = None
            if args.online_store:
                online = aws.sagemaker.FeatureGroupOnlineStoreConfigArgs(
                    enable_online_store=True,
                    security_config=aws.sagemaker.FeatureGroupOnlineStoreConfigSecurityConfigArgs(
                        kms_key_id=args.online_key_arn
                    ),
                    ttl_duration=aws.sagemaker.FeatureGroupOnlineStoreConfigTtlDurationArgs(
                        unit="Days", value=args.online_ttl_days
                    )
                    if args.online_ttl_days
                    else None,
                )
            group = aws.sagemaker.FeatureGroup(
                f"{name}-{spec.name}",
                feature_group_name=spec.name,
                record_identifier_feature_name=spec.record_identifier,
                event_time_feature_name=spec.event_time_feature,
                feature_definitions=[
                    aws.sagemaker.FeatureGroupFeatureDefinitionArgs(feature_name=n, feature_type=t)
                    for n, t in spec.features
                ],
                description=spec.description or None,
                role_arn=role.arn,
                offline_store_config=aws.sagemaker.FeatureGroupOfflineStoreConfigArgs(
                    s3_storage_config=aws.sagemaker.FeatureGroupOfflineStoreConfigS3StorageConfigArgs(
                        s3_uri=uri, kms_key_id=args.offline_key_arn
                    ),
                    # Iceberg: compaction, time travel and row-level updates for point-in-time joins.
                    table_format="Iceberg",
                    data_catalog_config=aws.sagemaker.FeatureGroupOfflineStoreConfigDataCatalogConfigArgs(
                        catalog="AwsDataCatalog",
                        database=args.glue_database_name,
                        table_name=spec.offline_table,
                    ),
                ),
                online_store_config=online,
                tags={**tags, **spec.tags},
                # CreateFeatureGroup checks that the role can write the offline store.
                opts=child_opts(self, depends_on=[policy]),
            )
            self.feature_group_names[spec.name] = group.feature_group_name
            self.feature_group_arns[spec.name] = group.arn
            self.offline_table_names[spec.name] = spec.offline_table
            self.offline_store_uris[spec.name] = uri

        self.ingestion_role_arn = role.arn
        self.ingestion_role_name = role.name
        self.register_outputs(
            {
                "feature_group_names": self.feature_group_names,
                "feature_group_arns": self.feature_group_arns,
                "offline_table_names": self.offline_table_names,
                "offline_store_uris": self.offline_store_uris,
                "ingestion_role_arn": self.ingestion_role_arn,
                "ingestion_role_name": self.ingestion_role_name,
            }
        )

    @staticmethod
    def _table_arns(
        args: FeatureStoreArgs, account: pulumi.Output[str], part: pulumi.Output[str]
    ) -> list[Any]:
        """The Glue catalog, the database and the groups' offline tables: GetTable and UpdateTable
        authorize on all three (https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html)."""
        glue = "arn:{0}:glue:{1}:{2}:"
        return [
            pulumi.Output.format(glue + "catalog", part, args.region, account),
            pulumi.Output.format(glue + "database/{3}", part, args.region, account, args.glue_database_name),
            *(
                pulumi.Output.format(
                    glue + "table/{3}/{4}",
                    part,
                    args.region,
                    account,
                    args.glue_database_name,
                    g.offline_table,
                )
                for g in args.groups
            ),
        ]

    @classmethod
    def _offline_writer_statements(
        cls,
        args: FeatureStoreArgs,
        account: pulumi.Output[str],
        part: pulumi.Output[str],
        group_arns: Sequence[pulumi.Output[str]],
    ) -> list[dict[str, Any]]:
        """A direct offline-store writer's permissions (:data:`OFFLINE_WRITER_ACTIONS`)."""
        prefixes = [g.offline_prefix for g in args.groups]
        return [
            {
                "Sid": "DescribeFeatureGroups",
                "Effect": "Allow",
                "Action": list(OFFLINE_WRITER_ACTIONS["feature-group"]),
                "Resource": list(group_arns),
            },
            {
                "Sid": "CommitOfflineTables",
                "Effect": "Allow",
                "Action": list(OFFLINE_WRITER_ACTIONS["glue"]),
                "Resource": cls._table_arns(args, account, part),
            },
            {
                "Sid": "OfflineTableFiles",
                "Effect": "Allow",
                "Action": list(OFFLINE_WRITER_ACTIONS["objects"]),
                "Resource": [pulumi.Output.concat(args.offline_bucket_arn, "/", p, "/*") for p in prefixes],
            },
            {
                "Sid": "UseOfflineKey",
                "Effect": "Allow",
                "Action": list(OFFLINE_WRITER_ACTIONS["key"]),
                "Resource": args.offline_key_arn,
            },
        ]

    @staticmethod
    def _statements(
        args: FeatureStoreArgs,
        account: pulumi.Output[str],
        part: pulumi.Output[str],
        group_arns: Sequence[pulumi.Output[str]],
    ) -> list[dict[str, Any]]:
        """The ingestion role's permissions: these groups, their prefixes, their tables, their keys."""
        prefixes = [g.offline_prefix for g in args.groups]
        statements: list[dict[str, Any]] = [
            {
                "Sid": "IngestRecords",
                "Effect": "Allow",
                "Action": list(INGESTION_ACTIONS),
                "Resource": list(group_arns),
            },
            {
                # Feature Store writes offline-store files as the role (offline store permissions:
                # https://docs.aws.amazon.com/sagemaker/latest/dg/feature-store-adding-policies.html)
                "Sid": "WriteOfflineStore",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                "Resource": [pulumi.Output.concat(args.offline_bucket_arn, "/", p, "/*") for p in prefixes],
            },
            {
                "Sid": "ListOfflineStore",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": args.offline_bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": [f"{p}/*" for p in prefixes]}},
            },
            {
                "Sid": "OfflineStoreBucketAcl",
                "Effect": "Allow",
                "Action": ["s3:GetBucketAcl", "s3:GetBucketLocation"],
                "Resource": args.offline_bucket_arn,
            },
            {
                "Sid": "OfflineStoreTables",
                "Effect": "Allow",
                "Action": ["glue:GetDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable"],
                "Resource": FeatureStore._table_arns(args, account, part),
            },
            {
                "Sid": "UseStoreKeys",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                "Resource": [args.offline_key_arn]
                + ([args.online_key_arn] if args.online_store and args.online_key_arn is not None else []),
            },
        ]
        return statements
