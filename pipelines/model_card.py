"""SageMaker Model Cards for registered models: created Draft at registration, Approved with the package.

The card is a standalone model card (``CreateModelCard``), not the model package's own ``ModelCard``
field: the standalone card has its own ARN (so IAM can scope it: ``model-card/<group>-*``), keeps a new
version at every update (``ListModelCardVersions``: the audit trail of Draft -> Approved), and can be
exported to PDF by SageMaker (``CreateModelCardExportJob``); it names its package in
``model_package_details``, which the package's own card schema leaves out
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelPackageModelCard.html).

Content follows the model card JSON schema
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-cards-json-schema.html): intended use and risk
rating from the contract's ``governance`` section, the training job, data and hyperparameters, the
evaluation metrics, explainability and fairness results, and the limitations. The card is also exported
as ``model_card.md`` and ``model_card.html`` next to ``evaluation.json``.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.errors import PipelineError

if TYPE_CHECKING:
    from pipelines.aws import AwsClients
    from pipelines.contract import DatasetContract

CARD_NAME_MAX = 63
"""ModelCardName: 1-63 characters, ``^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`` (CreateModelCard API reference)."""
CONTENT_MAX = 100_000
"""Content: at most 100,000 characters (CreateModelCard API reference)."""
MARKDOWN_FILE = "model_card.md"
HTML_FILE = "model_card.html"
_NOTE_MAX = 1024


class ModelCardError(PipelineError):
    """The model card cannot be built or written (name too long, content too large)."""


@dataclass(frozen=True)
class CardRecord:
    """A model card as the platform wrote it."""

    name: str
    arn: str
    status: str
    export_uris: tuple[str, ...]


def card_name(package_arn: str) -> str:
    """The card of a package ``.../model-package/<group>/<version>``: ``<group>-<version>``.

    Raises:
        ModelCardError: the ARN is not a versioned package's, or the name is over 63 characters.
    """
    _, _, rest = package_arn.partition(":model-package/")
    group, _, version = rest.partition("/")
    if not group or not version.isdigit():
        raise ModelCardError(f"{package_arn!r} is not a versioned model package ARN (.../<group>/<version>)")
    name = f"{group}-{version}"
    if len(name) > CARD_NAME_MAX:
        raise ModelCardError(
            f"model card name {name!r} is {len(name)} characters (SageMaker allows {CARD_NAME_MAX}); "
            "shorten the model package group name"
        )
    return name


def _metric(name: str, value: Any, notes: str = "") -> dict[str, Any]:
    """A ``metric_data`` entry: a number (or, when undefined, the string ``undefined``)."""
    entry: dict[str, Any] = (
        {"name": name, "type": "number", "value": float(value)}
        if isinstance(value, int | float) and not isinstance(value, bool) and value == value
        else {"name": name, "type": "string", "value": "undefined" if value is None else str(value)}
    )
    if notes:
        entry["notes"] = notes[:_NOTE_MAX]
    return entry


def _evaluation_details(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = [
        {"name": "metrics", "metric_data": [_metric(k, v) for k, v in evaluation.get("metrics", {}).items()]}
    ]
    explain = evaluation.get("explainability") or {}
    if explain.get("status") == "computed":
        groups.append(
            {
                "name": f"permutation importance ({explain['scoring']}, {explain['n_repeats']} repeats)",
                "metric_data": [
                    _metric(name, v["mean"], f"std {v['std']:.4g}") for name, v in explain["features"].items()
                ],
            }
        )
    for attribute, result in (evaluation.get("fairness") or {}).get("attributes", {}).items():
        data = [
            _metric("demographic_parity_difference", result["demographic_parity_difference"]),
            _metric("equalized_odds_difference", result["equalized_odds_difference"]),
        ]
        for group, values in result["groups"].items():
            for key in ("selection_rate", "true_positive_rate", "false_positive_rate"):
                data.append(_metric(f"{group}: {key}", values[key], f"{values['count']} rows"))
        groups.append({"name": f"fairness by {attribute}", "metric_data": data})
    gate = evaluation.get("gate") or {}
    observation = ("passed: " if gate.get("passed") else "failed: ") + "; ".join(gate.get("reasons", []))
    return [
        {
            "name": "held-out test split",
            "evaluation_observation": observation[:4096],
            "datasets": [str(evaluation.get("features_uri", ""))][:1]
            if evaluation.get("features_uri")
            else [],
            "metric_groups": groups,
        }
    ]


def card_content(
    contract: DatasetContract,
    metadata: dict[str, Any],
    evaluation: dict[str, Any],
    package: dict[str, Any],
) -> dict[str, Any]:
    """The model card content (model card JSON schema) of a registered package.

    ``package`` is the package's description (or the CreateModelPackage request plus ``ModelPackageArn``).
    """
    governance = contract.governance
    arn = str(package["ModelPackageArn"])
    region, account = arn.split(":")[3], arn.split(":")[4]
    run_id = str(metadata["run_id"])
    lineage = metadata.get("data_lineage") or {}
    container = package["InferenceSpecification"]["Containers"][0]
    limitations = list(governance.limitations)
    explain = evaluation.get("explainability") or {}
    if explain.get("status") == "computed":
        limitations.append(
            "Feature importance is permutation importance on the test split: it measures what the model "
            "uses, not causal effects; correlated inputs share their importance."
        )
    if evaluation.get("fairness") is None:
        limitations.append(
            "No sensitive attributes are named in the contract: group fairness was not assessed."
        )
    estimator = contract.training.estimator
    return {
        "model_overview": {
            "model_description": (contract.description or f"{contract.name} model")[:1024],
            "model_owner": governance.owner or "unassigned",
            "model_creator": "mlops platform training pipeline",
            "problem_type": contract.task,
            "algorithm_type": estimator,
            "model_name": contract.name,
            "model_artifact": [str(container["ModelDataUrl"])],
            "inference_environment": {"container_image": [str(container["Image"])]},
        },
        "model_package_details": {
            "model_package_arn": arn,
            "model_package_group_name": str(package.get("ModelPackageGroupName", "")),
            "model_package_version": int(arn.rsplit("/", 1)[-1]),
            "model_approval_status": str(package.get("ModelApprovalStatus", "PendingManualApproval")),
            "model_package_description": str(package.get("ModelPackageDescription", ""))[:1024],
        },
        "intended_uses": {
            "purpose_of_model": governance.purpose or (contract.description or contract.name),
            "intended_uses": governance.intended_use,
            "risk_rating": governance.risk_rating,
            "explanations_for_risk_rating": governance.risk_explanation or "not stated in the contract",
        },
        "training_details": {
            "objective_function": {"notes": f"{estimator} on contract '{contract.name}' v{contract.version}"},
            "training_observations": (
                f"{metadata.get('training_rows', 'unknown')} training rows; "
                f"validated data sha256 {lineage.get('validated_data_sha256', 'unknown')}; "
                f"code version {metadata.get('code_version', 'unknown')}"
            )[:1024],
            "training_job_details": {
                "training_arn": f"arn:aws:sagemaker:{region}:{account}:training-job/{run_id.lower()}",
                "training_datasets": [
                    str(u) for u in (lineage.get("sources") or [evaluation.get("features_uri", "")]) if u
                ][:10],
                "hyper_parameters": [
                    {"name": str(k), "value": str(v)}
                    for k, v in (metadata.get("hyperparameters") or {}).items()
                ],
            },
        },
        "evaluation_details": _evaluation_details(evaluation),
        "additional_information": {
            "ethical_considerations": governance.ethical_considerations or "none stated in the contract",
            "caveats_and_recommendations": " ".join(f"- {item}" for item in limitations)[:4096] or "none",
            "custom_details": {
                "run_id": run_id,
                "contract": contract.name,
                "training_data_sha256": str(metadata.get("training_data_sha256", "")),
                "model_sha256": str(metadata.get("model_sha256", "")),
                "gate": "passed" if (evaluation.get("gate") or {}).get("passed") else "failed",
            },
        },
    }


def content_text(content: dict[str, Any]) -> str:
    """The card content as the API takes it (compact JSON).

    Raises:
        ModelCardError: over the 100,000-character limit.
    """
    text = json.dumps(content, separators=(",", ":"), sort_keys=True)
    if len(text) > CONTENT_MAX:
        raise ModelCardError(
            f"model card content is {len(text)} characters (SageMaker allows {CONTENT_MAX}); the contract has "
            "too many inputs or groups for one card"
        )
    return text


# --- exports -------------------------------------------------------------------------------------


def _sections(name: str, status: str, content: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The card as (section title, [(label, text)]) pairs, shared by the Markdown and HTML exports."""
    overview, uses = content["model_overview"], content["intended_uses"]
    package, training = content["model_package_details"], content["training_details"]
    info = content["additional_information"]
    job = training["training_job_details"]
    return [
        (
            "Overview",
            [
                ("Card", f"{name} ({status})"),
                ("Model", f"{overview['model_name']}: {overview['model_description']}"),
                ("Owner", overview["model_owner"]),
                ("Problem type", overview["problem_type"]),
                ("Algorithm", overview["algorithm_type"]),
                ("Model package", f"{package['model_package_arn']} ({package['model_approval_status']})"),
            ],
        ),
        (
            "Intended use",
            [
                ("Purpose", uses["purpose_of_model"]),
                ("Intended uses", uses["intended_uses"]),
                ("Risk rating", f"{uses['risk_rating']}: {uses['explanations_for_risk_rating']}"),
            ],
        ),
        (
            "Training",
            [
                ("Training job", job["training_arn"]),
                ("Data", ", ".join(job["training_datasets"]) or "unknown"),
                ("Observations", training["training_observations"]),
                ("Hyperparameters", ", ".join(f"{h['name']}={h['value']}" for h in job["hyper_parameters"])),
            ],
        ),
        (
            "Limitations and ethics",
            [
                ("Caveats", info["caveats_and_recommendations"]),
                ("Ethical considerations", info["ethical_considerations"]),
            ],
        ),
    ]


def _metric_text(metric: dict[str, Any]) -> str:
    value = metric["value"]
    text = f"{value:.4f}" if isinstance(value, float) else str(value)
    return f"{text} ({metric['notes']})" if metric.get("notes") else text


def render_markdown(name: str, status: str, content: dict[str, Any]) -> str:
    """The card as Markdown."""
    lines = [f"# Model card: {name}", "", f"Status: **{status}**", ""]
    for title, rows in _sections(name, status, content):
        lines += [f"## {title}", ""]
        lines += [f"- **{label}**: {text}" for label, text in rows]
        lines.append("")
    for detail in content["evaluation_details"]:
        lines += [f"## Evaluation: {detail['name']}", "", detail.get("evaluation_observation", ""), ""]
        for group in detail["metric_groups"]:
            lines += [f"### {group['name']}", "", "| name | value |", "|---|---|"]
            lines += [f"| {m['name']} | {_metric_text(m)} |" for m in group["metric_data"]]
            lines.append("")
    return "\n".join(lines)


def render_html(name: str, status: str, content: dict[str, Any]) -> str:
    """The card as a standalone HTML page (every value escaped)."""
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Model card {e(name)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}td,th{border:1px solid #ccc;"
        "padding:2px 6px}table{border-collapse:collapse}</style></head><body>",
        f"<h1>Model card: {e(name)}</h1><p>Status: <strong>{e(status)}</strong></p>",
    ]
    for title, rows in _sections(name, status, content):
        parts.append(f"<h2>{e(title)}</h2><dl>")
        parts += [f"<dt>{e(label)}</dt><dd>{e(text)}</dd>" for label, text in rows]
        parts.append("</dl>")
    for detail in content["evaluation_details"]:
        parts.append(
            f"<h2>Evaluation: {e(detail['name'])}</h2><p>{e(detail.get('evaluation_observation', ''))}</p>"
        )
        for group in detail["metric_groups"]:
            parts.append(f"<h3>{e(group['name'])}</h3><table><tr><th>name</th><th>value</th></tr>")
            parts += [
                f"<tr><td>{e(m['name'])}</td><td>{e(_metric_text(m))}</td></tr>" for m in group["metric_data"]
            ]
            parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def export_card(
    clients: AwsClients, evaluation_uri: str, name: str, status: str, content: dict[str, Any]
) -> tuple[str, ...]:
    """Write ``model_card.md`` and ``model_card.html`` next to ``evaluation_uri`` (SSE-KMS, the ML key)."""
    from pipelines.aws import put_bytes, split_s3_uri

    bucket, key = split_s3_uri(evaluation_uri)
    prefix = key.rsplit("/", 1)[0] + "/"
    key_arn = clients.settings.ml_key_arn
    return (
        put_bytes(
            clients.s3,
            bucket,
            prefix + MARKDOWN_FILE,
            render_markdown(name, status, content).encode(),
            key_arn,
            "text/markdown",
        ),
        put_bytes(
            clients.s3,
            bucket,
            prefix + HTML_FILE,
            render_html(name, status, content).encode(),
            key_arn,
            "text/html",
        ),
    )


# --- the card's life -------------------------------------------------------------------------------


def _describe(sm: Any, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return sm.describe_model_card(ModelCardName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ResourceNotFound", "ResourceNotFoundException"):
            return None
        raise


def create_draft_card(
    clients: AwsClients,
    contract: DatasetContract,
    metadata: dict[str, Any],
    evaluation: dict[str, Any],
    package: dict[str, Any],
    evaluation_uri: str,
) -> CardRecord:
    """Create the package's card as Draft (or return the existing one) and export it beside the evaluation."""
    sm = clients.sagemaker
    name = card_name(str(package["ModelPackageArn"]))
    existing = _describe(sm, name)
    if existing is not None:
        content = json.loads(existing["Content"])
        status = str(existing["ModelCardStatus"])
        uris = export_card(clients, evaluation_uri, name, status, content)
        return CardRecord(name, str(existing["ModelCardArn"]), status, uris)
    content = card_content(contract, metadata, evaluation, package)
    arn = sm.create_model_card(ModelCardName=name, Content=content_text(content), ModelCardStatus="Draft")[
        "ModelCardArn"
    ]
    return CardRecord(name, str(arn), "Draft", export_card(clients, evaluation_uri, name, "Draft", content))


def approve_card(clients: AwsClients, package_arn: str, approval: str = "") -> CardRecord | None:
    """Mark the package's card Approved: first its content (the package's approval), then its status
    (UpdateModelCard takes one or the other per call); re-export it. None when the package has no card
    (registered before cards existed)."""
    sm = clients.sagemaker
    name = card_name(package_arn)
    existing = _describe(sm, name)
    if existing is None:
        return None
    content = json.loads(existing["Content"])
    if existing["ModelCardStatus"] == "Approved":
        status = "Approved"
    else:
        details = content.setdefault("model_package_details", {})
        details["model_approval_status"] = "Approved"
        if approval:
            details["approval_description"] = approval[:1024]
        sm.update_model_card(ModelCardName=name, Content=content_text(content))
        sm.update_model_card(ModelCardName=name, ModelCardStatus="Approved")
        status = "Approved"
    package = sm.describe_model_package(ModelPackageName=package_arn)
    evaluation_uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    uris = export_card(clients, evaluation_uri, name, status, content)
    return CardRecord(name, str(existing["ModelCardArn"]), status, uris)
