"""One self-contained HTML file from a ``Report``: Plotly's JavaScript inlined once and shared by every figure,
photos as JPEG and label maps as PNG in data URIs, no external reference, so it opens offline (from a USB stick)."""

from __future__ import annotations

import base64
import html
import json
from typing import Callable

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from core.explorer.report.build import Picture, Report
from core.explorer.report.tables import DAGGER, FORMATS, Table

SECTIONS = (  # (id, heading): the order of the report
    ("summary", "Summary"),
    ("per-class", "Per-class IoU"),
    ("curves", "Training curves"),
    ("confusion", "Confusion matrices"),
    ("images", "Images side by side"),
    ("strips", "Across epochs"),
    ("significance", "Significance against the best run"),
    ("calibration", "Calibration"),
    ("tables", "Tables for a write-up"),
    ("made", "How this report was made"),
)

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1280px; color: #222; }
nav a { margin-right: 12px; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 36px; }
table.scores { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
table.scores th, table.scores td { padding: 3px 8px; border-bottom: 1px solid #e4e4e4; text-align: right; }
table.scores th:first-child, table.scores td:first-child { text-align: left; }
table.scores thead th { border-bottom: 2px solid #444; } .note { color: #555; font-size: 13px; }
.row { display: flex; flex-wrap: wrap; gap: 8px; margin: 10px 0; align-items: flex-start; }
figure { margin: 0; } figure img { max-width: 300px; display: block; image-rendering: pixelated; }
figcaption { font-size: 12px; color: #444; max-width: 300px; } pre { background: #f6f6f6; padding: 8px; overflow-x: auto; }
.verdict { font-weight: 600; margin-top: 18px; }
"""


def _uri(p: Picture) -> str:
    return f"data:{p.mime};base64,{base64.b64encode(p.data).decode('ascii')}"


def _picture(p: Picture) -> str:
    alt = html.escape(p.caption)
    return f'<figure><img src="{_uri(p)}" alt="{alt}"><figcaption>{alt}</figcaption></figure>'


def _figure(fig: go.Figure, div_id: str) -> str:
    config = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "svg"}}
    return fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False, div_id=div_id, config=config)


def table_html(t: Table, table_id: str) -> str:
    """The table with the best values in bold and the daggers, as the LaTeX and Markdown versions mark them."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in [t.corner, *t.columns])
    body = []
    for r, name in enumerate(t.rows):
        cells = []
        for c in range(len(t.columns)):
            text = html.escape(t.cell(r, c))
            text = f"<b>{text}</b>" if r in t.best(c) else text
            cells.append(f"<td>{text}{DAGGER if (r, c) in t.tied else ''}</td>")
        body.append(f"<tr><td>{html.escape(name)}</td>{''.join(cells)}</tr>")
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    return f'<table class="scores" id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{note}'


def _tables_text(report: Report) -> str:
    parts = []
    for name, (_, write) in FORMATS.items():
        text = "\n".join(write(t) for t in (report.summary, report.per_class))
        parts.append(f"<details><summary>{name}</summary><pre>{html.escape(text)}</pre></details>")
    return "".join(parts)


def _made(report: Report) -> str:
    m = report.made
    rows = "".join(
        f"<tr><td>{html.escape(r['run'])}</td><td>{r['history epoch']}</td><td>{r['weights epoch']}</td>"
        f"<td>{html.escape(r['path'])}</td></tr>"
        for r in m["runs"]
    )
    runs = (
        '<table class="scores"><thead><tr><th>run</th><th>epoch (tables)</th><th>epoch (weights)</th><th>folder</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )
    facts = (
        f"<p>Epoch asked for: <b>{html.escape(m['epoch'])}</b> · split <b>{html.escape(m['split'])}</b> of "
        f"{html.escape(m['dataset'])} ({m['split images']} images) · images shown: {m['images shown']} · "
        f"across-epoch strips: {html.escape(m['strips'])} · "
        f"{html.escape(m['created'])} on {html.escape(m['host'])} · Vision Explorer {html.escape(m['vision explorer'])}</p>"
    )
    command = f"<pre>{html.escape(m['command'])}</pre>" if m["command"] else ""
    return command + facts + runs


def _bodies(report: Report) -> dict[str, Callable[[], str]]:
    split = report.made["split"]
    return {
        "summary": lambda: table_html(report.summary, "summary-table"),
        "per-class": lambda: table_html(report.per_class, "per-class-table") + _figure(report.class_bars, "fig-per-class"),
        "curves": lambda: (
            '<p class="note">Star: the best epoch. Dotted line: an early stop.</p>' + _figure(report.curves, "fig-curves")
        ),
        "confusion": lambda: "".join(_figure(f, f"fig-confusion-{k}") for k, (_, f) in enumerate(report.confusions)),
        "images": lambda: (
            _picture(report.legend)
            + "".join(f'<div class="row">{"".join(_picture(p) for p in row)}</div>' for row in report.images)
        ),
        "strips": lambda: "".join(
            f"<h3>{html.escape(label)}</h3><div class='row'>{''.join(_picture(p) for p in pics)}</div>"
            for label, pics in report.strips
        ),
        "significance": lambda: (
            f'<p class="note">Paired bootstrap over the images of split {html.escape(split)} (1,000 resamples, 95%).</p>'
            + "".join(
                f'<p class="verdict">{html.escape(v)}</p>{_figure(f, f"fig-significance-{k}")}'
                for k, (v, f) in enumerate(report.significance)
            )
            if report.significance
            else "<p>One run: nothing to compare it with.</p>"
        ),
        "calibration": lambda: (
            "<p>"
            + " · ".join(f"{html.escape(n)}: ECE {'–' if e is None else f'{e:.4f}'}" for n, e in report.eces)
            + "</p>"
            + _figure(report.calibration, "fig-calibration")
        ),
        "tables": lambda: _tables_text(report),
        "made": lambda: _made(report),
    }


def render(report: Report) -> str:
    """The report as one HTML document."""
    bodies = _bodies(report)
    nav = "".join(f'<a href="#{sid}">{html.escape(title)}</a>' for sid, title in SECTIONS)
    sections = "".join(
        f'<section id="{sid}" data-section="{sid}"><h2>{html.escape(title)}</h2>{bodies[sid]()}</section>'
        for sid, title in SECTIONS
    )
    meta = json.dumps({"sections": [s for s, _ in SECTIONS]})
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(report.title)}</title><style>{STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head><body>"
        f"<h1>{html.escape(report.title)}</h1><nav>{nav}</nav>{sections}"
        f'<script type="application/json" id="report-meta">{meta}</script></body></html>'
    )
