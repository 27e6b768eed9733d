"""Tab "Compare models": one image, its ground truth and the predictions of up to 12 runs side by side,
each at an epoch of its own, with a shared zoom, an optional ensemble, and one run across its epochs."""

from __future__ import annotations

from typing import Any

import gradio as gr

from app.common import (
    INFER,
    LONG,
    PRIVATE,
    READ,
    AppContext,
    bind,
    default_source,
    epoch_slider,
    gallery,
    markdown_table,
    picked,
    slider_init,
    step_index,
)
from app.figures import churn_line, topk_bars
from core import visualize as V
from core.explorer import assess, hardest_images, nearest_epoch, thumbnails
from core.explorer.compare import MAX_COMPARE, across_epochs, compare

MAX_GALLERY = 500  # thumbnails shown for a split (any index can still be typed)
SEG_COLUMNS = ["run", "epoch", "tags", "pixel_acc", "miou", "missing", "extra"]
CLS_COLUMNS = ["run", "epoch", "top1", "correct"]


# --- handlers (module level; ``ctx`` is bound by app.common.bind) ----------------------------------------
def compare_images(
    ctx: AppContext,
    dataset: str,
    split: str,
    image: int,
    runs: list[str],
    epochs: list,
    opacity: float = 0.55,
    ensemble: bool = False,
    zoom_x: float = 0.5,
    zoom_y: float = 0.5,
    zoom: float = 1.0,
):
    """Image, ground truth and each run's prediction on image ``image`` of ``dataset``/``split``.

    ``runs`` are run names, ``epochs`` one per run ("best", "last" or a number; the nearest saved epoch
    is used). Returns the gallery, the per-run scores on this image (JSON), a status line, a legend and a
    top-5 chart (classification).
    """
    ref = ctx.ws.dataset_split(dataset, split)
    result = compare(
        ctx.ws, ctx.renders, ref, image, runs, epochs, opacity=opacity, ensemble=ensemble, zoom=(zoom_x, zoom_y, zoom)
    )
    ds = ref.open()
    seg = ds.task.dense
    legend = (
        ctx.renders.path(("legend", tuple(ds.classes)), lambda: V.class_legend(ds.classes, ds.palette, width=1100), photo=False)
        if seg
        else None
    )
    table = markdown_table(result.scores["runs"], SEG_COLUMNS if seg else CLS_COLUMNS)
    topk = (
        gr.update(value=topk_bars(result.topk, true_label=result.scores.get("true_class")), visible=True)
        if result.topk
        else gr.update(visible=False)
    )
    columns = min(len(result.panels), 4)
    return (
        gr.update(value=gallery(result.panels), columns=columns),
        result.scores,
        result.status + "\n\n" + table,
        gr.update(value=legend, visible=seg),
        topk,
    )


def select_dataset(ctx: AppContext, dataset: str):
    """A new dataset: its splits, the runs with its classes (two selected), image 0."""
    ref = ctx.ws.sources().get(dataset)
    if ref is None:
        raise ValueError(f"unknown dataset {dataset!r}")
    names = ctx.ws.runs_for_source(dataset)
    return gr.update(choices=ctx.ws.splits(ref), value=ref.split), gr.update(choices=names, value=names[:4]), 0


def select_runs(ctx: AppContext, runs: list[str], memory: dict):
    """One epoch slider per selected run; the epochs list keeps each run's chosen epoch."""
    names = list(runs or [])
    if len(names) > MAX_COMPARE:
        raise ValueError(f"at most {MAX_COMPARE} runs at once; {len(names)} are selected. Deselect some.")
    epochs = [memory.get(n, "best") for n in names]
    out: list[Any] = [epochs]
    for k in range(MAX_COMPARE):
        if k < len(names):
            out += [gr.update(visible=True), f"**{names[k]}**", epoch_slider(ctx, names[k], epochs[k])]
        else:
            out += [gr.update(visible=False), "", gr.skip()]
    return tuple(out) + (gr.update(choices=names, value=names[0] if names else None),)


def set_epoch(ctx: AppContext, runs: list[str], memory: dict, slot: int, value: Any):
    """Slot ``slot``'s slider moved (or best/last pressed): the run's epoch in the list and in memory."""
    names = list(runs or [])
    if not 0 <= slot < len(names):
        return gr.skip(), gr.skip(), gr.skip()
    run = ctx.ws.run(names[slot])
    e = nearest_epoch(run, value)
    memory = {**memory, names[slot]: e}
    return [memory.get(n, "best") for n in names], memory, gr.update(value=e)


def agreement(ctx: AppContext, dataset: str, split: str, image: int, runs: list[str], epochs: list):
    """On the image: how many of the runs get each pixel right (consensus; the true classes that no run
    gets right are counted), and where each run is wrong and confident, wrong and unsure, right and unsure."""
    ref = ctx.ws.dataset_split(dataset, split)
    panels, data = assess.agreement(ctx.ws, ctx.renders, ref, image, runs, epochs)
    missed = ", ".join(f"{c} {n:,}" for c, n in data["none_right_by_class"].items() if n) or "none"
    return gallery(panels), data, f"Pixels no run gets right, by true class: {missed}"


def epoch_churn(ctx: AppContext, dataset: str, split: str, image: int, run: str):
    """The pixels whose predicted class changed between consecutive saved epochs, counted per true class,
    and the fraction changed per step (on the image, and on the split where its predictions are cached)."""
    panels, data = assess.epoch_churn(ctx.ws, ctx.renders, ctx.ws.dataset_split(dataset, split), image, run)
    return gallery(panels), churn_line(data["steps"], run), data


def swipe(panels: list | None):
    """The first two runs' overlays in the swipe view (gallery items 3 and 4: after the image and the ground truth)."""
    items = [p[0] if isinstance(p, (list, tuple)) else p for p in (panels or [])]
    return (items[2], items[3]) if len(items) >= 4 else gr.skip()


def split_gallery(ctx: AppContext, dataset: str, split: str):
    """Thumbnails of the split (written once, then served from the cache folder)."""
    ref = ctx.ws.dataset_split(dataset, split)
    n = min(ref.size(), MAX_GALLERY)
    paths = thumbnails(ref, range(n), ctx.thumbs_dir)
    ds = ref.open()
    return [(p, f"{i}: {ds.item_id(i)}") for i, p in enumerate(paths)], list(range(n))


def move(ctx: AppContext, dataset: str, split: str, image: int, direction: str):
    """The next, previous or a random image of the split."""
    return step_index(image, ctx.ws.dataset_split(dataset, split).size(), direction)


def hardest(ctx: AppContext, dataset: str, split: str, runs: list[str], epochs: list, progress=gr.Progress()):
    """The split sorted from hardest to easiest: per-image mIoU (or the true class's probability) averaged over the runs."""
    from core.explorer.compare import resolve_members

    ref = ctx.ws.dataset_split(dataset, split)
    names = ctx.ws.check_runs(runs, ref, MAX_COMPARE)
    if not names:
        raise ValueError("select at least one run first")
    members = resolve_members(ctx.ws, names, epochs)
    ranking = hardest_images([[m] for m in members], ref, progress=lambda f, m: progress(f, desc=m))[:MAX_GALLERY]
    idx = [i for i, _ in ranking]
    paths = thumbnails(ref, idx, ctx.thumbs_dir)
    label = ctx.ws.run(names[0]).task.score_label
    items = [(p, f"{i}: {s:.3f}") for p, (i, s) in zip(paths, ranking)]
    msg = f"Hardest first for {', '.join(names)} ({label}): image {idx[0]} … easiest image {idx[-1]}."
    return items, idx, idx[0], msg


def epochs_strip(ctx: AppContext, dataset: str, split: str, image: int, run: str, opacity: float = 0.55):
    """One run's predictions on the image at its saved epochs (at most 12, evenly spaced), with scores."""
    ref = ctx.ws.dataset_split(dataset, split)
    panels, rows = across_epochs(ctx.ws, ctx.renders, ref, image, run, opacity=opacity)
    return gallery(panels), {"run": run, "image": int(image or 0), "epochs": rows}


def zoom_center(ctx: AppContext, dataset: str, split: str, image: int, zoom: float, evt: gr.SelectData):
    """A click on the navigator: the zoom centre (fractions of the image's width and height), zoomed 3x if it was
    not zoomed yet."""
    from core.explorer.compare import display

    _, im, _ = ctx.ws.dataset_split(dataset, split).item(image)
    h, w = display(im).shape[:2]
    x, y = evt.index[:2]
    return round(min(max(x / w, 0.0), 1.0), 4), round(min(max(y / h, 0.0), 1.0), 4), zoom if zoom > 1 else 3


def navigator(ctx: AppContext, dataset: str, split: str, image: int):
    from core.explorer.compare import display

    _, im, _ = ctx.ws.dataset_split(dataset, split).item(image)
    return display(im)


# --- layout and wiring ----------------------------------------------------------------------------------------
def follow_runs(ctx: AppContext, dataset: str):
    """Runs changed on disk: the datasets and this dataset's runs in the menus."""
    sources = list(ctx.ws.sources())
    return gr.update(choices=sources), gr.update(choices=ctx.ws.runs_for_source(dataset) if dataset in sources else [])


def build(ctx: AppContext, version: gr.Number) -> dict[str, Any]:
    ws = ctx.ws
    sources = ws.sources()
    source0 = default_source(ctx)
    ref0 = sources.get(source0)
    runs0 = ws.runs_for_source(source0)[:4] if source0 else []  # the dataset shown first, its four best runs
    with gr.Row():
        dataset = gr.Dropdown(list(sources), value=source0, label="Dataset", scale=3)
        # choices change with the dataset; the server checks every value (allow_custom_value lets the API send any run's)
        split = gr.Dropdown(
            ws.splits(ref0) if ref0 else [], value=ref0.split if ref0 else None, label="Split", scale=1, allow_custom_value=True
        )
        index = gr.Number(0, precision=0, minimum=0, label="Image # (Enter)", scale=1)
        with gr.Column(scale=3, min_width=320):
            with gr.Row():
                buttons = {
                    d: gr.Button(t, size="sm") for d, t in (("previous", "◀ Previous"), ("next", "Next ▶"), ("random", "Random"))
                }
            hard_b = gr.Button("Hardest for the selected models", size="sm", variant="secondary")
    with gr.Row():
        runs = gr.Dropdown(
            ws.runs_for_source(source0) if source0 else [],
            value=runs0,
            multiselect=True,
            label=f"Runs (up to {MAX_COMPARE})",
            scale=4,
            elem_id="compare-runs",
            allow_custom_value=True,
        )
        opacity = gr.Slider(0, 1, value=0.55, step=0.05, label="Mask opacity", scale=2)
        ensemble = gr.Checkbox(False, label="Add the ensemble of the selected runs", scale=1)
    epochs = gr.JSON(["best"] * len(runs0), label="Epoch of each run (sent to /compare)", visible=False)
    memory = gr.State({})
    with gr.Accordion("Epoch of each run", open=True):
        with gr.Row(elem_classes="explorer-grid"):
            slots = []
            for k in range(MAX_COMPARE):
                name = runs0[k] if k < len(runs0) else None
                with gr.Column(min_width=200, visible=name is not None, elem_id=f"slot-{k + 1}") as col:
                    head = gr.Markdown(f"**{name}**" if name else "", elem_classes="slot-header")
                    slider = gr.Slider(step=1, label="Epoch", elem_id=f"slot-{k + 1}-epoch", **slider_init(ctx, name))
                    with gr.Row():
                        best_b, last_b = gr.Button("best", size="sm", min_width=50), gr.Button("last", size="sm", min_width=50)
                slots.append(dict(col=col, head=head, slider=slider, best=best_b, last=last_b))
    with gr.Accordion("Zoom (every column at once)", open=False):
        with gr.Row():
            nav = gr.Image(label="Click to centre the zoom", interactive=False, height=180, scale=1, buttons=[])
            with gr.Column(scale=3):
                zoom = gr.Slider(1, 8, value=1, step=0.5, label="Zoom factor (1 = whole image)")
                zoom_x = gr.Slider(0, 1, value=0.5, step=0.01, label="Centre x")
                zoom_y = gr.Slider(0, 1, value=0.5, step=0.01, label="Centre y")
    status = gr.Markdown("", elem_id="compare-status")
    panels = gr.Gallery(
        label="Image, ground truth and predictions",
        columns=4,
        height="auto",
        object_fit="contain",
        allow_preview=True,
        interactive=False,
        elem_id="compare-gallery",
        buttons=["download", "fullscreen"],
    )
    legend = gr.Image(show_label=False, interactive=False, height=90, container=False, buttons=[])
    topk = gr.Plot(label="Top-5 probabilities", visible=False)
    with gr.Accordion("Swipe between the first two runs", open=False):
        slider_view = gr.ImageSlider(label="first run | second run", type="filepath", elem_id="compare-swipe", max_height=520)
    with gr.Accordion("Scores on this image (JSON, as /compare returns them)", open=False):
        scores = gr.JSON(label="scores")
    with gr.Accordion("Agreement and uncertainty: which pixels no run gets right, where each is confidently wrong", open=False):
        agree_b = gr.Button("Show on this image")
        agree_md = gr.Markdown("")
        agree = gr.Gallery(
            label="Consensus · each run's confidence vs error (grey right and sure, blue right but unsure, yellow wrong and "
            "unsure, red wrong and confident)",
            columns=4,
            height="auto",
            object_fit="contain",
            interactive=False,
            elem_id="compare-agreement",
        )
        agree_data = gr.JSON(label="counts", visible=False)
    with gr.Accordion("Across epochs: one run's predictions on this image, early to final", open=False):
        with gr.Row():
            strip_run = gr.Dropdown(runs0, value=runs0[0] if runs0 else None, label="Run", scale=3, allow_custom_value=True)
            strip_b = gr.Button("Show across epochs", scale=1)
        strip = gr.Gallery(
            label="Predictions at the saved epochs (epoch: mIoU on this image)",
            columns=6,
            height=300,
            object_fit="contain",
            interactive=False,
            elem_id="compare-strip",
        )
        strip_scores = gr.JSON(label="scores per epoch", visible=False)
        churn_b = gr.Button("What changed between epochs")
        churn_gallery = gr.Gallery(
            label="Changed pixels (magenta) between consecutive saved epochs",
            columns=6,
            height=260,
            object_fit="contain",
            interactive=False,
            elem_id="compare-churn",
        )
        churn_plot = gr.Plot(label="Fraction changed")
        churn_data = gr.JSON(visible=False)
    order = gr.State([])
    with gr.Accordion("Browse the split", open=False) as browse_acc:
        browse = gr.Gallery(
            label="Images of the split (click one)",
            columns=10,
            height=260,
            allow_preview=False,
            object_fit="cover",
            interactive=False,
        )

    # wiring: one public endpoint per action; the rest wires the page
    view_in = [dataset, split, index, runs, epochs, opacity, ensemble, zoom_x, zoom_y, zoom]
    view_out = [panels, scores, status, legend, topk]
    show = dict(fn=bind(ctx, compare_images, 5, status=2), inputs=view_in, outputs=view_out, **INFER)
    slot_out = [epochs] + [c for s in slots for c in (s["col"], s["head"], s["slider"])] + [strip_run]
    runs.input(bind(ctx, select_runs, len(slot_out)), [runs, memory], slot_out, **PRIVATE, **READ).then(**show, **PRIVATE)
    dataset.input(bind(ctx, select_dataset, 3), [dataset], [split, runs, index], **PRIVATE, **READ).then(
        bind(ctx, select_runs, len(slot_out)), [runs, memory], slot_out, **PRIVATE, **READ
    ).then(**show, **PRIVATE)
    gr.on(
        [index.submit, opacity.release, ensemble.input, zoom.release, zoom_x.release, zoom_y.release],
        **show,
        api_name="compare",
        trigger_mode="always_last",
    )
    split.input(lambda: 0, None, index, **PRIVATE).then(**show, **PRIVATE)
    for direction, b in buttons.items():
        b.click(
            bind(ctx, lambda c, d, s, i, direction=direction: move(c, d, s, i, direction), 1),
            [dataset, split, index],
            index,
            **PRIVATE,
            **READ,
        ).then(**show, **PRIVATE)
    for k, s in enumerate(slots):
        setter = bind(ctx, lambda c, r, m, v, k=k: set_epoch(c, r, m, k, v), 3)
        s["slider"].release(setter, [runs, memory, s["slider"]], [epochs, memory, s["slider"]], **PRIVATE, **READ).then(
            **show, **PRIVATE
        )
        for b, which in ((s["best"], "best"), (s["last"], "last")):
            b.click(
                bind(ctx, lambda c, r, m, k=k, w=which: set_epoch(c, r, m, k, w), 3),
                [runs, memory],
                [epochs, memory, s["slider"]],
                **PRIVATE,
                **READ,
            ).then(**show, **PRIVATE)
    hard_b.click(
        bind(ctx, hardest, 4, status=3),
        [dataset, split, runs, epochs],
        [browse, order, index, status],
        api_name="hardest",
        **LONG,
    ).then(lambda: gr.update(open=True, label="Browse the split: hardest first"), None, browse_acc, **PRIVATE).then(
        **show, **PRIVATE
    )
    browse.select(picked, [order], index, **PRIVATE).then(**show, **PRIVATE)
    agree_b.click(
        bind(ctx, agreement, 3, status=2),
        [dataset, split, index, runs, epochs],
        [agree, agree_data, agree_md],
        api_name="agreement",
        **INFER,
    )
    churn_b.click(
        bind(ctx, epoch_churn, 3),
        [dataset, split, index, strip_run],
        [churn_gallery, churn_plot, churn_data],
        api_name="churn",
        **INFER,
    )
    panels.change(swipe, [panels], slider_view, **PRIVATE)
    strip_b.click(
        bind(ctx, epochs_strip, 2),
        [dataset, split, index, strip_run, opacity],
        [strip, strip_scores],
        api_name="epochs_strip",
        **INFER,
    )
    nav.select(bind(ctx, zoom_center, 3), [dataset, split, index, zoom], [zoom_x, zoom_y, zoom], **PRIVATE, **READ).then(
        **show, **PRIVATE
    )
    index.change(bind(ctx, navigator, 1), [dataset, split, index], nav, **PRIVATE, **READ)
    version.change(bind(ctx, follow_runs, 2), [dataset], [dataset, runs], **PRIVATE, **READ)
    thumbs = dict(fn=bind(ctx, split_gallery, 2), inputs=[dataset, split], outputs=[browse, order])
    split.change(**thumbs, **PRIVATE, **READ)
    return dict(
        load=[
            dict(fn=bind(ctx, select_runs, len(slot_out)), inputs=[runs, memory], outputs=slot_out),
            show,
            thumbs,
            dict(fn=bind(ctx, navigator, 1), inputs=[dataset, split, index], outputs=nav),
        ]
    )
