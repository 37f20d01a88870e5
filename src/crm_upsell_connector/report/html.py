"""The report as one self-contained HTML file: plotly charts with plotly.js inlined (no CDN, no
script from outside the file), tables as plain HTML, CJK-capable fonts first in the font stack.

Every value from the CRM or the store is HTML-escaped; run errors are scrubbed of secrets again.
"""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from crm_upsell_connector.http.redact import scrub
from crm_upsell_connector.outcomes.funnel import STEP_LABELS
from crm_upsell_connector.report.data import ReportData, public_summary

_FONTS = (
    '"Noto Sans CJK JP", "Noto Sans JP", "Hiragino Sans", "Yu Gothic", "Meiryo", '
    '"Noto Sans", "Segoe UI", "Helvetica Neue", Arial, sans-serif'
)
_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendDataToCloud"]}
_CSS = f"""
body {{ font-family: {_FONTS}; margin: 24px; color: #1f2933; background: #fff; }}
h1 {{ font-size: 22px; margin-bottom: 4px; }}
h2 {{ font-size: 17px; margin-top: 32px; border-bottom: 1px solid #d9e2ec; padding-bottom: 4px; }}
p.meta, p.note {{ color: #52606d; font-size: 13px; }}
table {{ border-collapse: collapse; font-size: 13px; margin-top: 8px; }}
th, td {{ border: 1px solid #d9e2ec; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f0f4f8; }}
td.num {{ text-align: right; white-space: nowrap; }}
td.reason {{ max-width: 520px; }}
.chart {{ max-width: 1100px; }}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _money(value: float, currency: str) -> str:
    return f"{currency} {value:,.0f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(
        title=title, height=height, font={"family": _FONTS}, margin={"l": 60, "r": 30, "t": 50, "b": 50}
    )
    return fig


def _matrix_figure(data: ReportData) -> go.Figure:
    m = data.matrix
    text = [
        [
            f"{_e(m.segments[r][c])}<br>{m.counts[r][c]} accounts<br>{_money(m.revenue[r][c], data.currency)}"
            for c in range(len(m.utilization_bands))
        ]
        for r in range(len(m.loyalty_bands))
    ]
    fig = go.Figure(
        go.Heatmap(
            z=m.counts,
            x=[f"utilization: {b}" for b in m.utilization_bands],
            y=[f"loyalty: {b}" for b in m.loyalty_bands],
            text=text,
            texttemplate="%{text}",
            hovertemplate="%{y}, %{x}<br>%{text}<extra></extra>",
            colorscale="Blues",
            colorbar={"title": "accounts"},
        )
    )
    return _layout(fig, "Loyalty x utilization: accounts and revenue won in the last 365 days", 460)


def _segments_figure(data: ReportData) -> go.Figure:
    fig = go.Figure()
    names = sorted({name for _, counts in data.segment_history for name in counts})
    times = [t for t, _ in data.segment_history]
    for name in names:
        fig.add_trace(
            go.Scatter(
                x=times,
                y=[counts.get(name, 0) for _, counts in data.segment_history],
                mode="lines+markers",
                name=name,
            )
        )
    fig.update_yaxes(title="accounts", rangemode="tozero")
    return _layout(fig, "Segment sizes over time (after each run that wrote to the CRM)")


def _funnel_figure(data: ReportData) -> go.Figure:
    fig = go.Figure()
    for group in data.outcomes.groups:
        fig.add_trace(
            go.Funnel(
                name=group.group,
                y=[STEP_LABELS[s.name] for s in group.steps],
                x=[s.count for s in group.steps],
                textinfo="value+percent initial",
            )
        )
    return _layout(fig, "Outcome funnel per rule (proposals that reached each step)", 480)


def _uplift_figure(data: ReportData) -> go.Figure:
    rows = [u for u in data.outcomes.uplift if u.uplift is not None]
    fig = go.Figure(
        go.Bar(
            x=[u.rule for u in rows],
            y=[(u.uplift or 0.0) * 100 for u in rows],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [((u.high or 0.0) - (u.uplift or 0.0)) * 100 for u in rows],
                "arrayminus": [((u.uplift or 0.0) - (u.low or 0.0)) * 100 for u in rows],
            },
            hovertext=[u.verdict for u in rows],
        )
    )
    fig.update_yaxes(title="won-deal rate, treated minus held out (points)", zeroline=True)
    return _layout(fig, "Uplift against the holdout, with 95 % intervals")


def _table(headers: list[str], rows: list[list[str]], numeric: Collection[int] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if i in numeric else ("reason" if headers[i] == "reason" else "")}">{cell}</td>'
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _top_table(data: ReportData) -> str:
    if not data.top:
        return '<p class="note">No proposal at the moment.</p>'
    rows = [
        [
            _e(t.account_name),
            _e(t.segment),
            f"{t.score:.0f}",
            _e(t.kind.replace("_", "-")),
            _e(t.product),
            _e(_money(t.uplift, data.currency)),
            _e(t.reason),
        ]
        for t in data.top
    ]
    return _table(
        ["account", "segment", "score", "kind", "product", "expected uplift / year", "reason"], rows, {2, 5}
    )


def _funnel_table(data: ReportData) -> str:
    rows = []
    for group in [data.outcomes.total, *data.outcomes.groups]:
        cells = [_e(group.group)]
        for step in group.steps:
            cells.append(
                f"{step.count} <small>({step.share * 100:.0f} %, CI {step.low * 100:.0f}-{step.high * 100:.0f})</small>"
            )
        cells.append(_e(_money(group.revenue_won, data.currency)))
        cells.append(str(group.not_sent))
        rows.append(cells)
    headers = ["rule", *(STEP_LABELS[s] for s in STEP_LABELS), "revenue won", "not sent (pacing)"]
    return _table(headers, rows, set(range(1, len(headers))))


def _uplift_table(data: ReportData) -> str:
    if not data.outcomes.uplift:
        return '<p class="note">No proposal recorded yet.</p>'
    rows = []
    for u in data.outcomes.uplift:
        ci = "-" if u.low is None else f"{(u.low or 0) * 100:+.1f} to {(u.high or 0) * 100:+.1f} points"
        rows.append(
            [
                _e(u.rule),
                f"{u.treated_won} / {u.treated}",
                f"{u.held_out_won} / {u.held_out}",
                "-" if u.uplift is None else f"{u.uplift * 100:+.1f} points",
                ci,
                _e(u.verdict),
            ]
        )
    return _table(
        ["rule", "treated: won / proposals", "held out: won / proposals", "uplift", "95 % CI", "verdict"],
        rows,
        {1, 2, 3, 4},
    )


def _runs_table(data: ReportData) -> str:
    if not data.runs:
        return '<p class="note">No run yet.</p>'
    rows = []
    for run in data.runs:
        numbers = public_summary(run)
        duration = run.duration_s
        error = scrub(str(numbers["error"]))[:200] if numbers["error"] else ""
        rows.append(
            [
                _e(run.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
                _e(run.command),
                _e(run.status),
                "-" if duration is None else f"{duration:.1f} s",
                _e(numbers["calls"] if numbers["calls"] is not None else "-"),
                _e(numbers["records"] if numbers["records"] is not None else "-"),
                _e(numbers["errors"]) + (f" ({_e(error)})" if error else ""),
            ]
        )
    return _table(
        ["started", "command", "status", "duration", "API calls", "records", "errors"], rows, {3, 4, 5}
    )


def render_report(data: ReportData) -> str:
    """The whole report as one HTML document (plotly.js inlined once)."""
    figures = [
        ("matrix", _matrix_figure(data)),
        ("segments", _segments_figure(data)),
        ("funnel", _funnel_figure(data)),
        ("uplift", _uplift_figure(data)),
    ]
    charts: dict[str, str] = {}
    for i, (name, fig) in enumerate(figures):
        charts[name] = fig.to_html(
            full_html=False, include_plotlyjs=(i == 0), config=_PLOT_CONFIG, div_id=f"chart-{name}"
        )
    o = data.outcomes
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in data.notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Upsell report: {_e(data.connection)}</title>
<style>{_CSS}</style></head>
<body>
<h1>Upsell report: {_e(data.connection)}</h1>
<p class="meta">Generated {_e(data.generated_at.strftime("%Y-%m-%d %H:%M UTC"))} from the store;
{data.accounts} accounts scored; deals count for a proposal when opened within {o.attribution_days} days;
amounts in {_e(data.currency)}.</p>
{notes}
<h2 id="matrix">Loyalty x utilization matrix</h2>
<div class="chart">{charts["matrix"]}</div>
<h2 id="segments">Segments over time</h2>
<div class="chart">{charts["segments"]}</div>
<h2 id="proposals">Top proposals</h2>
{_top_table(data)}
<h2 id="outcomes">Outcomes per rule</h2>
<div class="chart">{charts["funnel"]}</div>
{_funnel_table(data)}
<p class="note">Each step: proposals that reached it (their share of the treated proposals, and its
95 % Wilson interval). Proposals still inside their attribution window may convert later.</p>
<h2 id="uplift">Uplift against the holdout</h2>
<div class="chart">{charts["uplift"]}</div>
{_uplift_table(data)}
<p class="note">{o.held_out} held-out proposal(s). Uplift: the share of proposals followed by a won deal
among treated accounts minus that among held-out accounts, with a 95 % Newcombe interval.</p>
<h2 id="runs">Last runs</h2>
{_runs_table(data)}
</body></html>
"""


def write_report(data: ReportData, path: Path) -> Path:
    """Write the report atomically (a reader never sees half a file); returns the absolute path."""
    text = render_report(data)
    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
