"""PySpark feature job: curated Parquet in, feature Parquet (with a deterministic split) out.

Self-contained on purpose (PySpark + standard library only) so EMR on EKS can run it as the entry
point with no other code shipped. Usage::

    spark-submit spark_job.py --input s3://curated/curated/churn/ingest_date=2026-11-24/ \
        --output s3://features/features/churn/ingest_date=2026-11-24/ --spec-json '{...}'

``--spec`` (a JSON file path) may replace ``--spec-json``. The spec comes from
``pipelines.features.spec.feature_spec(contract)``.

With ``--feature-group NAME`` the job also ingests every feature row into that group's online store
(when the group has one; the offline store, an Iceberg table, gets the batch in one Iceberg commit
from the DAG's publish step, ``pipelines.features.offline_store``, as the SageMaker Feature Store
Spark connector splits them: PutRecord with ``TargetStores=["OnlineStore"]``, then a direct offline
write): ``PutRecord`` from each partition (``--ingest-partitions`` x ``--ingest-workers`` calls in flight),
throttling retried with jittered exponential backoff, as the job's execution role. Each record has the
group's features the row has a value for, and the event time: the contract's ``event_time`` column
when the row has it, else ``--event-time`` (the batch's event time, ISO-8601). PutRecord is idempotent
per (record identifier, event time), so a retried job writes the same records. boto3 comes from the
image: the emulated image has it; on EMR on EKS a custom image adds it when the release lacks it
(https://docs.aws.amazon.com/emr/latest/EMR-on-EKS-DevelopmentGuide/docker-custom-images.html).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

SPLIT_COLUMN = "__split__"
SPLIT_BUCKETS = 10_000
RETRYABLE_CODES = frozenset(
    {"ThrottlingException", "Throttling", "ServiceUnavailable", "InternalFailure", "TooManyRequestsException"}
)
"""PutRecord errors worth retrying (throttling, a transient server error); others are the record's fault."""
MAX_ATTEMPTS = 6
"""PutRecord attempts per record before a throttled record fails the ingestion."""


def build_features(frame: Any, spec: dict[str, Any]) -> Any:
    """Select keys and inputs, compute derived features and the ``__split__`` column; return a DataFrame."""
    from pyspark.sql import functions as F  # noqa: N812 - the conventional alias

    derived = []
    for feature in spec["derived"]:
        a = F.col(feature["inputs"][0]).cast("double")
        b = F.col(feature["inputs"][1]).cast("double") if len(feature["inputs"]) > 1 else None
        op = feature["op"]
        if op == "ratio" and b is not None:
            expr = F.when(b != 0, a / b)
        elif op == "log1p":
            expr = F.when(a > -1, F.log1p(a))
        elif op == "product" and b is not None:
            expr = a * b
        elif op == "difference" and b is not None:
            expr = a - b
        else:
            raise ValueError(f"unknown derived op {op!r}")
        derived.append(expr.cast("double").alias(feature["name"]))
    hash_input = F.concat_ws("|", *[F.coalesce(F.col(k).cast("string"), F.lit("")) for k in spec["split_on"]])
    bucket = (
        F.conv(F.substring(F.sha2(hash_input, 256), 1, 8), 16, 10).cast("long") % SPLIT_BUCKETS
    ) / SPLIT_BUCKETS
    test, validation = spec["split"]["test"], spec["split"]["validation"]
    split = (
        F.when(bucket < test, F.lit("test"))
        .when(bucket < test + validation, F.lit("validation"))
        .otherwise(F.lit("train"))
        .alias(SPLIT_COLUMN)
    )
    plain = [F.col(c) for c in spec["keys"] + spec["numeric"]]
    categorical = [F.col(c) for c in spec["categorical"]]
    target = [F.col(spec["target"])] if spec["target"] else []
    # sensitive attributes that are not model inputs: evaluation groups rows by them (fairness)
    passthrough = [F.col(c) for c in spec.get("passthrough") or []]
    columns = plain + derived + categorical + target + passthrough + [split]
    return frame.select(*columns)


def run(
    spark: Any,
    input_path: str,
    output_path: str,
    spec: dict[str, Any],
    partitions: int = 1,
    ingestion: Ingestion | None = None,
) -> int:
    """Read curated Parquet under ``input_path``, build features, overwrite ``output_path``, then ingest
    them into the feature group when ``ingestion`` says which; return the rows."""
    frame = spark.read.option("recursiveFileLookup", "true").parquet(input_path)
    features = build_features(frame, spec).cache()
    rows = features.count()
    features.coalesce(partitions).write.mode("overwrite").parquet(output_path)
    if ingestion is not None:
        written = ingest_dataframe(features, ingestion)
        print(json.dumps({"feature_group": ingestion.group.name, "records": written}))
    return int(rows)


# --- Feature Store ingestion (stdlib + boto3 from the image) ------------------------------------


class FeatureIngestionError(RuntimeError):
    """Feature Store refused a record, or kept throttling it: names the record and AWS's reason."""


class GroupSchema:
    """What ingestion needs of a feature group: its name, record identifier, event time and types."""

    def __init__(
        self,
        name: str,
        record_identifier: str,
        event_time: str,
        types: Mapping[str, str],
        online: bool = True,
    ) -> None:
        self.name, self.record_identifier, self.event_time = name, record_identifier, event_time
        self.types, self.online = dict(types), online

    @classmethod
    def describe(cls, sagemaker: Any, name: str) -> GroupSchema:
        """Read the group's definition (``DescribeFeatureGroup``)."""
        group = sagemaker.describe_feature_group(FeatureGroupName=name)
        return cls(
            group["FeatureGroupName"],
            group["RecordIdentifierFeatureName"],
            group["EventTimeFeatureName"],
            {d["FeatureName"]: d["FeatureType"] for d in group["FeatureDefinitions"]},
            online=bool((group.get("OnlineStoreConfig") or {}).get("EnableOnlineStore")),
        )


class Ingestion:
    """Where and how the job ingests: the group, the batch's event time, concurrency, the client maker."""

    def __init__(
        self,
        group: GroupSchema,
        event_time: str,
        client_factory: Callable[[], Any],
        partitions: int = 2,
        workers: int = 8,
        target_stores: tuple[str, ...] | None = None,
    ) -> None:
        self.group, self.event_time, self.client_factory = group, event_time, client_factory
        self.partitions, self.workers = max(1, partitions), max(1, workers)
        self.target_stores = target_stores
        """PutRecord's ``TargetStores`` (None: every store the group has)."""


def iso_time(value: Any) -> str:
    """A timestamp as Feature Store's ISO-8601 event time (UTC, ``yyyy-MM-ddTHH:mm:ssZ``)."""
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if hasattr(value, "isoformat") and not isinstance(value, str):  # a date
        return f"{value.isoformat()}T00:00:00Z"
    return str(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any, kind: str) -> str:
    if kind == "Integral":
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)  # anything else is sent as it is, for Feature Store to judge
    if kind == "Fractional":
        return repr(float(value)) if isinstance(value, (int, float)) else str(value)
    return iso_time(value) if isinstance(value, datetime) else str(value)


def feature_record(row: Mapping[str, Any], group: GroupSchema, event_time: str) -> list[dict[str, str]]:
    """One row as a PutRecord ``Record``: the group's features the row has a value for, and the event time."""
    record: list[dict[str, str]] = []
    for name, kind in group.types.items():
        value = row.get(name)
        if name == group.event_time:
            text = (
                event_time
                if _missing(value)
                else (_text(value, kind) if kind == "Fractional" else iso_time(value))
            )
            record.append({"FeatureName": name, "ValueAsString": text})
        elif not _missing(value):
            record.append({"FeatureName": name, "ValueAsString": _text(value, kind)})
    return record


def put_rows(
    client: Any,
    group: GroupSchema,
    rows: Iterable[Mapping[str, Any]],
    event_time: str,
    workers: int = 8,
    max_attempts: int = MAX_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    target_stores: tuple[str, ...] | None = None,
) -> int:
    """PutRecord every row, at most ``workers`` calls in flight, throttling retried; the records written.

    Raises:
        FeatureIngestionError: a record was refused, or still throttled after ``max_attempts``.
    """

    stores = {"TargetStores": list(target_stores)} if target_stores else {}

    def put(row: Mapping[str, Any]) -> None:
        record = feature_record(row, group, event_time)
        for attempt in range(1, max_attempts + 1):
            try:
                client.put_record(FeatureGroupName=group.name, Record=record, **stores)
                return
            except Exception as exc:
                error = getattr(exc, "response", {}).get("Error", {})
                code = str(error.get("Code", type(exc).__name__))
                who = f"{group.record_identifier}={row.get(group.record_identifier)!r}"
                if code in RETRYABLE_CODES and attempt < max_attempts:
                    sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))  # noqa: S311 - jitter
                    continue
                what = "kept throttling" if code in RETRYABLE_CODES else "refused"
                raise FeatureIngestionError(
                    f"feature group {group.name!r} {what} the record of {who}: {code}: "
                    f"{error.get('Message', exc)}"
                ) from exc

    count = 0
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="put-record") as pool:
        for _ in pool.map(put, rows):
            count += 1
    return count


def ingest_dataframe(frame: Any, ingestion: Ingestion) -> int:
    """PutRecord a Spark DataFrame's rows from ``ingestion.partitions`` partitions; the records written."""
    group, event_time, factory, workers, stores = (
        ingestion.group,
        ingestion.event_time,
        ingestion.client_factory,
        ingestion.workers,
        ingestion.target_stores,
    )
    columns = [c for c in frame.columns if c in group.types]

    def partition(rows: Iterator[Any]) -> Iterator[int]:
        rows_of = (row.asDict() for row in rows)
        yield put_rows(factory(), group, rows_of, event_time, workers, target_stores=stores)

    selected = frame.select(*columns).repartition(ingestion.partitions)
    return int(sum(selected.rdd.mapPartitions(partition).collect()))


class _RuntimeClient:
    """Makes the Feature Store runtime client on an executor (picklable: no client crosses the wire)."""

    def __init__(self, region: str | None) -> None:
        self.region = region

    def __call__(self) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:  # the release's image has no AWS SDK for Python
            raise FeatureIngestionError(
                "boto3 is not in this EMR image: build a custom image with it "
                "(https://docs.aws.amazon.com/emr/latest/EMR-on-EKS-DevelopmentGuide/docker-custom-images.html) "
                "or run the job without --feature-group"
            ) from exc
        # retries are put_rows' (throttling only); the pool's size bounds the connections
        config = Config(retries={"total_max_attempts": 1}, max_pool_connections=32)
        return boto3.client("sagemaker-featurestore-runtime", region_name=self.region, config=config)


def job_ingestion(args: argparse.Namespace) -> Ingestion | None:
    """The online-store ingestion the command line asks for (``--feature-group``), or None (none asked,
    or the group has no online store: its offline store gets the batch from the publish step)."""
    if not args.feature_group:
        return None
    import boto3

    sagemaker = boto3.client("sagemaker", region_name=args.region)
    group = GroupSchema.describe(sagemaker, args.feature_group)
    if not group.online:
        print(json.dumps({"feature_group": group.name, "online_store": False, "records": 0}))
        return None
    event_time = args.event_time or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Ingestion(
        group,
        event_time,
        _RuntimeClient(args.region),
        args.ingest_partitions,
        args.ingest_workers,
        target_stores=("OnlineStore",),
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line arguments of the job."""
    parser = argparse.ArgumentParser(description="Build features from curated Parquet.")
    parser.add_argument("--input", required=True, help="curated data folder (Parquet, searched recursively)")
    parser.add_argument("--output", required=True, help="feature folder to overwrite with part-*.parquet")
    parser.add_argument("--spec", help="feature spec JSON file")
    parser.add_argument("--spec-json", help="feature spec as a JSON string")
    parser.add_argument("--partitions", type=int, default=1, help="output files to write")
    parser.add_argument("--feature-group", help="also PutRecord the rows into this group's online store")
    parser.add_argument("--event-time", help="the batch's event time (ISO-8601) for rows without one")
    parser.add_argument("--region", help="region of the feature group (default: the environment's)")
    parser.add_argument("--ingest-partitions", type=int, default=2, help="partitions that PutRecord")
    parser.add_argument(
        "--ingest-workers", type=int, default=8, help="PutRecord calls in flight per partition"
    )
    args = parser.parse_args(argv)
    if not (args.spec or args.spec_json):
        parser.error("give --spec or --spec-json")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``spark-submit``."""
    from pyspark.sql import SparkSession

    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.spec_json:
        spec = json.loads(args.spec_json)
    else:
        with open(args.spec) as handle:
            spec = json.load(handle)
    builder: Any = SparkSession.builder  # a classproperty the type stubs do not describe
    spark = builder.appName(f"features-{spec['dataset']}").getOrCreate()
    rows = run(spark, args.input, args.output, spec, args.partitions, job_ingestion(args))
    print(json.dumps({"dataset": spec["dataset"], "rows": rows, "output": args.output}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
