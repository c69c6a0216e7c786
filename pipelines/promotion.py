"""Cross-environment promotion by copy and re-register (issue 12 item 8).

A package registered in one environment points at that environment's artifacts bucket and KMS key, which
no other environment's SageMaker role may read. So an environment never deploys another environment's
package: its promote build *imports* it. The package's S3 artifacts (model data, the evaluation and
baseline files its metrics point at) are copied into this environment's artifacts bucket under the same
keys, encrypted with this environment's key, and a new package is registered in this environment's group
with the same inference specification (rewritten URIs), metrics, metadata and approval, plus its lineage
(``promoted_from``: the source package ARN), and its own model card in this registry
(:func:`pipelines.model_card.import_card`: Draft, then Approved with the copy, encrypted with this
environment's key). The copy is then deployed by this environment's own
``pulumi up``, from inside its own VPC, so the build only ever reaches its own private EKS API.

Only packages that were *deployed* upstream (``deployed: true`` in their customer metadata, set by
:func:`mark_deployed` after a successful ``pulumi up`` there) are imported, so staging tests a package
before prod can import it. ``python -m pipelines.promotion plan|mark`` is what
``delivery/buildspecs/promote.yml`` runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipelines.aws import split_s3_uri
from pipelines.errors import PipelineError

PROMOTED_FROM = "promoted_from"
"""Customer metadata key of an imported package: the ARN of the package it was copied from."""
DEPLOYED = "deployed"
"""Customer metadata key set to ``"true"`` once a package was deployed in its environment."""
DEPLOYED_AT = "deployed_at"
"""When it was deployed (UTC, ISO 8601)."""
_NOT_COPIED_METADATA = (DEPLOYED, DEPLOYED_AT)
"""Metadata that describes the package in its environment, not the model: not carried to the copy."""


class PromotionImportError(PipelineError):
    """An upstream package cannot be imported (its artifacts are outside the shared prefix, or unreadable)."""


@dataclass(frozen=True)
class ImportedPackage:
    """The package this environment registered for an upstream one (or found already registered)."""

    source_arn: str
    """The upstream package."""
    package_arn: str
    """Its copy in this environment's group."""
    created: bool
    """False when an earlier promotion had already imported it."""
    copied_keys: tuple[str, ...]
    """The object keys copied into this environment's bucket."""
    model_card: str = ""
    """The copy's model card in this registry (``<group>-<version>``)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _packages(sm: Any, group: str, status: str | None = "Approved") -> list[dict[str, Any]]:
    """Summaries of ``group``'s packages, newest first (``group`` may be a name or, cross-account, an ARN)."""
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
    }
    if status is not None:
        request["ModelApprovalStatus"] = status
    summaries: list[dict[str, Any]] = []
    for page in sm.get_paginator("list_model_packages").paginate(**request):
        summaries.extend(page["ModelPackageSummaryList"])
    return summaries


def newest_deployed(sm: Any, group: str) -> dict[str, Any] | None:
    """The newest Approved package of ``group`` that was deployed in its environment, described, or None."""
    for summary in _packages(sm, group):
        package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if (package.get("CustomerMetadataProperties") or {}).get(DEPLOYED) == "true":
            return package
    return None


def find_imported(sm: Any, group: str, source_arn: str) -> dict[str, Any] | None:
    """The package of ``group`` imported from ``source_arn`` (any approval status), or None."""
    for summary in _packages(sm, group, status=None):
        package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if (package.get("CustomerMetadataProperties") or {}).get(PROMOTED_FROM) == source_arn:
            return package
    return None


def _artifact_uris(package: dict[str, Any]) -> list[str]:
    """Every S3 URI the package points at: model data, metric and baseline files, the sample payload."""
    uris: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in ("ModelDataUrl", "S3Uri", "SamplePayloadUrl") and isinstance(item, str):
                    uris.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for field in ("InferenceSpecification", "ModelMetrics", "DriftCheckBaselines", "SamplePayloadUrl"):
        if field in package:
            walk({field: package[field]} if field == "SamplePayloadUrl" else package[field])
    return list(dict.fromkeys(uris))


def _rewrite(value: Any, old_bucket: str, new_bucket: str) -> Any:
    """``value`` with every ``s3://<old_bucket>/`` prefix pointing at ``new_bucket`` instead."""
    if isinstance(value, dict):
        return {k: _rewrite(v, old_bucket, new_bucket) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, old_bucket, new_bucket) for v in value]
    if isinstance(value, str) and value.startswith(f"s3://{old_bucket}/"):
        return f"s3://{new_bucket}/" + value.removeprefix(f"s3://{old_bucket}/")
    return value


def import_package(
    source_sm: Any,
    target_sm: Any,
    s3: Any,
    source_arn: str,
    *,
    target_group: str,
    target_bucket: str,
    target_key_arn: str,
    shared_prefix: str = "models/",
) -> ImportedPackage:
    """Copy ``source_arn``'s artifacts into ``target_bucket`` (same keys, SSE-KMS with ``target_key_arn``) and
    register the copy in ``target_group`` as Approved, with the source's metadata and ``promoted_from``.

    Idempotent: a package already imported from ``source_arn`` is returned as it is.

    Raises:
        PromotionImportError: an artifact lies outside ``shared_prefix`` of one bucket (the upstream grants
            other environments ``models/`` only), or the source is not Approved.
    """
    existing = find_imported(target_sm, target_group, source_arn)
    if existing is not None:
        # an earlier import may have stopped between registering the copy and writing its card
        card = _import_card(
            source_sm, target_sm, s3, source_arn, existing, None, target_bucket, target_key_arn
        )
        return ImportedPackage(source_arn, existing["ModelPackageArn"], False, (), card)
    package = source_sm.describe_model_package(ModelPackageName=source_arn)
    if package.get("ModelApprovalStatus") != "Approved":
        raise PromotionImportError(
            f"{source_arn} is {package.get('ModelApprovalStatus')}, not Approved: only approved packages are promoted"
        )
    uris = _artifact_uris(package)
    buckets = {split_s3_uri(u)[0] for u in uris}
    if len(buckets) != 1:
        raise PromotionImportError(
            f"{source_arn} points at {sorted(buckets) or 'no'} bucket(s); a promotable package keeps all its "
            "artifacts in its environment's artifacts bucket"
        )
    (source_bucket,) = buckets
    keys = [split_s3_uri(u)[1] for u in uris]
    outside = [k for k in keys if not k.startswith(shared_prefix)]
    if outside:
        raise PromotionImportError(
            f"{source_arn}: {outside} are outside {shared_prefix}, the only prefix other environments may read"
        )
    for key in keys:
        # managed copy: multipart above 8 MB, so a model over the 5 GB CopyObject limit still copies
        s3.copy(
            {"Bucket": source_bucket, "Key": key},
            target_bucket,
            key,
            ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": target_key_arn},
        )
    metadata = {
        k: v
        for k, v in (package.get("CustomerMetadataProperties") or {}).items()
        if k not in _NOT_COPIED_METADATA
    }
    metadata[PROMOTED_FROM] = source_arn
    metadata["promoted_at"] = _now()
    # the approval is carried with who gave it upstream (CreateModelPackage takes no ApprovalDescription)
    metadata["upstream_approval"] = str(package.get("ApprovalDescription") or "approved upstream")[:256]
    request: dict[str, Any] = {
        "ModelPackageGroupName": target_group,
        "ModelPackageDescription": str(package.get("ModelPackageDescription", ""))[:1000],
        "InferenceSpecification": _rewrite(package["InferenceSpecification"], source_bucket, target_bucket),
        "ModelApprovalStatus": "Approved",
        "CustomerMetadataProperties": metadata,
    }
    for field in (
        "ModelMetrics",
        "DriftCheckBaselines",
        "MetadataProperties",
        "Domain",
        "Task",
        "SamplePayloadUrl",
    ):
        if package.get(field):
            request[field] = _rewrite(package[field], source_bucket, target_bucket)
    arn = target_sm.create_model_package(**request)["ModelPackageArn"]
    copy = target_sm.describe_model_package(ModelPackageName=arn)
    card = _import_card(
        source_sm, target_sm, s3, source_arn, copy, source_bucket, target_bucket, target_key_arn
    )
    return ImportedPackage(source_arn, arn, True, tuple(keys), card)


def _import_card(
    source_sm: Any,
    target_sm: Any,
    s3: Any,
    source_arn: str,
    copy: dict[str, Any],
    source_bucket: str | None,
    target_bucket: str,
    target_key_arn: str,
) -> str:
    """The copy's model card in this registry, as the promote build (:func:`pipelines.model_card.import_card`).
    ``source_bucket`` None: read from the source package, only if a source card is carried."""
    from pipelines.model_card import import_card

    def rewrite(value: Any) -> Any:
        bucket = source_bucket
        if bucket is None:
            source = source_sm.describe_model_package(ModelPackageName=source_arn)
            bucket = split_s3_uri(source["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])[0]
        return _rewrite(value, bucket, target_bucket)

    upstream = str(
        (copy.get("CustomerMetadataProperties") or {}).get("upstream_approval") or "approved upstream"
    )
    card = import_card(
        source_sm,
        target_sm,
        s3,
        source_arn,
        copy,
        key_arn=target_key_arn,
        rewrite=rewrite,
        approval=f"imported from {source_arn} by the promotion at {_now()}; upstream: {upstream}",
    )
    return card.name


def mark_deployed(sm: Any, package_arn: str) -> bool:
    """Record that ``package_arn`` now serves in its environment (the downstream import looks for it);
    False when it was already marked (no update, so no new event)."""
    package = sm.describe_model_package(ModelPackageName=package_arn)
    if (package.get("CustomerMetadataProperties") or {}).get(DEPLOYED) == "true":
        return False
    # the whole map (AWS adds/updates the keys given; sending all of them is correct either way)
    properties = {**(package.get("CustomerMetadataProperties") or {}), DEPLOYED: "true", DEPLOYED_AT: _now()}
    sm.update_model_package(ModelPackageArn=package_arn, CustomerMetadataProperties=properties)
    return True


def plan(
    sm: Any,
    s3: Any,
    own_groups: list[str],
    upstream_groups: list[str],
    *,
    bucket: str,
    key_arn: str,
    upstream_sm: Any | None = None,
) -> dict[str, str]:
    """``{own group: package ARN to deploy}``: per model, import the newest package deployed upstream (if it
    is not imported yet), then deploy the newest Approved package of the model's own group.

    ``upstream_groups`` pairs with ``own_groups`` by position (both in catalog order); empty: no upstream.
    """
    if upstream_groups and len(upstream_groups) != len(own_groups):
        raise PromotionImportError(
            f"{len(own_groups)} own groups {own_groups} but {len(upstream_groups)} upstream groups "
            f"{upstream_groups}: they pair by model, in catalog order"
        )
    chosen: dict[str, str] = {}
    for i, group in enumerate(own_groups):
        if upstream_groups:
            candidate = newest_deployed(upstream_sm or sm, upstream_groups[i])
            if candidate is not None:
                import_package(
                    upstream_sm or sm,
                    sm,
                    s3,
                    candidate["ModelPackageArn"],
                    target_group=group,
                    target_bucket=bucket,
                    target_key_arn=key_arn,
                )
        newest = _packages(sm, group)
        if newest:
            chosen[group] = newest[0]["ModelPackageArn"]
    return chosen


def main(argv: list[str] | None = None) -> int:
    """``plan --own-groups 'a b' [--upstream-groups 'x y'] --bucket B --key-arn K`` prints ``{group: arn}`` JSON;
    ``mark ARN...`` marks packages deployed."""
    import argparse

    import boto3

    parser = argparse.ArgumentParser(prog="python -m pipelines.promotion")
    sub = parser.add_subparsers(dest="command", required=True)
    planner = sub.add_parser("plan", help="import upstream packages, print what to deploy per group")
    planner.add_argument("--own-groups", required=True, help="space-separated, catalog order")
    planner.add_argument("--upstream-groups", default="", help="space-separated names or ARNs, catalog order")
    planner.add_argument("--bucket", required=True, help="this environment's artifacts bucket")
    planner.add_argument("--key-arn", required=True, help="this environment's ML key")
    marker = sub.add_parser("mark", help="mark deployed packages")
    marker.add_argument("arns", nargs="+")
    args = parser.parse_args(argv)
    sm = boto3.client("sagemaker")
    try:
        if args.command == "plan":
            chosen = plan(
                sm,
                boto3.client("s3"),
                args.own_groups.split(),
                args.upstream_groups.split(),
                bucket=args.bucket,
                key_arn=args.key_arn,
            )
            print(json.dumps(chosen))
        else:
            for arn in args.arns:
                mark_deployed(sm, arn)
    except PipelineError as exc:
        import sys

        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
