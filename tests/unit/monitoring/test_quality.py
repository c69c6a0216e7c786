"""Model quality from delayed ground truth: join by inference id, segments, coverage, floors, metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from pipelines.evaluate import classification_metrics, regression_metrics
from pipelines.monitoring.capture import CaptureStats, list_capture_keys
from pipelines.monitoring.drift import load_reference
from pipelines.monitoring.estimate import estimate_performance
from pipelines.monitoring.quality import (
    INFERENCE_ID,
    LABEL,
    ROW,
    SCORE,
    GroundTruthError,
    compute_quality,
    format_ground_truth_line,
    ground_truth_key,
    list_ground_truth_keys,
    load_ground_truth,
    parse_ground_truth,
    publish_quality_metrics,
    quality_metric_data,
    read_scored_capture,
    render_quality_html,
)
from pipelines.monitoring.retrain import RetrainPolicy, decide_retrain
from platform_contract import metrics as contract
from tests.unit.monitoring.capture_fixture import capture_lines, put_capture_file
from tests.unit.serving.model_fixture import FEATURES, make_training_frame

START = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
PER_REQUEST = 5


def _scored(model_dir: Path, rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    frame = make_training_frame(rows, seed)
    model = joblib.load(model_dir / "model.joblib")
    return frame, model.predict_proba(frame[FEATURES])[:, 1]


def _window(aws: dict[str, Any], model_dir: Path, rows: int = 1000, seed: int = 11, labelled: float = 1.0):
    """Capture ``rows`` predictions (5 rows per request, ids req-<offset>) and upload labels for a share."""
    frame, scores = _scored(model_dir, rows, seed)
    lines = capture_lines(pd.DataFrame(frame[FEATURES]), scores.tolist(), START, rows_per_request=PER_REQUEST)
    put_capture_file(aws["s3"], aws["capture_bucket"], "capture", "churn-ep", "primary", START, lines)
    requests = range(0, rows, PER_REQUEST)
    keep = [o for i, o in enumerate(requests) if i < int(len(requests) * labelled)]
    truth = [
        format_ground_truth_line(f"req-{o}", frame["churned"].iloc[o : o + PER_REQUEST].tolist())
        for o in keep
    ]
    key = ground_truth_key("ground-truth", "churn-ep", END + timedelta(hours=2), "labels.jsonl")
    aws["s3"].put_object(Bucket=aws["capture_bucket"], Key=key, Body="\n".join(truth).encode())
    rows_labelled = min(len(keep) * PER_REQUEST, rows)
    return frame, scores, rows_labelled


def _read(
    aws: dict[str, Any], model_dir: Path, columns: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    features = load_reference(model_dir).features
    keys = list_capture_keys(aws["s3"], aws["capture_bucket"], "capture", "churn-ep", START, END)
    predictions = read_scored_capture(
        aws["s3"],
        aws["capture_bucket"],
        keys,
        features,
        CaptureStats(),
        start=START,
        end=END,
        columns=columns,
    )
    truth_keys = list_ground_truth_keys(
        aws["s3"], aws["capture_bucket"], "ground-truth", "churn-ep", START, END + timedelta(days=1)
    )
    return predictions, load_ground_truth(aws["s3"], aws["capture_bucket"], truth_keys)


def test_joined_by_inference_id_equals_evaluation_on_the_same_rows(
    aws: dict[str, Any], model_dir: Path
) -> None:
    frame, scores, _ = _window(aws, model_dir)
    predictions, labels = _read(aws, model_dir)
    assert len(predictions) == 1000
    assert len(labels) == 1000
    report = compute_quality(predictions, labels, task="binary_classification", positive_class=1)
    assert report.status == "ok"
    assert report.coverage == 1.0
    assert report.unmatched_labels == 0
    expected = classification_metrics(frame["churned"].to_numpy(), scores)
    for name, value in expected.items():
        assert report.metrics[name] == pytest.approx(value, rel=1e-12), name
    assert report.metrics["accuracy"] == pytest.approx(float(np.mean((scores >= 0.5) == frame["churned"])))


def test_partial_labels_report_coverage_and_metrics_of_the_labelled_rows(
    aws: dict[str, Any], model_dir: Path
) -> None:
    frame, scores, labelled = _window(aws, model_dir, labelled=0.4)
    predictions, labels = _read(aws, model_dir)
    report = compute_quality(predictions, labels, task="binary_classification", min_labelled_rows=300)
    assert report.labelled == labelled == 400
    assert report.coverage == pytest.approx(0.4)
    expected = classification_metrics(frame["churned"].to_numpy()[:400], scores[:400])
    assert report.metrics["auc"] == pytest.approx(expected["auc"], rel=1e-12)
    # below the minimum labelled count: coverage still reported, no metric (and no floor breach)
    short = compute_quality(
        predictions, labels, task="binary_classification", min_labelled_rows=500, quality_min={"auc": 0.99}
    )
    assert short.status == "insufficient_labels"
    assert short.metrics == {}
    assert short.breaches == []
    assert short.coverage == pytest.approx(0.4)


def test_segment_metrics_equal_evaluation_on_each_segment(aws: dict[str, Any], model_dir: Path) -> None:
    frame, scores, _ = _window(aws, model_dir, rows=2000)
    predictions, labels = _read(aws, model_dir, columns=("region",))
    report = compute_quality(
        predictions, labels, task="binary_classification", segments=["region"], min_labelled_rows=50
    )
    assert {s.value for s in report.segments} == set(frame["region"].unique())
    for segment in report.segments:
        mask = (frame["region"] == segment.value).to_numpy()
        expected = classification_metrics(frame["churned"].to_numpy()[mask], scores[mask])
        assert segment.labelled == int(mask.sum())
        assert segment.status == "ok"
        assert segment.metrics["f1"] == pytest.approx(expected["f1"], rel=1e-12)
        assert segment.metrics["auc"] == pytest.approx(expected["auc"], rel=1e-12)


def test_segment_from_the_ground_truth_file_and_unknown_segment_refused() -> None:
    predictions = pd.DataFrame({INFERENCE_ID: ["a", "b", "c", "d"], ROW: 0, SCORE: [0.9, 0.2, 0.8, 0.4]})
    labels = pd.DataFrame(
        {INFERENCE_ID: ["a", "b", "c", "d"], ROW: 0, LABEL: [1, 0, 0, 0], "country": ["x", "x", "y", "y"]}
    )
    report = compute_quality(
        predictions, labels, task="binary_classification", segments=["country"], min_labelled_rows=2
    )
    by_value = {s.value: s for s in report.segments}
    assert by_value["x"].metrics["accuracy"] == 1.0
    assert by_value["y"].metrics["accuracy"] == 0.5
    with pytest.raises(GroundTruthError, match="segment column 'nope'"):
        compute_quality(predictions, labels, task="binary_classification", segments=["nope"])


def test_floor_breach_feeds_the_retrain_decision() -> None:
    rng = np.random.default_rng(3)
    scores = rng.random(400)
    predictions = pd.DataFrame({INFERENCE_ID: [f"i{i}" for i in range(400)], ROW: 0, SCORE: scores})
    labels = pd.DataFrame(
        {INFERENCE_ID: [f"i{i}" for i in range(400)], ROW: 0, LABEL: rng.integers(0, 2, 400)}
    )
    report = compute_quality(predictions, labels, task="binary_classification", quality_min={"auc": 0.75})
    assert report.breaches
    assert report.breaches[0].startswith("auc ")
    decision = decide_retrain(
        None, RetrainPolicy(quality_min={"auc": 0.75}, max_model_age_days=None), quality=report.metrics
    )
    assert decision.retrain
    assert "model quality: auc" in decision.reasons[0]
    assert "below 0.75" in decision.reasons[0]
    good = decide_retrain(
        None, RetrainPolicy(quality_min={"auc": 0.4}, max_model_age_days=None), quality=report.metrics
    )
    assert not good.retrain


def test_regression_metrics_and_duplicates_unmatched_unparsable() -> None:
    predictions = pd.DataFrame({INFERENCE_ID: ["a", "b", "c", None], ROW: 0, SCORE: [1.0, 2.0, 3.0, 4.0]})
    labels = pd.DataFrame(
        {INFERENCE_ID: ["a", "b", "b", "c", "zz", "q"], ROW: 0, LABEL: ["1.5", "9", "2.5", "3", "1", "x"]}
    )
    report = compute_quality(
        predictions, labels, task="regression", min_labelled_rows=3, quality_max={"rmse": 0.1}
    )
    expected = regression_metrics(np.array([1.5, 2.5, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert report.metrics["rmse"] == pytest.approx(expected["rmse"])
    assert report.metrics["mae"] == pytest.approx(expected["mae"])
    assert report.duplicate_labels == 1
    assert report.unparsable_labels == 1
    assert report.unmatched_labels == 1
    assert report.predictions_without_id == 1
    assert report.coverage == pytest.approx(0.75)
    assert report.breaches == [f"rmse {expected['rmse']:.4g} above 0.1"]


def test_ground_truth_formats_and_errors() -> None:
    flat = parse_ground_truth(b"inference_id,label\nx,1\ny,0\n", "labels.csv")
    assert flat[ROW].tolist() == [0, 0]
    assert flat[LABEL].tolist() == [1, 0]
    sagemaker = parse_ground_truth(format_ground_truth_line("r1", [1, 0, 1]).encode(), "gt.jsonl")
    assert sagemaker[ROW].tolist() == [0, 1, 2]
    assert sagemaker[INFERENCE_ID].tolist() == ["r1"] * 3
    with pytest.raises(GroundTruthError, match=r"eventMetadata\.eventId"):
        parse_ground_truth(b'{"groundTruthData": {"data": "1"}}', "gt.jsonl")
    with pytest.raises(GroundTruthError, match="no column"):
        parse_ground_truth(b"id,label\nx,1\n", "labels.csv")
    with pytest.raises(GroundTruthError, match=r"\.jsonl"):
        parse_ground_truth(b"", "labels.xlsx")


def test_metrics_published_with_the_contract_dimensions(aws: dict[str, Any], model_dir: Path) -> None:
    _window(aws, model_dir)
    predictions, labels = _read(aws, model_dir, columns=("region",))
    report = compute_quality(
        predictions, labels, task="binary_classification", segments=["region"], min_labelled_rows=50
    )
    report.estimate = estimate_performance(predictions[SCORE].to_numpy(), draws=50).to_dict()
    data = quality_metric_data(report, "dev", "churn-ep", END)
    by_name = {contract.metric(contract.MONITORING_NAMESPACE, d["MetricName"]) for d in data}
    assert by_name == {
        contract.LABEL_COVERAGE,
        contract.MODEL_QUALITY,
        contract.SEGMENT_MODEL_QUALITY,
        contract.ESTIMATED_MODEL_QUALITY,
    }
    for entry in data:
        spec = contract.metric(contract.MONITORING_NAMESPACE, entry["MetricName"])
        assert [d["Name"] for d in entry["Dimensions"]] == list(spec.dimensions)
    assert publish_quality_metrics(aws["cloudwatch"], report, "dev", "churn-ep", END) == len(data)
    listed = aws["cloudwatch"].list_metrics(Namespace="MLOps/Monitoring", MetricName="ModelQuality")[
        "Metrics"
    ]
    assert {d["Value"] for m in listed for d in m["Dimensions"] if d["Name"] == "QualityMetric"} >= {
        "auc",
        "f1",
        "accuracy",
    }
    assert "realized" in render_quality_html(report)
    assert "region" in render_quality_html(report)
