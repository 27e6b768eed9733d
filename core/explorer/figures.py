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

from core.runs.history import row_normalize

RUN_COLORS = qualitative.Plotly + qualitative.D3
LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=50, b=50), font=dict(size=12), hoverlabel=dict(namelength=-1))


CELL_TEXT_CLASSES = 20  # past this many classes the cells carry no text: it would not fit
MANY_TICKS = 12  # past this many classes the x labels stand upright, each in its own column
TOP_LEGEND = dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1)  # the bottom holds upright labels


def short_label(name: str, limit: int = 22) -> str:
    """A class name cut to ``limit`` characters for a tick label (the full name is on hover)."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _class_axis(names: Sequence[str], **kw: Any) -> dict[str, Any]:
    """A category axis with one label per class, none skipped; upright past ``MANY_TICKS`` classes."""
    many = len(names) > MANY_TICKS
    return dict(
        type="category",
        tickmode="array",
        tickvals=list(names),
        ticktext=[short_label(n) for n in names],
        tickangle=-90 if many else -40,
        tickfont=dict(size=11 if many else 12),
        automargin=True,
        **kw,
    )


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


def topk_bars(
    entries: Sequence[tuple[str, Sequence[tuple[str, float]]]],
    *,
    true_label: str | None = None,
    title: str = "Top-5 probabilities",
) -> go.Figure:
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
        fig.add_trace(
            go.Bar(
                name=name,
                x=classes,
                y=[probs.get(c) for c in classes],
                marker_color=run_color(i),
                hovertemplate="%{x}: %{y:.3f}<extra>" + name + "</extra>",
            )
        )
    if true_label is not None:
        title = f"{title} — true class: {true_label}"
    fig.update_layout(
        **LAYOUT,
        barmode="group",
        title=title,
        yaxis=dict(title="probability", range=[0, 1]),
        height=360,
        legend=dict(orientation="h", y=-0.2),
    )
    if true_label in classes:
        fig.add_vrect(
            x0=classes.index(true_label) - 0.5,
            x1=classes.index(true_label) + 0.5,
            fillcolor="#2ca02c",
            opacity=0.08,
            line_width=0,
        )
    return fig


def class_score_bars(
    classes: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *, metric: str = "IoU", title: str | None = None
) -> go.Figure:
    """Per-class scores of several runs as grouped bars, one group per class, values on hover."""
    fig = go.Figure()
    for i, (name, values) in enumerate(series):
        fig.add_trace(
            go.Bar(
                name=name,
                x=list(classes),
                y=[_none(v) for v in values],
                marker_color=run_color(i),
                hovertemplate="%{x}<br>" + metric + " %{y:.3f}<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        **LAYOUT,
        barmode="group",
        title=title or f"Per-class {metric}",
        height=420 if len(classes) <= MANY_TICKS else 520,
        xaxis=_class_axis(classes),
        yaxis=dict(title=metric, range=[0, 1]),
        legend=dict(orientation="h", y=-0.25) if len(classes) <= MANY_TICKS else TOP_LEGEND,
    )
    return fig


def class_score_heatmap(
    classes: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *, metric: str = "IoU", title: str | None = None
) -> go.Figure:
    """Per-class scores of many runs as a run x class heatmap: grouped bars stop being readable past a dozen runs."""
    fig = go.Figure(
        go.Heatmap(
            z=[[_none(v) for v in values] for _, values in series],
            x=list(classes),
            y=[name for name, _ in series],
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            colorbar=dict(title=metric),
            hovertemplate="%{y}<br>%{x}: " + metric + " %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        **LAYOUT,
        title=title or f"Per-class {metric}",
        height=max(360, 16 * len(series) + 140) + (100 if len(classes) > MANY_TICKS else 0),
        xaxis=_class_axis(classes),
        yaxis=dict(autorange="reversed", type="category"),
    )
    return fig


def class_epoch_heatmap(
    classes: Sequence[str], epochs: Sequence[int], values: np.ndarray, *, metric: str = "IoU", title: str | None = None
) -> go.Figure:
    """A class x epoch heatmap of one run's per-class scores over training."""
    z = [[_none(float(v)) for v in row] for row in np.asarray(values, dtype=np.float64)]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(e) for e in epochs],
            y=list(classes),
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            colorbar=dict(title=metric),
            hovertemplate="%{y}, epoch %{x}<br>" + metric + " %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        **LAYOUT,
        title=title or f"{metric} per class and epoch",
        height=max(320, (20 if len(classes) > MANY_TICKS else 28) * len(classes) + 120),
        xaxis=dict(title="epoch", type="category"),
        yaxis={**_class_axis(classes, autorange="reversed"), "tickangle": 0},
    )
    return fig


CURVE_LEGEND = dict(
    itemclick="toggle",  # a click hides or shows one run (all its traces: they share its legend group)
    itemdoubleclick="toggleothers",  # a double click shows that run alone, another brings every run back
    groupclick="togglegroup",
    title=dict(text="runs: click to hide or show, double-click to isolate"),
)
MANY_CURVES = 12  # past this many runs the legend is a scrolling column beside the plots


def training_curves(runs: Sequence[dict[str, Any]]) -> go.Figure:
    """Loss (train dashed, val solid) and the monitored metric per epoch for several runs.

    Each entry: ``name, epochs, train_loss, val_loss, metric, metric_name, best_epoch`` and
    ``stopped_epoch`` (set only when the run stopped early). The best epoch is a star on the metric
    curve; an early stop is a dotted vertical line. Each run is one legend group with one legend entry (its
    validation loss, named after the run), so a click on the legend hides or shows all of the run's traces.
    """
    metric_names = sorted({r["metric_name"] for r in runs}) or ["metric"]
    many = len(runs) > MANY_CURVES
    mode = "lines" if many else "lines+markers"  # a marker per epoch doubles the drawing time of a sweep's curves
    titles = ("Loss (train dashed, val solid)", " / ".join(metric_names))
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.1)
    for i, r in enumerate(runs):
        color, name, ep = run_color(i), r["name"], r["epochs"]
        fig.add_trace(
            go.Scatter(
                x=ep,
                y=r["train_loss"],
                name=f"{name} train",
                legendgroup=name,
                showlegend=False,
                mode=mode,
                line=dict(color=color, dash="dash"),
                marker=dict(size=4),
                hovertemplate="epoch %{x}<br>train loss %{y:.3f}<extra>" + name + "</extra>",
            ),
            row=1,
            col=1,
        )
        # validation may run every few epochs (--val-every): connect the evaluated epochs
        fig.add_trace(
            go.Scatter(
                x=ep,
                y=r["val_loss"],
                name=name,
                legendgroup=name,
                mode=mode,
                line=dict(color=color),
                marker=dict(size=4),
                connectgaps=True,
                hovertemplate="epoch %{x}<br>val loss %{y:.3f}<extra>" + name + "</extra>",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=ep,
                y=r["metric"],
                name=f"{name} {r['metric_name']}",
                legendgroup=name,
                mode=mode,
                line=dict(color=color),
                marker=dict(size=5),
                showlegend=False,
                connectgaps=True,
                hovertemplate="epoch %{x}<br>" + r["metric_name"] + " %{y:.3f}<extra>" + name + "</extra>",
            ),
            row=1,
            col=2,
        )
        best = r.get("best_epoch")
        if best is not None and best in ep:
            y = r["metric"][ep.index(best)]
            fig.add_trace(
                go.Scatter(
                    x=[best],
                    y=[y],
                    name=f"{name} best epoch",
                    legendgroup=name,
                    mode="markers",
                    marker=dict(symbol="star", size=14, color=color, line=dict(color="black", width=1)),
                    hovertemplate=f"{name}: best epoch {best}<br>{r['metric_name']} %{{y:.3f}}<extra></extra>",
                    showlegend=False,
                ),
                row=1,
                col=2,
            )
        stop = r.get("stopped_epoch")
        if stop is not None:
            for col in (1, 2):
                fig.add_vline(x=stop, line=dict(color=color, dash="dot", width=2), row=1, col=col)
            fig.add_annotation(
                x=stop,
                y=0.02,
                yref="y2 domain",
                xref="x2",
                text=f"early stop: {name}",
                showarrow=False,
                font=dict(color=color, size=11),
                yanchor="bottom",
                xanchor="left",
                textangle=-90,
            )
    legend = dict(CURVE_LEGEND, **({} if many else dict(orientation="h", y=-0.2)))
    fig.update_layout(**LAYOUT, height=520 if many else 420, legend=legend)
    last = max((max(r["epochs"]) for r in runs if r["epochs"]), default=1)
    fig.update_xaxes(title_text="epoch", tick0=1, dtick=max(1, math.ceil(last / 10)))
    fig.update_yaxes(title_text="loss", row=1, col=1)
    return fig


def confusion_heatmap(
    cm: np.ndarray, classes: Sequence[str], *, shown: Sequence[int] | None = None, title: str = "Confusion matrix"
) -> go.Figure:
    """Row-normalised confusion matrix (recall per true class) with the raw counts on hover, on the classes
    ``shown`` (indices; default all): each row is normalised by all of its true class's pixels. Cells carry their
    fraction as text up to ``CELL_TEXT_CLASSES`` classes."""
    cm = np.asarray(cm, dtype=np.int64)  # (K, K)
    idx = list(range(len(classes))) if shown is None else [int(i) for i in shown]
    frac = row_normalize(cm)[np.ix_(idx, idx)]  # (n, n): fractions of the whole row
    names = [classes[i] for i in idx]
    cell_text = len(idx) <= CELL_TEXT_CLASSES
    text = [[("" if math.isnan(v) else f"{v:.2f}") for v in row] for row in frac] if cell_text else None
    fig = go.Figure(
        go.Heatmap(
            z=[[_none(float(v)) for v in row] for row in frac],
            x=names,
            y=names,
            zmin=0,
            zmax=1,
            colorscale="Blues",
            customdata=cm[np.ix_(idx, idx)],
            text=text,
            texttemplate="%{text}" if cell_text else None,
            textfont=dict(size=10),
            colorbar=dict(title="fraction<br>of row"),
            hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata:,} pixels (%{z:.1%} of the row)<extra></extra>",
        )
    )
    many = len(idx) > MANY_TICKS
    fig.update_layout(
        **LAYOUT,
        title=title,
        height=max(420, (22 if many else 34) * len(idx) + (260 if many else 160)),
        xaxis=_class_axis(names, title="predicted class", side="bottom"),
        yaxis={**_class_axis(names, title="true class", autorange="reversed"), "tickangle": 0},
    )
    return fig


def embedding_scatter(
    coords: np.ndarray,
    labels: np.ndarray,
    preds: np.ndarray,
    classes: Sequence[str],
    palette: Sequence[Sequence[int]],
    *,
    title: str = "",
    selected: int | None = None,
    extra: dict[str, Any] | None = None,
    height: int = 560,
) -> go.Figure:
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
        fig.add_trace(
            go.Scattergl(
                x=coords[sel, 0],
                y=coords[sel, 1],
                mode="markers",
                name=f"{cname} ({len(sel)})",
                legendgroup=cname,
                marker=dict(
                    color=rgb(palette[k]),
                    size=np.where(ok, 6, 8),
                    symbol=np.where(ok, "circle", "x"),
                    line=dict(width=0.5, color="rgba(0,0,0,0.4)"),
                    opacity=0.85,
                ),
                customdata=np.stack([idx_all[sel], names[sel]], axis=1),
                hovertemplate="point %{customdata[0]}<br>true " + cname + "<br>predicted %{customdata[1]}<extra></extra>",
            )
        )
    if selected is not None and 0 <= selected < len(coords):
        fig.add_trace(
            go.Scattergl(
                x=[coords[selected, 0]],
                y=[coords[selected, 1]],
                mode="markers",
                name=f"point {selected}",
                marker=dict(size=18, symbol="circle-open", color="black", line=dict(width=3)),
                hoverinfo="skip",
            )
        )
    if extra is not None:
        nb = list(extra.get("neighbors", []))
        if nb:
            fig.add_trace(
                go.Scattergl(
                    x=coords[nb, 0],
                    y=coords[nb, 1],
                    mode="markers",
                    name="nearest training images",
                    marker=dict(size=14, symbol="circle-open", color="#d62728", line=dict(width=2)),
                    hoverinfo="skip",
                )
            )
        x, y = extra["xy"]
        fig.add_trace(
            go.Scatter(
                x=[x],
                y=[y],
                mode="markers+text",
                name=extra.get("name", "your image"),
                text=[extra.get("name", "your image")],
                textposition="top center",
                marker=dict(size=20, symbol="star", color="#d62728", line=dict(width=1, color="black")),
            )
        )
    fig.update_layout(
        **LAYOUT,
        title=title,
        height=height,
        legend=dict(itemsizing="constant", title="true class"),
        xaxis=dict(showticklabels=False, zeroline=False),
        yaxis=dict(showticklabels=False, zeroline=False),
    )
    return fig


def reliability_diagram(runs: Sequence[dict[str, Any]]) -> go.Figure:
    """Accuracy against confidence per bin for each run: the diagonal is perfect calibration; the shaded
    gap between a run's bars and the diagonal is what ECE averages (weighted by the bin's share)."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated", line=dict(color="#888", dash="dash")))
    for i, r in enumerate(runs):
        if "error" in r:  # a run that failed is named in the text beside the figure
            continue
        rel, color = r["reliability"], run_color(i)
        mid = [(lo + hi) / 2 for lo, hi in zip(rel["lower"], rel["upper"])]
        acc = [_none(v) for v in rel["accuracy"]]
        conf = [_none(v) for v in rel["confidence"]]
        fig.add_trace(
            go.Bar(
                x=mid,
                y=acc,
                width=[hi - lo for lo, hi in zip(rel["lower"], rel["upper"])],
                name=f"{r['run']} (ECE {r['ece']:.3f})",
                marker=dict(color=color, opacity=0.55),
                customdata=np.stack([conf, rel["count"]], 1),
                hovertemplate="confidence %{customdata[0]:.3f}<br>accuracy %{y:.3f}<br>%{customdata[1]:,} items<extra>"
                + r["run"]
                + "</extra>",
            )
        )
        gap_x, gap_y = [], []
        for m, a, c in zip(mid, acc, conf):
            if a is not None and c is not None:
                gap_x += [m, m, None]
                gap_y += [a, c, None]
        fig.add_trace(
            go.Scatter(
                x=gap_x,
                y=gap_y,
                mode="lines",
                line=dict(color=color, width=6),
                opacity=0.35,
                name=f"{r['run']} gap",
                hoverinfo="skip",
                showlegend=False,
            )
        )
    fig.update_layout(
        **LAYOUT,
        title="Reliability: accuracy against confidence (15 bins)",
        barmode="overlay",
        height=420,
        xaxis=dict(title="confidence", range=[0, 1]),
        yaxis=dict(title="accuracy", range=[0, 1]),
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def per_image_violin(a: Sequence[float | None], b: Sequence[float | None], name_a: str, name_b: str) -> go.Figure:
    """Per-image mIoU of two runs on the same images: violins with the points, and the paired lines' spread."""
    fig = go.Figure()
    for i, (name, values) in enumerate(((name_a, a), (name_b, b))):
        fig.add_trace(
            go.Violin(
                y=[_none(v) for v in values],
                name=name,
                box_visible=True,
                meanline_visible=True,
                points="all",
                line_color=run_color(i),
                hovertemplate="image %{pointNumber}: mIoU %{y:.3f}<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        **LAYOUT,
        title="Per-image mIoU (each image weighs the same)",
        height=400,
        yaxis=dict(title="mIoU of the image", range=[0, 1]),
        showlegend=False,
    )
    return fig


def pooled_vs_per_image(result: dict[str, Any]) -> go.Figure:
    """The two ways to average IoU, side by side for both runs, each formula on hover."""
    pooled = "pooled mIoU = mean over classes of ΣTP / Σ(TP + FP + FN), sums over every pixel of the split"
    per_image = "mean per-image mIoU = mean over images of (mean over the classes present of TP / (TP + FP + FN))"
    fig = go.Figure()
    for label, keys, formula in (
        ("pooled", ("miou_a", "miou_b"), pooled),
        ("mean per image", ("mean_per_image_a", "mean_per_image_b"), per_image),
    ):
        fig.add_trace(
            go.Bar(
                x=[result["run_a"], result["run_b"]],
                y=[result[keys[0]], result[keys[1]]],
                name=label,
                hovertemplate="%{x}: %{y:.3f}<br>" + formula + "<extra></extra>",
            )
        )
    fig.update_layout(
        **LAYOUT,
        barmode="group",
        height=320,
        title="Pooled and per-image mIoU (hover for the formulas)",
        yaxis=dict(range=[0, 1]),
    )
    return fig


def class_difference_bars(result: dict[str, Any]) -> go.Figure:
    """Per-class IoU difference A - B with its bootstrap interval; a bar whose interval crosses 0 is not significant."""
    diff = [_none(v) for v in result["class_difference"]]
    lo = [None if d is None or ci[0] is None or math.isnan(ci[0]) else d - ci[0] for d, ci in zip(diff, result["class_interval"])]
    hi = [None if d is None or ci[1] is None or math.isnan(ci[1]) else ci[1] - d for d, ci in zip(diff, result["class_interval"])]
    colors = ["#2ca02c" if ci[0] > 0 else "#d62728" if ci[1] < 0 else "#999" for ci in result["class_interval"]]
    fig = go.Figure(
        go.Bar(
            x=result["classes"],
            y=diff,
            marker_color=colors,
            error_y=dict(type="data", symmetric=False, array=hi, arrayminus=lo),
            hovertemplate="%{x}: %{y:+.3f} IoU<extra></extra>",
        )
    )
    fig.update_layout(
        **LAYOUT,
        height=360,
        title=f"IoU of {result['run_a']} minus {result['run_b']} per class (95% intervals; grey = not significant)",
        yaxis=dict(title="IoU difference", zeroline=True),
    )
    return fig


def measure_figure(table: dict[str, Any], note: str = "") -> go.Figure:
    """Any measure's result (``core.explorer.assess.measure_table``), drawn as its ``View`` says; ``note`` (which
    classes are shown) ends the title."""
    view = table.get("view") or {}
    kind = view.get("kind")
    if kind == "reliability":
        return reliability_diagram(table["runs"])
    if kind == "per_class_bins":
        return segment_recall_bars(table, key=view["series"][0][0], bins=list(view["bins"]), note=note)
    if kind == "per_class":
        titled = {**table, "title": f"{table.get('title', '')} ({note})"} if note else table
        return per_class_bars(titled, [tuple(s) for s in view["series"]])
    return empty_figure(f"{table.get('title', 'this measure')} has no figure")


def per_class_bars(table: dict[str, Any], series: Sequence[tuple[str, str]]) -> go.Figure:
    """Per class and run, one bar per series (the first light, the others dark and narrower in front)."""
    fig = go.Figure()
    runs = [r for r in table["runs"] if "error" not in r]
    for i, r in enumerate(runs):
        for j, (key, label) in enumerate(series):
            narrow = dict(width=0.8 / max(1, len(runs)) / 2) if j else {}
            fig.add_trace(
                go.Bar(
                    x=r["classes"],
                    y=r[key],
                    name=f"{r['run']} @{r['epoch']} {label}",
                    marker=dict(color=run_color(i), opacity=0.35 if j == 0 and len(series) > 1 else 1.0),
                    offsetgroup=str(i),
                    hovertemplate=f"%{{x}}: {label} %{{y:.3f}}<extra></extra>",
                    **narrow,
                )
            )
    labels = " and ".join(label for _, label in series)
    names = runs[0]["classes"] if runs else []
    many = len(names) > MANY_TICKS
    fig.update_layout(
        **LAYOUT,
        barmode="group",
        height=520 if many else 420,
        xaxis=_class_axis(names),
        yaxis=dict(range=[0, 1]),
        legend=TOP_LEGEND if many else dict(orientation="h", y=-0.25),
        title=f"{table.get('title', '')}: {labels} per class on {table['split']}",
    )
    return fig


def boundary_bars(table: dict[str, Any]) -> go.Figure:
    """Region IoU (light) and boundary IoU (dark) per class for each run."""
    return per_class_bars(
        {**table, "title": "Boundary IoU (band of 2% of the diagonal)"}, [("iou", "IoU"), ("boundary_iou", "boundary IoU")]
    )


def segment_recall_bars(
    table: dict[str, Any], key: str = "recall", bins: Sequence[str] | None = None, note: str = ""
) -> go.Figure:
    """Recall of ground-truth segments per class and size bin (a segment is found when half of it is predicted as its
    class); ``note`` (which classes are shown) ends the title."""
    bins = list(bins if bins is not None else table["bins"])
    fig = make_subplots(rows=1, cols=len(bins), subplot_titles=bins, shared_yaxes=True)
    for i, r in enumerate(table["runs"]):
        if "error" in r:
            continue
        for b in range(len(bins)):
            fig.add_trace(
                go.Bar(
                    x=r["classes"],
                    y=[row[b] for row in r[key]],
                    name=f"{r['run']} @{r['epoch']}",
                    marker_color=run_color(i),
                    customdata=[seg[b] for seg in r["segments"]] if "segments" in r else None,
                    showlegend=b == 0,
                    legendgroup=r["run"],
                    hovertemplate="%{x}: recall %{y:.2f} of %{customdata} segments<extra></extra>",
                ),
                row=1,
                col=b + 1,
            )
    names = next((r["classes"] for r in table["runs"] if "error" not in r), [])
    many = len(names) > MANY_TICKS
    title = "Segments found, by size" + (f" ({note})" if note else "")
    fig.update_layout(
        **LAYOUT,
        barmode="group",
        height=500 if many else 400,
        title=title,
        legend=TOP_LEGEND if many else dict(orientation="h", y=-0.3),
    )
    fig.update_xaxes(**_class_axis(names))
    fig.update_yaxes(range=[0, 1])
    return fig


def churn_line(steps: Sequence[dict[str, Any]], run: str) -> go.Figure:
    """Fraction of pixels whose predicted class changed between consecutive saved epochs (image; split where cached)."""
    x = [f"{s['from']}→{s['to']}" for s in steps]
    fig = go.Figure(go.Scatter(x=x, y=[s["fraction"] for s in steps], mode="lines+markers", name="this image"))
    if any(s["split_fraction"] is not None for s in steps):
        fig.add_trace(go.Scatter(x=x, y=[s["split_fraction"] for s in steps], mode="lines+markers", name="whole split"))
    fig.update_layout(
        **LAYOUT,
        height=300,
        title=f"{run}: pixels that changed class between saved epochs",
        yaxis=dict(title="fraction", rangemode="tozero"),
    )
    return fig


def parallel_coordinates(data: dict[str, Any]) -> go.Figure:
    """Runs as lines across one axis per hyper-parameter that varies, ending on the score, coloured by the score
    (``core.explorer.sweeps.parcoords``: categories come with their tick labels, wide ranges on a log10 axis).
    Dragging along an axis highlights the runs in that range."""
    dims = data.get("dimensions") or []
    if not data.get("runs") or len(dims) < 2:
        why = "no run has a score yet" if not data.get("runs") else "the runs do not differ in any hyper-parameter"
        return empty_figure(f"No parallel-coordinates plot: {why}.", height=200)
    score = data["score"]
    fig = go.Figure(
        go.Parcoords(
            line=dict(color=data["color"], colorscale="Viridis", showscale=True, colorbar=dict(title=score)),
            dimensions=dims,
            labelangle=-20,
        )
    )
    unscored = len(data.get("unscored") or [])
    note = f" ({unscored} without a score left out)" if unscored else ""
    fig.update_layout(
        **{**LAYOUT, "margin": dict(l=70, r=40, t=110, b=30)},
        height=420,
        title=f"{len(data['runs'])} runs: hyper-parameters against {score}{note}",
    )
    return fig


def warm_up() -> None:
    """Build and serialise a small figure of every trace kind the explorer draws. Plotly defines its classes and
    validators on first use (about 0.5 s on 2 cores), which would otherwise fall on the first click of a chart."""
    fig = make_subplots(rows=1, cols=2)
    for trace in (go.Bar(x=[0], y=[0]), go.Scatter(x=[0], y=[0]), go.Scattergl(x=[0], y=[0]), go.Violin(y=[0])):
        fig.add_trace(trace, row=1, col=1)
    fig.add_trace(go.Heatmap(z=[[0]], colorbar=dict(title=dict(text="x"))), row=1, col=2)
    fig.add_annotation(text="x", x=0, y=0, showarrow=False)
    fig.update_layout(**LAYOUT, title=dict(text="x"), legend=TOP_LEGEND, xaxis=_class_axis(["x"]), yaxis=dict(range=[0, 1]))
    fig.to_json()
    go.Figure(go.Parcoords(dimensions=[dict(values=[0], label="x")])).to_json()
