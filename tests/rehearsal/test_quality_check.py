"""The drift stage's quality fragment: headline wording and request ids."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import boto3
import pandas as pd
import pytest
from moto import mock_aws

from pipelines.contract import load_contract
from pipelines.monitoring.quality import INFERENCE_ID, LABEL, ROW, SCORE, compute_quality, load_ground_truth
from pipelines.synthetic import generate
from rehearsal.monitoring_stage import rehearsal_drift
from rehearsal.quality_check import inference_id, quality_evidence, quality_headline, write_ground_truth
from rehearsal.run import RehearsalOptions, RunContext


def test_headline_fragment() -> None:
    evidence = {
        "status": "ok",
        "coverage": 1.0,
        "metrics": {"auc": 0.812, "accuracy": 0.77},
        "estimate_vs_realized": {
            "accuracy": {"estimate": 0.78, "low": 0.74, "high": 0.81, "within_interval": True}
        },
    }
    assert (
        quality_headline(evidence)
        == "; quality auc 0.812, accuracy 0.770, CBPE accuracy 0.780 [0.740, 0.810]"
    )
    evidence["estimate_vs_realized"]["accuracy"]["within_interval"] = False
    assert quality_headline(evidence).endswith(" MISSED")
    assert quality_headline({"status": "insufficient_labels", "coverage": 0.2}) == (
        "; quality insufficient_labels (coverage 20%)"
    )
    assert quality_headline(None) == ""


def test_inference_ids_are_per_request_offset() -> None:
    assert inference_id("drift-244", 40) == "drift-244-000040"


def test_ground_truth_written_for_the_rehearsal_traffic_and_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="capture")
        ctx = RunContext(options=RehearsalOptions(out=tmp_path, seed=42), out=tmp_path)
        ctx.emulator = cast("Any", SimpleNamespace(client=lambda service: s3))
        ctx.values["contract"] = load_contract("churn")
        assert write_ground_truth(ctx, "capture", "ep", 60, 244, "drift-244", 20) == 60
        (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket="capture")["Contents"]]
        assert key.startswith("ground-truth/ep/")
        assert key.endswith("/drift-244.jsonl")
        labels = load_ground_truth(s3, "capture", [key])
        expected = generate("churn", 60, 244, rehearsal_drift())["churned"].tolist()
        assert labels[INFERENCE_ID].tolist()[:20] == [inference_id("drift-244", 0)] * 20
        assert labels[LABEL].astype(int).tolist() == expected
        report = compute_quality(
            pd.DataFrame({INFERENCE_ID: labels[INFERENCE_ID], ROW: labels[ROW], SCORE: 0.6}),
            labels,
            task="binary_classification",
            min_labelled_rows=10,
        )
        s3.put_object(Bucket="capture", Key="monitoring/ep/w/quality.json", Body=json.dumps(report.to_dict()))
        evidence = quality_evidence(ctx, "capture", "ep", "w")
        assert evidence["status"] == "ok"
        assert evidence["labelled"] == 60
        assert quality_headline(evidence).startswith("; quality ")
