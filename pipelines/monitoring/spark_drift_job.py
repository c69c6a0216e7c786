"""PySpark job: the drift engine's sufficient statistics over a large capture window.

Submitted to EMR on EKS as the entry point (it sees only itself and the image's libraries, so it
imports nothing from ``pipelines``). It reads SageMaker data-capture JSON lines, decodes the CSV
request payloads natively (no Python UDF), and writes one JSON state file with, per feature, what
:class:`pipelines.monitoring.drift.DriftAccumulator` keeps: counts, missing, sums, min/max, PSI and plot
bin counts against the plan's reference edges, the distinct values of low-cardinality numeric
columns, category counts (the ``max_categories`` most frequent and the others' total), and a uniform
sample of at most ``reservoir_size`` values. The driver (:mod:`pipelines.monitoring.spark_drift`)
loads that state and runs the same tests as in process.

Memory is bounded by the partition, not the window: the decoded rows are cached as typed columns
(spilling to local disk), never as the request arrays, and only aggregates, the sample and at most
``max_categories`` values per column reach the driver (benchmarks/spark_drift_bench.py runs 50M
rows in a local session with a 1 GiB heap).

Usage: ``spark_drift_job.py --plan <json uri> --output <json uri> <capture file or folder> ...``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

DISTINCT_CHECK = 20
"""Numeric columns with at most this many distinct values in the sample get exact value counts."""
_BIN = 1 << 20
_KEY = 1 << 40
"""A histogram entry's key: feature index * _KEY + PSI bin * _BIN + plot bin."""


def _write_text(spark: Any, uri: str, text: str) -> None:
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    stream = fs.create(path, True)
    stream.write(bytearray(text.encode("utf-8")))
    stream.close()


def _read_text(spark: Any, uri: str) -> str:
    return "\n".join(row.value for row in spark.read.text(uri).collect())


def compute_state(spark: Any, paths: list[str], plan: dict[str, Any]) -> dict[str, Any]:
    """The accumulator state of the window's captured rows (see the module docstring).

    Memory stays bounded by the partition size, whatever the window: nothing is cached and nothing
    row-sized reaches the driver. Three passes over the capture (each re-reads the JSON lines, which
    costs less than caching them; a cache of the decoded request arrays ran a 1 GiB local driver out
    of heap at 10M rows): (1) the totals, (2) every histogram, category count and low-cardinality
    value count in one grouped aggregation, (3) the uniform sample, whose fraction needs (1)'s count.
    """
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql import types as T  # noqa: N812

    features = plan["features"]
    n = len(features)
    schema = T.StructType(
        [
            T.StructField(
                "captureData",
                T.StructType(
                    [
                        T.StructField(
                            "endpointInput",
                            T.StructType(
                                [
                                    T.StructField("data", T.StringType()),
                                    T.StructField("encoding", T.StringType()),
                                    T.StructField("observedContentType", T.StringType()),
                                ]
                            ),
                        )
                    ]
                ),
            ),
            T.StructField("eventMetadata", T.StructType([T.StructField("inferenceTime", T.StringType())])),
        ]
    )
    events = (
        spark.read.text(paths)
        .where(F.length(F.trim("value")) > 0)
        .select(F.from_json("value", schema).alias("e"))
        .select(
            F.col("e.captureData.endpointInput.data").alias("data"),
            F.upper(F.coalesce(F.col("e.captureData.endpointInput.encoding"), F.lit("CSV"))).alias("enc"),
            F.lower(F.coalesce(F.col("e.captureData.endpointInput.observedContentType"), F.lit(""))).alias(
                "ct"
            ),
            F.col("e.eventMetadata.inferenceTime").alias("t"),
        )
    )
    start, end = plan.get("window_start"), plan.get("window_end")
    if start and end:  # same fixed-width ISO format as capture: string order is time order
        events = events.where(F.col("t").isNull() | ((F.col("t") >= start) & (F.col("t") < end)))
    plain = (
        F.col("data").isNotNull()
        & (F.col("enc") == "CSV")
        & F.col("ct").startswith("text/csv")
        & ~F.col("data").contains('"')
        & ~F.col("data").contains("\r")
    )
    # each CSV row split once (a generator's output is materialized: the cells below never re-split)
    events = events.select(
        plain.alias("plain"),
        F.transform(
            F.filter(F.split(F.col("data"), "\n"), lambda r: r != ""), lambda r: F.split(r, ",")
        ).alias("parts"),
    )

    def cell(parts: Any, index: int) -> Any:
        return F.trim(F.element_at(parts, index + 1))

    def row_ok(parts: Any) -> Any:
        ok = F.size(parts) == n
        for i, feature in enumerate(features):
            if feature["kind"] == "numeric":
                value = cell(parts, i)
                ok = ok & ((value == "") | value.cast("double").isNotNull())
        return ok

    def typed(parts: Any) -> Any:
        columns = []
        for i, feature in enumerate(features):
            value = cell(parts, i)
            if feature["kind"] == "numeric":
                value = value.cast("double")
            columns.append(F.when(cell(parts, i) == "", None).otherwise(value).alias(f"c{i}"))
        return F.struct(*columns)

    ok = F.col("plain") & (F.size("parts") > 0) & F.forall("parts", row_ok)
    # one output row per CSV row of a good record with its typed cells, and one (pos and the cells
    # null) per refused record, so the record counts come out of the same pass as the row statistics
    rows = (
        events.select("plain", ok.alias("ok"), "parts")
        .select(
            "plain",
            "ok",
            F.posexplode_outer(F.when(F.col("ok"), F.transform("parts", typed))).alias("pos", "row"),
        )
        .select("plain", "ok", F.coalesce(F.col("pos"), F.lit(0)).alias("pos"), "row.*")
    )
    # cached as typed columns on local disk, so the decoding runs once: DISK_ONLY streams each cached
    # batch to disk as it is built, where MEMORY_AND_DISK first unrolls a partition in the heap (a
    # cache of the request arrays, and then one of these columns, ran a 1 GiB heap out of memory)
    frame = rows.persist(StorageLevel.DISK_ONLY)
    numeric = [i for i, f in enumerate(features) if f["kind"] == "numeric"]
    categorical = [i for i, f in enumerate(features) if f["kind"] != "numeric"]

    def finite(i: int) -> Any:
        c = F.col(f"c{i}")
        return c.isNotNull() & ~F.isnan(c) & (F.abs(c) != float("inf"))

    first = F.col("pos") == 0
    aggregates = [
        F.sum(F.when(F.col("ok"), 1).otherwise(0)).alias("rows"),
        F.sum(F.when(first, 1).otherwise(0)).alias("records"),
        F.sum(F.when(first & ~F.col("plain"), 1).otherwise(0)).alias("unsupported"),
        F.sum(F.when(first & F.col("plain") & ~F.col("ok"), 1).otherwise(0)).alias("malformed"),
    ]
    for i in numeric:
        x = F.when(finite(i), F.col(f"c{i}"))
        aggregates += [
            F.count(x).alias(f"n{i}"),
            F.sum(x).alias(f"s{i}"),
            F.sum(x * x).alias(f"q{i}"),
            F.min(x).alias(f"lo{i}"),
            F.max(x).alias(f"hi{i}"),
        ]
    for i in categorical:
        aggregates.append(F.count(F.col(f"c{i}")).alias(f"n{i}"))
    totals = frame.agg(*aggregates).first().asDict()
    total_rows = int(totals["rows"] or 0)
    state: dict[str, Any] = {
        "rows": total_rows,
        "records": int(totals["records"] or 0),
        "unsupported_records": int(totals["unsupported"] or 0),
        "malformed_records": int(totals["malformed"] or 0),
        "numeric": {},
        "categorical": {},
    }
    good = frame.where("ok")
    # pass 2: the uniform sample (KS and Wasserstein read it)
    fraction = min(1.0, plan["reservoir_size"] / total_rows) if total_rows else 1.0
    sample = good if fraction >= 1.0 else good.sample(False, fraction, plan.get("seed", 0))
    sampled = sample.select(*[f"c{i}" for i in numeric]).collect() if numeric and total_rows else []
    # each numeric column's finite sampled values, read out of the rows once
    samples = {
        i: [float(v) for v in (r[f"c{i}"] for r in sampled) if v is not None and math.isfinite(v)]
        for i in numeric
    }
    # pass 3: every numeric column's (PSI bin, plot bin) counts, keyed by one long per value so the
    # grouping is on a primitive (cheap map-side combining)
    histograms: dict[int, dict[str, list[int]]] = {
        i: {
            "psi": [0] * (len(features[i]["psi_edges"]) + 1),
            "plot": [0] * (len(features[i]["plot_edges"]) + 1),
        }
        for i in numeric
    }
    keys = []
    for i in numeric:
        spec = features[i]
        x = F.col(f"c{i}")
        psi = F.lit(0)
        for edge in spec["psi_edges"]:
            psi = psi + F.when(x >= F.lit(float(edge)), 1).otherwise(0)
        low, high = float(spec["plot_edges"][0]), float(spec["plot_edges"][-1])
        width = (high - low) / (len(spec["plot_edges"]) - 1)
        top = len(spec["plot_edges"])  # index of "above the range"; plot counts have bins + 2 slots
        plot = F.when(x >= F.lit(high), top).otherwise(F.floor((x - F.lit(low)) / F.lit(width)) + 1)
        plot = F.least(F.greatest(plot.cast("int"), F.lit(0)), F.lit(top))
        key = F.lit(i).cast("long") * _KEY + psi.cast("long") * _BIN + plot.cast("long")
        keys.append(F.when(finite(i), key))
    if keys and total_rows:
        binned = good.select(F.explode(F.array(*keys)).alias("k")).where(F.col("k").isNotNull())
        for row in binned.groupBy("k").count().collect():
            f, rest = divmod(int(row["k"]), _KEY)
            histograms[f]["psi"][rest // _BIN] += row["count"]
            histograms[f]["plot"][rest % _BIN] += row["count"]
    # pass 4 (only when the sample shows a numeric column with few values): those columns' exact
    # value counts; a column with more than low_cardinality_max values in the window gets none
    low_cardinality = [i for i in numeric if len(set(samples[i])) <= DISTINCT_CHECK and int(totals[f"n{i}"])]
    values: dict[int, dict[float, int]] = {i: {} for i in low_cardinality}
    if low_cardinality:
        pairs = F.array(
            *[
                F.when(finite(i), F.struct(F.lit(i).alias("f"), F.col(f"c{i}").alias("x")))
                for i in low_cardinality
            ]
        )
        exploded = good.select(F.explode(pairs).alias("e")).where(F.col("e").isNotNull())
        for row in exploded.groupBy("e.f", "e.x").count().collect():
            values[row["f"]][float(row["x"])] = int(row["count"])
    # pass 5: category counts; a column keeps its max_categories most frequent values (ties by value)
    # and the rest's total, so a high-cardinality column never brings its every value to the driver
    counts: dict[int, dict[str, int]] = {i: {} for i in categorical}
    if categorical and total_rows:
        pairs = F.array(
            *[
                F.when(F.col(f"c{i}").isNotNull(), F.struct(F.lit(i).alias("f"), F.col(f"c{i}").alias("v")))
                for i in categorical
            ]
        )
        grouped = (
            good.select(F.explode(pairs).alias("e"))
            .where(F.col("e").isNotNull())
            .groupBy("e.f", "e.v")
            .count()
        )
        rank = F.row_number().over(Window.partitionBy("f").orderBy(F.desc("count"), "v"))
        limit = int(plan.get("max_categories", 10_000))
        for row in grouped.withColumn("rank", rank).where(F.col("rank") <= limit).collect():
            counts[row["f"]][row["v"]] = int(row["count"])
    frame.unpersist()
    for i in numeric:
        count = int(totals[f"n{i}"])
        distinct: dict[str, int] | None = None
        if i in values and len(values[i]) <= plan["low_cardinality_max"]:
            distinct = {repr(v): c for v, c in values[i].items()}
        state["numeric"][features[i]["name"]] = {
            "count": count,
            "missing": total_rows - count,
            "total": float(totals[f"s{i}"] or 0.0),
            "total_sq": float(totals[f"q{i}"] or 0.0),
            "minimum": float(totals[f"lo{i}"]) if count else math.inf,
            "maximum": float(totals[f"hi{i}"]) if count else -math.inf,
            "psi_counts": histograms[i]["psi"],
            "plot_counts": histograms[i]["plot"],
            "distinct": distinct,
            "sample": samples[i],
            "sample_is_all": fraction >= 1.0,
        }
    for i in categorical:  # what the kept values do not cover: the count of the others
        state["categorical"][features[i]["name"]] = {
            "counts": counts[i],
            "other": int(totals[f"n{i}"]) - sum(counts[i].values()),
            "missing": total_rows - int(totals[f"n{i}"]),
        }
    return state


def main(argv: list[str] | None = None) -> int:
    """Entry point: read the plan, compute the state over the capture paths, write it."""
    from pyspark.sql import SparkSession

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    spark = SparkSession.builder.appName("mlops-drift").getOrCreate()  # pyright: ignore[reportAttributeAccessIssue]
    try:
        plan = json.loads(_read_text(spark, args.plan))
        state = compute_state(spark, args.paths, plan)
        _write_text(spark, args.output, json.dumps(state))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
