"""Tab "Confusion": a run's confusion matrix, where it errs on an image, and two runs' disagreement."""

from __future__ import annotations

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
from app.figures import confusion_heatmap, empty_figure
from core.explorer import errors as E
from core.explorer import nearest_epoch


def partners(ctx: AppContext, name: str) -> list[str]:
    """Runs to compare ``name`` with (same task and classes), those whose images are available first."""
    others = [n for n in ctx.ws.peers(name) if n != name]
    return sorted(others, key=lambda n: not images_available(ctx, n))


def confusion(ctx: AppContext, run: str, epoch: int | str = "best"):
    """The validation confusion matrix recorded at ``epoch`` (the nearest saved one): heatmap of recall
    per true class, the count table, and the counts as JSON."""
    r = ctx.ws.run(run)
    e = nearest_epoch(r, epoch)
    if r.record(e) is None or r.record(e).get("confusion") is None:
        msg = f"run {run} recorded no confusion matrix for epoch {e}"
        return gr.update(value=e), empty_figure(msg), pd.DataFrame(), {}, msg
    cm, rows = E.matrix_rows(r, e)
    fig = confusion_heatmap(cm, r.classes, title=f"{run}, epoch {e}: recall per true class (hover: {r.task.unit})")
    table = pd.DataFrame(rows, columns=["true \\ predicted", *r.classes])
    data = {"run": run, "epoch": e, "classes": r.classes, "matrix": cm.tolist()}
    return (
        gr.update(value=e),
        fig,
        table,
        data,
        f"{run} · epoch {e} · {int(cm.sum()):,} {r.task.unit} of the validation split",
    )


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
    a, b = E.class_index(r, true_class, "true"), E.class_index(r, predicted_class, "predicted")
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
    a, b = E.class_index(r, true_class, "true"), E.class_index(r, predicted_class, "predicted")
    panels, order, msg = E.cell_images(
        ref, (r, nearest_epoch(r, epoch)), a, b, ctx.thumbs_dir, progress=lambda f, m: progress(f, desc=m)
    )
    return gallery(panels), order, msg


def pixel(ctx: AppContext, run: str, epoch: int | str, split: str, image: int, evt: gr.SelectData):
    """True and predicted class of the clicked pixel of the confusion map."""
    r = ctx.ws.run(run)
    if not r.task.dense:
        return gr.skip()
    return E.pixel_info(ctx.ws.run_split(run, split), image, (r, nearest_epoch(r, epoch)), evt.index)


def pick_cell(ctx: AppContext, run: str, evt: gr.SelectData):
    """Table click -> (a, b): row = true class, column = predicted class (column 0 holds the names)."""
    r = ctx.ws.run(run)
    row, col = evt.index if isinstance(evt.index, (list, tuple)) else (evt.index, 0)
    if col == 0 or not (0 <= row < r.num_classes and 1 <= col <= r.num_classes):
        return gr.skip(), gr.skip()
    return r.classes[row], r.classes[col - 1]


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


def move(ctx: AppContext, run: str, split: str, image: int, direction: str):
    return step_index(image, ctx.ws.run_split(run, split).size(), direction)


def build(ctx: AppContext, version: gr.Number) -> dict[str, Any]:
    ws = ctx.ws
    run0 = default_run(ctx)
    r0 = ws.run(run0) if run0 else None
    others0 = partners(ctx, run0) if r0 else []
    a0, b0 = E.first_cell(r0, nearest_epoch(r0, "best")) if r0 else (None, None)
    splits0 = ws.splits(ws.dataset(run0)) if run0 else []
    with gr.Row():
        run = gr.Dropdown(ws.names, value=run0, label="Run", scale=3)
        epoch = gr.Slider(step=1, label="Epoch", scale=3, **slider_init(ctx, run0))
        jumps = {w: gr.Button(w, size="sm", scale=0, min_width=60) for w in ("best", "last")}
    status = gr.Markdown("")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            matrix_plot = gr.Plot(label="Confusion matrix (validation split, from history)", elem_id="confusion-matrix")
        with gr.Column(scale=2):
            gr.Markdown("**Pick a cell**: click a count in the table (row = true class, column = predicted), or use the menus.")
            matrix_table = gr.Dataframe(label="Counts (rows: true, columns: predicted)", interactive=False, max_height=420)
            with gr.Row():
                cls_a = gr.Dropdown(r0.classes if r0 else [], value=a0, label="True class (a)", allow_custom_value=True)
                cls_b = gr.Dropdown(r0.classes if r0 else [], value=b0, label="Predicted class (b)", allow_custom_value=True)
            find_b = gr.Button("Find the images with the most a → b pixels", variant="secondary")
    with gr.Row():
        split = gr.Dropdown(splits0, value=splits0[0] if splits0 else None, label="Split", scale=1, allow_custom_value=True)
        index = gr.Number(0, precision=0, minimum=0, label="Image # (Enter)", scale=1)
        steps = {d: gr.Button(t, size="sm", scale=1) for d, t in (("previous", "◀ Previous"), ("next", "Next ▶"))}
        run_b = gr.Dropdown(
            others0,
            value=others0[0] if others0 else None,
            label="Run B, for the disagreement map",
            scale=2,
            allow_custom_value=True,
        )
        epoch_b = gr.Slider(step=1, label="Epoch of run B", scale=2, **slider_init(ctx, others0[0] if others0 else None))
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=260):
            cmap = gr.Image(
                label="Confusion map: right dimmed, wrong in the predicted class's colour (click a pixel)",
                interactive=False,
                elem_id="confusion-map",
                buttons=["download", "fullscreen"],
            )
            pixel_md = gr.Markdown("Click the confusion map to read a pixel's true and predicted class.")
        maps = gr.Gallery(
            label="Image · cell a → b · disagreement with run B",
            columns=3,
            height="auto",
            object_fit="contain",
            interactive=False,
            elem_id="confusion-maps",
            scale=3,
        )
    with gr.Accordion("Counts on this image (JSON)", open=False):
        image_data = gr.JSON(label="counts")
    order = gr.State([])
    cell_gallery = gr.Gallery(
        label="Images with the most a → b pixels (click to load)",
        columns=6,
        height=240,
        allow_preview=False,
        object_fit="cover",
        interactive=False,
    )
    with gr.Accordion("The matrix as JSON", open=False):
        matrix_data = gr.JSON(label="matrix")

    matrix = dict(
        fn=bind(ctx, confusion, 5, status=4), inputs=[run, epoch], outputs=[epoch, matrix_plot, matrix_table, matrix_data, status]
    )
    image_ev = dict(
        fn=bind(ctx, confusion_image, 4, status=3),
        inputs=[run, epoch, split, index, cls_a, cls_b, run_b, epoch_b],
        outputs=[maps, cmap, image_data, status],
    )
    index.submit(**image_ev, api_name="confusion_image", **INFER)  # the public endpoints first: they keep their names
    epoch.release(**matrix, api_name="confusion", **READ).then(**image_ev, **PRIVATE, **INFER)
    run.input(
        bind(ctx, select_run, 7), [run, run_b], [epoch, split, cls_a, cls_b, run_b, epoch_b, index], **PRIVATE, **READ
    ).then(**matrix, **PRIVATE, **READ).then(**image_ev, **PRIVATE, **INFER)
    for which, b in jumps.items():
        b.click(lambda name, w=which: epoch_slider(ctx, name, w), [run], epoch, **PRIVATE).then(**matrix, **PRIVATE, **READ).then(
            **image_ev, **PRIVATE, **INFER
        )
    matrix_table.select(bind(ctx, pick_cell, 2), [run], [cls_a, cls_b], **PRIVATE).then(**image_ev, **PRIVATE, **INFER)
    gr.on([cls_a.input, cls_b.input, epoch_b.release, split.input], **image_ev, **PRIVATE, **INFER)
    run_b.input(lambda name: epoch_slider(ctx, name, "best"), [run_b], epoch_b, **PRIVATE).then(**image_ev, **PRIVATE, **INFER)
    for direction, b in steps.items():
        b.click(bind(ctx, lambda c, r, s, i, d=direction: move(c, r, s, i, d), 1), [run, split, index], index, **PRIVATE).then(
            **image_ev, **PRIVATE, **INFER
        )
    cmap.select(bind(ctx, pixel, 1), [run, epoch, split, index], pixel_md, **PRIVATE, **INFER)
    find_b.click(
        bind(ctx, cell_images, 3, status=2),
        [run, epoch, split, cls_a, cls_b],
        [cell_gallery, order, status],
        api_name="confusion_cell_images",
        **LONG,
    )
    cell_gallery.select(picked, [order], index, **PRIVATE).then(**image_ev, **PRIVATE, **INFER)
    version.change(
        lambda name: (gr.update(choices=ws.names), gr.update(choices=partners(ctx, name) if name in ws.runs else [])),
        [run],
        [run, run_b],
        **PRIVATE,
    )
    ranges = dict(
        fn=lambda a, b: (epoch_slider(ctx, a, "best"), epoch_slider(ctx, b, "best")),
        inputs=[run, run_b],
        outputs=[epoch, epoch_b],
    )
    return dict(load=[ranges, matrix, dict(image_ev, **INFER)])
