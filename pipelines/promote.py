"""Approve a model package (approver and reason recorded), start the deployment, report what is served."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pipelines.errors import PipelineError

if TYPE_CHECKING:
    from pipelines.aws import AwsClients
    from pipelines.settings import ModelTarget


class PromotionError(PipelineError):
    """The package cannot be approved or the deployment cannot start."""


@dataclass(frozen=True)
class Approval:
    """A recorded approval."""

    model_package_arn: str
    approver: str
    reason: str
    approved_at: str


def approve_package(
    clients: AwsClients, package_arn: str, approver: str, reason: str, model: ModelTarget | None = None
) -> Approval:
    """Set the package to Approved, recording who approved it, why and when.

    ``model`` (default: the catalog model of the package's contract) must own the package: it must sit
    in the model's group and be trained on the model's contract.
    """
    from pipelines.packages import package_contract

    if not approver.strip() or not reason.strip():
        raise PromotionError("an approval needs both an approver and a reason")
    sm = clients.sagemaker
    package = sm.describe_model_package(ModelPackageName=package_arn)
    contract = package_contract(package)
    if model is None and contract is not None:
        model = clients.settings.model_target(contract)
    if model is not None:
        group = package.get("ModelPackageGroupName")
        if contract is not None and contract != model.contract:
            raise PromotionError(
                f"{package_arn} was trained on contract '{contract}', but model '{model.model}' uses "
                f"contract '{model.contract}': it is not this model's package"
            )
        if model.model_package_group_name and group and group != model.model_package_group_name:
            raise PromotionError(
                f"{package_arn} is in group '{group}', not in model '{model.model}''s group "
                f"'{model.model_package_group_name}'"
            )
    if package["ModelApprovalStatus"] == "Rejected":
        raise PromotionError(f"{package_arn} was rejected; register a new model instead of approving it")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    description = f"approved by {approver}: {reason}"[:1024]
    sm.update_model_package(
        ModelPackageArn=package_arn,
        ModelApprovalStatus="Approved",
        ApprovalDescription=description,
        CustomerMetadataProperties={
            "approved_by": approver,
            "approval_reason": reason[:256],
            "approved_at": now,
        },
    )
    from pipelines.model_card import approve_card

    approve_card(clients, package_arn, f"{description} at {now}")  # the card follows its package
    return Approval(package_arn, approver, reason, now)


def reject_package(clients: AwsClients, package_arn: str, approver: str, reason: str) -> None:
    """Set the package to Rejected, recording who rejected it and why."""
    clients.sagemaker.update_model_package(
        ModelPackageArn=package_arn,
        ModelApprovalStatus="Rejected",
        ApprovalDescription=f"rejected by {approver}: {reason}"[:1024],
    )


def start_deployment(clients: AwsClients) -> str:
    """Start the environment's delivery pipeline (it deploys the latest approved package); return the execution ID."""
    name = clients.settings.require("delivery_pipeline_name")
    response = clients.client("codepipeline").start_pipeline_execution(name=name)
    return str(response["pipelineExecutionId"])


def latest_approved(clients: AwsClients, model: ModelTarget) -> dict[str, Any] | None:
    """The newest Approved package of ``model`` (its group, its contract), described, or None."""
    from pipelines.packages import latest_approved_package

    return latest_approved_package(clients.sagemaker, model.require_group(), model.contract)


def served_packages(clients: AwsClients, endpoints: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """For each environment's endpoint, the model package (or model data) each production variant serves."""
    from botocore.exceptions import ClientError

    sm = clients.sagemaker
    report: dict[str, list[dict[str, Any]]] = {}
    for environment, endpoint in endpoints.items():
        try:
            described = sm.describe_endpoint(EndpointName=endpoint)
        except ClientError:
            report[environment] = [{"endpoint": endpoint, "status": "not deployed"}]
            continue
        config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
        weights = {v["VariantName"]: v.get("CurrentWeight") for v in described.get("ProductionVariants", [])}
        rows = []
        for variant in config["ProductionVariants"]:
            model = sm.describe_model(ModelName=variant["ModelName"])
            container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
            rows.append(
                {
                    "endpoint": endpoint,
                    "status": described["EndpointStatus"],
                    "variant": variant["VariantName"],
                    "weight": weights.get(variant["VariantName"], variant.get("InitialVariantWeight")),
                    "model": variant["ModelName"],
                    "model_package_arn": container.get("ModelPackageName"),
                    "model_data_url": container.get("ModelDataUrl"),
                }
            )
        report[environment] = rows
    return report
