"""Glue Data Catalog tables over the lake and an Athena workgroup with enforced, encrypted results.

The dataset tables take their columns from the dataset contract (passed in as :class:`Column`
lists), never from code. Partitions are predictable (one per ingest day; one per endpoint,
variant and hour of data capture), so every table uses Athena *partition projection* instead of
crawlers: no crawler role, no crawler schedule, no ``MSCK REPAIR``, and new days are queryable the
moment they land. https://docs.aws.amazon.com/athena/latest/ug/partition-projection.html
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components._util import child_opts
from platform_contract.limits import ATHENA_MIN_BYTES_SCANNED_CUTOFF_MB

ContractType = Literal["integer", "float", "string", "boolean", "datetime"]

GLUE_TYPES: dict[str, str] = {
    "integer": "bigint",
    "float": "double",
    "string": "string",
    "boolean": "boolean",
    "datetime": "timestamp",
}
"""Hive/Glue type of each dataset-contract type (Parquet written by pandas/pyarrow and Spark)."""

MIN_BYTES_SCANNED_CUTOFF = ATHENA_MIN_BYTES_SCANNED_CUTOFF_MB * 1024 * 1024
"""Athena's smallest per-query data usage control: 10 MB (``BytesScannedCutoffPerQuery``)."""

# SageMaker data capture record (JSON Lines), lowercased as Glue stores names; the OpenX JSON SerDe
# matches JSON keys case-insensitively. Record shape:
# https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html
_CAPTURE_PAYLOAD = "struct<observedcontenttype:string,mode:string,data:string,encoding:string>"
CAPTURE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("capturedata", f"struct<endpointinput:{_CAPTURE_PAYLOAD},endpointoutput:{_CAPTURE_PAYLOAD}>"),
    ("eventmetadata", "struct<eventid:string,inferencetime:string,inferenceid:string>"),
    ("eventversion", "string"),
)

_PARQUET = {
    "input_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "output_format": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "serde": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
}
_JSON = {
    "input_format": "org.apache.hadoop.mapred.TextInputFormat",
    "output_format": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "serde": "org.openx.data.jsonserde.JsonSerDe",
}


@dataclass(frozen=True, kw_only=True)
class Column:
    """A dataset-contract column: name (lowercase) and contract type."""

    name: str
    type: ContractType


@dataclass(frozen=True, kw_only=True)
class DatasetSchema:
    """What the catalog needs from a dataset contract."""

    name: str
    """Dataset name: the ``<dataset>`` of ``curated/<dataset>/`` and ``features/<dataset>/``."""
    columns: Sequence[Column]
    """Columns of the curated table."""
    feature_columns: Sequence[Column] = ()
    """Columns of the feature table (empty: no feature table). Numeric ones are summarised per day by a named
    query.
    """
    model_inputs: Sequence[str] = ()
    """Model input column names in the model's order, i.e. the fields of a captured CSV request; numeric ones
    are summarised over captured traffic. Each must be a feature column.
    """


@dataclass(frozen=True, kw_only=True)
class ModelTables:
    """One model of the catalog as the Glue catalog sees it: its contract's tables and its capture table."""

    model: str
    """The model's slug (``churn``); table names start with it (``-`` -> ``_``)."""
    capture_table: str
    """Name of the Glue table over the model's data capture (``churn_capture``)."""
    capture_prefix: str
    """Prefix the model's endpoint captures under (``datacapture/churn``): ``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/``."""
    dataset: DatasetSchema | None = None
    """The model's dataset contract schema; None catalogues only its capture table."""

    @property
    def table_prefix(self) -> str:
        """``<model>_`` with ``-`` -> ``_`` (Glue names: lowercase letters, digits and ``_``)."""
        return self.model.replace("-", "_") + "_"


@dataclass(frozen=True, kw_only=True)
class TableNames:
    """The Glue tables declared for one model."""

    curated: pulumi.Output[str] | None
    """Curated table (None without a dataset)."""
    features: pulumi.Output[str] | None
    """Feature table (None without feature columns)."""
    capture: pulumi.Output[str]
    """Data-capture table."""


@dataclass(frozen=True, kw_only=True)
class AnalyticsArgs:
    """Arguments of :class:`Analytics`."""

    database_name: str
    """Glue database name (lowercase, ``_``)."""
    workgroup_name: str
    """Athena workgroup name."""
    curated_bucket: pulumi.Input[str]
    """Curated bucket name (``curated/<dataset>/ingest_date=YYYY-MM-DD/...``)."""
    features_bucket: pulumi.Input[str]
    """Features bucket name (``features/<dataset>/ingest_date=YYYY-MM-DD/...``)."""
    capture_bucket: pulumi.Input[str]
    """Data-capture bucket name."""
    results_bucket: pulumi.Input[str]
    """Bucket for query results (the artifacts bucket)."""
    results_key_arn: pulumi.Input[str]
    """KMS key that encrypts query results (SSE-KMS)."""
    expected_bucket_owner: pulumi.Input[str]
    """Account that must own the results bucket."""
    models: Sequence[ModelTables] = ()
    """The model catalog: tables per model (curated and features from its contract, its capture table)."""
    results_prefix: str = "athena-results/"
    """Key prefix of query results."""
    bytes_scanned_cutoff: int = 1024 * 1024 * 1024
    """Athena cancels a query scanning more than this many bytes (>= 10 MB)."""
    partitions_from: str = "2024-01-01"
    """First date partition projection enumerates (``YYYY-MM-DD``)."""
    force_destroy: bool = False
    """Let ``pulumi destroy`` delete the workgroup with its saved queries (dev)."""
    catalog_key_arn: pulumi.Input[str] | None = None
    """If set, this stack owns the account's Glue Data Catalog encryption settings: catalog metadata and
    connection passwords are encrypted with this key (the lake key). The settings are one per account and
    region, so exactly one stack there may set it; every principal reading the catalog then needs
    ``kms:Decrypt`` on the key.
    https://docs.aws.amazon.com/glue/latest/dg/encrypt-glue-data-catalog.html"""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags for every taggable child."""

    def __post_init__(self) -> None:
        if self.bytes_scanned_cutoff < MIN_BYTES_SCANNED_CUTOFF:
            raise ValueError(
                f"AnalyticsArgs.bytes_scanned_cutoff={self.bytes_scanned_cutoff}: Athena's minimum is "
                f"{MIN_BYTES_SCANNED_CUTOFF} bytes (10 MB)"
            )
        if not self.results_prefix.endswith("/"):
            raise ValueError("AnalyticsArgs.results_prefix must end with '/'")
        tables = [m.capture_table for m in self.models]
        if len(set(tables)) != len(tables) or len({m.model for m in self.models}) != len(self.models):
            raise ValueError(f"AnalyticsArgs.models: one entry per model and capture table, got {tables}")
        for m in self.models:
            if m.capture_prefix.startswith("/") or m.capture_prefix.endswith("/"):
                raise ValueError(
                    f"AnalyticsArgs.models[{m.model}].capture_prefix: no leading or trailing '/' "
                    "(e.g. datacapture/churn)"
                )
            _check_dataset(m.dataset)


def _check_dataset(dataset: DatasetSchema | None) -> None:
    if dataset is None:
        return
    if not dataset.columns:
        raise ValueError("AnalyticsArgs.dataset.columns is empty: the contract needs columns")
    for col in (*dataset.columns, *dataset.feature_columns):
        if col.type not in GLUE_TYPES:
            raise ValueError(f"AnalyticsArgs.dataset: column {col.name!r} has unknown type {col.type!r}")
        if col.name != col.name.lower():
            raise ValueError(f"AnalyticsArgs.dataset: column {col.name!r} must be lowercase for Athena")
    unknown = set(dataset.model_inputs) - {c.name for c in dataset.feature_columns}
    if unknown:
        raise ValueError(f"AnalyticsArgs.dataset.model_inputs {sorted(unknown)} are not feature columns")


class Analytics(pulumi.ComponentResource):
    """A Glue database with projected-partition tables over the lake, and a locked-down Athena workgroup.

    Tables: ``curated`` and ``features`` (Parquet, partitioned by ``ingest_date``), ``capture``
    (SageMaker data-capture JSON Lines, partitioned by ``endpoint``, ``variant`` (both injected: a
    query must name them) and ``dt`` = ``yyyy/MM/dd/HH``).

    Workgroup: configuration enforced (clients cannot override the result location or
    encryption), results under ``s3://<results_bucket>/<results_prefix>`` with SSE-KMS and the
    expected bucket owner checked, a per-query bytes-scanned cutoff, CloudWatch metrics on, Athena
    engine v3. Named queries answer the monitoring questions (rows per day; captured requests per
    day; feature summaries of captured traffic and of the feature table).

    Outputs:
        database_name, curated_table_name, features_table_name, capture_table_name (the first
        model's), tables (model -> :class:`TableNames`), workgroup_name, workgroup_arn, named_query_ids.
    """

    database_name: pulumi.Output[str]
    curated_table_name: pulumi.Output[str] | None
    features_table_name: pulumi.Output[str] | None
    capture_table_name: pulumi.Output[str] | None
    workgroup_name: pulumi.Output[str]
    workgroup_arn: pulumi.Output[str]
    results_prefix: str
    """Key prefix of query results in the results bucket (Athena writes there as the caller)."""
    named_query_ids: dict[str, pulumi.Output[str]]
    tables: dict[str, TableNames]

    def __init__(self, name: str, args: AnalyticsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:analytics:Analytics", name, None, opts)
        tags = dict(args.tags)
        database = aws.glue.CatalogDatabase(
            f"{name}-database",
            name=args.database_name,
            description=f"{name}: lake tables (curated, features) and endpoint data capture",
            tags=tags,
            opts=child_opts(self),
        )
        db = database.name
        self.tables = {}
        for model in args.models:
            dataset, table = model.dataset, model.table_prefix
            curated = features = None
            if dataset is not None:
                curated = self._day_table(
                    name,
                    args,
                    db,
                    f"{table}curated",
                    args.curated_bucket,
                    f"curated/{dataset.name}/",
                    dataset.columns,
                )
                if dataset.feature_columns:
                    features = self._day_table(
                        name,
                        args,
                        db,
                        f"{table}features",
                        args.features_bucket,
                        f"features/{dataset.name}/",
                        dataset.feature_columns,
                    )
            self.tables[model.model] = TableNames(
                curated=curated, features=features, capture=self._capture_table(name, args, db, model)
            )
        first = self.tables[args.models[0].model] if args.models else None
        self.curated_table_name = first.curated if first else None
        self.features_table_name = first.features if first else None
        self.capture_table_name = first.capture if first else None

        workgroup = aws.athena.Workgroup(
            f"{name}-workgroup",
            name=args.workgroup_name,
            description=f"{name}: lake and monitoring queries (enforced, encrypted, cost-capped)",
            state="ENABLED",
            force_destroy=args.force_destroy,
            configuration=aws.athena.WorkgroupConfigurationArgs(
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=args.bytes_scanned_cutoff,
                engine_version=aws.athena.WorkgroupConfigurationEngineVersionArgs(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=aws.athena.WorkgroupConfigurationResultConfigurationArgs(
                    output_location=pulumi.Output.concat(
                        "s3://", args.results_bucket, "/", args.results_prefix
                    ),
                    expected_bucket_owner=args.expected_bucket_owner,
                    encryption_configuration=aws.athena.WorkgroupConfigurationResultConfigurationEncryptionConfigurationArgs(
                        encryption_option="SSE_KMS", kms_key_arn=args.results_key_arn
                    ),
                ),
            ),
            tags=tags,
            opts=child_opts(self),
        )
        self.named_query_ids = {}
        queries = {f"{_slug(m.model)}-{q}": v for m in args.models for q, v in _monitoring_queries(m).items()}
        for query_name, (description, sql) in queries.items():
            query = aws.athena.NamedQuery(
                f"{name}-{query_name}",
                name=query_name,
                description=description,
                database=db,
                workgroup=workgroup.name,
                query=sql,
                opts=child_opts(self),
            )
            self.named_query_ids[query_name] = query.id

        if args.catalog_key_arn is not None:
            # Account- and region-wide: deleting this resource does not decrypt the catalog, it only stops
            # Pulumi from managing the settings.
            aws.glue.DataCatalogEncryptionSettings(
                f"{name}-catalog-encryption",
                data_catalog_encryption_settings=aws.glue.DataCatalogEncryptionSettingsDataCatalogEncryptionSettingsArgs(
                    encryption_at_rest=aws.glue.DataCatalogEncryptionSettingsDataCatalogEncryptionSettingsEncryptionAtRestArgs(
                        catalog_encryption_mode="SSE-KMS",
                        sse_aws_kms_key_id=args.catalog_key_arn,
                    ),
                    connection_password_encryption=aws.glue.DataCatalogEncryptionSettingsDataCatalogEncryptionSettingsConnectionPasswordEncryptionArgs(
                        return_connection_password_encrypted=True,
                        aws_kms_key_id=args.catalog_key_arn,
                    ),
                ),
                opts=child_opts(self),
            )

        self.database_name = db
        self.workgroup_name = workgroup.name
        self.workgroup_arn = workgroup.arn
        self.results_prefix = args.results_prefix
        self.register_outputs(
            {
                "database_name": self.database_name,
                "curated_table_name": self.curated_table_name,
                "features_table_name": self.features_table_name,
                "capture_table_name": self.capture_table_name,
                "tables": {m: vars(t) for m, t in self.tables.items()},
                "workgroup_name": self.workgroup_name,
                "workgroup_arn": self.workgroup_arn,
                "named_query_ids": self.named_query_ids,
            }
        )

    def _day_table(
        self,
        name: str,
        args: AnalyticsArgs,
        db: pulumi.Output[str],
        table: str,
        bucket: pulumi.Input[str],
        prefix: str,
        columns: Sequence[Column],
    ) -> pulumi.Output[str]:
        """A Parquet table partitioned by ``ingest_date=YYYY-MM-DD`` (projected, one per day).

        Athena reads the objects below each partition's location, including the batch
        sub-prefixes the curated layout puts under a day.
        """
        root = pulumi.Output.concat("s3://", bucket, "/", prefix)
        resource = aws.glue.CatalogTable(
            f"{name}-{table.replace('_', '-')}-table",
            name=table,
            database_name=db,
            description=f"{table} rows of the dataset contract, one partition per ingest day",
            table_type="EXTERNAL_TABLE",
            parameters={
                "EXTERNAL": "TRUE",
                "classification": "parquet",
                "projection.enabled": "true",
                "projection.ingest_date.type": "date",
                "projection.ingest_date.format": "yyyy-MM-dd",
                "projection.ingest_date.range": f"{args.partitions_from},NOW",
                "projection.ingest_date.interval": "1",
                "projection.ingest_date.interval.unit": "DAYS",
                "storage.location.template": pulumi.Output.concat(root, "ingest_date=${ingest_date}/"),
            },
            partition_keys=[aws.glue.CatalogTablePartitionKeyArgs(name="ingest_date", type="string")],
            storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                location=root,
                input_format=_PARQUET["input_format"],
                output_format=_PARQUET["output_format"],
                ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                    serialization_library=_PARQUET["serde"], parameters={"serialization.format": "1"}
                ),
                columns=[
                    aws.glue.CatalogTableStorageDescriptorColumnArgs(name=c.name, type=GLUE_TYPES[c.type])
                    for c in columns
                ],
            ),
            opts=child_opts(self),
        )
        return resource.name

    def _capture_table(
        self, name: str, args: AnalyticsArgs, db: pulumi.Output[str], model: ModelTables
    ) -> pulumi.Output[str]:
        """SageMaker data capture of one model: ``<capture prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl``."""
        root = pulumi.Output.concat("s3://", args.capture_bucket, "/", model.capture_prefix, "/")
        resource = aws.glue.CatalogTable(
            f"{name}-{model.capture_table.replace('_', '-')}-table",
            name=model.capture_table,
            database_name=db,
            description=f"{model.model}: SageMaker endpoint data capture (JSON Lines); query with endpoint = "
            "and variant =",
            table_type="EXTERNAL_TABLE",
            parameters={
                "EXTERNAL": "TRUE",
                "classification": "json",
                "projection.enabled": "true",
                # Endpoint and variant names are not known to the catalog: a query supplies them.
                "projection.endpoint.type": "injected",
                "projection.variant.type": "injected",
                "projection.dt.type": "date",
                "projection.dt.format": "yyyy/MM/dd/HH",
                "projection.dt.range": f"{args.partitions_from.replace('-', '/')}/00,NOW",
                "projection.dt.interval": "1",
                "projection.dt.interval.unit": "HOURS",
                "storage.location.template": pulumi.Output.concat(root, "${endpoint}/${variant}/${dt}/"),
            },
            partition_keys=[
                aws.glue.CatalogTablePartitionKeyArgs(name="endpoint", type="string"),
                aws.glue.CatalogTablePartitionKeyArgs(name="variant", type="string"),
                aws.glue.CatalogTablePartitionKeyArgs(name="dt", type="string"),
            ],
            storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                location=root,
                input_format=_JSON["input_format"],
                output_format=_JSON["output_format"],
                ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                    serialization_library=_JSON["serde"], parameters={"ignore.malformed.json": "true"}
                ),
                columns=[
                    aws.glue.CatalogTableStorageDescriptorColumnArgs(name=col, type=typ)
                    for col, typ in CAPTURE_COLUMNS
                ],
            ),
            opts=child_opts(self),
        )
        return resource.name


def _numeric(columns: Sequence[Column]) -> list[Column]:
    return [c for c in columns if c.type in ("integer", "float")]


def _slug(value: str) -> str:
    return value.replace("_", "-")


def _monitoring_queries(model: ModelTables) -> dict[str, tuple[str, str]]:
    """Named queries of one model: ``{name: (description, SQL)}``. Capture queries take the endpoint and
    variant as execution parameters (``?``), which the injected partition projection requires."""
    capture, table = model.capture_table, model.table_prefix
    queries: dict[str, tuple[str, str]] = {
        "capture-requests-per-day": (
            "Captured requests per day of one endpoint variant, last 30 days (parameters: endpoint, variant)",
            "SELECT substr(dt, 1, 10) AS day, count(*) AS requests\n"
            f"FROM {capture}\n"
            "WHERE endpoint = ? AND variant = ?\n"
            "  AND dt >= date_format(current_timestamp - INTERVAL '30' DAY, '%Y/%m/%d/%H')\n"
            "GROUP BY 1 ORDER BY 1",
        )
    }
    dataset = model.dataset
    if dataset is None:
        return queries
    queries["curated-rows-per-day"] = (
        f"Rows landed per ingest day in the curated {dataset.name} table, last 30 days",
        "SELECT ingest_date, count(*) AS row_count\n"
        f"FROM {table}curated\n"
        "WHERE ingest_date >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')\n"
        "GROUP BY ingest_date ORDER BY ingest_date",
    )
    if dataset.feature_columns:
        numeric = _numeric(dataset.feature_columns)
        stats = ",\n  ".join(
            f"avg({c.name}) AS {c.name}_mean, stddev({c.name}) AS {c.name}_std, "
            f"min({c.name}) AS {c.name}_min, max({c.name}) AS {c.name}_max"
            for c in numeric
        )
        queries["features-summary-per-day"] = (
            f"Per-day summary of the numeric {dataset.name} features, last 30 days",
            f"SELECT ingest_date, count(*) AS row_count{',' if stats else ''}\n  {stats}\n"
            f"FROM {table}features\n"
            "WHERE ingest_date >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')\n"
            "GROUP BY ingest_date ORDER BY ingest_date",
        )
        # A captured CSV request holds the model inputs, in the model's order.
        by_name = {c.name: c for c in dataset.feature_columns}
        inputs = [by_name[n] for n in dataset.model_inputs]
        positions = {c.name: i + 1 for i, c in enumerate(inputs)}
        fields = [
            f"try_cast(trim(element_at(split(capturedata.endpointinput.data, ','), {positions[c.name]})) AS double)"
            f" AS {c.name}"
            for c in _numeric(inputs)
        ]
        if fields:
            summary = ",\n  ".join(
                f"avg({c.name}) AS {c.name}_mean, stddev({c.name}) AS {c.name}_std, "
                f"min({c.name}) AS {c.name}_min, max({c.name}) AS {c.name}_max, "
                f"count_if({c.name} IS NULL) AS {c.name}_missing"
                for c in _numeric(inputs)
            )
            queries["capture-feature-summary"] = (
                "Per-day summary of the numeric features in captured CSV requests of one endpoint "
                "variant, last 7 days (parameters: endpoint, variant)",
                # Identifiers come from the validated contract; values are execution parameters.
                "WITH captured AS (\n"  # noqa: S608
                "  SELECT substr(dt, 1, 10) AS day,\n    " + ",\n    ".join(fields) + "\n"
                f"  FROM {capture}\n"
                "  WHERE endpoint = ? AND variant = ?\n"
                "    AND dt >= date_format(current_timestamp - INTERVAL '7' DAY, '%Y/%m/%d/%H')\n"
                "    AND capturedata.endpointinput.observedcontenttype = 'text/csv'\n"
                ")\n"
                f"SELECT day, count(*) AS requests,\n  {summary}\n"
                "FROM captured GROUP BY day ORDER BY day",
            )
    return queries
