"""Tab "Metrics": the runs table, per-class scores, class x epoch heatmap and training curves of up to 120 runs, all
from each run's recorded history (no model runs, weights or not); then the views that do run the models
(boundary IoU, calibration, segment sizes, significance) and the report export, each with the 12-run limit of a
model pass."""

from __future__ import annotations

import tempfile
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from app.common import LONG, PRIVATE, READ, AppContext, bind, default_source
from core.explorer import JOBS, MAX_HISTORY_RUNS, MAX_RUNS, MEASURES, assess, finished_jobs, start_job, sweeps, tables
from core.explorer.classes import CHART_CLASSES
from core.explorer.figures import (
    class_difference_bars,
    class_epoch_heatmap,
    class_score_bars,
    class_score_heatmap,
    empty_figure,
    measure_figure,
    per_image_violin,
    pooled_vs_per_image,
    training_curves,
)
from core.explorer.report import command_for, parse_images, write_report

SUMMARY_HEADER = ["run", "best epoch", "state"]  # an empty table's header, until runs are chosen


def metrics(ctx: AppContext, runs: list[str], epoch: str = "best", top: int = CHART_CLASSES, classes: list[str] | None = None):
    """The runs table of the runs (as the Runs tab shows it: the keys that differ, the best epoch's scores, the
    state), per-class scores at ``epoch`` ("best", "last" or a number: the nearest evaluated epoch of each run) on
    the ``classes`` chosen, or else the ``top`` best and worst classes past 2 x ``top`` classes, training curves, and
    all of it as JSON. Up to 120 runs, read from their histories."""
    names = list(runs or [])
    if not names:
        msg = "Select at least one run."
        return pd.DataFrame(columns=SUMMARY_HEADER), empty_figure(msg), empty_figure(msg), {}, msg
    summary = sweeps.table(ctx.ws, names)  # checks the names and the limit
    per_class = tables.class_table(ctx.ws, names, epoch)
    shown, series, note = tables.class_chart(per_class, top, classes)
    draw = class_score_bars if len(series) <= MAX_RUNS else class_score_heatmap  # bars are unreadable past a dozen runs
    title = f"Per-class {per_class['metric']} at the {epoch} epoch" + (f" ({note})" if note else "")
    bars = draw(shown, series, metric=per_class["metric"], title=title)
    table = pd.DataFrame(tables.display_rows(summary["rows"], summary["columns"]))
    data = {"summary": summary["rows"], "columns": summary["columns"], "per_class": per_class, "shown_classes": shown}
    waiting = f" · no evaluated epoch yet: {', '.join(per_class['waiting'])}" if per_class["waiting"] else ""
    status = f"{len(names)} runs · from each run's recorded validation history (no recomputation){waiting}"
    return table, bars, training_curves(tables.curves(ctx.ws, names)), data, status


def class_menu(ctx: AppContext, runs: list[str], chosen: list[str] | None):
    """The class filter offers the classes of the selected runs, and keeps the chosen ones they have."""
    names = tables.class_names(ctx.ws, [n for n in runs or [] if n in ctx.ws.listed])
    return gr.update(choices=names, value=[c for c in chosen or [] if c in names])


def follow_runs(ctx: AppContext):
    """Runs changed on disk: the menus offer them (with or without weights: these views read the history)."""
    names = list(ctx.ws.listed)
    return gr.update(choices=names), gr.update(choices=names)


def open_runs(ctx: AppContext, runs: list[str]):
    """Runs opened from the Runs tab (up to 120): the menu's selection, and the first one's heatmap."""
    names = sweeps.metrics_selection(ctx.ws, runs)
    if not names:
        raise ValueError("select runs first: click rows of the table, or type their names")
    return gr.update(choices=list(ctx.ws.listed), value=names), gr.update(value=names[0])


def class_epoch(ctx: AppContext, run: str, top: int = CHART_CLASSES, classes: list[str] | None = None):
    """Per-class IoU (or accuracy) of one run at every evaluated epoch, on the ``classes`` chosen, or else the
    ``top`` best and worst classes at its last evaluated epoch past 2 x ``top`` classes."""
    if not run:
        return empty_figure("Select a run.")
    names, epochs, values, metric, note = tables.class_by_epoch(ctx.ws, run, top, classes)
    title = f"{run}: {metric} per class and epoch" + (f" ({note})" if note else "")
    return class_epoch_heatmap(names, epochs, values, metric=metric, title=title)


def measure(
    ctx: AppContext,
    runs: list[str],
    epoch: str,
    split: str,
    measure: str,
    top: int = CHART_CLASSES,
    classes: list[str] | None = None,
    progress=gr.Progress(),
):
    """Any registered measure (boundary IoU, calibration, segments by size, or one a plugin registered) of each run
    at ``epoch`` on ``split``: read from the runs' evaluation results (``python -m core.evaluate``, here or
    elsewhere), or computed once when the split is small. Returns its figure (a per-class chart on the ``classes``
    chosen, or the ``top`` best and worst past 2 x ``top`` classes), the per-class table, JSON and summary."""
    table = assess.measure_table(ctx.ws, runs, epoch, split, measure, progress=lambda f, m: progress(f, desc=m))
    rows = tables.measure_rows(table)
    frame = pd.DataFrame(rows).round(4) if rows else pd.DataFrame(columns=["run", "class"])
    shown, note = tables.measure_classes(table, top, classes)
    return measure_figure(shown, note), frame, table, tables.measure_summary(table)


def boundary(
    ctx: AppContext,
    runs: list[str],
    epoch: str,
    split: str,
    top: int = CHART_CLASSES,
    classes: list[str] | None = None,
    progress=gr.Progress(),
):
    """Region IoU, boundary IoU (band of 2% of the diagonal) and min(IoU, boundary IoU) per class of each run (the
    chart: the ``classes`` chosen, or the ``top`` best and worst)."""
    return measure(ctx, runs, epoch, split, "boundary", top, classes, progress)


def calibration(ctx: AppContext, runs: list[str], epoch: str, split: str, progress=gr.Progress()):
    """Expected calibration error (15 bins), per-class ECE and the reliability diagram of each run."""
    return measure(ctx, runs, epoch, split, "calibration", progress=progress)


def segment_sizes(
    ctx: AppContext,
    runs: list[str],
    epoch: str,
    split: str,
    top: int = CHART_CLASSES,
    classes: list[str] | None = None,
    progress=gr.Progress(),
):
    """Recall of ground-truth segments per class in small, medium and large area bins (bins in the plot titles), on
    the ``classes`` chosen, or the ``top`` best and worst."""
    fig, _, table, _ = measure(ctx, runs, epoch, split, "segment_sizes", top, classes, progress)
    return fig, table


def evaluate_background(ctx: AppContext, runs: list[str], epoch: str, split: str):
    """Start computing the selected runs' evaluation results on ``split`` at ``epoch`` in a background process
    (``python -m core.evaluate``); the views fill in when it is done. Returns the job's state."""
    pairs = assess.selection(ctx.ws, runs, epoch, split)
    state = start_job(ctx.ws, pairs)
    return job_text([state]), state


def job_text(states: list[dict]) -> str:
    return "  \n".join(f"Evaluation {s['status']}: {100 * s['fraction']:.0f}% · `{s['command']}`" for s in states)


def job_tick(ctx: AppContext, shown: str, finished: int):
    """Timer: the background evaluations' progress; when one has finished, the measure view is drawn again from
    the new results (``finished`` counts them)."""
    states = [job.state() for job in JOBS.values()]
    done = finished_jobs()
    text = job_text(states)
    return (text if text != shown else gr.skip()), (finished + done if done else gr.skip())


def significance(ctx: AppContext, run_a: str, epoch_a: str, run_b: str, epoch_b: str, split: str, progress=gr.Progress()):
    """Is A really better than B? Per-image mIoU of both, and a seeded paired bootstrap over images (1,000
    resamples) of the difference in dataset mIoU and in each class's IoU, with 95% intervals, in words."""
    r = assess.significance(ctx.ws, run_a, epoch_a, run_b, epoch_b, split, progress=lambda f, m: progress(f, desc=m))
    violin = per_image_violin(r["per_image_a"], r["per_image_b"], r["run_a"], r["run_b"])
    return f"**{r['verdict']}**", violin, pooled_vs_per_image(r), class_difference_bars(r), r


def export_report(ctx: AppContext, runs: list[str], epoch: str, split: str, images: str = "", progress=gr.Progress()):
    """A report of the selected runs at ``epoch`` on ``split`` for a write-up: one self-contained HTML file (tables,
    curves, confusion matrices, images side by side, across-epoch strips, significance, calibration), and the
    summary and per-class tables as LaTeX, Markdown and CSV (best value in bold, † where the gap to the best run is
    not significant). ``images``: numbers such as 0,5,12 (empty: the 4 hardest). SVG/PNG figures: python -m core.report."""
    folder = ctx.cache_dir / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    out = tempfile.mkdtemp(prefix="report-", dir=folder)
    names, shown = list(runs or []), parse_images(images)
    files = write_report(
        ctx.ws,
        names,
        f"{out}/report.html",
        epoch=epoch,
        split=split,
        images=shown,
        figures=False,
        progress=lambda f, m: progress(f, desc=m),
        command=command_for(ctx.ws, names, epoch, split, shown, "best") + "  # made in the app",
    )
    size = files.html.stat().st_size / 1e6
    status = f"Report of {len(runs)} runs on {split} at the {epoch} epoch: {size:.1f} MB, opens offline"
    texts = files.texts
    return str(files.html), [str(p) for p in files.tables.values()], texts["latex"], texts["markdown"], texts["csv"], status


# --- sections of the page ------------------------------------------------------------------------------------
def _history(ctx: AppContext, c: SimpleNamespace) -> None:
    """The runs, the summary table, per-class scores, training curves and the class x epoch heatmap."""
    ws = ctx.ws
    source = default_source(ctx)  # the dataset the Compare tab opens on: its runs, best first
    listed = list(ws.listed)  # runs with no weights yet too: these views read the history
    c.default = ws.runs_for_source(source)[:9] if source else listed[:9]
    c.source = source
    with gr.Row():
        c.runs = gr.Dropdown(
            listed,
            value=c.default[:6],
            multiselect=True,
            filterable=True,
            label=f"Runs (up to {MAX_HISTORY_RUNS}; type to search)",
            scale=4,
            elem_id="metrics-runs",
        )
        c.epoch = gr.Dropdown(
            ["best", "last"],
            value="best",
            allow_custom_value=True,
            label="Per-class scores at epoch (best, last or a number)",
            scale=1,
        )
    c.status = gr.Markdown("")
    c.table = gr.Dataframe(
        pd.DataFrame(columns=SUMMARY_HEADER),
        label="Runs table (best epoch of each run; the keys that differ between them, as in the Runs tab)",
        elem_id="metrics-table",
        interactive=False,
        wrap=False,
        max_height=360,
        pinned_columns=1,
    )
    with gr.Row():
        c.classes = gr.Dropdown(
            tables.class_names(ws, [n for n in c.default[:6] if n in ws.listed]),
            value=[],
            multiselect=True,
            filterable=True,
            label="Classes (type to search; none chosen: the best and worst N)",
            scale=4,
            elem_id="metrics-class-filter",
        )
        c.top = gr.Slider(1, 75, value=CHART_CLASSES, step=1, label="N: best and worst classes shown", scale=1)
    c.class_plot = gr.Plot(label="Per-class scores", elem_id="metrics-classes")
    c.curves_plot = gr.Plot(label="Training curves", elem_id="metrics-curves")
    c.heat_run = gr.Dropdown(
        listed, value=c.default[0] if c.default else None, label="Run for the class × epoch heatmap", filterable=True
    )
    c.heat_plot = gr.Plot(label="Class × epoch", elem_id="metrics-heatmap")
    with gr.Accordion("As JSON (what /metrics returns)", open=False):
        c.data = gr.JSON(label="metrics")


def _beyond_iou(ctx: AppContext, c: SimpleNamespace) -> None:
    """Boundary IoU, calibration and segments found by size, on a split, from the snapshots."""
    ws = ctx.ws
    gr.Markdown(
        "### Beyond region IoU\nThese run each model over a split, so they take runs with weights, at most "
        f"{MAX_RUNS} of the runs above: computed from the snapshots at the chosen epoch (once; then read from each "
        "run's `evaluation/` folder)."
    )
    splits = sorted({s for n in ws.names for s in ws.splits(ws.dataset(n))})
    split0 = ws.sources()[c.source].split if c.source else ("val" if "val" in splits else (splits or [None])[0])
    with gr.Row():
        c.split = gr.Dropdown(splits, value=split0, label="Split", allow_custom_value=True, scale=1, elem_id="metrics-split")
        c.boundary_b = gr.Button("Boundary IoU", scale=1)
        c.calibration_b = gr.Button("Calibration", scale=1)
        c.sizes_b = gr.Button("Segments found by size", scale=1)
    with gr.Row():
        names = [n for n in MEASURES.names() if MEASURES.get(n).view is not None]
        c.measure = gr.Dropdown(names, value="boundary", label="Measure (any registered one)", scale=2, elem_id="metrics-measure")
        c.measure_b = gr.Button("Show the measure", scale=1)
        c.background_b = gr.Button("Compute in the background", scale=1, variant="secondary")
    c.quality_md = gr.Markdown("", elem_id="metrics-quality-text")
    c.job_md = gr.Markdown("", elem_id="metrics-jobs")
    c.quality_plot = gr.Plot(label="Boundary IoU / reliability / segments by size", elem_id="metrics-quality")
    c.quality_table = gr.Dataframe(pd.DataFrame(columns=["run", "class"]), label="Per class", interactive=False, max_height=320)
    with gr.Accordion("As JSON", open=False):
        c.quality_data = gr.JSON(label="measures")


def _report(ctx: AppContext, c: SimpleNamespace) -> None:
    """The export of the selection (runs, epoch and split above) as a report and tables."""
    gr.Markdown(
        "### Write it up\nOne HTML file that opens offline (from a USB stick): tables, curves, confusion matrices, "
        "images side by side, across-epoch strips, significance against the best run, calibration. The runs, epoch "
        "and split above (missing evaluations are computed first); the tables as LaTeX, Markdown and CSV."
    )
    with gr.Row():
        c.report_images = gr.Textbox("", label="Images side by side (e.g. 0,5,12; empty: the 4 hardest)", scale=2)
        c.report_b = gr.Button("Export report", variant="primary", scale=1, elem_id="metrics-report")
    c.report_md = gr.Markdown("", elem_id="metrics-report-text")
    with gr.Row():
        c.report_file = gr.File(label="Report (HTML)", elem_id="metrics-report-file")
        c.report_tables = gr.File(label="Tables (LaTeX, Markdown, CSV)", file_count="multiple")
    with gr.Accordion("Tables as text, to copy", open=False):
        c.report_latex = gr.Code(label="LaTeX (booktabs)", language="latex", buttons=["copy"])
        c.report_markdown = gr.Code(label="Markdown", language="markdown", buttons=["copy"])
        c.report_csv = gr.Code(label="CSV", buttons=["copy"])


def _significance(ctx: AppContext, c: SimpleNamespace) -> None:
    """Two runs at their epochs, and the paired bootstrap over images."""
    names = ctx.ws.names
    gr.Markdown("### Is A really better than B?\nA paired bootstrap over the images of a split: runs both models.")
    with gr.Row():
        a0 = next((n for n in c.default if n in ctx.ws.runs), None)
        c.run_a = gr.Dropdown(names, value=a0, label="Run A", allow_custom_value=True, filterable=True)
        c.epoch_a = gr.Dropdown(["best", "last"], value="best", allow_custom_value=True, label="Epoch of A")
        b0 = next((n for n in c.default if n in ctx.ws.runs and n != a0), None)
        c.run_b = gr.Dropdown(names, value=b0, label="Run B", allow_custom_value=True, filterable=True)
        c.epoch_b = gr.Dropdown(["best", "last"], value="best", allow_custom_value=True, label="Epoch of B")
        c.test_b = gr.Button("Paired bootstrap over images", variant="primary")
    c.verdict_md = gr.Markdown("", elem_id="metrics-verdict")
    with gr.Row():
        c.violin = gr.Plot(label="Per-image mIoU", elem_id="metrics-violin")
        c.pooled = gr.Plot(label="Pooled vs per-image mIoU")
    c.class_diff = gr.Plot(label="Per-class IoU difference")
    with gr.Accordion("As JSON (what /significance returns)", open=False):
        c.sig_data = gr.JSON(label="bootstrap")


# --- wiring --------------------------------------------------------------------------------------------------
def _wire_history(ctx: AppContext, c: SimpleNamespace, version: gr.Number) -> tuple[dict, dict]:
    """/metrics and /class_epoch, redrawn as runs change on disk; returns both events."""
    show_out = [c.table, c.class_plot, c.curves_plot, c.data, c.status]
    show = dict(fn=bind(ctx, metrics, 5, status=4), inputs=[c.runs, c.epoch, c.top, c.classes], outputs=show_out)
    gr.on([c.epoch.input, c.top.release, c.classes.input], **show, api_name="metrics", trigger_mode="always_last", **READ)
    menu = c.runs.change(bind(ctx, class_menu, 1), [c.runs, c.classes], c.classes, trigger_mode="always_last", **PRIVATE)
    menu.then(**show, **PRIVATE, **READ)  # the filter first: it keeps only the classes of the runs now selected
    heat = dict(fn=bind(ctx, class_epoch, 1), inputs=[c.heat_run, c.top, c.classes], outputs=c.heat_plot)
    c.heat_run.change(**heat, api_name="class_epoch", **READ)
    gr.on([c.top.release, c.classes.input], **heat, **PRIVATE, **READ)
    # runs changed on disk: new runs in the menus, and the curves and heatmap grow while a run trains
    menus = bind(ctx, follow_runs, 2)
    version.change(menus, None, [c.runs, c.heat_run], **PRIVATE).then(**show, **PRIVATE, **READ).then(**heat, **PRIVATE, **READ)
    return show, heat


def _wire_measures(ctx: AppContext, c: SimpleNamespace) -> None:
    """/boundary, /calibration, /segment_sizes and /significance: whole-split passes, in the long lane."""
    quality_in, chart = [c.runs, c.epoch, c.split], [c.top, c.classes]  # the class filter of the per-class charts
    quality_out = [c.quality_plot, c.quality_table, c.quality_data, c.quality_md]
    c.boundary_b.click(bind(ctx, boundary, 4, status=3), quality_in + chart, quality_out, api_name="boundary", **LONG)
    c.calibration_b.click(bind(ctx, calibration, 4, status=3), quality_in, quality_out, api_name="calibration", **LONG)
    sizes_out = [c.quality_plot, c.quality_data]
    c.sizes_b.click(bind(ctx, segment_sizes, 2), quality_in + chart, sizes_out, api_name="segment_sizes", **LONG)
    generic = dict(fn=bind(ctx, measure, 4, status=3), inputs=quality_in + [c.measure] + chart, outputs=quality_out)
    c.measure_b.click(**generic, api_name="measure", **LONG)
    job_state = gr.JSON(visible=False)
    c.background_b.click(
        bind(ctx, evaluate_background, 2, status=0), quality_in, [c.job_md, job_state], api_name="evaluate_background", **READ
    )
    report_out = [c.report_file, c.report_tables, c.report_latex, c.report_markdown, c.report_csv, c.report_md]
    c.report_b.click(bind(ctx, export_report, 6, status=5), quality_in + [c.report_images], report_out, api_name="report", **LONG)
    finished = gr.Number(0, visible=False)
    gr.Timer(3.0).tick(bind(ctx, job_tick, 2), [c.job_md, finished], [c.job_md, finished], **PRIVATE, **READ)
    finished.change(**generic, **PRIVATE, **LONG)
    c.test_b.click(
        bind(ctx, significance, 5, status=0),
        [c.run_a, c.epoch_a, c.run_b, c.epoch_b, c.split],
        [c.verdict_md, c.violin, c.pooled, c.class_diff, c.sig_data],
        api_name="significance",
        **LONG,
    )


def build(ctx: AppContext, version: gr.Number) -> dict[str, Any]:
    c = SimpleNamespace()
    _history(ctx, c)
    _beyond_iou(ctx, c)
    _report(ctx, c)
    _significance(ctx, c)
    show, heat = _wire_history(ctx, c, version)
    _wire_measures(ctx, c)
    opener = SimpleNamespace(label="Metrics", tab="metrics", fn=open_runs, outputs=[c.runs, c.heat_run], then=[])
    return dict(load=[show, heat], open=opener)
