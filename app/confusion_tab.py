"""Tab "Confusion": a run's confusion matrix, where it errs on an image, and two runs' disagreement."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from app.common import HIDDEN, AppContext, default_run, epoch_slider_update, guard, images_available, slider_init
from app.compare import display, load_item
from app.figures import confusion_heatmap, empty_figure
from core import analysis as A
from core import visualize as V

MAX_CELL_IMAGES = 12


def worst_cell(run) -> tuple[str, str]:
    """(true, predicted) class names of the largest off-diagonal cell at the best epoch: the first cell worth a look."""
    classes = run.classes
    try:
        cm = A.confusion_at(run, A.nearest_epoch(run, "best")).astype(float)
    except Exception:  # noqa: BLE001  (no matrix recorded: any pair will do)
        return classes[0], classes[min(1, len(classes) - 1)]
    np.fill_diagonal(cm, -1)
    a, b = np.unravel_index(int(cm.argmax()), cm.shape)
    return classes[a], classes[b]


def partners(ctx: AppContext, name: str) -> list[str]:
    """Runs to compare ``name`` with (same task and classes), those whose images are available first."""
    others = [n for n in ctx.ws.peers(name) if n != name]
    return sorted(others, key=lambda n: not images_available(ctx, n))


def _class_index(run, name: str | None, what: str) -> int:
    if name not in run.classes:
        raise ValueError(f"choose the {what} class among: {', '.join(run.classes)}")
    return run.classes.index(name)


def _ref(ctx: AppContext, run_name: str, split: str) -> A.DatasetRef:
    ref = ctx.ws.dataset(run_name)
    if split not in ctx.ws.splits(ref):
        raise ValueError(f"run {run_name}'s dataset has no split {split!r}; splits: {', '.join(ctx.ws.splits(ref))}")
    return ref.with_split(split)


def build(ctx: AppContext) -> dict[str, Any]:
    ws = ctx.ws
    names = ws.names
    run0 = default_run(ctx)
    r0 = ws.run(run0) if run0 else None
    others0 = partners(ctx, run0) if r0 else []
    a0, b0 = worst_cell(r0) if r0 else (None, None)
    splits0 = ws.splits(ws.dataset(run0)) if run0 else []
    with gr.Row():
        run = gr.Dropdown(names, value=run0, label="Run", scale=3)
        epoch = gr.Slider(step=1, label="Epoch", scale=3, **slider_init(ctx, r0))
        best_b = gr.Button("best", size="sm", scale=0, min_width=60)
        last_b = gr.Button("last", size="sm", scale=0, min_width=60)
    status = gr.Markdown("")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            matrix_plot = gr.Plot(label="Confusion matrix (validation split, from history)", elem_id="confusion-matrix")
        with gr.Column(scale=2):
            gr.Markdown("**Pick a cell**: click a count in the table (row = true class, column = predicted), or use the menus.")
            matrix_table = gr.Dataframe(label="Pixel counts (rows: true, columns: predicted)", interactive=False, max_height=420)
            with gr.Row():
                cls_a = gr.Dropdown(r0.classes if r0 else [], value=a0, label="True class (a)", allow_custom_value=True)
                cls_b = gr.Dropdown(r0.classes if r0 else [], value=b0, label="Predicted class (b)", allow_custom_value=True)
            find_b = gr.Button("Find the images with the most a → b pixels", variant="secondary")
    with gr.Row():
        split = gr.Dropdown(splits0, value=splits0[0] if splits0 else None, label="Split", scale=1, allow_custom_value=True)
        index = gr.Number(0, precision=0, minimum=0, label="Image # (Enter)", scale=1)
        prev_b = gr.Button("◀ Previous", size="sm", scale=1)
        next_b = gr.Button("Next ▶", size="sm", scale=1)
    with gr.Row(equal_height=False, elem_classes="explorer-grid"):
        with gr.Column(min_width=240):
            gr.Markdown("**Image**")
            image_out = gr.Image(show_label=False, format="png", interactive=False)
        with gr.Column(min_width=240):
            gr.Markdown("**Confusion map**: right = dimmed, wrong = colour of the predicted class")
            cmap_out = gr.Image(show_label=False, format="png", interactive=False, elem_id="confusion-map")
            pixel_md = gr.Markdown("Click the map to read a pixel's true and predicted class.")
        with gr.Column(min_width=240):
            cell_title = gr.Markdown("**Cell a → b**: its pixels in magenta")
            cell_out = gr.Image(show_label=False, format="png", interactive=False, elem_id="confusion-cell")
    legend_out = gr.Image(show_label=False, format="png", interactive=False, height=90, container=False, buttons=[])
    errors_md = gr.Markdown("")
    order = gr.State([])
    cell_gallery = gr.Gallery(label="Images of the split with the most a → b pixels (click to load)", columns=6, height=240,
                              allow_preview=False, object_fit="cover", interactive=False)  # fmt: skip
    gr.Markdown("### Disagreement between two runs on this image")
    with gr.Row():
        run_b = gr.Dropdown(others0, value=others0[0] if others0 else None, label="Run B (same classes)", scale=3, allow_custom_value=True)
        epoch_b = gr.Slider(step=1, label="Epoch of run B", scale=3, **slider_init(ctx, ws.run(others0[0]) if others0 else None))
    with gr.Row(equal_height=False):
        with gr.Column(min_width=240):
            gr.Markdown("**A** = the run at the top of the tab, **B** = run B")
            dis_out = gr.Image(show_label=False, format="png", interactive=False, elem_id="confusion-disagreement")
        dis_legend = gr.Image(label="Pixels per category", show_label=False, format="png", interactive=False, buttons=[], container=False)

    # --- handlers ---------------------------------------------------------------------------------------------
    @guard(4, status=3)
    def confusion_matrix(run_name, epoch_v):
        """The validation confusion matrix recorded at an epoch: heatmap (recall per row) and count table."""
        r = ws.run(run_name)
        e = A.nearest_epoch(r, epoch_v)
        rec = r.record(e)
        if rec is None or rec.get("confusion") is None:
            msg = f"run {run_name} recorded no confusion matrix for epoch {e}"
            return gr.update(value=e), empty_figure(msg), pd.DataFrame(), msg
        cm = A.confusion_at(r, e)
        fig = confusion_heatmap(cm, r.classes, title=f"{run_name}, epoch {e}: recall per true class (hover: pixels)")
        table = pd.DataFrame(cm, columns=r.classes)
        table.insert(0, "true \\ predicted", r.classes)
        unit = "pixels" if r.task == "segmentation" else "images"
        return gr.update(value=e), fig, table, f"{run_name} · epoch {e} · {int(cm.sum()):,} {unit} of the validation split"

    image_outs = [image_out, cmap_out, cell_out, legend_out, errors_md, cell_title, dis_out, dis_legend, status]

    @guard(len(image_outs), status=8)
    def confusion_image(run_name, epoch_v, split_v, image_index, a_name, b_name, run_b_name, epoch_b_v):
        """Confusion map, highlight of cell (a, b) and disagreement with run B on one image of the split."""
        r = ws.run(run_name)
        e = A.nearest_epoch(r, epoch_v)
        ref = _ref(ctx, run_name, split_v)
        ds = ref.open()
        i, image, target = load_item(ref, image_index)
        a, b = _class_index(r, a_name, "true"), _class_index(r, b_name, "predicted")
        pred = A.predict_items([(r, e)], ref, [i])[0]
        title = f"**Cell {r.classes[a]} → {r.classes[b]}**"
        if r.task != "segmentation":
            top = int(pred.topk(1)[0][0])
            md = f"true **{r.classes[target]}**, predicted **{r.classes[top]}** ({pred.probs[top]:.2f})"
            return (display(image), None, None, None, md, title, None, None, f"{run_name} @ {e} · {ref.split} image {i}")
        k = r.num_classes
        cmap = V.confusion_map(image, target, pred, r.palette, ignore_index=r.ignore_index)
        mask = A.cell_mask(target, pred, a, b)
        cell = V.highlight(image, mask)
        errors = A.error_pairs(pred, target, k, r.ignore_index)
        wrong = int((A.valid_pixels(target, k, r.ignore_index) & (pred != target)).sum())
        lines = [f"{r.classes[t]} → {r.classes[p]}: {n:,} px" for t, p, n in errors]
        md = f"**{wrong:,} wrong pixels.** Most frequent (true → predicted): " + ("; ".join(lines) or "none")
        title = f"{title}: **{int(mask.sum()):,}** pixels in magenta"
        legend = V.class_legend(r.classes, r.palette, width=1100)
        dis_img, dis_leg = None, None
        if run_b_name:
            rb = ws.run(run_b_name)
            if rb.classes != r.classes or rb.task != r.task:
                raise ValueError(f"run {run_b_name} has other classes than {run_name}; pick a run of the same dataset")
            eb = A.nearest_epoch(rb, epoch_b_v)
            pred_b = A.predict_items([(rb, eb)], ref, [i])[0]
            cats, counts = A.disagreement(target, pred, pred_b, k, r.ignore_index)
            dis_img = display(V.category_map(cats))
            names = [f"{run_name}@{e} right, {run_b_name}@{eb} wrong" if j == 1 else
                     f"{run_b_name}@{eb} right, {run_name}@{e} wrong" if j == 2 else n
                     for j, n in enumerate(V.DISAGREEMENT_NAMES)]  # fmt: skip
            dis_leg = V.legend(names, V.DISAGREEMENT_COLORS, counts=[f"{c:,} px" for c in counts], columns=1, font_size=15)
        stat = f"{run_name} @ epoch {e} · {ref.split} image {i} (`{ds.item_id(i)}`)"
        return display(image), display(cmap), display(cell), legend, md, title, dis_img, dis_leg, stat

    @guard(3, status=2)
    def cell_images(run_name, epoch_v, split_v, a_name, b_name, progress=gr.Progress()):
        """The images of the split with the most pixels of true class a predicted as b."""
        r = ws.run(run_name)
        e = A.nearest_epoch(r, epoch_v)
        ref = _ref(ctx, run_name, split_v)
        a, b = _class_index(r, a_name, "true"), _class_index(r, b_name, "predicted")
        stats = A.split_stats([(r, e)], ref, progress=lambda f, m: progress(f, desc=m))
        top = A.top_images_for_cell(stats, a, b, MAX_CELL_IMAGES)
        unit = "px" if r.task == "segmentation" else "image"
        if not top:
            return [], [], f"No image of {ref.split} has {r.classes[a]} predicted as {r.classes[b]} at epoch {e}."
        paths = A.thumbnails(ref, [i for i, _ in top], ctx.thumbs_dir)
        items = [(p, f"{i}: {n:,} {unit}") for p, (i, n) in zip(paths, top)]
        total = int(stats.confusion[:, a, b].sum())
        return items, [i for i, _ in top], f"{r.classes[a]} → {r.classes[b]}: {total:,} {unit} in {ref.split}; most in image {top[0][0]}"

    @guard(1)
    def pixel_info(run_name, epoch_v, split_v, image_index, evt: gr.SelectData):
        """True and predicted class of the clicked pixel of the confusion map."""
        r = ws.run(run_name)
        if r.task != "segmentation":
            return gr.skip()
        e = A.nearest_epoch(r, epoch_v)
        ref = _ref(ctx, run_name, split_v)
        i, image, target = load_item(ref, image_index)
        pred = A.predict_items([(r, e)], ref, [i])[0]
        scale = display(image).shape[0] / image.shape[0]  # the map is shown enlarged by a whole factor
        x, y = (int(v // scale) for v in evt.index[:2])
        if not (0 <= y < target.shape[0] and 0 <= x < target.shape[1]):
            return gr.skip()
        t, p = int(target[y, x]), int(pred[y, x])
        truth = r.classes[t] if 0 <= t < r.num_classes and t != r.ignore_index else "unlabelled"
        verdict = "right" if t == p else "wrong"
        return f"Pixel (y={y}, x={x}): true **{truth}**, predicted **{r.classes[p]}** ({verdict})"

    def pick_cell(run_name, evt: gr.SelectData):
        """Table click → (a, b): row = true class, column = predicted class (column 0 holds the names)."""
        r = ws.run(run_name)
        row, col = evt.index if isinstance(evt.index, (list, tuple)) else (evt.index, 0)
        if col == 0 or not (0 <= row < r.num_classes and 1 <= col <= r.num_classes):
            return gr.skip(), gr.skip()
        return r.classes[row], r.classes[col - 1]

    def pick_image(order_v, evt: gr.SelectData):
        pos = evt.index if isinstance(evt.index, int) else evt.index[0]
        return order_v[pos] if 0 <= pos < len(order_v) else gr.skip()

    @guard(7)
    def select_run(run_name, run_b_name):
        """A new run: its epochs, splits, classes and the runs it can be compared with."""
        r = ws.run(run_name)
        splits = ws.splits(ws.dataset(run_name))
        others = partners(ctx, run_name)
        b_name = run_b_name if run_b_name in others else (others[0] if others else None)
        a_default, b_default = worst_cell(r)
        return (epoch_slider_update(ctx, run_name, "best"), gr.update(choices=splits, value=splits[0]),
                gr.update(choices=r.classes, value=a_default), gr.update(choices=r.classes, value=b_default),
                gr.update(choices=others, value=b_name), epoch_slider_update(ctx, b_name, "best"), 0)  # fmt: skip

    @guard(1)
    def select_run_b(run_b_name):
        return epoch_slider_update(ctx, run_b_name, "best")

    def make_step(delta: int):
        @guard(1)
        def step(run_name, split_v, image_index):
            n = _ref(ctx, run_name, split_v).size()
            return (int(image_index or 0) + delta) % n

        step.__name__ = "confusion_next" if delta > 0 else "confusion_previous"
        return step

    # --- wiring -------------------------------------------------------------------------------------------------
    matrix_in, matrix_out = [run, epoch], [epoch, matrix_plot, matrix_table, status]
    image_in = [run, epoch, split, index, cls_a, cls_b, run_b, epoch_b]
    run.input(select_run, [run, run_b], [epoch, split, cls_a, cls_b, run_b, epoch_b, index], api_name="confusion_select_run").then(
        confusion_matrix, matrix_in, matrix_out, api_name="confusion_matrix_after_run", **HIDDEN
    ).then(confusion_image, image_in, image_outs, api_name="confusion_image_after_run", **HIDDEN)  # fmt: skip
    epoch.release(confusion_matrix, matrix_in, matrix_out, api_name="confusion_matrix").then(
        confusion_image, image_in, image_outs, api_name="confusion_image_after_epoch", **HIDDEN
    )
    for btn, which in ((best_b, "best"), (last_b, "last")):
        btn.click(_jump(ctx, which), [run], epoch, api_name=f"confusion_{which}").then(
            confusion_matrix, matrix_in, matrix_out, api_name=f"confusion_matrix_{which}"
        ).then(confusion_image, image_in, image_outs, api_name=f"confusion_image_{which}")
    matrix_table.select(pick_cell, [run], [cls_a, cls_b], api_name="confusion_pick_cell").then(
        confusion_image, image_in, image_outs, api_name="confusion_image_after_cell", **HIDDEN
    )
    for comp, ev in ((cls_a, "a"), (cls_b, "b")):
        comp.input(confusion_image, image_in, image_outs, api_name=f"confusion_image_class_{ev}", **HIDDEN)
    index.submit(confusion_image, image_in, image_outs, api_name="confusion_image")
    cmap_out.select(pixel_info, [run, epoch, split, index], pixel_md, api_name="confusion_pixel")
    split.input(lambda: 0, None, index, api_name="confusion_reset_index", **HIDDEN).then(
        confusion_image, image_in, image_outs, api_name="confusion_image_after_split", **HIDDEN
    )
    for btn, delta in ((prev_b, -1), (next_b, 1)):
        btn.click(make_step(delta), [run, split, index], index, api_name=f"confusion_step_{'next' if delta > 0 else 'previous'}", **HIDDEN).then(
            confusion_image, image_in, image_outs, api_name=f"confusion_image_step_{'next' if delta > 0 else 'previous'}", **HIDDEN
        )
    find_b.click(cell_images, [run, epoch, split, cls_a, cls_b], [cell_gallery, order, status], api_name="confusion_cell_images")
    cell_gallery.select(pick_image, [order], index, api_name="confusion_pick_image").then(
        confusion_image, image_in, image_outs, api_name="confusion_image_after_pick", **HIDDEN
    )
    run_b.input(select_run_b, [run_b], epoch_b, api_name="confusion_select_run_b", **HIDDEN).then(
        confusion_image, image_in, image_outs, api_name="confusion_image_after_run_b", **HIDDEN
    )
    epoch_b.release(confusion_image, image_in, image_outs, api_name="confusion_image_after_epoch_b", **HIDDEN)
    @guard(2)
    def epoch_ranges(run_name, run_b_name):
        """Each epoch slider over its own run's saved epochs (on page load)."""
        return epoch_slider_update(ctx, run_name, "best"), epoch_slider_update(ctx, run_b_name, "best")

    return dict(load=[(epoch_ranges, [run, run_b], [epoch, epoch_b]), (confusion_matrix, matrix_in, matrix_out),
                      (confusion_image, image_in, image_outs)])


def _jump(ctx: AppContext, which: str):
    @guard(1)
    def jump(run_name):
        """The epoch slider at the run's best or last epoch."""
        return epoch_slider_update(ctx, run_name, which)

    jump.__name__ = f"confusion_{which}"
    return jump
