"""PySpark feature job: curated Parquet in, feature Parquet (with a deterministic split) out.

Self-contained on purpose (PySpark + standard library only) so EMR on EKS can run it as the entry
point with no other code shipped. Usage::

    spark-submit spark_job.py --input s3://curated/curated/churn/ingest_date=2026-11-24/ \
        --output s3://features/features/churn/ingest_date=2026-11-24/ --spec-json '{...}'

``--spec`` (a JSON file path) may replace ``--spec-json``. The spec comes from
``pipelines.features.spec.feature_spec(contract)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

SPLIT_COLUMN = "__split__"
SPLIT_BUCKETS = 10_000


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


def run(spark: Any, input_path: str, output_path: str, spec: dict[str, Any], partitions: int = 1) -> int:
    """Read curated Parquet under ``input_path``, build features, overwrite ``output_path``; return rows."""
    frame = spark.read.option("recursiveFileLookup", "true").parquet(input_path)
    features = build_features(frame, spec).cache()
    rows = features.count()
    features.coalesce(partitions).write.mode("overwrite").parquet(output_path)
    return int(rows)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line arguments of the job."""
    parser = argparse.ArgumentParser(description="Build features from curated Parquet.")
    parser.add_argument("--input", required=True, help="curated data folder (Parquet, searched recursively)")
    parser.add_argument("--output", required=True, help="feature folder to overwrite with part-*.parquet")
    parser.add_argument("--spec", help="feature spec JSON file")
    parser.add_argument("--spec-json", help="feature spec as a JSON string")
    parser.add_argument("--partitions", type=int, default=1, help="output files to write")
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
    rows = run(spark, args.input, args.output, spec, args.partitions)
    print(json.dumps({"dataset": spec["dataset"], "rows": rows, "output": args.output}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
