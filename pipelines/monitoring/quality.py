"""Model quality against delayed ground truth: join labels to captured predictions by inference id.

Callers of the endpoint send an ``InferenceId`` with each InvokeEndpoint request; SageMaker data
capture records it as ``eventMetadata.inferenceId``
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html). Labels
arrive later, as files under ``s3://<capture bucket>/<ground truth prefix>/yyyy/mm/dd/hh/`` in
SageMaker Model Monitor's ground-truth format, one JSON object per line
(https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-model-quality-merge.html)::

    {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<inferenceId>"},
     "eventVersion": "0"}

A request may carry several rows (CSV lines); its ground truth then holds one label per row,
newline-separated, in the request's row order (the platform's extension: SageMaker's merge job
assumes one row per request). Flat files work too: CSV, JSON lines or Parquet with the columns
``inference_id``, ``label`` and optionally ``row`` (0-based within the request) and segment columns.

:func:`compute_quality` joins on ``(inference_id, row)`` and computes the task's metrics with the
evaluation step's own functions (:mod:`pipelines.evaluate`), over the window and per segment
(``monitoring.segments`` in the contract). Coverage (labelled share of captured predictions) is
always reported; a metric is computed only from at least ``min_labelled_rows`` labelled rows.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pipelines.errors import InputRejectedError
from pipelines.monitoring.capture import CaptureRecord, CaptureStats, iter_capture_file_records
from pipelines.serving.artifact import FeatureSpec
from pipelines.serving.codec import InputError, align_to_features, decode_body, decode_prediction_scores
from platform_contract import metrics as contract

if TYPE_CHECKING:
    import pandas as pd

INFERENCE_ID = "inference_id"
ROW = "row"
LABEL = "label"
SCORE = "score"
QUALITY_JSON = "quality.json"
"""The quality report's file name, next to ``report.json`` under the window's report prefix."""
DEFAULT_MIN_LABELLED_ROWS = 100
LABEL_LOOKAHEAD = timedelta(days=7)
"""How long after a window ends its labels may still land (ground-truth hour folders read)."""

Task = Literal["binary_classification", "regression"]


class GroundTruthError(InputRejectedError, ValueError):
    """A ground-truth file or the quality configuration is unusable; the message names it and the fix."""


# --------------------------------------------------------------------------------------------------
# captured predictions with their inference ids


def scored_rows(
    records: Iterable[CaptureRecord],
    features: Sequence[FeatureSpec],
    stats: CaptureStats,
    *,
    columns: Sequence[str] = (),
    positive_index: int = 1,
) -> pd.DataFrame:
    """One row per captured prediction: ``inference_id``, ``row`` (within the request), ``score`` and
    the requested feature ``columns`` (segments). Undecodable records are counted in ``stats``."""
    import pandas as pd

    ids: list[str | None] = []
    rows: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    extra: dict[str, list[np.ndarray]] = {name: [] for name in columns}
    for record in records:
        try:
            decoded = align_to_features(decode_body(record.input_data, record.input_content_type), features)
        except InputError as error:
            stats.malformed[f"input: {error.message.split(':')[0][:60]}"] += 1
            continue
        count = len(next(iter(decoded.values())))
        values = np.full(count, np.nan)
        if record.output_data is not None:
            try:
                read = decode_prediction_scores(
                    record.output_data, record.output_content_type, positive_index
                )
                if read.size == count:
                    values = read
            except InputError:
                pass
        stats.records += 1
        stats.rows += count
        stats.unscored_rows += int(np.isnan(values).sum())
        ids.extend([record.inference_id] * count)
        rows.append(np.arange(count))
        scores.append(values)
        for name in columns:
            extra[name].append(decoded[name])
    frame = pd.DataFrame(
        {
            INFERENCE_ID: pd.Series(ids, dtype=object),
            ROW: np.concatenate(rows) if rows else np.array([], dtype=np.int64),
            SCORE: np.concatenate(scores) if scores else np.array([], dtype=np.float64),
        }
    )
    for name in columns:
        frame[name] = np.concatenate(extra[name]) if extra[name] else np.array([], dtype=object)
    return frame


def read_scored_capture(
    s3: Any,
    bucket: str,
    keys: Iterable[str],
    features: Sequence[FeatureSpec],
    stats: CaptureStats,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    columns: Sequence[str] = (),
    positive_index: int = 1,
) -> pd.DataFrame:
    """:func:`scored_rows` over capture files in S3 (one file in memory at a time while decoding)."""
    import pandas as pd

    parts = []
    for key in keys:
        stats.files += 1
        lines = s3.get_object(Bucket=bucket, Key=key)["Body"].iter_lines()
        records = iter_capture_file_records(lines, stats, start, end)
        parts.append(scored_rows(records, features, stats, columns=columns, positive_index=positive_index))
    if not parts:
        return scored_rows([], features, stats, columns=columns)
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------------------------
# ground truth


def ground_truth_key(prefix: str, endpoint: str, when: datetime, name: str) -> str:
    """``<prefix>/<endpoint>/yyyy/mm/dd/hh/<name>``: where labels uploaded at ``when`` go."""
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    parts = [p.strip("/") for p in (prefix, endpoint) if p.strip("/")]
    return "/".join([*parts, when.strftime("%Y/%m/%d/%H"), name])


def format_ground_truth_line(inference_id: str, labels: Sequence[Any]) -> str:
    """One ground-truth line in SageMaker's format (several labels: one per request row, newline-separated)."""
    data = "\n".join(str(int(v)) if isinstance(v, bool | np.bool_) else str(v) for v in labels)
    return json.dumps(
        {
            "groundTruthData": {"data": data, "encoding": "CSV"},
            "eventMetadata": {"eventId": inference_id},
            "eventVersion": "0",
        }
    )


def parse_ground_truth_jsonl(text: str, source: str = "<ground truth>") -> pd.DataFrame:
    """Ground-truth JSON lines (SageMaker's format, or flat objects with ``inference_id``/``label``).

    Raises:
        GroundTruthError: naming the file and line that is not usable.
    """
    import pandas as pd

    ids: list[str] = []
    rows: list[int] = []
    labels: list[str] = []
    flat: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            raise GroundTruthError(f"{source} line {number} is not JSON") from None
        if not isinstance(item, dict):
            raise GroundTruthError(f"{source} line {number} is not a JSON object")
        if "groundTruthData" in item:
            data = item.get("groundTruthData") or {}
            meta = item.get("eventMetadata") or {}
            event_id = meta.get("eventId") if isinstance(meta, dict) else None
            if not isinstance(data, dict) or not isinstance(data.get("data"), str) or not event_id:
                raise GroundTruthError(
                    f"{source} line {number}: needs groundTruthData.data (a string) and eventMetadata.eventId "
                    "(the captured inferenceId)"
                )
            if str(data.get("encoding", "CSV")).upper() not in ("CSV", "JSON"):
                raise GroundTruthError(
                    f"{source} line {number}: groundTruthData.encoding must be CSV or JSON"
                )
            values = [v.strip() for v in data["data"].splitlines() if v.strip()]
            ids.extend([str(event_id)] * len(values))
            rows.extend(range(len(values)))
            labels.extend(values)
        else:
            flat.append(item)
    frame = pd.DataFrame({INFERENCE_ID: ids, ROW: rows, LABEL: labels})
    if flat:
        frame = pd.concat([frame, _flat_labels(pd.DataFrame(flat), source)], ignore_index=True)
    return frame


def _flat_labels(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    missing = [c for c in (INFERENCE_ID, LABEL) if c not in frame.columns]
    if missing:
        raise GroundTruthError(
            f"{source} has no column(s) {missing} (columns: {list(frame.columns)}); ground truth needs "
            f"'{INFERENCE_ID}' (the InferenceId sent with the request) and '{LABEL}'"
        )
    out = frame.copy()
    if ROW not in out.columns:
        out[ROW] = 0
    out[INFERENCE_ID] = out[INFERENCE_ID].astype(str)
    out[ROW] = out[ROW].astype(np.int64)
    return out


def parse_ground_truth(body: bytes, name: str) -> pd.DataFrame:
    """Parse one ground-truth file by its extension (``.jsonl``/``.json``, ``.csv``, ``.parquet``)."""
    import pandas as pd

    lower = name.lower()
    if lower.endswith((".jsonl", ".json", ".jsonl.gz")):
        return parse_ground_truth_jsonl(body.decode("utf-8"), name)
    if lower.endswith(".csv"):
        return _flat_labels(pd.read_csv(io.BytesIO(body), dtype={INFERENCE_ID: str}), name)
    if lower.endswith(".parquet"):
        return _flat_labels(pd.read_parquet(io.BytesIO(body)), name)
    raise GroundTruthError(f"ground-truth file {name}: use .jsonl (SageMaker's format), .csv or .parquet")


def list_ground_truth_keys(
    s3: Any, bucket: str, prefix: str, endpoint: str, start: datetime, until: datetime
) -> list[str]:
    """Ground-truth files uploaded in the hour folders from ``start`` up to ``until`` (labels come after)."""
    from pipelines.monitoring.capture import hour_prefixes

    base = "/".join(p.strip("/") for p in (prefix, endpoint) if p.strip("/")) + "/"
    keys: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for hour in hour_prefixes(start, until):
        for page in paginator.paginate(Bucket=bucket, Prefix=base + hour):
            keys += [obj["Key"] for obj in page.get("Contents", []) if not obj["Key"].endswith("/")]
    return sorted(keys)


def load_ground_truth(s3: Any, bucket: str, keys: Iterable[str]) -> pd.DataFrame:
    """Every label in ``keys``; a later file's label for the same ``(inference_id, row)`` wins."""
    import pandas as pd

    parts = [
        parse_ground_truth(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), f"s3://{bucket}/{key}")
        for key in keys
    ]
    if not parts:
        return pd.DataFrame({INFERENCE_ID: [], ROW: [], LABEL: []})
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------------------------
# metrics


def task_metrics(
    task: Task, y_true: np.ndarray, scores: np.ndarray, threshold: float = 0.5
) -> dict[str, float | None]:
    """The evaluation step's metrics (plus accuracy for classification); NaN becomes None."""
    from pipelines.evaluate import classification_metrics, regression_metrics

    if task == "binary_classification":
        values: dict[str, float] = classification_metrics(y_true, scores, threshold)
        values["accuracy"] = float(np.mean((scores >= threshold).astype(int) == y_true))
    else:
        values = regression_metrics(y_true, scores)
    return {k: (None if isinstance(v, float) and math.isnan(v) else float(v)) for k, v in values.items()}


@dataclass
class SegmentQuality:
    """Quality of the rows with one value of a segment column."""

    column: str
    value: str
    predictions: int
    labelled: int
    coverage: float
    status: Literal["ok", "insufficient_labels"]
    metrics: dict[str, float | None] = field(default_factory=dict)


@dataclass
class QualityReport:
    """One window's model quality: coverage, metrics, segments, the floors applied and breaches."""

    task: str
    predictions: int
    labelled: int
    coverage: float
    status: Literal["ok", "insufficient_labels", "no_predictions"]
    min_labelled_rows: int
    metrics: dict[str, float | None]
    segments: list[SegmentQuality]
    floors: dict[str, dict[str, float]]
    breaches: list[str]
    unmatched_labels: int
    duplicate_labels: int
    predictions_without_id: int
    unparsable_labels: int
    context: dict[str, Any] = field(default_factory=dict)
    estimate: dict[str, Any] | None = None
    estimate_vs_realized: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (schema_version 1)."""
        data = asdict(self)
        data["schema_version"] = 1
        return data


def _labels_as(task: Task, labels: pd.Series, positive_class: Any) -> tuple[np.ndarray, np.ndarray]:
    """Labels as 0/1 (classification) or floats; and the mask of labels that parse."""
    import pandas as pd

    if task == "binary_classification":
        text = labels.astype(str).str.strip()
        positive = str(positive_class)
        if isinstance(positive_class, bool):
            positive_set = {"true", "1"} if positive_class else {"false", "0"}
            is_positive = text.str.lower().isin(positive_set)
        else:
            numeric = pd.to_numeric(text, errors="coerce")
            try:
                is_positive = (numeric == float(positive)) | (text == positive)
            except ValueError:
                is_positive = text == positive
        return is_positive.to_numpy(dtype=np.int64), (text != "").to_numpy() & labels.notna().to_numpy()
    values = np.asarray(pd.to_numeric(labels, errors="coerce"), dtype=np.float64)
    return values, np.isfinite(values)


def compute_quality(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    task: Task,
    positive_class: Any = 1,
    threshold: float = 0.5,
    segments: Sequence[str] = (),
    min_labelled_rows: int = DEFAULT_MIN_LABELLED_ROWS,
    quality_min: Mapping[str, float] | None = None,
    quality_max: Mapping[str, float] | None = None,
    context: Mapping[str, Any] | None = None,
) -> QualityReport:
    """Join ``labels`` to ``predictions`` on ``(inference_id, row)`` and compute the window's quality.

    ``segments`` are columns of ``predictions`` (captured model inputs) or of ``labels`` (columns sent
    with the ground truth). A floor (``quality_min``/``quality_max``) is checked only when the metric
    could be computed, i.e. with at least ``min_labelled_rows`` labelled rows.

    Raises:
        GroundTruthError: a segment column is in neither frame, or ``min_labelled_rows`` < 1.
    """
    import pandas as pd

    if min_labelled_rows < 1:
        raise GroundTruthError(f"min_labelled_rows must be at least 1; got {min_labelled_rows}")
    floors = {"min": dict(quality_min or {}), "max": dict(quality_max or {})}
    total = len(predictions)
    with_id = predictions[predictions[INFERENCE_ID].notna()]
    scored: Any = with_id[np.isfinite(np.asarray(with_id[SCORE], dtype=np.float64))]
    label_frame: Any = labels.copy()
    label_frame[INFERENCE_ID] = label_frame[INFERENCE_ID].astype(str)
    label_frame[ROW] = label_frame[ROW].astype(np.int64)
    before = len(label_frame)
    label_frame = label_frame.drop_duplicates([INFERENCE_ID, ROW], keep="last")
    duplicates = before - len(label_frame)
    y, parsable = _labels_as(task, pd.Series(label_frame[LABEL]), positive_class)
    unparsable = int((~parsable).sum())
    label_frame = label_frame.assign(__y__=y)[parsable]
    label_columns = [c for c in label_frame.columns if c not in (INFERENCE_ID, ROW, LABEL)]
    for column in segments:
        if column not in predictions.columns and column not in label_frame.columns:
            raise GroundTruthError(
                f"segment column '{column}' is neither a captured model input nor a ground-truth column; "
                "declare a model input in monitoring.segments or send the column with the labels"
            )
    keep_labels = label_frame[[INFERENCE_ID, ROW, *label_columns]]
    keep_labels = keep_labels.rename(columns={c: f"{c}__gt" for c in label_columns if c in scored.columns})
    joined: Any = scored.merge(keep_labels, on=[INFERENCE_ID, ROW], how="left", indicator=True)
    matched = joined["_merge"] == "both"
    unmatched = len(label_frame) - int(np.sum(matched))
    labelled = joined[matched]

    def metrics_of(frame: Any) -> dict[str, float | None]:
        return task_metrics(
            task, np.asarray(frame["__y__"]), np.asarray(frame[SCORE], dtype=np.float64), threshold
        )

    status: Literal["ok", "insufficient_labels", "no_predictions"]
    if total == 0:
        status, metrics = "no_predictions", {}
    elif len(labelled) < min_labelled_rows:
        status, metrics = "insufficient_labels", {}
    else:
        status, metrics = "ok", metrics_of(labelled)
    segment_results: list[SegmentQuality] = []
    for column in segments:
        source = column if column in joined.columns else f"{column}__gt"
        if source not in joined.columns:
            source = column
        values = joined[source].astype(object).where(joined[source].notna(), "(missing)").astype(str)
        for value in sorted(values.unique().tolist()):
            mask = (values == value).to_numpy()
            part = joined[mask & matched.to_numpy()]
            count = int(mask.sum())
            enough = len(part) >= min_labelled_rows
            segment_results.append(
                SegmentQuality(
                    column=column,
                    value=value,
                    predictions=count,
                    labelled=len(part),
                    coverage=len(part) / count if count else 0.0,
                    status="ok" if enough else "insufficient_labels",
                    metrics=metrics_of(part) if enough else {},
                )
            )
    breaches = quality_breaches(metrics, floors["min"], floors["max"])
    return QualityReport(
        task=task,
        predictions=total,
        labelled=len(labelled),
        coverage=len(labelled) / total if total else 0.0,
        status=status,
        min_labelled_rows=min_labelled_rows,
        metrics=metrics,
        segments=segment_results,
        floors=floors,
        breaches=breaches,
        unmatched_labels=unmatched,
        duplicate_labels=duplicates,
        predictions_without_id=total - len(with_id),
        unparsable_labels=unparsable,
        context=dict(context or {}),
    )


def quality_breaches(
    metrics: Mapping[str, float | None], quality_min: Mapping[str, float], quality_max: Mapping[str, float]
) -> list[str]:
    """``auc 0.61 below 0.7``-style reasons for every floor or ceiling the metrics break."""
    out = []
    for name, lowest in quality_min.items():
        value = metrics.get(name)
        if value is not None and value < lowest:
            out.append(f"{name} {value:.4g} below {lowest:g}")
    for name, highest in quality_max.items():
        value = metrics.get(name)
        if value is not None and value > highest:
            out.append(f"{name} {value:.4g} above {highest:g}")
    return out


# --------------------------------------------------------------------------------------------------
# CloudWatch


def _segment_value(segment: SegmentQuality) -> str:
    return f"{segment.column}={segment.value}"[:255]


def quality_metric_data(
    report: QualityReport, environment: str, endpoint_name: str, timestamp: datetime | None = None
) -> list[dict[str, Any]]:
    """``MLOps/Monitoring`` entries: LabelCoverage, ModelQuality per metric, SegmentModelQuality per
    segment and metric, EstimatedModelQuality per estimated metric."""
    when = timestamp or datetime.now(UTC)
    base = {contract.ENVIRONMENT: environment, contract.ENDPOINT_NAME: endpoint_name}
    data: list[dict[str, Any]] = [contract.LABEL_COVERAGE.datum(report.coverage, base)]
    for name, value in report.metrics.items():
        if value is not None:
            data.append(contract.MODEL_QUALITY.datum(value, {**base, contract.QUALITY_METRIC: name}))
    for segment in report.segments:
        for name, value in segment.metrics.items():
            if value is not None:
                dims = {**base, contract.QUALITY_METRIC: name, contract.SEGMENT: _segment_value(segment)}
                data.append(contract.SEGMENT_MODEL_QUALITY.datum(value, dims))
    for name, item in ((report.estimate or {}).get("metrics") or {}).items():
        if item.get("estimate") is not None:
            data.append(
                contract.ESTIMATED_MODEL_QUALITY.datum(
                    item["estimate"], {**base, contract.QUALITY_METRIC: name}
                )
            )
    for entry in data:
        entry["Timestamp"] = when
    return data


def publish_quality_metrics(
    cloudwatch: Any,
    report: QualityReport,
    environment: str,
    endpoint_name: str,
    timestamp: datetime | None = None,
) -> int:
    """Publish a quality report's metrics; returns the number of data points."""
    from pipelines.monitoring.metrics import MONITORING_NAMESPACE, put_metrics

    return put_metrics(
        cloudwatch, MONITORING_NAMESPACE, quality_metric_data(report, environment, endpoint_name, timestamp)
    )


# --------------------------------------------------------------------------------------------------
# HTML


def render_quality_html(report: QualityReport) -> str:
    """A small self-contained HTML page: coverage, realized metrics, the CBPE estimate and segments."""
    import html

    def fmt(value: Any) -> str:
        return (
            "-"
            if value is None
            else (f"{value:.4g}" if isinstance(value, float) else html.escape(str(value)))
        )

    comparison = report.estimate_vs_realized
    estimate = (report.estimate or {}).get("metrics") or {}
    names = sorted(set(report.metrics) | set(estimate))
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{fmt(report.metrics.get(n))}</td>"
        f"<td>{fmt((estimate.get(n) or {}).get('estimate'))}</td>"
        f"<td>{fmt((estimate.get(n) or {}).get('low'))} .. {fmt((estimate.get(n) or {}).get('high'))}</td>"
        f"<td>{fmt((comparison.get(n) or {}).get('within_interval'))}</td></tr>"
        for n in names
    )
    segments = "".join(
        f"<tr><td>{html.escape(s.column)}</td><td>{html.escape(s.value)}</td><td>{s.predictions}</td>"
        f"<td>{s.labelled}</td><td>{s.coverage:.1%}</td><td>{s.status}</td>"
        f"<td>{html.escape(', '.join(f'{k} {fmt(v)}' for k, v in s.metrics.items()))}</td></tr>"
        for s in report.segments
    )
    breaches = "".join(f"<li>{html.escape(b)}</li>" for b in report.breaches) or "<li>none</li>"
    title = f"Model quality: {report.context.get('endpoint_name', 'model')}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body {{ font-family: sans-serif; margin: 2em; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>status: {report.status}; {report.labelled} of {report.predictions} predictions labelled
(coverage {report.coverage:.1%}, metrics need {report.min_labelled_rows})</p>
<table><tr><th>metric</th><th>realized</th><th>CBPE estimate</th><th>interval</th><th>realized within</th></tr>
{rows}</table>
<h2>Floors breached</h2><ul>{breaches}</ul>
<h2>Segments</h2>
<table><tr><th>column</th><th>value</th><th>predictions</th><th>labelled</th><th>coverage</th><th>status</th>
<th>metrics</th></tr>{segments}</table>
</body></html>
"""
