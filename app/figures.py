"""Plotly figures of the explorer, built from plain numbers (history, scores, embeddings).

Presentation only: every function takes arrays and names and returns a ``go.Figure``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from core.history import row_normalize

RUN_COLORS = qualitative.Plotly + qualitative.D3
LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=50, b=50), font=dict(size=12), hoverlabel=dict(namelength=-1))


def run_color(i: int) -> str:
    return RUN_COLORS[i % len(RUN_COLORS)]


def rgb(c: Sequence[int]) -> str:
    return f"rgb({int(c[0])},{int(c[1])},{int(c[2])})"


def _none(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def empty_figure(message: str, height: int = 300) -> go.Figure:
    """A blank figure with a centred message (nothing to plot yet, or an error)."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(size=14, color="#666"))
    fig.update_layout(**LAYOUT, height=height, xaxis=dict(visible=False), yaxis=dict(visible=False))
    return fig


def topk_bars(entries: Sequence[tuple[str, Sequence[tuple[str, float]]]], *, true_label: str | None = None, title: str = "Top-5 probabilities") -> go.Figure:
    """Top-k class probabilities of several models side by side (one bar group per class).

    ``entries`` is ``[(model name, [(class name, probability), ...]), ...]``. Classes are the union
    of every model's top-k, ordered by their highest probability.
    """
    best: dict[str, float] = {}
    for _, top in entries:
        for c, p in top:
            best[c] = max(best.get(c, 0.0), float(p))
    classes = sorted(best, key=lambda c: -best[c])
    fig = go.Figure()
    for i, (name, top) in enumerate(entries):
        probs = dict(top)
        fig.add_trace(go.Bar(
            name=name, x=classes, y=[probs.get(c) for c in classes], marker_color=run_color(i),
            hovertemplate="%{x}: %{y:.3f}<extra>" + name + "</extra>",
        ))  # fmt: skip
    if true_label is not None:
        title = f"{title} — true class: {true_label}"
    fig.update_layout(**LAYOUT, barmode="group", title=title, yaxis=dict(title="probability", range=[0, 1]), height=360,
                      legend=dict(orientation="h", y=-0.2))  # fmt: skip
    if true_label in classes:
        fig.add_vrect(x0=classes.index(true_label) - 0.5, x1=classes.index(true_label) + 0.5, fillcolor="#2ca02c",
                      opacity=0.08, line_width=0)  # fmt: skip
    return fig


def class_score_bars(classes: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *, metric: str = "IoU",
                     title: str | None = None) -> go.Figure:  # fmt: skip
    """Per-class scores of several runs as grouped bars, one group per class, values on hover."""
    fig = go.Figure()
    for i, (name, values) in enumerate(series):
        fig.add_trace(go.Bar(
            name=name, x=list(classes), y=[_none(v) for v in values], marker_color=run_color(i),
            hovertemplate="%{x}<br>" + metric + " %{y:.3f}<extra>" + name + "</extra>",
        ))  # fmt: skip
    fig.update_layout(**LAYOUT, barmode="group", title=title or f"Per-class {metric}", height=420,
                      yaxis=dict(title=metric, range=[0, 1]), legend=dict(orientation="h", y=-0.25))  # fmt: skip
    return fig


def class_epoch_heatmap(classes: Sequence[str], epochs: Sequence[int], values: np.ndarray, *, metric: str = "IoU",
                        title: str | None = None) -> go.Figure:  # fmt: skip
    """A class x epoch heatmap of one run's per-class scores over training."""
    z = [[_none(float(v)) for v in row] for row in np.asarray(values, dtype=np.float64)]
    fig = go.Figure(go.Heatmap(
        z=z, x=[str(e) for e in epochs], y=list(classes), zmin=0, zmax=1, colorscale="Viridis",
        colorbar=dict(title=metric), hovertemplate="%{y}, epoch %{x}<br>" + metric + " %{z:.3f}<extra></extra>",
    ))  # fmt: skip
    fig.update_layout(**LAYOUT, title=title or f"{metric} per class and epoch", height=max(320, 28 * len(classes) + 120),
                      xaxis=dict(title="epoch", type="category"), yaxis=dict(autorange="reversed"))  # fmt: skip
    return fig


def training_curves(runs: Sequence[dict[str, Any]]) -> go.Figure:
    """Loss (train dashed, val solid) and the monitored metric per epoch for several runs.

    Each entry: ``name, epochs, train_loss, val_loss, metric, metric_name, best_epoch`` and
    ``stopped_epoch`` (set only when the run stopped early). The best epoch is a star on the metric
    curve; an early stop is a dotted vertical line.
    """
    metric_names = sorted({r["metric_name"] for r in runs}) or ["metric"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", " / ".join(metric_names)), horizontal_spacing=0.1)
    for i, r in enumerate(runs):
        color, name, ep = run_color(i), r["name"], r["epochs"]
        fig.add_trace(go.Scatter(x=ep, y=r["train_loss"], name=f"{name} train", legendgroup=name, mode="lines+markers",
                                 line=dict(color=color, dash="dash"), marker=dict(size=4)), row=1, col=1)  # fmt: skip
        # validation may run every few epochs (--val-every): connect the evaluated epochs
        fig.add_trace(go.Scatter(x=ep, y=r["val_loss"], name=f"{name} val", legendgroup=name, mode="lines+markers",
                                 line=dict(color=color), marker=dict(size=4), connectgaps=True), row=1, col=1)  # fmt: skip
        fig.add_trace(go.Scatter(x=ep, y=r["metric"], name=f"{name} {r['metric_name']}", legendgroup=name, mode="lines+markers",
                                 line=dict(color=color), marker=dict(size=5), showlegend=False, connectgaps=True,
                                 hovertemplate="epoch %{x}<br>" + r["metric_name"] + " %{y:.3f}<extra>" + name + "</extra>"),
                      row=1, col=2)  # fmt: skip
        best = r.get("best_epoch")
        if best is not None and best in ep:
            y = r["metric"][ep.index(best)]
            fig.add_trace(go.Scatter(x=[best], y=[y], name=f"{name} best epoch", legendgroup=name, mode="markers",
                                     marker=dict(symbol="star", size=14, color=color, line=dict(color="black", width=1)),
                                     hovertemplate=f"{name}: best epoch {best}<br>{r['metric_name']} %{{y:.3f}}<extra></extra>",
                                     showlegend=False), row=1, col=2)  # fmt: skip
        stop = r.get("stopped_epoch")
        if stop is not None:
            for col in (1, 2):
                fig.add_vline(x=stop, line=dict(color=color, dash="dot", width=2), row=1, col=col)
            fig.add_annotation(x=stop, y=0.02, yref="y2 domain", xref="x2", text=f"early stop: {name}", showarrow=False,
                               font=dict(color=color, size=11), yanchor="bottom", xanchor="left", textangle=-90)  # fmt: skip
    fig.update_layout(**LAYOUT, height=420, legend=dict(orientation="h", y=-0.2))
    last = max((max(r["epochs"]) for r in runs if r["epochs"]), default=1)
    fig.update_xaxes(title_text="epoch", tick0=1, dtick=max(1, math.ceil(last / 10)))
    fig.update_yaxes(title_text="loss", row=1, col=1)
    return fig


def confusion_heatmap(cm: np.ndarray, classes: Sequence[str], *, title: str = "Confusion matrix") -> go.Figure:
    """Row-normalised confusion matrix (recall per true class) with the raw counts on hover."""
    cm = np.asarray(cm, dtype=np.int64)
    frac = row_normalize(cm)
    text = [[("" if math.isnan(v) else f"{v:.2f}") for v in row] for row in frac]
    fig = go.Figure(go.Heatmap(
        z=[[_none(float(v)) for v in row] for row in frac], x=list(classes), y=list(classes), zmin=0, zmax=1,
        colorscale="Blues", customdata=cm, text=text, texttemplate="%{text}", textfont=dict(size=10),
        colorbar=dict(title="fraction<br>of row"),
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata:,} pixels (%{z:.1%} of the row)<extra></extra>",
    ))  # fmt: skip
    fig.update_layout(**LAYOUT, title=title, height=max(420, 34 * len(classes) + 160),
                      xaxis=dict(title="predicted class", side="bottom", tickangle=-40),
                      yaxis=dict(title="true class", autorange="reversed"))  # fmt: skip
    return fig


def embedding_scatter(coords: np.ndarray, labels: np.ndarray, preds: np.ndarray, classes: Sequence[str],
                      palette: Sequence[Sequence[int]], *, title: str = "", selected: int | None = None,
                      extra: dict[str, Any] | None = None, height: int = 560) -> go.Figure:  # fmt: skip
    """A 2-D embedding as WebGL scatter: one trace per true class (legend clicks hide a class),
    circles for correct points and crosses for wrong ones; hover shows the point, true and predicted class.

    ``selected`` rings one point; ``extra`` adds a labelled point, e.g. ``{"xy": (x, y), "name": "your image",
    "neighbors": [point indices]}``.
    """
    coords = np.asarray(coords, dtype=np.float64)
    labels, preds = np.asarray(labels), np.asarray(preds)
    fig = go.Figure()
    idx_all = np.arange(len(labels))
    names = np.array([classes[int(p)] if 0 <= p < len(classes) else "?" for p in preds], dtype=object)
    for k, cname in enumerate(classes):
        sel = np.flatnonzero(labels == k)
        if not len(sel):
            continue
        sel = sel[np.argsort(preds[sel] != k, kind="stable")]  # right ones first: the legend shows the first marker
        ok = preds[sel] == k
        fig.add_trace(go.Scattergl(
            x=coords[sel, 0], y=coords[sel, 1], mode="markers", name=f"{cname} ({len(sel)})", legendgroup=cname,
            marker=dict(color=rgb(palette[k]), size=np.where(ok, 6, 8), symbol=np.where(ok, "circle", "x"),
                        line=dict(width=0.5, color="rgba(0,0,0,0.4)"), opacity=0.85),
            customdata=np.stack([idx_all[sel], names[sel]], axis=1),
            hovertemplate="point %{customdata[0]}<br>true " + cname + "<br>predicted %{customdata[1]}<extra></extra>",
        ))  # fmt: skip
    if selected is not None and 0 <= selected < len(coords):
        fig.add_trace(go.Scattergl(x=[coords[selected, 0]], y=[coords[selected, 1]], mode="markers", name=f"point {selected}",
                                   marker=dict(size=18, symbol="circle-open", color="black", line=dict(width=3)),
                                   hoverinfo="skip"))  # fmt: skip
    if extra is not None:
        nb = list(extra.get("neighbors", []))
        if nb:
            fig.add_trace(go.Scattergl(x=coords[nb, 0], y=coords[nb, 1], mode="markers", name="nearest training images",
                                       marker=dict(size=14, symbol="circle-open", color="#d62728", line=dict(width=2)),
                                       hoverinfo="skip"))  # fmt: skip
        x, y = extra["xy"]
        fig.add_trace(go.Scatter(x=[x], y=[y], mode="markers+text", name=extra.get("name", "your image"), text=[extra.get("name", "your image")],
                                 textposition="top center", marker=dict(size=20, symbol="star", color="#d62728",
                                 line=dict(width=1, color="black"))))  # fmt: skip
    fig.update_layout(**LAYOUT, title=title, height=height, legend=dict(itemsizing="constant", title="true class"),
                      xaxis=dict(showticklabels=False, zeroline=False), yaxis=dict(showticklabels=False, zeroline=False))  # fmt: skip
    return fig
