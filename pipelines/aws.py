"""The one place that makes boto3 sessions and clients, plus small S3 helpers that always encrypt.

Clients use the standard retry mode (throttling and transient errors are retried with backoff),
explicit timeouts, and the endpoint URL overrides from settings (for an emulator such as moto).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.errors import InputRejectedError

if TYPE_CHECKING:
    import boto3

    from pipelines.settings import PipelineSettings


def client_config(settings: PipelineSettings) -> Any:
    """botocore ``Config`` with standard retries and the timeouts from settings."""
    from botocore.config import Config

    return Config(
        region_name=settings.region,
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
    )


def make_session(settings: PipelineSettings) -> boto3.Session:
    """A boto3 session for the settings' region (credentials from the usual chain)."""
    import boto3

    return boto3.Session(region_name=settings.region)


@dataclass
class AwsClients:
    """Lazily made, cached boto3 clients for one settings object. Pass this into the steps."""

    settings: PipelineSettings
    session: Any = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        """Return the (cached) client for ``service`` with retries, timeouts and endpoint override."""
        if service not in self._cache:
            session = self.session or make_session(self.settings)
            self.session = session
            self._cache[service] = session.client(
                service,
                config=client_config(self.settings),
                endpoint_url=self.settings.endpoint_for(service),
            )
        return self._cache[service]

    @property
    def s3(self) -> Any:
        """The S3 client."""
        return self.client("s3")

    @property
    def sagemaker(self) -> Any:
        """The SageMaker client."""
        return self.client("sagemaker")


def sse_kms(key_arn: str | None) -> dict[str, str]:
    """``put_object`` arguments for SSE-KMS with ``key_arn`` (the bucket default key when None)."""
    args = {"ServerSideEncryption": "aws:kms"}
    if key_arn:
        args["SSEKMSKeyId"] = key_arn
    return args


def put_bytes(
    s3: Any, bucket: str, key: str, body: bytes, key_arn: str | None, content_type: str | None = None
) -> str:
    """Write ``body`` to ``s3://bucket/key`` encrypted with ``key_arn``; return the URI."""
    extra: dict[str, str] = {"ContentType": content_type} if content_type else {}
    s3.put_object(Bucket=bucket, Key=key, Body=body, **sse_kms(key_arn), **extra)
    return f"s3://{bucket}/{key}"


def put_all_or_nothing(
    s3: Any, bucket: str, items: Iterable[tuple[str, bytes]], key_arn: str | None
) -> list[str]:
    """Write several objects; if any write fails, delete the ones already written and re-raise."""
    written: list[str] = []
    try:
        for key, body in items:
            put_bytes(s3, bucket, key, body, key_arn)
            written.append(key)
    except Exception:
        delete_keys(s3, bucket, written)
        raise
    return [f"s3://{bucket}/{key}" for key in written]


def delete_keys(s3: Any, bucket: str, keys: Iterable[str]) -> None:
    """Delete ``keys`` from ``bucket``, ignoring errors (used for clean-up after a failure)."""
    for key in keys:
        try:
            s3.delete_object(Bucket=bucket, Key=key)
        except Exception:  # noqa: S112 - best-effort clean-up must not hide the original error
            continue


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    """True when ``s3://bucket/key`` exists (404 is False, other errors raise)."""
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return False
        raise
    return True


def list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    """All keys under ``prefix``, sorted."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return sorted(keys)


class S3UriError(InputRejectedError, ValueError):
    """A string that should be an ``s3://bucket/key`` URI is not."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; raises ValueError on anything else."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise S3UriError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
