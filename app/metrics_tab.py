"""Tab "Metrics": summary table, per-class scores, class x epoch heatmap and training curves, all from history."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from app.common import LONG, PRIVATE, READ, AppContext, bind, default_source, fmt
from app.figures import (
    boundary_bars,
    class_difference_bars,
    class_epoch_heatmap,
    class_score_bars,
    empty_figure,
    per_image_violin,
    pooled_vs_per_image,
    reliability_diagram,
    segment_recall_bars,
    training_curves,
)
from core.explorer import assess, tables


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
    bars = class_score_bars(
        per_class["classes"], series, metric=per_class["metric"], title=f"Per-class {per_class['metric']} at the {epoch} epoch"
    )
    curves = tables.curves(ctx.ws, names)
    table = pd.DataFrame(rows).round({c: 4 for c in ("pixel acc", "mean acc", "mIoU", "fwIoU", "top-1", "top-5", "val loss")})
    data = {"summary": rows, "per_class": per_class}
    return (
        table,
        bars,
        training_curves(curves),
        data,
        f"{len(names)} runs · from each run's recorded validation history (no recomputation)",
    )


def class_epoch(ctx: AppContext, run: str):
    """Per-class IoU (or accuracy) of one run at every evaluated epoch."""
    if not run:
        return empty_figure("Select a run.")
    classes, epochs, values, metric = tables.class_by_epoch(ctx.ws, run)
    return class_epoch_heatmap(classes, epochs, values, metric=metric, title=f"{run}: {metric} per class and epoch")


def boundary(ctx: AppContext, runs: list[str], epoch: str, split: str, progress=gr.Progress()):
    """Region IoU, boundary IoU (band of 2% of the diagonal) and min(IoU, boundary IoU) per class of each run
    at ``epoch`` on ``split``: computed once from the snapshot, then read from the run's evaluation/ cache."""
    table = assess.boundary_table(ctx.ws, runs, epoch, split, progress=lambda f, m: progress(f, desc=m))
    rows = [
        {"run": f"{r['run']} @{r['epoch']}", "class": c, "IoU": i, "boundary IoU": b, "min": m}
        for r in table["runs"]
        for c, i, b, m in zip(r["classes"], r["iou"], r["boundary_iou"], r["min"])
    ]
    means = "; ".join(
        f"**{r['run']}** mIoU {fmt(r['miou'])}, boundary {fmt(r['mean_boundary_iou'])}, min {fmt(r['mean_min'])}"
        for r in table["runs"]
    )
    return boundary_bars(table), pd.DataFrame(rows).round(4), table, means


def calibration(ctx: AppContext, runs: list[str], epoch: str, split: str, progress=gr.Progress()):
    """Expected calibration error (15 bins), per-class ECE and the reliability diagram of each run at ``epoch`` on ``split``."""
    table = assess.calibration_table(ctx.ws, runs, epoch, split, progress=lambda f, m: progress(f, desc=m))
    rows = [
        {"run": f"{r['run']} @{r['epoch']}", "class": c, "ECE of its predictions": v}
        for r in table["runs"]
        for c, v in zip(r["classes"], r["class_ece"])
    ]
    text = "; ".join(f"**{r['run']}** ECE {fmt(r['ece'])} over {table['unit']}" for r in table["runs"])
    return reliability_diagram(table["runs"]), pd.DataFrame(rows).round(4), table, text


def segment_sizes(ctx: AppContext, runs: list[str], epoch: str, split: str, progress=gr.Progress()):
    """Recall of ground-truth segments per class in small, medium and large area bins (bins in the plot titles)."""
    table = assess.segment_table(ctx.ws, runs, epoch, split, progress=lambda f, m: progress(f, desc=m))
    return segment_recall_bars(table), table


def significance(ctx: AppContext, run_a: str, epoch_a: str, run_b: str, epoch_b: str, split: str, progress=gr.Progress()):
    """Is A really better than B? Per-image mIoU of both, and a seeded paired bootstrap over images (1,000
    resamples) of the difference in dataset mIoU and in each class's IoU, with 95% intervals, in words."""
    r = assess.significance(ctx.ws, run_a, epoch_a, run_b, epoch_b, split, progress=lambda f, m: progress(f, desc=m))
    violin = per_image_violin(r["per_image_a"], r["per_image_b"], r["run_a"], r["run_b"])
    return f"**{r['verdict']}**", violin, pooled_vs_per_image(r), class_difference_bars(r), r


def build(ctx: AppContext, version: gr.Number) -> dict[str, Any]:
    ws = ctx.ws
    source = default_source(ctx)  # the dataset the Compare tab opens on: its runs, best first
    default = ws.runs_for_source(source)[:9] if source else ws.names
    with gr.Row():
        runs = gr.Dropdown(ws.names, value=default[:6], multiselect=True, label="Runs", scale=4, elem_id="metrics-runs")
        epoch = gr.Dropdown(
            ["best", "last"],
            value="best",
            allow_custom_value=True,
            label="Per-class scores at epoch (best, last or a number)",
            scale=1,
        )
    status = gr.Markdown("")
    table = gr.Dataframe(
        label="Summary (best epoch of each run)", elem_id="metrics-table", interactive=False, wrap=False, max_height=360
    )
    class_plot = gr.Plot(label="Per-class scores", elem_id="metrics-classes")
    curves_plot = gr.Plot(label="Training curves", elem_id="metrics-curves")
    heat_run = gr.Dropdown(ws.names, value=default[0] if default else None, label="Run for the class × epoch heatmap")
    heat_plot = gr.Plot(label="Class × epoch", elem_id="metrics-heatmap")
    with gr.Accordion("As JSON (what /metrics returns)", open=False):
        data = gr.JSON(label="metrics")
    gr.Markdown(
        "### Beyond region IoU\nComputed from the snapshots at the chosen epoch on a split (once; then read from each run's "
        "`evaluation/` folder)."
    )
    splits = sorted({s for n in ws.names for s in ws.splits(ws.dataset(n))})
    with gr.Row():
        split0 = (
            ws.sources()[source].split if source else ("val" if "val" in splits else (splits or [None])[0])
        )  # the shown dataset's
        split = gr.Dropdown(splits, value=split0, label="Split", allow_custom_value=True, scale=1)
        boundary_b = gr.Button("Boundary IoU", scale=1)
        calibration_b = gr.Button("Calibration", scale=1)
        sizes_b = gr.Button("Segments found by size", scale=1)
    quality_md = gr.Markdown("")
    quality_plot = gr.Plot(label="Boundary IoU / reliability / segments by size", elem_id="metrics-quality")
    quality_table = gr.Dataframe(label="Per class", interactive=False, max_height=320)
    with gr.Accordion("As JSON", open=False):
        quality_data = gr.JSON(label="measures")
    gr.Markdown("### Is A really better than B?")
    with gr.Row():
        run_a = gr.Dropdown(ws.names, value=default[0] if default else None, label="Run A", allow_custom_value=True)
        epoch_a = gr.Dropdown(["best", "last"], value="best", allow_custom_value=True, label="Epoch of A")
        run_b = gr.Dropdown(ws.names, value=default[1] if len(default) > 1 else None, label="Run B", allow_custom_value=True)
        epoch_b = gr.Dropdown(["best", "last"], value="best", allow_custom_value=True, label="Epoch of B")
        test_b = gr.Button("Paired bootstrap over images", variant="primary")
    verdict_md = gr.Markdown("", elem_id="metrics-verdict")
    with gr.Row():
        violin = gr.Plot(label="Per-image mIoU", elem_id="metrics-violin")
        pooled = gr.Plot(label="Pooled vs per-image mIoU")
    class_diff = gr.Plot(label="Per-class IoU difference")
    with gr.Accordion("As JSON (what /significance returns)", open=False):
        sig_data = gr.JSON(label="bootstrap")

    show = dict(fn=bind(ctx, metrics, 5, status=4), inputs=[runs, epoch], outputs=[table, class_plot, curves_plot, data, status])
    gr.on([runs.change, epoch.input], **show, api_name="metrics", trigger_mode="always_last", **READ)
    heat = dict(fn=bind(ctx, class_epoch, 1), inputs=[heat_run], outputs=heat_plot)
    heat_run.change(**heat, api_name="class_epoch", **READ)
    # runs changed on disk: new runs in the menus, and the curves and heatmap grow while a run trains
    version.change(lambda: (gr.update(choices=ws.names), gr.update(choices=ws.names)), None, [runs, heat_run], **PRIVATE).then(
        **show, **PRIVATE, **READ
    ).then(**heat, **PRIVATE, **READ)
    quality_in = [runs, epoch, split]
    boundary_b.click(
        bind(ctx, boundary, 4, status=3),
        quality_in,
        [quality_plot, quality_table, quality_data, quality_md],
        api_name="boundary",
        **LONG,
    )
    calibration_b.click(
        bind(ctx, calibration, 4, status=3),
        quality_in,
        [quality_plot, quality_table, quality_data, quality_md],
        api_name="calibration",
        **LONG,
    )
    sizes_b.click(bind(ctx, segment_sizes, 2), quality_in, [quality_plot, quality_data], api_name="segment_sizes", **LONG)
    test_b.click(
        bind(ctx, significance, 5, status=0),
        [run_a, epoch_a, run_b, epoch_b, split],
        [verdict_md, violin, pooled, class_diff, sig_data],
        api_name="significance",
        **LONG,
    )
    return dict(load=[show, heat])
