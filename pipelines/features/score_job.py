"""PySpark scoring job: a table already in the lake in, predictions by the model's own serving code out.

Self-contained (PySpark + standard library at import) so EMR on EKS can run it as the entry point. The
model comes as the registered package's ``model.tar.gz``: the job unpacks it and imports the serving
code the artifact carries in ``code/`` (the same ``pipelines.serving.inference`` the endpoint and the
batch transform container run), then scores each Arrow batch with ``mapInPandas``: the batch's model
inputs are written as the CSV an endpoint receives (pandas ``to_csv``, no header, the model's input
order) and answered by the handler's ``transform(model, body, "text/csv", "text/csv")``. So a row gets
the very bytes the endpoint would answer for it. Usage::

    spark-submit score_job.py --model s3://artifacts/models/.../model.tar.gz \
        --input s3://features/features/churn/ --output s3://features/predictions/churn/spark/run=r1/ \
        --features-json '["tenure_months", ...]' [--keys-json '["customer_id"]'] [--split test]

Output: Parquet with the key columns, the model inputs, ``prediction`` (the handler's CSV answer line)
and ``label`` (its first field). The image needs the model's libraries (scikit-learn, pandas, pyarrow).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

SPLIT_COLUMN = "__split__"
PREDICTION = "prediction"
LABEL = "label"


def unpack_model(data: bytes, target: Path) -> Path:
    """Unpack ``model.tar.gz`` into ``target`` (members that would leave it are refused); returns it."""
    root = target.resolve()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for member in archive.getmembers():
            destination = (root / member.name).resolve()
            if not destination.is_relative_to(root) or member.issym() or member.islnk():
                raise ValueError(
                    f"model.tar.gz member {member.name!r} would be written outside the model folder"
                )
        archive.extractall(root, filter="data")
    if not (root / "code").is_dir():
        raise ValueError(
            "model.tar.gz has no code/ folder: the package carries no serving code to score with"
        )
    return root


def score_batches(batches: Any, model_dir: str, features: list[str]) -> Any:
    """``mapInPandas`` body: each batch's inputs as endpoint CSV, answered by the serving handler."""
    if str(Path(model_dir) / "code") not in sys.path:
        sys.path.insert(0, str(Path(model_dir) / "code"))
    from pipelines.serving.inference import model_fn, transform

    model = model_fn(model_dir)
    for frame in batches:
        if frame.empty:
            continue
        body = frame[features].to_csv(index=False, header=False)
        answer, _ = transform(model, body, "text/csv", "text/csv")
        lines = [line for line in answer.decode("utf-8").splitlines() if line]
        if len(lines) != len(frame):
            raise RuntimeError(f"the handler answered {len(lines)} lines for {len(frame)} rows")
        out = frame.copy()
        out[PREDICTION] = lines
        out[LABEL] = [line.split(",", 1)[0] for line in lines]
        yield out


def run(
    spark: Any,
    model_uri: str,
    input_path: str,
    output_path: str,
    features: list[str],
    keys: list[str],
    split: str | None = None,
) -> int:
    """Score ``input_path`` (Parquet, searched recursively) into ``output_path``; returns the rows scored."""
    from pyspark import SparkFiles
    from pyspark.sql import types as T  # noqa: N812 - the conventional alias

    [(_, data)] = spark.sparkContext.binaryFiles(model_uri).collect()
    local = unpack_model(bytes(data), Path(tempfile.mkdtemp(prefix="model-")))
    spark.sparkContext.addFile(str(local), recursive=True)
    frame = spark.read.option("recursiveFileLookup", "true").parquet(input_path)
    if split is not None:
        frame = frame.where(frame[SPLIT_COLUMN] == split)
    frame = frame.select(*dict.fromkeys([*keys, *features]))
    schema = T.StructType(
        [
            *frame.schema.fields,
            T.StructField(PREDICTION, T.StringType(), False),
            T.StructField(LABEL, T.StringType(), False),
        ]
    )
    name = local.name

    def score(batches: Any) -> Any:
        return score_batches(batches, SparkFiles.get(name), features)

    scored = frame.mapInPandas(score, schema).cache()
    rows = scored.count()
    scored.coalesce(1).write.mode("overwrite").parquet(output_path)
    return int(rows)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line arguments of the job."""
    parser = argparse.ArgumentParser(description="Score a lake table with a model package's serving code.")
    parser.add_argument("--model", required=True, help="s3:// URI of the package's model.tar.gz")
    parser.add_argument("--input", required=True, help="Parquet folder to score (searched recursively)")
    parser.add_argument("--output", required=True, help="folder to overwrite with the scored Parquet")
    parser.add_argument(
        "--features-json", required=True, help="model inputs in the model's order (JSON list)"
    )
    parser.add_argument(
        "--keys-json", default="[]", help="key columns to keep beside the predictions (JSON list)"
    )
    parser.add_argument("--split", help=f"score only rows whose {SPLIT_COLUMN} is this (e.g. test)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``spark-submit``."""
    from pyspark.sql import SparkSession

    args = parse_args(sys.argv[1:] if argv is None else argv)
    features, keys = json.loads(args.features_json), json.loads(args.keys_json)
    builder: Any = SparkSession.builder  # a classproperty the type stubs do not describe
    spark = builder.appName("score").getOrCreate()
    rows = run(spark, args.model, args.input, args.output, features, keys, args.split)
    print(json.dumps({"rows": rows, "output": args.output}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
