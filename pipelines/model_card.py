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

Encryption: every card is created with ``SecurityConfig.KmsKeyId`` = the environment's ML key, the key
its package's artifacts are encrypted with (settings ``ml_key_arn``, stack output ``mlKeyArn``). SageMaker
encrypts the card content with a data key of that key as the caller, so whoever creates or updates a
card needs ``kms:GenerateDataKey`` and whoever reads it ``kms:Decrypt`` on the key, through SageMaker
(``kms:ViaService`` ``sagemaker.<region>.amazonaws.com``, encryption context
``aws:sagemaker:model-card-arn``: https://docs.aws.amazon.com/sagemaker/latest/dg/model-cards-xaccount.html#model-cards-xaccount-kms).
The key is fixed at creation (SecurityConfig is not an UpdateModelCard member).

Imported packages: a promotion that copies a package into another environment's registry
(:func:`pipelines.promotion.import_package`) gives the copy its own card in that registry
(:func:`import_card`), encrypted with that environment's key: the source card's content when the
promote build can read it, else rebuilt from the package's metadata and its copied evaluation.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
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


def _package_details(package: dict[str, Any]) -> dict[str, Any]:
    """The card's ``model_package_details`` of ``package`` (a DescribeModelPackage answer)."""
    arn = str(package["ModelPackageArn"])
    return {
        "model_package_arn": arn,
        "model_package_group_name": str(package.get("ModelPackageGroupName", "")),
        "model_package_version": int(arn.rsplit("/", 1)[-1]),
        "model_approval_status": str(package.get("ModelApprovalStatus", "PendingManualApproval")),
        "model_package_description": str(package.get("ModelPackageDescription", ""))[:1024],
    }


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
        "model_package_details": _package_details(package),
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
    """The card as (section title, [(label, text)]) pairs, shared by the Markdown and HTML exports.

    Every field is optional (a card carried from another environment may have been written by hand or
    another tool): a missing one reads ``-``.
    """
    overview, uses = content.get("model_overview") or {}, content.get("intended_uses") or {}
    package, training = content.get("model_package_details") or {}, content.get("training_details") or {}
    info = content.get("additional_information") or {}
    job = training.get("training_job_details") or {}

    def get(section: dict[str, Any], key: str) -> str:
        value = section.get(key)
        return "-" if value is None or value == "" else str(value)

    return [
        (
            "Overview",
            [
                ("Card", f"{name} ({status})"),
                ("Model", f"{get(overview, 'model_name')}: {get(overview, 'model_description')}"),
                ("Owner", get(overview, "model_owner")),
                ("Problem type", get(overview, "problem_type")),
                ("Algorithm", get(overview, "algorithm_type")),
                (
                    "Model package",
                    f"{get(package, 'model_package_arn')} ({get(package, 'model_approval_status')})",
                ),
            ],
        ),
        (
            "Intended use",
            [
                ("Purpose", get(uses, "purpose_of_model")),
                ("Intended uses", get(uses, "intended_uses")),
                ("Risk rating", f"{get(uses, 'risk_rating')}: {get(uses, 'explanations_for_risk_rating')}"),
            ],
        ),
        (
            "Training",
            [
                ("Training job", get(job, "training_arn")),
                ("Data", ", ".join(job.get("training_datasets") or []) or "unknown"),
                ("Observations", get(training, "training_observations")),
                (
                    "Hyperparameters",
                    ", ".join(f"{h['name']}={h['value']}" for h in job.get("hyper_parameters") or []) or "-",
                ),
            ],
        ),
        (
            "Limitations and ethics",
            [
                ("Caveats", get(info, "caveats_and_recommendations")),
                ("Ethical considerations", get(info, "ethical_considerations")),
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
    for detail in content.get("evaluation_details") or []:
        lines += [f"## Evaluation: {detail['name']}", "", detail.get("evaluation_observation", ""), ""]
        for group in detail.get("metric_groups") or []:
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
    for detail in content.get("evaluation_details") or []:
        parts.append(
            f"<h2>Evaluation: {e(detail['name'])}</h2><p>{e(detail.get('evaluation_observation', ''))}</p>"
        )
        for group in detail.get("metric_groups") or []:
            parts.append(f"<h3>{e(group['name'])}</h3><table><tr><th>name</th><th>value</th></tr>")
            parts += [
                f"<tr><td>{e(m['name'])}</td><td>{e(_metric_text(m))}</td></tr>" for m in group["metric_data"]
            ]
            parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def write_exports(
    s3: Any, key_arn: str | None, evaluation_uri: str, name: str, status: str, content: dict[str, Any]
) -> tuple[str, ...]:
    """Write ``model_card.md`` and ``model_card.html`` next to ``evaluation_uri`` (SSE-KMS with ``key_arn``)."""
    from pipelines.aws import put_bytes, split_s3_uri

    bucket, key = split_s3_uri(evaluation_uri)
    prefix = key.rsplit("/", 1)[0] + "/"
    return (
        put_bytes(
            s3, bucket, prefix + MARKDOWN_FILE, render_markdown(name, status, content).encode(), key_arn,
            "text/markdown",
        ),
        put_bytes(
            s3, bucket, prefix + HTML_FILE, render_html(name, status, content).encode(), key_arn, "text/html"
        ),
    )  # fmt: skip


def export_card(
    clients: AwsClients, evaluation_uri: str, name: str, status: str, content: dict[str, Any]
) -> tuple[str, ...]:
    """Write ``model_card.md`` and ``model_card.html`` next to ``evaluation_uri`` (SSE-KMS, the ML key)."""
    return write_exports(clients.s3, clients.settings.ml_key_arn, evaluation_uri, name, status, content)


def security_config(key_arn: str | None) -> dict[str, Any]:
    """CreateModelCard's ``SecurityConfig`` member for ``key_arn`` (none without a key: AWS-owned key)."""
    return {"SecurityConfig": {"KmsKeyId": key_arn}} if key_arn else {}


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
    arn = sm.create_model_card(
        ModelCardName=name,
        Content=content_text(content),
        ModelCardStatus="Draft",
        **security_config(clients.settings.ml_key_arn),
    )["ModelCardArn"]
    return CardRecord(name, str(arn), "Draft", export_card(clients, evaluation_uri, name, "Draft", content))


def _approve(sm: Any, name: str, existing: dict[str, Any], approval: str) -> dict[str, Any]:
    """Mark the card ``existing`` Approved: first its content (the package's approval), then its status
    (UpdateModelCard takes one or the other per call); its content."""
    content = json.loads(existing["Content"])
    if existing["ModelCardStatus"] == "Approved":
        return content
    details = content.setdefault("model_package_details", {})
    details["model_approval_status"] = "Approved"
    if approval:
        details["approval_description"] = approval[:1024]
    sm.update_model_card(ModelCardName=name, Content=content_text(content))
    sm.update_model_card(ModelCardName=name, ModelCardStatus="Approved")
    return content


def approve_card(clients: AwsClients, package_arn: str, approval: str = "") -> CardRecord | None:
    """Mark the package's card Approved and re-export it. None when the package has no card (registered
    before cards existed)."""
    sm = clients.sagemaker
    name = card_name(package_arn)
    existing = _describe(sm, name)
    if existing is None:
        return None
    content = _approve(sm, name, existing, approval)
    package = sm.describe_model_package(ModelPackageName=package_arn)
    evaluation_uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    uris = export_card(clients, evaluation_uri, name, "Approved", content)
    return CardRecord(name, str(existing["ModelCardArn"]), "Approved", uris)


# --- cards of imported packages -------------------------------------------------------------------


def _read_source_card(source_sm: Any, source_arn: str) -> tuple[dict[str, Any] | None, str]:
    """The source package's card content, or None with the reason it cannot be read (no card; another
    account's card not shared through AWS RAM; its key not usable by the caller)."""
    from botocore.exceptions import ClientError

    try:
        name = card_name(source_arn)
        found = source_sm.describe_model_card(ModelCardName=name)
    except ModelCardError as error:
        return None, str(error)
    except ClientError as error:
        problem = error.response.get("Error", {})
        return None, f"{problem.get('Code')}: {problem.get('Message')}"
    return json.loads(found["Content"]), f"carried from {found['ModelCardArn']}"


def imported_card_content(
    package: dict[str, Any], evaluation: dict[str, Any], source_arn: str
) -> dict[str, Any]:
    """A card for an imported package rebuilt from what the package itself records: its metadata
    (``CustomerMetadataProperties``), inference specification, and evaluation (metrics, explainability,
    fairness, gate). Intended use and risk come from the contract, which the package does not carry:
    the risk rating is ``Unknown`` and the card says where the full card is."""
    metadata = dict(package.get("CustomerMetadataProperties") or {})
    container = package["InferenceSpecification"]["Containers"][0]
    model = str(metadata.get("model") or metadata.get("contract") or "model")
    src_region, src_account = source_arn.split(":")[3], source_arn.split(":")[4]
    run_id = str(metadata.get("run_id") or "unknown")
    source_card = ""
    try:
        source_card = f" (source card: {card_name(source_arn)})"
    except ModelCardError:
        source_card = ""
    return {
        "model_overview": {
            "model_description": str(package.get("ModelPackageDescription") or model)[:1024],
            "model_owner": "unassigned",
            "model_creator": "mlops platform training pipeline (imported by promotion)",
            "problem_type": str(package.get("Task") or metadata.get("task") or "unknown"),
            "algorithm_type": str(metadata.get("estimator") or "unknown"),
            "model_name": model,
            "model_artifact": [str(container["ModelDataUrl"])],
            "inference_environment": {"container_image": [str(container["Image"])]},
        },
        "model_package_details": _package_details(package),
        "intended_uses": {
            "purpose_of_model": f"as for {source_arn}{source_card}"[:2048],
            "intended_uses": "as stated on the source package's card",
            "risk_rating": "Unknown",
            "explanations_for_risk_rating": (
                "rebuilt at promotion from the package's metadata: the upstream card (with the contract's "
                "intended use and risk rating) was not readable here"
            ),
        },
        "training_details": {
            "training_observations": (
                f"run {metadata.get('run_id', 'unknown')}; validated data sha256 "
                f"{metadata.get('validated_data_sha256', 'unknown')}; code version "
                f"{metadata.get('code_version', 'unknown')}"
            )[:1024],
            "training_job_details": {
                # the training job ran upstream, in the source package's account and region
                "training_arn": f"arn:aws:sagemaker:{src_region}:{src_account}:training-job/{run_id.lower()}",
                "training_datasets": [],
                "hyper_parameters": [],
            },
        },
        "evaluation_details": _evaluation_details(evaluation),
        "additional_information": {
            "ethical_considerations": "as stated on the source package's card",
            "caveats_and_recommendations": (
                f"- Imported from {source_arn}; see that environment's card for intended use, risk and "
                "limitations."
            )[:4096],
            "custom_details": {
                "run_id": str(metadata.get("run_id", "")),
                "contract": str(metadata.get("contract", "")),
                "promoted_from": source_arn,
                "gate": "passed" if (evaluation.get("gate") or {}).get("passed") else "failed",
            },
        },
    }


def _carried_content(
    content: dict[str, Any], package: dict[str, Any], source_arn: str, rewrite: Callable[[Any], Any]
) -> dict[str, Any]:
    """The source card's content for the copy: its S3 URIs rewritten to this environment's bucket, the
    package details the copy's, the source named."""
    carried: dict[str, Any] = rewrite(json.loads(json.dumps(content)))
    details = carried.setdefault("model_package_details", {})
    own = _package_details(package)
    own.pop("model_package_description")  # the source card's description is carried
    details.update(own)
    details.pop("approval_description", None)
    info = carried.setdefault("additional_information", {})
    custom = info.setdefault("custom_details", {})
    custom["promoted_from"] = source_arn
    return carried


def import_card(
    source_sm: Any,
    target_sm: Any,
    s3: Any,
    source_arn: str,
    package: dict[str, Any],
    *,
    key_arn: str | None,
    rewrite: Callable[[Any], Any],
    approval: str = "",
) -> CardRecord:
    """The card of ``package`` (an imported copy of ``source_arn``, described) in this registry.

    Created Draft (encrypted with ``key_arn``) from the source card's content (``rewrite`` maps its URIs
    to this bucket) or, unreadable, rebuilt from the package (:func:`imported_card_content`); then
    Approved when the copy is Approved (the import registers it so), recording ``approval``; exported
    beside the copy's evaluation. Idempotent: an existing card is approved if it is not yet (and
    re-exported), else left as it is (``export_uris`` empty).
    """
    from pipelines.aws import split_s3_uri

    arn = str(package["ModelPackageArn"])
    name = card_name(arn)
    evaluation_uri = str(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    existing = _describe(target_sm, name)
    if existing is None:
        source, origin = _read_source_card(source_sm, source_arn)
        if source is not None:
            content = _carried_content(source, package, source_arn, rewrite)
        else:
            bucket, key = split_s3_uri(evaluation_uri)
            evaluation = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            content = imported_card_content(package, evaluation, source_arn)
            content["additional_information"]["custom_details"]["source_card"] = origin[:1024]
        card_arn = target_sm.create_model_card(
            ModelCardName=name,
            Content=content_text(content),
            ModelCardStatus="Draft",
            **security_config(key_arn),
        )["ModelCardArn"]
        existing = {"ModelCardArn": card_arn, "Content": content_text(content), "ModelCardStatus": "Draft"}
    elif existing["ModelCardStatus"] == "Approved" or package.get("ModelApprovalStatus") != "Approved":
        # written by an earlier promotion (its exports too): nothing to do
        return CardRecord(name, str(existing["ModelCardArn"]), str(existing["ModelCardStatus"]), ())
    status = str(existing["ModelCardStatus"])
    content = json.loads(existing["Content"])
    if package.get("ModelApprovalStatus") == "Approved":
        content, status = _approve(target_sm, name, existing, approval), "Approved"
    uris = write_exports(s3, key_arn, evaluation_uri, name, status, content)
    return CardRecord(name, str(existing["ModelCardArn"]), status, uris)
