"""Data lineage of a feature table: which validated data and which contract it was built from.

The feature step writes ``_lineage.json`` next to its part files. It is also the manifest of the
feature set's immutable, content-addressed version (``pipelines.datasets``): the same document is
stored in ``features/<dataset>/versions/<version>/`` with a copy of the part files. Training copies it into the
model's metadata (``data_lineage``), and registration keys a model on it, so the same validated
data and contract give one model package whichever engine (pandas, Spark, EMR) built the features:
their part files differ byte for byte, the curated data does not.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from pipelines.contract import contract_sha256

if TYPE_CHECKING:
    from pipelines.aws import AwsClients
    from pipelines.contract import DatasetContract

LINEAGE_FILE = "_lineage.json"
"""Name of the lineage file in a feature prefix (not a data file: training reads only .parquet/.csv)."""


def validated_data_sha256(s3: Any, bucket: str, keys: list[str]) -> str:
    """SHA-256 over the curated objects' bytes, in key order (the validated data, engine-independent)."""
    digest = hashlib.sha256()
    for key in sorted(keys):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        while chunk := body.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def source_digests(s3: Any, bucket: str, keys: list[str]) -> list[dict[str, str]]:
    """The parent datasets of a feature set: each curated object's URI and SHA-256, in key order."""
    parents: list[dict[str, str]] = []
    for key in sorted(keys):
        digest = hashlib.sha256()
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        while chunk := body.read(1 << 20):
            digest.update(chunk)
        parents.append({"kind": "curated", "uri": f"s3://{bucket}/{key}", "sha256": digest.hexdigest()})
    return parents


def parquet_rows(parts: list[tuple[str, bytes]]) -> tuple[int, dict[str, int]]:
    """Rows of Parquet part files and rows per ``__split__`` value (only that column is read)."""
    import io

    import pyarrow.parquet as pq

    from pipelines.datasets import split_counts

    rows, frames = 0, []
    for _, data in parts:
        handle = pq.ParquetFile(io.BytesIO(data))
        rows += handle.metadata.num_rows
        if "__split__" in handle.schema_arrow.names:
            frames.append(handle.read(columns=["__split__"]).to_pandas())
    return rows, split_counts(frames)


def publish_features(
    s3: Any,
    features_bucket: str,
    key_arn: str | None,
    contract: DatasetContract,
    parts: list[tuple[str, bytes]],
    curated_bucket: str,
    curated_keys: list[str],
) -> dict[str, Any]:
    """Publish the part files as an immutable feature-set version; return its manifest (the lineage)."""
    from pipelines.datasets import publish_dataset

    base = lineage(s3, curated_bucket, curated_keys, contract)
    rows, splits = parquet_rows(parts)
    return publish_dataset(
        s3,
        features_bucket,
        kind="features",
        dataset=contract.name,
        files=parts,
        key_arn=key_arn,
        contract=contract,
        parents=source_digests(s3, curated_bucket, curated_keys),
        row_count=rows,
        extra={
            "validated_data_sha256": base["validated_data_sha256"],
            "sources": base["sources"],
            # the training/validation/test splits are views of this version (the __split__ column)
            "splits": splits,
        },
    )


def lineage(
    s3: Any, curated_bucket: str, curated_keys: list[str], contract: DatasetContract
) -> dict[str, Any]:
    """The ``_lineage.json`` content for features built from ``curated_keys`` under ``contract``."""
    return {
        "schema_version": 1,
        "contract": contract.name,
        "contract_sha256": contract_sha256(contract),
        "validated_data_sha256": validated_data_sha256(s3, curated_bucket, curated_keys),
        "sources": [f"s3://{curated_bucket}/{k}" for k in sorted(curated_keys)],
    }


def lineage_bytes(value: dict[str, Any]) -> bytes:
    """The lineage as strict JSON bytes."""
    from pipelines.jsonio import strict_json

    return strict_json(value).encode()


def write_lineage(
    clients: AwsClients, contract: DatasetContract, features_uri: str, curated_keys: list[str]
) -> str:
    """Publish the part files under ``features_uri`` as a version and write its manifest as
    ``_lineage.json`` there (after an EMR job run); return the lineage file's URI."""
    from pipelines.aws import list_keys, put_bytes, split_s3_uri

    settings = clients.settings
    s3 = clients.s3
    bucket, prefix = split_s3_uri(features_uri)
    parts = [
        (key[len(prefix) :], s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        for key in list_keys(s3, bucket, prefix)
        if key.endswith(".parquet") and "/" not in key[len(prefix) :]
    ]
    value = publish_features(
        s3,
        bucket,
        settings.data_lake_key_arn,
        contract,
        parts,
        settings.require("curated_bucket"),
        curated_keys,
    )
    return put_bytes(
        clients.s3,
        bucket,
        prefix + LINEAGE_FILE,
        lineage_bytes(value),
        settings.data_lake_key_arn,
        "application/json",
    )
