"""The drift stage's model-quality check: labels for the drifted window, then what the monitor made of them.

The drift stage (:mod:`rehearsal.monitoring_stage`) sends the drifted window's requests with an
``InferenceId`` each; :func:`write_ground_truth` regenerates the same synthetic rows' labels (same
seed, same drift) and uploads them in SageMaker's ground-truth format under the capture bucket's
``ground-truth/<endpoint>/yyyy/mm/dd/hh/``, as a labelling job would, before the monitoring DAG runs.
:func:`quality_evidence` reads the ``quality.json`` the DAG's ``model_quality`` task wrote next to the
drift report: realized metrics, coverage, the CBPE estimate and whether the realized values fell in
its intervals.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rehearsal.run import RunContext


def inference_id(prefix: str, offset: int) -> str:
    """The InferenceId of the request starting at row ``offset`` of a window."""
    return f"{prefix}-{offset:06d}"


def write_ground_truth(
    ctx: RunContext, bucket: str, endpoint: str, rows: int, seed: int, prefix: str, rows_per_request: int
) -> int:
    """Upload the labels of the window's synthetic rows, one ground-truth line per request; return the count."""
    from pipelines.contract import load_contract
    from pipelines.monitoring.quality import format_ground_truth_line, ground_truth_key
    from pipelines.orchestration import GROUND_TRUTH_PREFIX
    from pipelines.synthetic import generate
    from rehearsal.monitoring_stage import rehearsal_drift, rehearsed_model

    assert ctx.emulator is not None
    contract = ctx.values.get("contract") or load_contract(ctx.options.contract or rehearsed_model(ctx))
    labels = generate(contract.name, rows, seed, rehearsal_drift())[contract.target].tolist()
    lines = [
        format_ground_truth_line(inference_id(prefix, start), labels[start : start + rows_per_request])
        for start in range(0, rows, rows_per_request)
    ]
    key = ground_truth_key(GROUND_TRUTH_PREFIX, endpoint, datetime.now(UTC), f"{prefix}.jsonl")
    ctx.emulator.client("s3").put_object(Bucket=bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
    return len(labels)


def quality_evidence(ctx: RunContext, bucket: str, endpoint: str, window_key: str) -> dict[str, Any]:
    """The drifted window's ``quality.json`` summarised for the summary and the headline."""
    assert ctx.emulator is not None
    key = f"monitoring/{endpoint}/{window_key}/quality.json"
    report = json.loads(ctx.emulator.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    estimate = (report.get("estimate") or {}).get("metrics") or {}
    for name, value in (report.get("metrics") or {}).items():
        if value is not None:
            ctx.metrics[f"quality {name}"] = float(value)
    return {
        "report_key": key,
        "status": report["status"],
        "coverage": report["coverage"],
        "labelled": report["labelled"],
        "predictions": report["predictions"],
        "metrics": report["metrics"],
        "breaches": report["breaches"],
        "segments": len(report.get("segments") or []),
        "estimate": {k: v for k, v in estimate.items() if k in ("accuracy", "f1", "auc")},
        "estimate_vs_realized": report.get("estimate_vs_realized") or {},
    }


def quality_headline(quality: dict[str, Any] | None) -> str:
    """``; quality auc 0.81, accuracy 0.77 (CBPE 0.78 [0.74, 0.81])`` or empty without a quality check."""
    if not quality:
        return ""
    if quality.get("status") != "ok":
        return f"; quality {quality.get('status')} (coverage {quality.get('coverage', 0):.0%})"
    metrics = quality.get("metrics") or {}
    parts = [f"{m} {metrics[m]:.3f}" for m in ("auc", "accuracy") if metrics.get(m) is not None]
    compared = (quality.get("estimate_vs_realized") or {}).get("accuracy")
    if compared:
        parts.append(
            f"CBPE accuracy {compared['estimate']:.3f} [{compared['low']:.3f}, {compared['high']:.3f}]"
            f"{'' if compared['within_interval'] else ' MISSED'}"
        )
    return "; quality " + ", ".join(parts)
