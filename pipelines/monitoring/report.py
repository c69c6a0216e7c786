"""Monitoring reports: ``report.json``, a self-contained ``report.html`` (inline SVG plots, no
JavaScript or external assets), the Model Monitor files, and an Athena-queryable summary row.

Local files go to an output directory; :func:`upload_reports` copies them to
``monitoring/<endpoint>/<window-start>_<window-end>/`` in the artifacts bucket (KMS-encrypted).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.jsonio import strict_json
from pipelines.monitoring.drift import DriftReport, FeatureDrift

REPORT_JSON = "report.json"
"""The machine-readable drift report."""
REPORT_HTML = "report.html"
"""The human-readable drift report."""
SUMMARY_JSON = "summary.json"
"""One flat JSON object per run (Athena reads it with the JSON SerDe)."""

_CONTENT_TYPES = {".json": "application/json", ".html": "text/html; charset=utf-8"}


def window_label(start: datetime, end: datetime) -> str:
    """``20261124T160000Z_20261124T170000Z``: the window part of the report prefix."""

    def stamp(value: datetime) -> str:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.strftime("%Y%m%dT%H%M%SZ")

    return f"{stamp(start)}_{stamp(end)}"


def report_prefix(endpoint: str, start: datetime, end: datetime) -> str:
    """``monitoring/<endpoint>/<window-start>_<window-end>/`` in the artifacts bucket."""
    return f"monitoring/{endpoint}/{window_label(start, end)}/"


def summary_row(report: DriftReport) -> dict[str, Any]:
    """A flat record of the run for Athena: context, verdict, shares and drifted feature names."""
    context = report.context
    return {
        "endpoint_name": context.get("endpoint_name"),
        "environment": context.get("environment"),
        "window_start": context.get("window_start"),
        "window_end": context.get("window_end"),
        "generated_at": context.get("generated_at"),
        "status": report.status,
        "dataset_drift": report.dataset_drift,
        "drift_share": report.drift_share,
        "drifted_features": ",".join(report.drifted_features),
        "evaluated_features": report.evaluated_features,
        "current_rows": report.current_rows,
        "missing_value_rate": report.missing_value_rate,
        "prediction_drift": bool(report.prediction.drifted) if report.prediction else None,
    }


def write_reports(
    report: DriftReport, output_dir: str | Path, extra_files: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Path]:
    """Write ``report.json``, ``report.html``, ``summary.json`` and any extra JSON files (e.g. the
    Model Monitor ones) into ``output_dir``; returns the paths written."""
    directory = Path(output_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    files: dict[str, str] = {
        REPORT_JSON: strict_json(report.to_dict()),
        REPORT_HTML: render_html(report),
        SUMMARY_JSON: strict_json(summary_row(report), indent=None),
    }
    for name, content in (extra_files or {}).items():
        files[name] = strict_json(content)
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def upload_reports(
    s3: Any, bucket: str, prefix: str, paths: list[Path], kms_key_id: str | None = None
) -> list[str]:
    """Upload report files under ``prefix``; KMS-encrypted when ``kms_key_id`` is given. Returns the keys."""
    keys = []
    for path in paths:
        key = prefix.rstrip("/") + "/" + path.name
        extra: dict[str, str] = {"ContentType": _CONTENT_TYPES.get(path.suffix, "application/octet-stream")}
        if kms_key_id:
            extra.update({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id})
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), **extra)
        keys.append(key)
    return keys


# --------------------------------------------------------------------------------------------------
# HTML

_REF_COLOUR = "#4c78a8"
_CUR_COLOUR = "#f58518"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _svg_bars(
    labels: list[str], reference: list[float], current: list[float], width: int = 520, height: int = 180
) -> str:
    """Grouped bars (reference vs current share per bin/category) as an inline SVG."""
    count = len(labels)
    if count == 0:
        return "<p>no data</p>"
    top = max([*reference, *current, 1e-12])
    pad_left, pad_bottom = 30, 34
    plot_w, plot_h = width - pad_left - 6, height - pad_bottom - 8
    slot = plot_w / count
    bar = max(slot / 2 - 1, 0.5)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<line x1="{pad_left}" y1="{8 + plot_h}" x2="{width - 6}" y2="{8 + plot_h}" stroke="#999"/>',
        f'<text x="2" y="16" font-size="10">{top:.0%}</text>',
    ]
    for i in range(count):
        x = pad_left + i * slot
        for offset, value, colour in ((0.0, reference[i], _REF_COLOUR), (bar, current[i], _CUR_COLOUR)):
            h = plot_h * value / top
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{8 + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{html.escape(labels[i])}: {value:.2%}</title></rect>'
            )
        if count <= 12 or i % max(count // 8, 1) == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{height - 20}" font-size="9">{html.escape(labels[i][:10])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _plot(item: FeatureDrift) -> str:
    plot = item.plot
    if plot.get("type") == "histogram":
        edges = plot["edges"]
        labels = ["< min"] + [f"{edges[i]:.3g}" for i in range(len(edges) - 1)] + ["> max"]
        return _svg_bars(labels, list(plot["reference"]), list(plot["current"]))
    if plot.get("type") == "bars":
        return _svg_bars([str(c) for c in plot["categories"]], list(plot["reference"]), list(plot["current"]))
    return ""


def render_html(report: DriftReport) -> str:
    """The self-contained HTML report: verdict, verdict table and per-feature plots."""
    context = report.context
    title = f"Drift report: {context.get('endpoint_name', 'model')}"
    verdict = {"drift": "DATASET DRIFT", "ok": "no dataset drift", "insufficient_data": "not enough data"}[
        report.status
    ]
    rows = []
    items = list(report.features) + ([report.prediction] if report.prediction else [])
    for item in items:
        rows.append(
            "<tr class='{cls}'><td>{name}</td><td>{kind}</td><td>{method}</td><td>{stat}</td><td>{thr}</td>"
            "<td>{verdict}</td><td>{cur}</td><td>{miss}</td><td>{psi}</td><td>{new}</td></tr>".format(
                cls="drift" if item.drifted else "",
                name=html.escape(item.name),
                kind=item.kind,
                method=item.method,
                stat=_fmt(item.statistic),
                thr=_fmt(item.threshold),
                verdict=item.status,
                cur=item.current_rows,
                miss=f"{item.current_missing_rate:.2%}",
                psi=_fmt(item.measures.get("psi")),
                new=_fmt(item.measures.get("new_category_rate")),
            )
        )
    sections = []
    for item in items:
        new = (
            f"<p>new categories: {html.escape(', '.join(item.new_categories[:10]))}</p>"
            if item.new_categories
            else ""
        )
        sections.append(
            f"<section><h3>{html.escape(item.name)} <small>({item.kind}, {item.method}: {_fmt(item.statistic)}, "
            f"{item.status})</small></h3>{_plot(item)}{new}</section>"
        )
    meta = "".join(
        f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>"
        for k, v in context.items()
        if not isinstance(v, dict)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; font-size: 13px; }}
tr.drift td {{ background: #fde0dc; }} .verdict {{ font-size: 1.3em; font-weight: bold; }}
section {{ display: inline-block; vertical-align: top; margin: 0 1em 1em 0; }}
.legend span {{ display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="verdict">{verdict}: {len(report.drifted_features)} of {report.evaluated_features} features drifted
(share {report.drift_share:.2f}, threshold {report.config.get("drift_share")})</p>
<ul>{meta}<li>current rows: {report.current_rows}</li><li>reference rows: {report.reference_rows}</li>
<li>missing value rate: {report.missing_value_rate:.2%}</li></ul>
<table><tr><th>feature</th><th>kind</th><th>test</th><th>statistic</th><th>threshold</th><th>verdict</th>
<th>rows</th><th>missing</th><th>PSI</th><th>new-category rate</th></tr>
{"".join(rows)}</table>
<p class="legend"><span style="background:{_REF_COLOUR}"></span>baseline<span style="background:{_CUR_COLOUR}"></span>current</p>
{"".join(sections)}
</body></html>
"""
