"""Rehearsal evidence of a registered package's governance: its model card, explainability and fairness.

Read from the emulator after a training DAG registered a package: the SageMaker Model Card (status and
version history), the Markdown/HTML exports beside ``evaluation.json`` (copied into the output folder
for the report), and the evaluation's feature importance and fairness results.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rehearsal.run import RunContext


def card_evidence(ctx: RunContext, package: dict[str, Any]) -> dict[str, Any]:
    """The model card of ``package`` (a DescribeModelPackage answer) and its evaluation's governance parts."""
    from botocore.exceptions import ClientError

    from pipelines.aws import split_s3_uri
    from pipelines.model_card import HTML_FILE, MARKDOWN_FILE, card_name

    if ctx.emulator is None:
        return {"status": "no emulator"}
    sm, s3 = ctx.emulator.client("sagemaker"), ctx.emulator.client("s3")
    name = card_name(str(package["ModelPackageArn"]))
    evidence: dict[str, Any] = {"name": name}
    try:
        card = sm.describe_model_card(ModelCardName=name)
    except ClientError as error:
        return {**evidence, "status": f"missing: {error}"}
    versions = sm.list_model_card_versions(ModelCardName=name)["ModelCardVersionSummaryList"]
    evidence.update(
        status=card["ModelCardStatus"],
        versions=[v["ModelCardStatus"] for v in sorted(versions, key=lambda v: v["ModelCardVersion"])],
        risk_rating=json.loads(card["Content"]).get("intended_uses", {}).get("risk_rating"),
        kms_key=(card.get("SecurityConfig") or {}).get("KmsKeyId"),
        expected_kms_key=(ctx.deployment.outputs.get("mlKeyArn") if ctx.deployment is not None else None),
    )
    bucket, key = split_s3_uri(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
    prefix = key.rsplit("/", 1)[0] + "/"
    folder = ctx.out / "model-cards"
    folder.mkdir(parents=True, exist_ok=True)
    for file_name in (MARKDOWN_FILE, HTML_FILE):
        body = s3.get_object(Bucket=bucket, Key=prefix + file_name)["Body"].read()
        local = folder / f"{name}-{file_name}"
        local.write_bytes(body)
        evidence[file_name.replace(".", "_")] = {
            "uri": f"s3://{bucket}/{prefix}{file_name}",
            "file": str(local),
        }
    evaluation = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    explain = evaluation.get("explainability") or {}
    evidence["top_features"] = list(explain.get("features", {}))[:3]
    evidence["explainability_seconds"] = explain.get("seconds")
    fairness = evaluation.get("fairness")
    if fairness is not None:
        evidence["fairness"] = {
            attribute: {
                "demographic_parity_difference": result["demographic_parity_difference"],
                "equalized_odds_difference": result["equalized_odds_difference"],
            }
            for attribute, result in fairness["attributes"].items()
        }
        evidence["fairness_passed"] = fairness["passed"]
    ctx.values.setdefault("model_cards", []).append(evidence)
    return evidence


def check_card(evidence: dict[str, Any], approval: str) -> str | None:
    """The card exists, was drafted first, is Approved exactly when its package is, and is encrypted
    with the environment's ML key (stack output ``mlKeyArn``)."""
    card = evidence.get("model_card")
    if card is None:
        return None
    if "versions" not in card:
        return f"model card {card.get('name')}: {card.get('status')}"
    if card["versions"][0] != "Draft":
        return f"model card {card['name']} was created {card['versions'][0]}, not Draft"
    expected = "Approved" if approval == "Approved" else "Draft"
    if card["status"] != expected:
        return f"model card {card['name']} is {card['status']} while its package is {approval}"
    key_arn = card.get("expected_kms_key")
    if key_arn and card.get("kms_key") != key_arn:
        return (
            f"model card {card['name']} is encrypted with {card.get('kms_key') or 'no customer key'}, "
            f"not the ML key {key_arn}"
        )
    return None
