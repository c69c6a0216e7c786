"""Fetch a registered model: find its package, download ``model.tar.gz`` and unpack it safely.

The result is a model directory ``mlops serve --model-dir`` serves (``model.joblib``,
``metadata.json``, ``contract.yaml`` and the inference code under ``code/``). The archive is never
extracted blindly: every entry must be a plain file or folder whose path stays inside the target
folder, and the unpacked size is bounded.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

from pipelines.errors import PipelineError

if TYPE_CHECKING:
    from pipelines.aws import AwsClients

MAX_UNPACKED_BYTES = 4 * 1024**3
"""Refuse archives that unpack to more than this (a guard against decompression bombs)."""

MAX_ENTRIES = 10_000
"""Refuse archives with more entries than this."""


class FetchError(PipelineError):
    """The model package or its artifact could not be found or downloaded."""


class UnsafeArchiveError(FetchError):
    """The model archive has an entry that would escape the target folder, or is not a plain file."""

    exit_code: ClassVar[int] = 2


@dataclass(frozen=True)
class FetchedModel:
    """A model package unpacked into a local folder."""

    model_package_arn: str
    model_data_url: str
    model_dir: Path
    files: tuple[str, ...]


def _checked_name(member: tarfile.TarInfo) -> PurePosixPath:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or "\\" in member.name:
        raise UnsafeArchiveError(
            f"archive entry {member.name!r} has an absolute or parent-relative path; refusing to unpack it",
            hint="rebuild the artifact with the training step (pipelines.train.package_model)",
        )
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(
            f"archive entry {member.name!r} is a link or special file; only plain files and folders are allowed"
        )
    return name


def safe_extract(data: bytes, folder: Path, max_bytes: int = MAX_UNPACKED_BYTES) -> list[str]:
    """Unpack ``model.tar.gz`` bytes into ``folder`` after checking every entry; return the file names.

    Raises:
        UnsafeArchiveError: an entry is absolute, contains ``..``, is a link or device, resolves outside
            ``folder``, or the archive is too large; nothing is written in that case.
    """
    root = folder.resolve()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            return _extract_checked(archive, root, max_bytes)
    except tarfile.TarError as error:
        raise UnsafeArchiveError(f"not a readable tar archive: {error}") from None


def _extract_checked(archive: tarfile.TarFile, root: Path, max_bytes: int) -> list[str]:
    members = archive.getmembers()
    if len(members) > MAX_ENTRIES:
        raise UnsafeArchiveError(f"archive has {len(members)} entries (more than {MAX_ENTRIES})")
    total = sum(m.size for m in members if m.isfile())
    if total > max_bytes:
        raise UnsafeArchiveError(f"archive unpacks to {total} bytes (more than {max_bytes})")
    planned: list[tuple[tarfile.TarInfo, Path]] = []
    for member in members:
        name = _checked_name(member)
        target = (root / name).resolve()
        if not target.is_relative_to(root):
            raise UnsafeArchiveError(f"archive entry {member.name!r} resolves outside {root}")
        planned.append((member, target))
    written: list[str] = []
    for member, target in planned:
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        source = archive.extractfile(member)
        if source is None:  # pragma: no cover - isfile() members always have data
            raise UnsafeArchiveError(f"archive entry {member.name!r} has no data")
        with source, target.open("wb") as out:
            out.write(source.read())
        target.chmod(0o644)
        written.append(target.relative_to(root).as_posix())
    return sorted(written)


def _group_contract(clients: AwsClients, group: str) -> str | None:
    """The contract of the catalog model that owns ``group``, or None when the catalog does not say."""
    settings = clients.settings
    for name, entry in settings.models.items():
        if group in (
            entry.model_package_group_name,
            settings.model_target(entry.contract, name).model_package_group_name,
        ):
            return entry.contract
    return None


def find_package(
    clients: AwsClients, package_arn: str | None = None, group: str | None = None
) -> dict[str, Any]:
    """DescribeModelPackage of ``package_arn``, or of the newest Approved package in ``group``.

    ``group`` defaults to the ``model_package_group_name`` setting when no ARN is given.
    """
    from botocore.exceptions import ClientError

    from pipelines.packages import latest_approved_package

    sm = clients.sagemaker
    if package_arn is None:
        chosen = group or clients.settings.model_package_group_name
        if not chosen:
            raise FetchError(
                "no model package given",
                hint="pass --package-arn ARN, or --group NAME (or set MLOPS_MODEL_PACKAGE_GROUP_NAME)",
            )
        try:
            summary = latest_approved_package(sm, chosen, _group_contract(clients, chosen))
        except ClientError as error:
            raise FetchError(f"cannot list packages of model package group {chosen!r}: {error}") from None
        if summary is None:
            raise FetchError(
                f"model package group {chosen!r} has no Approved package",
                hint="approve one (mlops pipeline promote) or pass --package-arn",
            )
        package_arn = str(summary["ModelPackageArn"])
    try:
        return sm.describe_model_package(ModelPackageName=package_arn)
    except ClientError as error:
        raise FetchError(f"cannot describe model package {package_arn}: {error}") from None


def fetch_model(
    clients: AwsClients,
    destination: Path,
    package_arn: str | None = None,
    group: str | None = None,
    overwrite: bool = False,
) -> FetchedModel:
    """Download the package's ``model.tar.gz`` and unpack it into ``destination`` (empty or new)."""
    from botocore.exceptions import ClientError

    from pipelines.aws import split_s3_uri

    package = find_package(clients, package_arn, group)
    arn = str(package["ModelPackageArn"])
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    url = containers[0].get("ModelDataUrl") if containers else None
    if not url:
        raise FetchError(f"model package {arn} has no ModelDataUrl in its inference specification")
    if destination.exists() and any(destination.iterdir()) and not overwrite:
        raise FetchError(
            f"{destination} is not empty; refusing to mix two models",
            hint="choose a new folder or pass --overwrite",
        )
    bucket, key = split_s3_uri(url)
    try:
        data = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        raise FetchError(f"cannot download {url} of package {arn}: {error}") from None
    destination.mkdir(parents=True, exist_ok=True)
    files = safe_extract(data, destination)
    if "metadata.json" not in files:
        raise FetchError(
            f"{url} has no metadata.json at its root; it is not a model artifact of this platform"
        )
    return FetchedModel(arn, url, destination, tuple(files))
