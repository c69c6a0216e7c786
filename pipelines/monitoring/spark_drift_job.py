"""PySpark job: the drift engine's sufficient statistics over a large capture window.

Submitted to EMR on EKS as the entry point (it sees only itself and the image's libraries, so it
imports nothing from ``pipelines``). It reads SageMaker data-capture JSON lines, decodes the CSV
request payloads natively (no Python UDF), and writes one JSON state file with, per feature, what
:class:`pipelines.monitoring.drift.DriftAccumulator` keeps: counts, missing, sums, min/max, PSI and plot
bin counts against the plan's reference edges, the distinct values of low-cardinality numeric
columns, category counts, and a uniform sample of at most ``reservoir_size`` values. The driver
(:mod:`pipelines.monitoring.spark_drift`) loads that state and runs the same tests as in process.

Usage: ``spark_drift_job.py --plan <json uri> --output <json uri> <capture file or folder> ...``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

DISTINCT_CHECK = 20
"""Numeric columns whose approximate distinct count is at most this get an exact distinct count."""


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
    """The accumulator state of the window's captured rows (see the module docstring)."""
    from pyspark import StorageLevel
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
    events = events.withColumn("rows", F.filter(F.split(F.col("data"), "\n"), lambda r: r != ""))

    def cell(parts: Any, index: int) -> Any:
        return F.trim(F.element_at(parts, index + 1))

    def row_ok(r: Any) -> Any:
        parts = F.split(r, ",")
        ok = F.size(parts) == n
        for i, feature in enumerate(features):
            if feature["kind"] == "numeric":
                value = cell(parts, i)
                ok = ok & ((value == "") | value.cast("double").isNotNull())
        return ok

    events = (
        events.withColumn("ok", plain & (F.size("rows") > 0) & F.forall("rows", row_ok))
        .select("ok", "rows", plain.alias("plain"))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    counted = events.agg(
        F.count(F.lit(1)).alias("records"),
        F.sum(F.when(~F.col("plain"), 1).otherwise(0)).alias("unsupported"),
        F.sum(F.when(F.col("plain") & ~F.col("ok"), 1).otherwise(0)).alias("malformed"),
    ).first()
    rows = events.where("ok").select(F.explode("rows").alias("r")).select(F.split("r", ",").alias("p"))
    columns = []
    for i, feature in enumerate(features):
        value = cell(F.col("p"), i)
        if feature["kind"] == "numeric":
            columns.append(F.when(value == "", None).otherwise(value.cast("double")).alias(f"c{i}"))
        else:
            columns.append(F.when(value == "", None).otherwise(value).alias(f"c{i}"))
    frame = rows.select(*columns).persist(StorageLevel.MEMORY_AND_DISK)
    events.unpersist()
    numeric = [i for i, f in enumerate(features) if f["kind"] == "numeric"]
    categorical = [i for i, f in enumerate(features) if f["kind"] != "numeric"]

    def finite(i: int) -> Any:
        c = F.col(f"c{i}")
        return c.isNotNull() & ~F.isnan(c) & (F.abs(c) != float("inf"))

    aggregates = [F.count(F.lit(1)).alias("rows")]
    for i in numeric:
        x = F.when(finite(i), F.col(f"c{i}"))
        aggregates += [
            F.count(x).alias(f"n{i}"),
            F.sum(x).alias(f"s{i}"),
            F.sum(x * x).alias(f"q{i}"),
            F.min(x).alias(f"lo{i}"),
            F.max(x).alias(f"hi{i}"),
            F.approx_count_distinct(x, 0.01).alias(f"d{i}"),
        ]
    for i in categorical:
        aggregates.append(F.count(F.col(f"c{i}")).alias(f"n{i}"))
    totals = frame.agg(*aggregates).first().asDict()
    total_rows = int(totals["rows"])
    state: dict[str, Any] = {
        "rows": total_rows,
        "records": int(counted["records"] or 0),
        "unsupported_records": int(counted["unsupported"] or 0),
        "malformed_records": int(counted["malformed"] or 0),
        "numeric": {},
        "categorical": {},
    }
    # PSI and plot bins of every numeric column in one aggregation (long format, combined map-side)
    bins = []
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
        bins.append(F.when(finite(i), F.struct(F.lit(i).alias("f"), psi.alias("b"), plot.alias("q"))))
    histograms: dict[int, dict[str, list[int]]] = {}
    for i in numeric:
        spec = features[i]
        histograms[i] = {
            "psi": [0] * (len(spec["psi_edges"]) + 1),
            "plot": [0] * (len(spec["plot_edges"]) + 1),
        }
    if bins:
        long = frame.select(F.explode(F.array(*bins)).alias("h")).where(F.col("h").isNotNull())
        for row in long.groupBy("h.f", "h.b", "h.q").count().collect():
            histograms[row["f"]]["psi"][row["b"]] += row["count"]
            histograms[row["f"]]["plot"][row["q"]] += row["count"]
    fraction = min(1.0, plan["reservoir_size"] / total_rows) if total_rows else 1.0
    sample = frame if fraction >= 1.0 else frame.sample(False, fraction, plan.get("seed", 0))
    sampled = sample.select(*[f"c{i}" for i in numeric]).collect() if numeric else []
    for i in numeric:
        count = int(totals[f"n{i}"])
        distinct: dict[str, int] | None = None
        if count and int(totals[f"d{i}"]) <= DISTINCT_CHECK:
            values = frame.where(finite(i)).groupBy(f"c{i}").count().collect()
            if len(values) <= plan["low_cardinality_max"]:
                distinct = {repr(float(r[f"c{i}"])): int(r["count"]) for r in values}
        values = [r[f"c{i}"] for r in sampled]
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
            "sample": [float(v) for v in values if v is not None and math.isfinite(v)],
            "sample_is_all": fraction >= 1.0,
        }
    if categorical:
        pairs = frame.select(
            F.explode(
                F.array(
                    *[
                        F.when(
                            F.col(f"c{i}").isNotNull(),
                            F.struct(F.lit(i).alias("f"), F.col(f"c{i}").alias("v")),
                        )
                        for i in categorical
                    ]
                )
            ).alias("k")
        ).where(F.col("k").isNotNull())
        counts: dict[int, dict[str, int]] = {i: {} for i in categorical}
        for row in pairs.groupBy("k.f", "k.v").count().collect():
            counts[row["f"]][row["v"]] = int(row["count"])
        for i in categorical:
            state["categorical"][features[i]["name"]] = {
                "counts": counts[i],
                "missing": total_rows - int(totals[f"n{i}"]),
            }
    frame.unpersist()
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
