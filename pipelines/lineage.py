"""Data lineage of a feature table: which validated data and which contract it was built from.

The feature step writes ``_lineage.json`` next to its part files. Training copies it into the
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
    """Write ``_lineage.json`` under ``features_uri`` (e.g. after an EMR job run); return its URI."""
    from pipelines.aws import put_bytes, split_s3_uri

    settings = clients.settings
    bucket, prefix = split_s3_uri(features_uri)
    value = lineage(clients.s3, settings.require("curated_bucket"), curated_keys, contract)
    return put_bytes(
        clients.s3,
        bucket,
        prefix + LINEAGE_FILE,
        lineage_bytes(value),
        settings.data_lake_key_arn,
        "application/json",
    )
