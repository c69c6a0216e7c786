"""The rehearsal's HTML report: one self-contained file (inline SVG and CSS, no JavaScript, no CDN).

Sections: the verdict and stage table; a timeline of stages, deployments and traffic weights; drift
plots per feature (drawn with the monitoring report's SVG helpers); metrics; the alarms that fired
(read from the emulator's CloudWatch alarm history before it stops); IAM: each role's calls, denials
and unused grants (from ``iam.json``); the registered packages' model cards (rehearsal/governance.py).
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from rehearsal.run import REPORT_FILE, RunContext, RunSummary

_VERDICT_COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "interrupted": "#ef6c00", "not run": "#9e9e9e"}
_EVENT_COLOURS = {"deploy": "#1565c0", "traffic": "#6a1b9a", "alarm": "#c62828", "emulator": "#455a64"}


def collect_alarm_history(ctx: RunContext) -> None:
    """Add every alarm in ALARM at the end of the run (read from the emulator's CloudWatch while it runs).

    moto has no DescribeAlarmHistory, so transitions that returned to OK before the end are only in
    the report when a stage recorded them in ``ctx.alarms_fired``.
    """
    if ctx.emulator is None:
        return
    seen = {(a["alarm"], a["at"]) for a in ctx.alarms_fired}
    pages = ctx.emulator.client("cloudwatch").get_paginator("describe_alarms")
    for page in pages.paginate(StateValue="ALARM"):
        for alarm in page.get("MetricAlarms", []):
            entry = {
                "alarm": alarm["AlarmName"],
                "at": str(alarm.get("StateUpdatedTimestamp", "")),
                "reason": alarm.get("StateReason", ""),
            }
            if (entry["alarm"], entry["at"]) not in seen:
                ctx.alarms_fired.append(entry)


def _esc(value: Any) -> str:
    return html.escape(value if isinstance(value, str) else json.dumps(value, default=str))


def timeline_svg(summary: RunSummary, ctx: RunContext, width: int = 900) -> str:
    """Stages as bars on a time axis, with deployment/traffic/alarm events as labelled markers."""
    total = max(summary.duration_s, *(r.started_s or 0 for r in summary.results), 1e-3)
    left, right, row_h = 110, 20, 22
    rows = [r for r in summary.results if r.started_s is not None]
    events = list(ctx.timeline)
    height = 30 + row_h * (len(rows) + 1) + 16 * len(events)
    scale = (width - left - right) / total
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" class="timeline">',
        f'<line x1="{left}" y1="20" x2="{width - right}" y2="20" stroke="#999"/>',
    ]
    for i in range(6):
        t = total * i / 5
        x = left + t * scale
        parts.append(f'<text x="{x:.1f}" y="14" font-size="10" text-anchor="middle">{t:.1f} s</text>')
    for i, result in enumerate(rows):
        y = 28 + i * row_h
        x = left + (result.started_s or 0) * scale
        w = max(result.duration_s * scale, 2)
        colour = _VERDICT_COLOURS.get(result.verdict, "#777")
        parts.append(f'<text x="4" y="{y + 13}" font-size="12">{_esc(result.stage)}</text>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}">'
            f"<title>{_esc(result.stage)}: {result.verdict}, {result.duration_s:.2f} s</title></rect>"
        )
    base = 28 + len(rows) * row_h + 10
    for j, event in enumerate(events):
        x = left + event.at * scale
        y = base + j * 16
        colour = _EVENT_COLOURS.get(event.kind, "#333")
        parts.append(f'<circle cx="{x:.1f}" cy="{y}" r="4" fill="{colour}"/>')
        anchor = "end" if x > width * 0.7 else "start"
        dx = -8 if anchor == "end" else 8
        parts.append(
            f'<text x="{x + dx:.1f}" y="{y + 4}" font-size="11" text-anchor="{anchor}">'
            f"{_esc(event.kind)} @ {event.at:.1f} s: {_esc(event.label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def traffic_table(ctx: RunContext) -> str:
    """Every traffic split the rehearsal observed (``traffic`` events with ``weights``)."""
    rows = [
        f"<tr><td>{e.at:.1f} s</td><td>{_esc(e.label)}</td><td>"
        + ", ".join(f"{_esc(k)}: {float(v):.0%}" for k, v in (e.detail.get("weights") or {}).items())
        + "</td></tr>"
        for e in ctx.timeline
        if e.kind in ("deploy", "traffic") and e.detail.get("weights")
    ]
    if not rows:
        return "<p>No endpoint served traffic in this rehearsal (no traffic weights observed).</p>"
    return "<table><tr><th>at</th><th>event</th><th>variant weights</th></tr>" + "".join(rows) + "</table>"


def drift_section(ctx: RunContext) -> str:
    """Per-feature drift plots of every drift report the rehearsal produced."""
    from pipelines.monitoring.report import _plot  # the monitoring report's inline-SVG plots

    if not ctx.drift_reports:
        return "<p>No drift report was produced in this rehearsal (no monitoring stage ran).</p>"
    parts = []
    for report in ctx.drift_reports:
        title = report.context.get("endpoint_name", "model")
        parts.append(
            f"<h3>{_esc(title)}: {report.status}, {len(report.drifted_features)} of "
            f"{report.evaluated_features} features drifted</h3>"
        )
        for item in [*report.features, *([report.prediction] if report.prediction else [])]:
            parts.append(
                f'<section class="feature"><h4>{_esc(item.name)} <small>({item.method}: '
                f"{'-' if item.statistic is None else f'{item.statistic:.4g}'}, {item.status})</small></h4>"
                f"{_plot(item)}</section>"
            )
    return "".join(parts)


def batch_section(summary: RunSummary) -> str:
    """The batch stage's transform job: rows scored, agreement with the endpoint, the Glue partition."""
    found = [r for r in summary.results if r.stage == "batch" and r.evidence]
    if not found:
        return "<p>No batch inference ran in this rehearsal (no batch stage evidence).</p>"
    e = found[0].evidence
    rows = [
        ("transform job", e.get("job")),
        ("package", e.get("package_arn")),
        ("rows scored / sent", f"{e.get('rows_scored')} / {e.get('rows_sent')}"),
        (
            "agreement with the endpoint",
            f"{float(e.get('agreement') or 0):.2%} ({e.get('agreeing_rows')} rows)",
        ),
        ("Glue table, partition", f"{e.get('table')} {e.get('partition')}"),
        ("output", e.get("output_uri")),
        ("transform wall time", f"{e.get('transform_s')} s"),
    ]
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    differ = "".join(f"<li><code>{_esc(d)}</code></li>" for d in e.get("disagreements") or [])
    return f"<table>{body}</table>" + (f"<p>Rows that differ:</p><ul>{differ}</ul>" if differ else "")


def metrics_svg(summary: RunSummary, ctx: RunContext, width: int = 600) -> str:
    """Stage durations (and any numeric metrics the stages recorded) as horizontal bars."""
    values = {f"{r.stage} (s)": r.duration_s for r in summary.results if r.verdict != "not run"}
    values.update(ctx.metrics)
    if not values:
        return "<p>No metrics.</p>"
    top = max(max(values.values()), 1e-9)
    bar_h, left = 18, 200
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{bar_h * len(values) + 8}" role="img">'
    ]
    for i, (name, value) in enumerate(values.items()):
        y = 4 + i * bar_h
        w = (width - left - 60) * value / top
        parts.append(f'<text x="4" y="{y + 12}" font-size="11">{_esc(name)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 4}" fill="#4c78a8"/>')
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 12}" font-size="11">{value:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def alarms_section(ctx: RunContext) -> str:
    """The alarms that went to ALARM during the rehearsal."""
    if not ctx.alarms_fired:
        return "<p>No alarm fired.</p>"
    rows = "".join(
        f"<tr><td>{_esc(a['alarm'])}</td><td>{_esc(a['at'])}</td><td>{_esc(a['reason'])}</td></tr>"
        for a in ctx.alarms_fired
    )
    return f"<table><tr><th>alarm</th><th>at</th><th>reason</th></tr>{rows}</table>"


def iam_section(ctx: RunContext) -> str:
    """Per role: the calls it made, its denials, and the grants of its policies no call used."""
    record_file = ctx.values.get("iam_record")
    if not record_file or not Path(record_file).is_file():
        return "<p>IAM was not emulated in this rehearsal (every step used the account's root keys).</p>"
    record = json.loads(Path(record_file).read_text())
    calls: dict[str, set[str]] = {}
    for call in record["calls"]:
        calls.setdefault(call["role"], set()).add(call["action"])
    unused = record["unused_grants"]["roles"]
    parts = [
        f"<p>{'enforced' if record['enforced'] else 'recorded, not enforced'}; "
        f"{sum(c['count'] for c in record['calls'])} calls authorized, {len(record['denials'])} denied "
        f"(record: <code>{_esc(record_file)}</code>)</p>"
    ]
    if record["denials"]:
        rows = "".join(
            f"<tr><td>{_esc(d['role'])}</td><td>{_esc(d['action'])}</td><td>{_esc(d['resource'])}</td>"
            f"<td><code>{_esc(d['decisive'])}</code></td><td>{_esc(d['hint'])}</td></tr>"
            for d in record["denials"]
        )
        parts.append(
            "<h3>Denials</h3><table><tr><th>role</th><th>action</th><th>resource</th><th>why</th>"
            f"<th>fix</th></tr>{rows}</table>"
        )
    rows = []
    for role in sorted(set(calls) | set(unused)):
        grants = unused.get(role, [])
        listed = "<br>".join(f"{_esc(g['action'])} on {_esc(g['resource'])}" for g in grants) or "none"
        rows.append(
            f"<tr><td>{_esc(role)}</td><td>{_esc(', '.join(sorted(calls.get(role, set()))) or 'no call')}</td>"
            f"<td><code>{listed}</code></td></tr>"
        )
    idle = record["unused_grants"]["unused_roles"]
    parts.append(
        "<h3>Unused grants per role</h3><table><tr><th>role</th><th>actions used</th>"
        f"<th>granted, never used in this rehearsal</th></tr>{''.join(rows)}</table>"
        f"<p>Roles that made no call: {_esc(', '.join(idle) or 'none')}</p>"
    )
    return "".join(parts)


def lineage_section(ctx: RunContext) -> str:
    """The serving model's lineage at the end of the run (``mlops lineage``'s document, as a tree)."""
    from rich.console import Console

    from pipelines.provenance import render_tree

    document = ctx.values.get("lineage")
    if not document:
        return "<p>The lineage was not traced (the run stopped before its last lifecycle stage).</p>"
    console = Console(record=True, width=160, file=io.StringIO())
    console.print(render_tree(document))
    return (
        f"<p>traced in {_esc(document.get('computed_in_s'))} s by <code>mlops lineage</code>'s code; "
        "the JSON is in summary.json (evidence <code>lineage</code> of the last lifecycle stage)</p>"
        f"<pre>{_esc(console.export_text())}</pre>"
    )


def model_card_section(ctx: RunContext) -> str:
    """Each registered package's model card: status history, risk, top features, fairness, the exports."""
    cards = [c for c in ctx.values.get("model_cards", []) if "versions" in c]
    if not cards:
        return "<p>No model card was read in this rehearsal.</p>"
    rows = []
    for card in cards:
        fairness = "; ".join(
            f"{a}: DP {v['demographic_parity_difference']:.3f}, EO {v['equalized_odds_difference']:.3f}"
            for a, v in (card.get("fairness") or {}).items()
        )
        links = " ".join(
            f'<a href="{_esc(str(Path(card[k]["file"]).relative_to(ctx.out)))}">{label}</a>'
            for k, label in (("model_card_md", "Markdown"), ("model_card_html", "HTML"))
            if k in card and Path(card[k]["file"]).is_relative_to(ctx.out)
        )
        rows.append(
            f"<tr><td>{_esc(card['name'])}</td><td>{_esc(' -> '.join(card['versions']))}</td>"
            f"<td>{_esc(card.get('risk_rating'))}</td><td>{_esc(', '.join(card.get('top_features', [])))}</td>"
            f"<td>{_esc(fairness or 'not assessed')}</td><td>{links}</td></tr>"
        )
    last = cards[-1].get("model_card_md", {}).get("file")
    embedded = (
        f"<details><summary>{_esc(cards[-1]['name'])} (Markdown)</summary><pre>{_esc(Path(last).read_text())}</pre></details>"
        if last and Path(last).is_file()
        else ""
    )
    return (
        "<table><tr><th>card</th><th>versions</th><th>risk</th><th>top features (permutation)</th>"
        f"<th>fairness</th><th>exports</th></tr>{''.join(rows)}</table>{embedded}"
    )


def promotions_section(ctx: RunContext) -> str:
    """Each promotion: its pipeline execution and the roles that started, built and deployed it."""
    promotions = ctx.values.get("promotions") or []
    if not promotions:
        return "<p>No promotion ran.</p>"
    rows = "".join(
        f"<tr><td>{_esc(p['execution_id'])}</td><td>{_esc(p['status'])}</td><td>{_esc(p['started_by'])}</td>"
        f"<td>{_esc(p['build_role'])}</td><td>{_esc(p['deploy_role'])}</td>"
        f"<td><code>{_esc(', '.join(p['plan'].values()))}</code></td><td>{p['seconds']:.1f} s</td></tr>"
        for p in promotions
    )
    return (
        f"<p>{len(promotions)} promotions through <code>{_esc(promotions[0]['pipeline'])}</code></p>"
        "<table><tr><th>execution</th><th>status</th><th>started by</th><th>build role</th>"
        f"<th>deploy role (pulumi up)</th><th>planned packages</th><th>time</th></tr>{rows}</table>"
    )


def render_report(summary: RunSummary, ctx: RunContext) -> str:
    """The whole HTML document."""
    stage_rows = "".join(
        f"<tr><td>{_esc(r.stage)}</td><td>{_esc(r.claim)}</td>"
        f'<td style="color:{_VERDICT_COLOURS.get(r.verdict, "#000")}">{r.verdict}</td>'
        f"<td>{r.duration_s:.2f} s</td><td><code>{_esc(r.reason or r.evidence)}</code></td></tr>"
        for r in summary.results
    )
    colour = "#2e7d32" if summary.exit_code == 0 else "#c62828"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Rehearsal report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; font-size: 13px; vertical-align: top; }}
code {{ font-size: 11px; white-space: pre-wrap; word-break: break-all; }}
section.feature {{ display: inline-block; vertical-align: top; margin: 0 1em 1em 0; }}
</style></head><body>
<h1>Rehearsal report</h1>
<p style="font-size:1.2em;color:{colour}"><b>{_esc(summary.message)}</b></p>
<p>started {_esc(summary.started_at)}, {summary.duration_s:.1f} s; options: {_esc(_options(ctx))}</p>
<h2 id="stages">Stages</h2>
<table><tr><th>stage</th><th>claim</th><th>verdict</th><th>duration</th><th>evidence</th></tr>{stage_rows}</table>
<h2 id="timeline">Timeline of deployments and traffic weights</h2>
{timeline_svg(summary, ctx)}
{traffic_table(ctx)}
<h2 id="batch">Batch inference against the endpoint</h2>
{batch_section(summary)}
<h2 id="drift">Drift per feature</h2>
{drift_section(ctx)}
<h2 id="metrics">Metrics</h2>
{metrics_svg(summary, ctx)}
<h2 id="alarms">Alarms that fired</h2>
{alarms_section(ctx)}
<h2 id="lineage">Lineage of the serving model</h2>
{lineage_section(ctx)}
<h2 id="promotions">Promotions: pipeline executions and their roles</h2>
{promotions_section(ctx)}
<h2 id="iam">IAM: calls per role and unused grants</h2>
{iam_section(ctx)}
<h2 id="model-cards">Model cards, explainability and fairness</h2>
{model_card_section(ctx)}
</body></html>
"""


def _options(ctx: RunContext) -> dict[str, Any]:
    o = ctx.options
    return {
        "data": str(o.data) if o.data else None,
        "contract": str(o.contract) if o.contract else None,
        "seed": o.seed,
        "quick": o.quick,
    }


def write_report(summary: RunSummary, ctx: RunContext) -> Path:
    """Write ``report.html`` into the output folder and return its path."""
    path = ctx.out / REPORT_FILE
    path.write_text(render_report(summary, ctx))
    return path
