"""The terminal summary: one headline per stage, a failure's reason in full, evidence in summary.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from rehearsal import lifecycle, stages
from rehearsal.run import (
    HEADLINE_LIMIT,
    RehearsalOptions,
    RunContext,
    Stage,
    evidence_excerpt,
    print_summary,
    run_stages,
)

# Evidence as the 11:51 full run of 2026-12-01 wrote it (summary.json), trimmed to what headlines read.
TRAIN = {
    "dag_state": "success",
    "package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-dev-churn/1",
    "approval": "Approved",
    "training_status": "Completed",
    "training_metrics": {"validation:auc": 0.839, "validation:accuracy": 0.76},
}
SERVING_V2 = {
    "variants": {
        "primary": {
            "model": "m2",
            "package": "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-dev-churn/2",
        }
    }
}
CANARY = {"observed_green_shares": [0.5, 1.0], "traffic_ok": 404, "traffic_errors": 0, **SERVING_V2}
ROLLBACK = {
    "alarm_transitions": [
        {"alarm": "mlops-dev-churn-5xx-errors", "from": "OK", "to": "ALARM"},
        {"alarm": "mlops-dev-churn-model-latency", "from": "OK", "to": "ALARM"},
    ],
    "traffic_during_update": {"ok": 39, "errors": 2},
    "after": {"status": "InService", **SERVING_V2},
}


def test_headlines_of_the_lifecycle_stages() -> None:
    assert lifecycle.headline_train(TRAIN) == "AUC 0.839; package v1 Approved (training job Completed)"
    assert lifecycle.headline_canary(CANARY) == "canary 50% -> 100%, 404 calls, 0 errors; v2 serving"
    assert lifecycle.headline_rollback(ROLLBACK) == (
        "rollback by mlops-dev-churn-5xx-errors after 2 failed calls; v2 still serving"
    )
    deployed = {"endpoint": "mlops-dev-churn", "status": "InService", "package_arn": TRAIN["package_arn"]}
    assert lifecycle.headline_deploy_model({**deployed, "deploy_s": 6.45}) == (
        "mlops-dev-churn InService with v1 in 6.5 s"
    )
    served = {"requests_ok": 40, "rows_sent": 200, "requests_failed": 0, "capture_files": 2}
    assert lifecycle.headline_serve(served) == "40 calls (200 rows), 0 errors; 2 capture files"


def test_headlines_of_the_base_stages() -> None:
    assert stages.headline_deploy({"created": 188, "recorded": 12, "aws_calls": 236}) == (
        "188 resources created, 12 recorded (236 AWS calls)"
    )
    assert stages.headline_validate({"passed": True, "rows": 20000, "failures": 0}) == (
        "20000 rows passed the contract, 0 failures; curated"
    )
    assert stages.headline_ingest({"sha256": "6cf6b2679e87bb57aa", "ingest_date": "2026-12-01"}) == (
        "batch 6cf6b2679e87 landed for 2026-12-01"
    )


def test_every_lifecycle_stage_has_a_headline() -> None:
    missing = [s.name for s in lifecycle.lifecycle_stages(RehearsalOptions()) if s.headline is None]
    assert missing == []


def _console() -> Console:
    return Console(record=True, width=140, force_terminal=False, color_system=None)


def _run(tmp_path: Path, stage_list: list[Stage]) -> tuple[str, dict[str, Any]]:
    ctx = RunContext(options=RehearsalOptions(out=tmp_path), out=tmp_path)
    console = _console()
    summary = run_stages(stage_list, ctx, console=_console())
    print_summary(summary, console)
    return console.export_text(), json.loads((tmp_path / "summary.json").read_text())


def test_the_table_shows_headlines_excerpts_and_a_failure_in_full(tmp_path: Path) -> None:
    reason = "the DAG ended 'failed': task 'train' failed: " + "ValueError: bad hyperparameter " * 8
    stage_list = [
        Stage("train", lambda ctx: dict(TRAIN), "trains", lambda e, ctx: None, lifecycle.headline_train),
        Stage(
            "plain", lambda ctx: {"rows": 12, "uri": "s3://b/k", "nested": {"a": 1}}, "c", lambda e, ctx: None
        ),
        Stage("broken-headline", lambda ctx: {"x": 1}, "c", lambda e, ctx: None, lambda e: e["missing"]),
        Stage("canary", lambda ctx: {}, "shifts", lambda e, ctx: reason, lifecycle.headline_canary),
        Stage("rollback", lambda ctx: {}, "rolls back", lambda e, ctx: None, lifecycle.headline_rollback),
    ]
    text, written = _run(tmp_path, stage_list)
    assert "AUC 0.839; package v1 Approved (training job Completed)" in text
    assert "rows=12, uri=s3://b/k" in text  # no headline: short scalar evidence first
    assert "x=1" in text  # a headline that raises falls back to the excerpt, the stage still passes
    assert " ".join(text.split()).count(" ".join(reason.split())) == 1  # the reason, in full
    assert "not run" in text
    table = text.split("rehearsal summary", 1)[1].split("rehearsal failed")[0]
    assert "{" not in table  # no raw evidence dicts in the table
    by_stage = {s["stage"]: s for s in written["stages"]}
    assert by_stage["train"]["headline"].startswith("AUC 0.839")
    assert by_stage["train"]["evidence"] == TRAIN  # raw evidence stays in summary.json
    assert by_stage["broken-headline"]["verdict"] == "passed"
    assert by_stage["broken-headline"]["headline"] is None
    assert by_stage["canary"]["verdict"] == "failed"
    assert by_stage["canary"]["reason"] == reason


def test_an_excerpt_is_short() -> None:
    evidence = {f"key{i}": "v" * 70 for i in range(10)}
    assert len(evidence_excerpt(evidence)) <= HEADLINE_LIMIT
    assert evidence_excerpt({}) == ""
