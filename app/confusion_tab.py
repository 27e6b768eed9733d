"""Tab "Confusion": a run's confusion matrix, where it errs on an image, and two runs' disagreement."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import gradio as gr
import pandas as pd

from app.common import (
    INFER,
    LONG,
    PRIVATE,
    READ,
    AppContext,
    bind,
    default_run,
    epoch_slider,
    gallery,
    images_available,
    picked,
    slider_init,
    step_index,
)
from core.explorer import class_index, nearest_epoch
from core.explorer import errors as E
from core.explorer.classes import CLASS_ORDERS, MATRIX_CLASSES
from core.explorer.figures import confusion_heatmap, empty_figure

TABLE_CORNER = "true \\ predicted"
PAIR_COLUMNS = ["true class", "predicted class", "pixels", "% of the true class"]


def partners(ctx: AppContext, name: str) -> list[str]:
    """Runs to compare ``name`` with (same task and classes), those whose images are available first."""
    others = [n for n in ctx.ws.peers(name) if n != name]
    return sorted(others, key=lambda n: not images_available(ctx, n))


def confusion(ctx: AppContext, run: str, epoch: int | str = "best", by: str = "frequency"):
    """The validation confusion matrix recorded at ``epoch`` (the nearest saved one): heatmap of recall per true
    class and the count table, on at most 30 classes chosen ``by`` "frequency" (most pixels in the ground truth)
    or "error" (most pixels missed or wrongly claimed); the whole matrix and its most confused pairs as JSON."""
    r = ctx.ws.run(run)
    e = nearest_epoch(r, epoch)
    if r.record(e) is None or r.record(e).get("confusion") is None:
        msg = f"run {run} recorded no confusion matrix for epoch {e}"
        return gr.update(value=e), empty_figure(msg), pd.DataFrame(columns=[TABLE_CORNER]), {}, msg
    cm, shown, rows, pairs = E.matrix_view(r, e, by)
    names = [r.classes[i] for i in shown]
    which = f" ({len(shown)} of {r.num_classes} classes, by {by})" if len(shown) < r.num_classes else ""
    fig = confusion_heatmap(cm, r.classes, shown=shown, title=f"{run}, epoch {e}: recall per true class{which}")
    table = pd.DataFrame(rows, columns=[TABLE_CORNER, *names])
    data = {"run": run, "epoch": e, "classes": r.classes, "matrix": cm.tolist(), "shown": names, "pairs": pairs}
    return (
        gr.update(value=e),
        fig,
        table,
        data,
        f"{run} · epoch {e} · {int(cm.sum()):,} {r.task.unit} of the validation split{which}",
    )


def pairs_table(data: dict) -> pd.DataFrame:
    """The most confused pairs of ``/confusion``'s JSON as a table."""
    rows = [[p["true"], p["predicted"], p["pixels"], round(100 * p["share"], 2)] for p in (data or {}).get("pairs", [])]
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def confusion_image(
    ctx: AppContext,
    run: str,
    epoch: int | str,
    split: str,
    image: int,
    true_class: str,
    predicted_class: str,
    run_b: str | None = None,
    epoch_b: int | str = "best",
):
    """On one image: the confusion map, the pixels of cell (true_class -> predicted_class) and, with
    ``run_b``, where the two runs disagree. Returns a gallery, the counts as JSON and a status line."""
    r = ctx.ws.run(run)
    ref = ctx.ws.run_split(run, split)
    a, b = class_index(r.classes, true_class, "true"), class_index(r.classes, predicted_class, "predicted")
    other = None
    if run_b:
        ctx.ws.check_runs([run_b], ref, 1)
        other = (ctx.ws.run(run_b), nearest_epoch(ctx.ws.run(run_b), epoch_b))
    result = E.image_errors(ctx.renders, ref, image, (r, nearest_epoch(r, epoch)), a, b, other)
    mistakes = "; ".join(f"{m['true']} → {m['predicted']}: {m['pixels']:,} px" for m in result.scores.get("mistakes", []))
    text = (
        f"**{result.scores['wrong_pixels']:,} wrong pixels.** Most frequent: {mistakes or 'none'}"
        if "wrong_pixels" in result.scores
        else ""
    )
    panels = list(result.panels)
    cmap = panels.pop(1) if len(panels) > 1 else None  # shown on its own, where a click reads a pixel
    return gallery(panels), cmap.path if cmap else None, result.scores, f"{result.status}  \n{text}"


def cell_images(
    ctx: AppContext, run: str, epoch: int | str, split: str, true_class: str, predicted_class: str, progress=gr.Progress()
):
    """The images of the split with the most pixels of ``true_class`` predicted as ``predicted_class``."""
    r = ctx.ws.run(run)
    ref = ctx.ws.run_split(run, split)
    a, b = class_index(r.classes, true_class, "true"), class_index(r.classes, predicted_class, "predicted")
    panels, order, msg = E.cell_images(
        ctx.ws, ref, (r, nearest_epoch(r, epoch)), a, b, ctx.thumbs_dir, progress=lambda f, m: progress(f, desc=m)
    )
    return gallery(panels), order, msg


def pixel(ctx: AppContext, run: str, epoch: int | str, split: str, image: int, evt: gr.SelectData):
    """True and predicted class of the clicked pixel of the confusion map."""
    r = ctx.ws.run(run)
    if not r.task.dense:
        return gr.skip()
    return E.pixel_info(ctx.ws.run_split(run, split), image, (r, nearest_epoch(r, epoch)), evt.index)


def pick_cell(data: dict, evt: gr.SelectData):
    """Table click -> (a, b): row = true class, column = predicted class, of the classes the table shows (column 0
    holds the names)."""
    shown = (data or {}).get("shown", [])
    row, col = evt.index if isinstance(evt.index, (list, tuple)) else (evt.index, 0)
    if col == 0 or not (0 <= row < len(shown) and 1 <= col <= len(shown)):
        return gr.skip(), gr.skip()
    return shown[row], shown[col - 1]


def pick_pair(evt: gr.SelectData):
    """A click on a row of the most confused pairs -> (a, b): its true and predicted class."""
    row = evt.row_value or []
    return (row[0], row[1]) if len(row) >= 2 else (gr.skip(), gr.skip())


def select_run(ctx: AppContext, run: str, run_b: str | None):
    """A new run: its epochs, splits, classes (its largest mistake chosen) and the runs it can be compared with."""
    r = ctx.ws.run(run)
    splits = ctx.ws.splits(ctx.ws.dataset(run))
    others = partners(ctx, run)
    b_name = run_b if run_b in others else (others[0] if others else None)
    a0, b0 = E.first_cell(r, nearest_epoch(r, "best"))
    return (
        epoch_slider(ctx, run, "best"),
        gr.update(choices=splits, value=splits[0]),
        gr.update(choices=r.classes, value=a0),
        gr.update(choices=r.classes, value=b0),
        gr.update(choices=others, value=b_name),
        epoch_slider(ctx, b_name, "best"),
        0,
    )


def follow_runs(ctx: AppContext, run: str):
    """Runs changed on disk: the run menus offer them."""
    return gr.update(choices=ctx.ws.names), gr.update(choices=partners(ctx, run) if run in ctx.ws.runs else [])


def move(ctx: AppContext, run: str, split: str, image: int, direction: str):
    return step_index(image, ctx.ws.run_split(run, split).size(), direction)


# --- sections of the page ------------------------------------------------------------------------------------
def _matrix(ctx: AppContext, c: SimpleNamespace) -> None:
    """The run and epoch, the recorded matrix as a heatmap and a table, and the cell (a, b) to look at."""
    ws = ctx.ws
    c.run0 = default_run(ctx)
    r0 = ws.run(c.run0) if c.run0 else None
    a0, b0 = E.first_cell(r0, nearest_epoch(r0, "best")) if r0 else (None, None)
    classes0 = r0.classes if r0 else []
    with gr.Row():
        c.run = gr.Dropdown(ws.names, value=c.run0, label="Run", scale=3, filterable=True)
        c.epoch = gr.Slider(step=1, label="Epoch", scale=3, **slider_init(ctx, c.run0))
        c.jumps = {w: gr.Button(w, size="sm", scale=0, min_width=60) for w in ("best", "last")}
    c.status = gr.Markdown("")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            c.by = gr.Radio(
                list(CLASS_ORDERS),
                value="frequency",
                label=f"Classes in the matrix past {MATRIX_CLASSES}: the most frequent, or those with the most errors",
                elem_id="confusion-by",
            )
            c.matrix_plot = gr.Plot(label="Confusion matrix (validation split, from history)", elem_id="confusion-matrix")
        with gr.Column(scale=2):
            gr.Markdown(
                "**Pick a cell**: click a pair or a count below (row = true class, column = predicted), or use the menus."
            )
            with gr.Row(elem_id="confusion-pickers"):
                c.cls_a = gr.Dropdown(classes0, value=a0, label="True class (a)", allow_custom_value=True, filterable=True)
                c.cls_b = gr.Dropdown(classes0, value=b0, label="Predicted class (b)", allow_custom_value=True, filterable=True)
            c.find_b = gr.Button("Find the images with the most a → b pixels", variant="secondary")
            c.pairs = gr.Dataframe(
                pd.DataFrame(columns=PAIR_COLUMNS),
                label=f"Most confused pairs, over all classes (top {E.PAIRS})",
                interactive=False,
                max_height=360,
                elem_id="confusion-pairs",
            )
            with gr.Accordion("Counts of the classes in the matrix (click one to pick its cell)", open=False):
                c.matrix_table = gr.Dataframe(
                    pd.DataFrame(columns=[TABLE_CORNER]),
                    label="Counts (rows: true, columns: predicted)",
                    interactive=False,
                    max_height=300,
                )


def _image(ctx: AppContext, c: SimpleNamespace) -> None:
    """An image of a split with its confusion map (click a pixel), the cell's pixels and a disagreement with run B."""
    ws = ctx.ws
    others0 = partners(ctx, c.run0) if c.run0 else []
    splits0 = ws.splits(ws.dataset(c.run0)) if c.run0 else []
    b0 = others0[0] if others0 else None
    with gr.Row():
        c.split = gr.Dropdown(splits0, value=splits0[0] if splits0 else None, label="Split", scale=1, allow_custom_value=True)
        c.index = gr.Number(0, precision=0, minimum=0, label="Image # (Enter)", scale=1)
        c.steps = {d: gr.Button(t, size="sm", scale=1) for d, t in (("previous", "◀ Previous"), ("next", "Next ▶"))}
        c.run_b = gr.Dropdown(
            others0, value=b0, label="Run B, for the disagreement map", scale=2, allow_custom_value=True, filterable=True
        )
        c.epoch_b = gr.Slider(step=1, label="Epoch of run B", scale=2, **slider_init(ctx, b0))
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=260):
            c.cmap = gr.Image(
                label="Confusion map: right dimmed, wrong in the predicted class's colour (click a pixel)",
                interactive=False,
                elem_id="confusion-map",
                buttons=["download", "fullscreen"],
            )
            c.pixel_md = gr.Markdown("Click the confusion map to read a pixel's true and predicted class.")
        c.maps = gr.Gallery(
            label="Image · cell a → b · disagreement with run B",
            columns=3,
            height="auto",
            object_fit="contain",
            interactive=False,
            elem_id="confusion-maps",
            scale=3,
        )
    with gr.Accordion("Counts on this image (JSON)", open=False):
        c.image_data = gr.JSON(label="counts")


def _cell_images(c: SimpleNamespace) -> None:
    """The images with the most pixels in the chosen cell, and the matrix as JSON."""
    c.order = gr.State([])
    c.cell_gallery = gr.Gallery(
        label="Images with the most a → b pixels (click to load)",
        columns=6,
        height=240,
        allow_preview=False,
        object_fit="cover",
        interactive=False,
    )
    with gr.Accordion("The matrix as JSON", open=False):
        c.matrix_data = gr.JSON(label="matrix")


# --- wiring --------------------------------------------------------------------------------------------------
def _wire(ctx: AppContext, c: SimpleNamespace) -> tuple[dict, dict]:
    """/confusion, /confusion_image and what redraws them; returns the matrix and image events."""
    matrix_out = [c.epoch, c.matrix_plot, c.matrix_table, c.matrix_data, c.status]
    matrix = dict(fn=bind(ctx, confusion, 5, status=4), inputs=[c.run, c.epoch, c.by], outputs=matrix_out)
    image_ev = dict(
        fn=bind(ctx, confusion_image, 4, status=3),
        inputs=[c.run, c.epoch, c.split, c.index, c.cls_a, c.cls_b, c.run_b, c.epoch_b],
        outputs=[c.maps, c.cmap, c.image_data, c.status],
    )
    redraw = dict(**image_ev, **PRIVATE, **INFER)
    c.index.submit(**image_ev, api_name="confusion_image", **INFER)  # the public endpoints first: they keep their names
    c.epoch.release(**matrix, api_name="confusion", **READ).then(**redraw)
    chosen = [c.epoch, c.split, c.cls_a, c.cls_b, c.run_b, c.epoch_b, c.index]
    c.run.input(bind(ctx, select_run, 7), [c.run, c.run_b], chosen, **PRIVATE, **READ).then(**matrix, **PRIVATE, **READ).then(
        **redraw
    )
    for which, b in c.jumps.items():
        jump = b.click(lambda name, w=which: epoch_slider(ctx, name, w), [c.run], c.epoch, **PRIVATE)
        jump.then(**matrix, **PRIVATE, **READ).then(**redraw)
    c.by.input(**matrix, **PRIVATE, **READ)
    c.matrix_data.change(pairs_table, [c.matrix_data], [c.pairs], **PRIVATE)
    c.matrix_table.select(pick_cell, [c.matrix_data], [c.cls_a, c.cls_b], **PRIVATE).then(**redraw)
    c.pairs.select(pick_pair, None, [c.cls_a, c.cls_b], **PRIVATE).then(**redraw)
    gr.on([c.cls_a.input, c.cls_b.input, c.epoch_b.release, c.split.input], **redraw)
    c.run_b.input(lambda name: epoch_slider(ctx, name, "best"), [c.run_b], c.epoch_b, **PRIVATE).then(**redraw)
    for direction, b in c.steps.items():
        step = bind(ctx, lambda cx, r, s, i, d=direction: move(cx, r, s, i, d), 1)
        b.click(step, [c.run, c.split, c.index], c.index, **PRIVATE).then(**redraw)
    c.cmap.select(bind(ctx, pixel, 1), [c.run, c.epoch, c.split, c.index], c.pixel_md, **PRIVATE, **INFER)
    c.find_b.click(
        bind(ctx, cell_images, 3, status=2),
        [c.run, c.epoch, c.split, c.cls_a, c.cls_b],
        [c.cell_gallery, c.order, c.status],
        api_name="confusion_cell_images",
        **LONG,
    )
    c.cell_gallery.select(picked, [c.order], c.index, **PRIVATE).then(**redraw)
    return matrix, image_ev


def build(ctx: AppContext, version: gr.Number) -> dict[str, Any]:
    c = SimpleNamespace()
    _matrix(ctx, c)
    _image(ctx, c)
    _cell_images(c)
    matrix, image_ev = _wire(ctx, c)
    version.change(bind(ctx, follow_runs, 2), [c.run], [c.run, c.run_b], **PRIVATE)
    ranges = dict(
        fn=lambda a, b: (epoch_slider(ctx, a, "best"), epoch_slider(ctx, b, "best")),
        inputs=[c.run, c.run_b],
        outputs=[c.epoch, c.epoch_b],
    )
    return dict(load=[ranges, matrix, dict(image_ev, **INFER)])
