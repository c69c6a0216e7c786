"""Versioned datasets: immutable, content-addressed copies of what the pipeline produces, with manifests.

A dataset version lives under ``<kind>/<dataset>/versions/<version>/`` in its bucket, where
``<version>`` is the first 20 hex digits of the SHA-256 over its data files' bytes (in name order,
the same digest the training entry point records as ``training_data_sha256``). Next to the data
files is its manifest, ``_lineage.json`` (the feature step's lineage, extended): URI, content hash,
contract name and SHA-256, row count (and rows per split), the parent datasets with their hashes,
and the run that produced it.

Every object of a version is written with ``If-None-Match: *`` (S3 conditional writes,
https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html): S3 refuses a second
write to the same key with ``412 Precondition Failed``, so a version, once its manifest exists, can
never be changed by the platform's writers. The manifest is written last: a version is complete
when its manifest exists. Publishing the same content again (a re-run) looks for the version's
manifest first (one HeadObject, authorized as ``s3:GetObject``; the manifest carries its content
hash as ``x-amz-meta-content-sha256``), sends no data PUTs and returns the first run's manifest;
:func:`publish_dataset` with ``exist_ok=False`` refuses instead. A manifest there with another
content hash is :class:`DatasetVersionConflictError`. The conditional PUTs stay the real guard: a
concurrent publisher that loses the race gets 412 and is treated as "already there".
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import InputRejectedError, PipelineError

if TYPE_CHECKING:
    from pipelines.contract import DatasetContract

MANIFEST_FILE = "_lineage.json"
"""The manifest's name in a version folder (``pipelines.lineage.LINEAGE_FILE``: one mechanism)."""
MANIFEST_SCHEMA_VERSION = 2
"""Schema of a manifest (1: the feature step's lineage without the dataset fields)."""
CONTENT_SHA256_METADATA = "content-sha256"
"""User metadata of a manifest object (``x-amz-meta-content-sha256``): its ``content_sha256``, so a
HeadObject tells whether a version holds this content without reading the manifest."""
VERSION_DIGITS = 20
"""Hex digits of the content hash that name a version (80 bits)."""


class DatasetVersionExistsError(PipelineError, FileExistsError):
    """A write to an existing dataset version was refused (versions are immutable)."""


class DatasetVersionConflictError(PipelineError):
    """A version's manifest records other content than the content being published under its name."""


class ManifestMismatchError(InputRejectedError, ValueError):
    """A dataset's files do not match its manifest (a file is missing, extra or changed)."""


def content_sha256(files: Sequence[tuple[str, bytes]]) -> str:
    """SHA-256 over the files' bytes in name order (``pipelines.train.files_sha256`` of the same files)."""
    digest = hashlib.sha256()
    for _, data in sorted(files, key=lambda item: item[0]):
        digest.update(data)
    return digest.hexdigest()


def version_of(sha256: str) -> str:
    """The version name of content with this SHA-256."""
    return sha256[:VERSION_DIGITS]


def version_prefix(kind: str, dataset: str, version: str) -> str:
    """``<kind>/<dataset>/versions/<version>/`` (e.g. ``features/churn/versions/3f2a.../``)."""
    return f"{kind}/{dataset}/versions/{version}/"


def validated_dataset(contract_name: str) -> str:
    """Dataset name of a contract's validated batches (``curated/<name>/validated/versions/<v>/``)."""
    return f"{contract_name}/validated"


def split_dataset(contract_name: str, split: str) -> str:
    """Dataset name of one split of a feature set (``features/<name>/splits/<split>/versions/<v>/``)."""
    return f"{contract_name}/splits/{split}"


def manifest_uri_of(bucket: str, kind: str, dataset: str, data: Sequence[tuple[str, bytes]]) -> str:
    """Where the manifest of ``data`` published as ``kind``/``dataset`` is (content-addressed)."""
    return f"s3://{bucket}/{version_prefix(kind, dataset, version_of(content_sha256(data)))}{MANIFEST_FILE}"


def producing_run() -> str:
    """The run producing a dataset: ``MLOPS_RUN_ID``, else the Airflow DAG run, else ``local-<epoch>``."""
    return (
        os.environ.get("MLOPS_RUN_ID")
        or os.environ.get("AIRFLOW_CTX_DAG_RUN_ID")
        or f"local-{int(time.time())}"
    )


def _precondition_failed(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error.get("Code") in {"PreconditionFailed", "412"} or status == 412


def put_immutable(
    s3: Any,
    bucket: str,
    key: str,
    body: bytes,
    key_arn: str | None,
    content_type: str | None = None,
    metadata: dict[str, str] | None = None,
) -> bool:
    """Create ``s3://bucket/key`` only if it does not exist (``If-None-Match: *``); False when it exists."""
    from pipelines.aws import sse_kms

    extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
    if metadata:
        extra["Metadata"] = metadata
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*", **sse_kms(key_arn), **extra)
    except Exception as exc:
        if _precondition_failed(exc):
            return False
        raise
    return True


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The manifest as strict JSON bytes."""
    from pipelines.jsonio import strict_json

    return strict_json(manifest).encode()


def read_manifest(s3: Any, uri: str) -> dict[str, Any]:
    """The manifest at ``uri`` (a manifest object or its version folder)."""
    from botocore.exceptions import ClientError

    from pipelines.aws import split_s3_uri

    if uri.endswith("/"):
        uri += MANIFEST_FILE
    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            raise ManifestMismatchError(
                f"no dataset manifest at {uri}: the version was never completed or the URI is wrong"
            ) from exc
        raise
    value = json.loads(body)
    if not isinstance(value, dict) or "content_sha256" not in value:
        raise ManifestMismatchError(f"{uri} is not a dataset manifest (no content_sha256)")
    return value


def existing_content_sha256(s3: Any, bucket: str, key: str) -> str | None:
    """The ``content_sha256`` of the manifest at ``s3://bucket/key``, None when there is none.

    One HeadObject (``x-amz-meta-content-sha256``); a manifest written before that metadata is read.
    """
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise
    recorded = (head.get("Metadata") or {}).get(CONTENT_SHA256_METADATA)
    if recorded:
        return str(recorded)
    return str(read_manifest(s3, f"s3://{bucket}/{key}")["content_sha256"])


def _conflict(uri: str, sha: str, recorded: str) -> DatasetVersionConflictError:
    return DatasetVersionConflictError(
        f"dataset version {uri} already has a manifest, {uri}{MANIFEST_FILE}, for content_sha256 "
        f"{recorded}, but the content published under that name hashes to {sha}: content addressing "
        "is broken there (a version name collision, or a manifest written by something else)",
        hint=f"nothing was written; find out what wrote {uri}{MANIFEST_FILE} before publishing again",
    )


def manifest_ref(manifest: dict[str, Any]) -> dict[str, Any]:
    """How a child manifest names a parent version: kind, dataset, version, URIs and content hash."""
    return {
        "kind": manifest["kind"],
        "dataset": manifest["dataset"],
        "version": manifest["version"],
        "uri": manifest["uri"],
        "manifest_uri": manifest["manifest_uri"],
        "sha256": manifest["content_sha256"],
    }


def publish_dataset(
    s3: Any,
    bucket: str,
    *,
    kind: str,
    dataset: str,
    files: Sequence[tuple[str, bytes]],
    key_arn: str | None,
    contract: DatasetContract | None,
    parents: Sequence[dict[str, Any]],
    row_count: int,
    extra: dict[str, Any] | None = None,
    run: str | None = None,
    exist_ok: bool = True,
) -> dict[str, Any]:
    """Write ``files`` as an immutable version of ``dataset`` with its manifest; return the manifest.

    ``files`` are (name, bytes) pairs, names relative to the version folder. When the version's
    manifest already exists (checked first, with one HeadObject) nothing is written: the existing
    manifest is returned, or, with ``exist_ok=False``, :class:`DatasetVersionExistsError` is raised.
    A concurrent publisher's manifest (our conditional PUT answered 412) is handled the same way.

    Raises:
        DatasetVersionConflictError: the version's manifest records a different content hash.
    """
    from pipelines.contract import contract_sha256

    names = [name for name, _ in files]
    if not files or len(set(names)) != len(names) or MANIFEST_FILE in names:
        raise ValueError(f"a dataset version needs distinct data files other than {MANIFEST_FILE}: {names}")
    sha = content_sha256(files)
    version = version_of(sha)
    prefix = version_prefix(kind, dataset, version)
    uri = f"s3://{bucket}/{prefix}"
    manifest: dict[str, Any] = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "kind": kind,
        "dataset": dataset,
        "version": version,
        "uri": uri,
        "manifest_uri": uri + MANIFEST_FILE,
        "content_sha256": sha,
        "files": [
            {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in sorted(files, key=lambda item: item[0])
        ],
        "row_count": int(row_count),
        "contract": contract.name if contract else None,
        "contract_version": contract.version if contract else None,
        "contract_sha256": contract_sha256(contract) if contract else None,
        "parents": list(parents),
        "producing_run": run or producing_run(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    manifest_key = prefix + MANIFEST_FILE
    recorded = existing_content_sha256(s3, bucket, manifest_key)
    if recorded is None:
        for name, data in files:
            put_immutable(s3, bucket, prefix + name, data, key_arn)  # False: an earlier, unfinished try
        if put_immutable(
            s3,
            bucket,
            manifest_key,
            manifest_bytes(manifest),
            key_arn,
            "application/json",
            {CONTENT_SHA256_METADATA: sha},
        ):
            return manifest
        recorded = existing_content_sha256(s3, bucket, manifest_key)  # another publisher won the race
    if recorded != sha:
        raise _conflict(uri, sha, str(recorded))
    if not exist_ok:
        raise DatasetVersionExistsError(
            f"dataset version {uri} already exists and is immutable; its manifest is {uri}{MANIFEST_FILE}",
            hint="a version is addressed by its content: the same data is already published there",
        )
    return read_manifest(s3, uri + MANIFEST_FILE)


def fetch_dataset(s3: Any, manifest: dict[str, Any], folder: Path) -> list[Path]:
    """Download a version's data files into ``folder`` and check them against its manifest.

    Raises:
        ManifestMismatchError: a file is missing, or a file's or the whole content's hash differs.
    """
    from pipelines.aws import list_keys, split_s3_uri

    bucket, prefix = split_s3_uri(str(manifest["uri"]))
    present = {k[len(prefix) :] for k in list_keys(s3, bucket, prefix)} - {MANIFEST_FILE}
    expected = {str(f["name"]): str(f["sha256"]) for f in manifest["files"]}
    if present != set(expected):
        raise ManifestMismatchError(
            f"{manifest['uri']} holds {sorted(present)}, its manifest lists {sorted(expected)}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    blobs: list[tuple[str, bytes]] = []
    for name, sha in sorted(expected.items()):
        data = s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read()
        if hashlib.sha256(data).hexdigest() != sha:
            raise ManifestMismatchError(f"{manifest['uri']}{name} does not match its manifest's sha256")
        target = (folder / name).resolve()
        if not target.is_relative_to(folder.resolve()):
            raise ManifestMismatchError(f"manifest file name {name!r} leaves the dataset folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        paths.append(target)
        blobs.append((name, data))
    if content_sha256(blobs) != manifest["content_sha256"]:
        raise ManifestMismatchError(
            f"{manifest['uri']}: content does not match the manifest's content_sha256"
        )
    (folder / MANIFEST_FILE).write_bytes(manifest_bytes(manifest))
    return paths


def split_counts(frames: Sequence[Any]) -> dict[str, int]:
    """Rows per ``__split__`` value over feature frames (the splits are views of a feature version)."""
    from pipelines.features.spark_job import SPLIT_COLUMN

    counts: dict[str, int] = {}
    for frame in frames:
        if SPLIT_COLUMN in frame.columns:
            for split, n in frame[SPLIT_COLUMN].value_counts().items():
                counts[str(split)] = counts.get(str(split), 0) + int(n)
    return dict(sorted(counts.items()))


def dataset_chain(s3: Any, manifest_uri: str, splits: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The versions a dataset derives from, walked through the manifests' parents (the dataset itself
    first, then its splits when given, then parents breadth first; a raw upload ends a branch).

    Each entry: kind, dataset, version, manifest_uri, content hash, rows, contract, producing run and
    the manifest URIs of its parents. An unreadable manifest is an entry with ``error``.
    """
    order = [manifest_uri, *(splits or {}).values()]
    seen: set[str] = set()
    chain: list[dict[str, Any]] = []
    while order:
        uri = order.pop(0)
        if uri in seen:
            continue
        seen.add(uri)
        try:
            manifest = read_manifest(s3, uri)
        except Exception as exc:  # a link that cannot be read is reported, not guessed
            chain.append({"manifest_uri": uri, "error": str(exc)[:300]})
            continue
        parents = list(manifest.get("parents") or [])
        chain.append(
            {
                "kind": manifest.get("kind"),
                "dataset": manifest.get("dataset"),
                "version": manifest.get("version"),
                "uri": manifest.get("uri"),
                "manifest_uri": manifest.get("manifest_uri", uri),
                "content_sha256": manifest.get("content_sha256"),
                "row_count": manifest.get("row_count"),
                "contract": manifest.get("contract"),
                "contract_version": manifest.get("contract_version"),
                "producing_run": manifest.get("producing_run"),
                "parents": [p.get("manifest_uri") or p.get("uri") for p in parents],
            }
        )
        for parent in parents:
            if parent.get("manifest_uri"):
                order.append(str(parent["manifest_uri"]))
            elif parent.get("uri") not in seen:
                seen.add(str(parent.get("uri")))
                chain.append(
                    {
                        "kind": parent.get("kind"),
                        "uri": parent.get("uri"),
                        "content_sha256": parent.get("sha256"),
                    }
                )
    return chain
