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


def _read_all(s3: Any, bucket: str, keys: list[str]) -> list[tuple[str, bytes]]:
    return [(key, s3.get_object(Bucket=bucket, Key=key)["Body"].read()) for key in sorted(keys)]


def _validated_parent(
    s3: Any, curated_bucket: str, contract: DatasetContract, key: str, data: bytes
) -> dict[str, Any]:
    """The validated batch version a curated object was published as (validate step), else the object."""
    from pipelines.datasets import (
        ManifestMismatchError,
        manifest_ref,
        manifest_uri_of,
        read_manifest,
        validated_dataset,
    )

    uri = manifest_uri_of(
        curated_bucket, "curated", validated_dataset(contract.name), [("data.parquet", data)]
    )
    try:
        return manifest_ref(read_manifest(s3, uri))
    except ManifestMismatchError:  # curated before versioned validated batches: the object itself
        return {
            "kind": "curated-object",
            "uri": f"s3://{curated_bucket}/{key}",
            "sha256": hashlib.sha256(data).hexdigest(),
        }


def publish_curated(
    s3: Any,
    curated_bucket: str,
    key_arn: str | None,
    contract: DatasetContract,
    curated: list[tuple[str, bytes]],
) -> dict[str, Any]:
    """Publish the curated objects a feature set is built from as one immutable curated-table version
    (``curated/<name>/versions/<v>/part-NNNNN.parquet``, in key order, so its content hash is the
    ``validated_data_sha256``); its parents are the validated batch versions. Return its manifest."""
    from pipelines.datasets import publish_dataset

    rows, _ = parquet_rows(curated)
    return publish_dataset(
        s3,
        curated_bucket,
        kind="curated",
        dataset=contract.name,
        files=[(f"part-{i:05d}.parquet", data) for i, (_, data) in enumerate(curated)],
        key_arn=key_arn,
        contract=contract,
        parents=[_validated_parent(s3, curated_bucket, contract, key, data) for key, data in curated],
        row_count=rows,
        extra={"sources": [f"s3://{curated_bucket}/{key}" for key, _ in curated]},
    )


def split_parts(parts: list[tuple[str, bytes]]) -> dict[str, bytes]:
    """One Parquet file per ``__split__`` value of the feature parts (rows in part order; all columns)."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(io.BytesIO(data)) for _, data in sorted(parts)]
    if not tables or "__split__" not in tables[0].schema.names:
        return {}
    table = pa.concat_tables(tables, promote_options="default")
    labels = np.asarray(table.column("__split__").to_pylist(), dtype=object)
    out: dict[str, bytes] = {}
    for split in sorted({str(v) for v in labels if v is not None}):
        buffer = io.BytesIO()
        pq.write_table(table.filter(pa.array(labels == split, type=pa.bool_())), buffer)
        out[split] = buffer.getvalue()
    return out


def publish_splits(
    s3: Any,
    features_bucket: str,
    key_arn: str | None,
    contract: DatasetContract,
    parts: list[tuple[str, bytes]],
    features: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Publish each split of a feature-set version as its own immutable version
    (``features/<name>/splits/<split>/versions/<v>/``, parent: the feature set); return their refs."""
    import io

    import pyarrow.parquet as pq

    from pipelines.datasets import manifest_ref, publish_dataset, split_dataset

    refs: dict[str, dict[str, Any]] = {}
    for split, data in split_parts(parts).items():
        manifest = publish_dataset(
            s3,
            features_bucket,
            kind="features",
            dataset=split_dataset(contract.name, split),
            files=[("part-00000.parquet", data)],
            key_arn=key_arn,
            contract=contract,
            parents=[manifest_ref(features)],
            row_count=pq.ParquetFile(io.BytesIO(data)).metadata.num_rows,
            extra={"split": split, "selection": f"__split__ == {split!r} of {features['uri']}"},
        )
        refs[split] = manifest_ref(manifest)
    return refs


def publish_features(
    s3: Any,
    features_bucket: str,
    key_arn: str | None,
    contract: DatasetContract,
    parts: list[tuple[str, bytes]],
    curated_bucket: str,
    curated_keys: list[str],
) -> dict[str, Any]:
    """Publish the datasets of a feature step: the curated table it read, the feature set and its
    splits, each an immutable version with its manifest (parents: split -> feature set -> curated
    table -> validated batches -> raw uploads). Return the feature set's manifest plus
    ``split_manifests`` (the refs of its splits): the working prefix's ``_lineage.json``."""
    from pipelines.datasets import content_sha256, manifest_ref, publish_dataset

    curated = _read_all(s3, curated_bucket, curated_keys)
    table = publish_curated(s3, curated_bucket, key_arn, contract, curated)
    rows, splits = parquet_rows(parts)
    features = publish_dataset(
        s3,
        features_bucket,
        kind="features",
        dataset=contract.name,
        files=parts,
        key_arn=key_arn,
        contract=contract,
        parents=[manifest_ref(table)],
        row_count=rows,
        extra={
            # the validated data's hash over the curated objects in key order (registration keys on it)
            "validated_data_sha256": content_sha256(curated),
            "sources": [f"s3://{curated_bucket}/{k}" for k, _ in curated],
            # the training/validation/test splits are views of this version (the __split__ column),
            # each also published as its own version (split_manifests in the working lineage)
            "splits": splits,
        },
    )
    return {
        **features,
        "split_manifests": publish_splits(s3, features_bucket, key_arn, contract, parts, features),
    }


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
