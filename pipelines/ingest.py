"""Land a batch file in the raw bucket under a partitioned, content-hashed key (SSE-KMS)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.aws import object_exists, sha256_hex
from pipelines.datasets import put_immutable
from pipelines.errors import InputRejectedError

if TYPE_CHECKING:
    from pipelines.aws import AwsClients

SUPPORTED_SUFFIXES = (".csv", ".parquet")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class UnsupportedBatchError(InputRejectedError, ValueError):
    """The batch file has a type the pipeline does not ingest, or a malformed ingest date."""


class BatchFileNotFoundError(InputRejectedError, FileNotFoundError):
    """The local batch file does not exist."""


@dataclass(frozen=True)
class IngestResult:
    """A landed batch: where it is and its content hash."""

    dataset: str
    bucket: str
    key: str
    file_name: str
    sha256: str
    ingest_date: str
    already_present: bool = False

    @property
    def prefix(self) -> str:
        """The batch's folder (validation reports go here)."""
        return self.key.rsplit("/", 1)[0]

    @property
    def uri(self) -> str:
        """``s3://`` URI of the raw object."""
        return f"s3://{self.bucket}/{self.key}"


def raw_key(dataset: str, ingest_date: str, sha256: str, file_name: str) -> str:
    """``raw/<dataset>/ingest_date=YYYY-MM-DD/<sha256-prefix-16>/<file name>``."""
    return f"raw/{dataset}/ingest_date={ingest_date}/{sha256[:16]}/{file_name}"


def ingest_bytes(
    clients: AwsClients, dataset: str, data: bytes, file_name: str, ingest_date: str | None = None
) -> IngestResult:
    """Upload ``data`` to the raw bucket (once: the same content on the same day is not re-uploaded)."""
    safe_name = _SAFE_NAME.sub("_", Path(file_name).name)
    if not safe_name.endswith(SUPPORTED_SUFFIXES):
        raise UnsupportedBatchError(
            f"'{file_name}': only {', '.join(SUPPORTED_SUFFIXES)} files can be ingested"
        )
    settings = clients.settings
    bucket = settings.require("raw_bucket")
    day = ingest_date or datetime.now(UTC).strftime("%Y-%m-%d")
    try:
        datetime.strptime(day, "%Y-%m-%d")
    except ValueError:
        raise UnsupportedBatchError(f"ingest date {day!r} is not YYYY-MM-DD (e.g. 2026-11-24)") from None
    digest = sha256_hex(data)
    key = raw_key(dataset, day, digest, safe_name)
    present = object_exists(clients.s3, bucket, key)
    if not present:
        # the key is named by the content's hash: create it once (If-None-Match: *), so a landed batch
        # is never replaced; a concurrent landing of the same bytes gets 412 and finds it present
        present = not put_immutable(clients.s3, bucket, key, data, settings.data_lake_key_arn)
    return IngestResult(dataset, bucket, key, safe_name, digest, day, already_present=present)


def ingest_file(
    clients: AwsClients, dataset: str, path: Path, ingest_date: str | None = None
) -> IngestResult:
    """Land a local CSV/Parquet file; see :func:`ingest_bytes`."""
    if not path.is_file():
        raise BatchFileNotFoundError(f"batch file not found: {path}")
    return ingest_bytes(clients, dataset, path.read_bytes(), path.name, ingest_date)
