"""The rehearsal's lineage of the serving model (rehearsal/lineage_stage.py): wiring and verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rehearsal import lifecycle, lineage_stage
from rehearsal.run import RehearsalOptions, RunContext, Stage


def _document(run: dict[str, Any] | None, sha: str | None = "ab" * 32) -> dict[str, Any]:
    package = {
        "model_package_arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1",
        "mlflow_run": run,
        "batches": [{"batch_uri": "s3://raw/raw/churn/x.csv", "batch_sha256": sha}],
        "missing": [] if run else ["MLflow run: not recorded"],
    }
    variant = {"variant": "blue", "weight": 1.0, "package": package, "missing": []}
    return {"endpoints": [{"endpoint": "e", "status": "InService", "variants": [variant]}]}


def test_the_last_lifecycle_stage_traces_the_serving_model_before_the_iam_stage() -> None:
    stages = lifecycle.lifecycle_stages(RehearsalOptions(quick=True))
    assert stages[-1].name == "iam"
    assert stages[-2].claim.endswith("the serving model's lineage is traced")
    assert sum("lineage" in s.claim for s in stages) == 1


def test_the_wrapped_stage_adds_the_document_and_fails_on_a_missing_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = [_document({"run_id": "r1"}), _document(None), _document({"run_id": "r1"}, sha=None)]
    monkeypatch.setattr(lineage_stage, "serving_lineage", lambda ctx: documents.pop(0))
    last = Stage("rollback", lambda ctx: {"served": "v1"}, "the previous model serves", lambda e, ctx: None)
    [wrapped] = lineage_stage.with_lineage([last])
    ctx = RunContext(options=RehearsalOptions(out=tmp_path), out=tmp_path)

    evidence = wrapped.run(ctx)
    assert evidence["served"] == "v1"
    assert ctx.values["lineage"] is evidence["lineage"]
    assert wrapped.check(evidence, ctx) is None
    problem = wrapped.check(wrapped.run(ctx), ctx)
    assert problem is not None
    assert "has no MLflow run" in problem
    assert wrapped.check(wrapped.run(ctx), ctx) is None  # a batch without its hash: listed, not failed


def test_the_tracking_store_is_in_the_run_folder(tmp_path: Path) -> None:
    ctx = RunContext(options=RehearsalOptions(out=tmp_path), out=tmp_path)
    assert lineage_stage.tracking_uri(ctx) == f"sqlite:///{tmp_path.resolve() / 'mlflow' / 'mlflow.db'}"
