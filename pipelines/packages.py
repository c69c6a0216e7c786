"""Which model a model package belongs to, and the approved packages of one model.

Every package the pipeline registers records its model and contract in its customer metadata
(``model``, ``contract``). Champion lookup, status and promotion read packages only through
:func:`approved_packages`, which skips any package of another contract, so a package registered into
the wrong group never becomes another model's champion or deployment.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def package_contract(package: dict[str, Any]) -> str | None:
    """The contract a described package was trained on (its ``contract`` metadata); None when it does not say."""
    properties = package.get("CustomerMetadataProperties") or {}
    return properties.get("contract")


def group_of(package_arn: str) -> str | None:
    """The model package group in a versioned package ARN (``...:model-package/<group>/<version>``)."""
    _, _, resource = package_arn.partition(":model-package/")
    group, _, version = resource.partition("/")
    return group if group and version else None


def approved_packages(sm: Any, group: str, contract: str | None) -> Iterator[dict[str, Any]]:
    """Described Approved packages of ``group`` trained on ``contract`` (None: any), newest first."""
    paginator = sm.get_paginator("list_model_packages")
    pages = paginator.paginate(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
    )
    for page in pages:
        for summary in page["ModelPackageSummaryList"]:
            package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            if contract is None or package_contract(package) in (None, contract):
                yield package


def latest_approved_package(sm: Any, group: str, contract: str | None) -> dict[str, Any] | None:
    """The newest Approved package of ``group`` trained on ``contract``, or None."""
    return next(approved_packages(sm, group, contract), None)
