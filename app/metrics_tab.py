"""Tab "Metrics": summary table, per-class scores, class x epoch heatmap and training curves, all from history."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from app.common import PRIVATE, READ, AppContext, bind
from app.figures import class_epoch_heatmap, class_score_bars, empty_figure, training_curves
from core.explorer import tables


def metrics(ctx: AppContext, runs: list[str], epoch: str = "best"):
    """Summary table (best epoch of each run), per-class scores at ``epoch`` ("best", "last" or a number:
    the nearest evaluated epoch of each run), training curves, and all of it as JSON."""
    names = list(runs or [])
    if not names:
        msg = "Select at least one run."
        return pd.DataFrame(columns=["run"]), empty_figure(msg), empty_figure(msg), {}, msg
    rows = tables.summary(ctx.ws, names)
    per_class = tables.class_table(ctx.ws, names, epoch)
    series = list(zip(per_class["labels"], [r["scores"] for r in per_class["runs"]]))
    bars = class_score_bars(per_class["classes"], series, metric=per_class["metric"], title=f"Per-class {per_class['metric']} at the {epoch} epoch")
    curves = tables.curves(ctx.ws, names)
    table = pd.DataFrame(rows).round({c: 4 for c in ("pixel acc", "mean acc", "mIoU", "fwIoU", "top-1", "top-5", "val loss")})
    data = {"summary": rows, "per_class": per_class}
    return table, bars, training_curves(curves), data, f"{len(names)} runs · from each run's recorded validation history (no recomputation)"


def class_epoch(ctx: AppContext, run: str):
    """Per-class IoU (or accuracy) of one run at every evaluated epoch."""
    if not run:
        return empty_figure("Select a run.")
    classes, epochs, values, metric = tables.class_by_epoch(ctx.ws, run)
    return class_epoch_heatmap(classes, epochs, values, metric=metric, title=f"{run}: {metric} per class and epoch")


def build(ctx: AppContext, version: gr.Number) -> dict[str, Any]:
    ws = ctx.ws
    default = ws.names_for("segmentation") or ws.names
    with gr.Row():
        runs = gr.Dropdown(ws.names, value=default[:6], multiselect=True, label="Runs", scale=4, elem_id="metrics-runs")
        epoch = gr.Dropdown(["best", "last"], value="best", allow_custom_value=True, label="Per-class scores at epoch (best, last or a number)",
                            scale=1)  # fmt: skip
    status = gr.Markdown("")
    table = gr.Dataframe(label="Summary (best epoch of each run)", elem_id="metrics-table", interactive=False, wrap=False, max_height=360)
    class_plot = gr.Plot(label="Per-class scores", elem_id="metrics-classes")
    curves_plot = gr.Plot(label="Training curves", elem_id="metrics-curves")
    heat_run = gr.Dropdown(ws.names, value=default[0] if default else None, label="Run for the class × epoch heatmap")
    heat_plot = gr.Plot(label="Class × epoch", elem_id="metrics-heatmap")
    with gr.Accordion("As JSON (what /metrics returns)", open=False):
        data = gr.JSON(label="metrics")

    show = dict(fn=bind(ctx, metrics, 5, status=4), inputs=[runs, epoch], outputs=[table, class_plot, curves_plot, data, status])
    gr.on([runs.change, epoch.input], **show, api_name="metrics", trigger_mode="always_last", **READ)
    heat = dict(fn=bind(ctx, class_epoch, 1), inputs=[heat_run], outputs=heat_plot)
    heat_run.change(**heat, api_name="class_epoch", **READ)
    # runs changed on disk: new runs in the menus, and the curves and heatmap grow while a run trains
    version.change(lambda: (gr.update(choices=ws.names), gr.update(choices=ws.names)), None, [runs, heat_run], **PRIVATE).then(
        **show, **PRIVATE, **READ).then(**heat, **PRIVATE, **READ)  # fmt: skip
    return dict(load=[show, heat])
