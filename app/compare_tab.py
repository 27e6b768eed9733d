"""Tab "Compare models": one image, its ground truth and the predictions of up to 12 runs side by side,
each at an epoch of its own, with a shared zoom, an optional ensemble, and one run across its epochs.

Handlers first (module level; ``ctx`` is bound by ``app.common.bind``), then one builder per section of the
page, then the wiring. The logic lives in ``core.explorer``."""

from __future__ import annotations

from types import SimpleNamespace
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
from core.explorer import (
    MAX_PAGE_SIZE,
    MAX_RUNS,
    PAGE_SIZE,
    assess,
    check_count,
    hardest_for,
    legend_html,
    nearest_epoch,
    page_of,
    sweeps,
    thumbnails,
)
from core.explorer.compare import across_epochs, compare, display, zoom_from_click
from core.explorer.figures import churn_line, topk_bars

SEG_COLUMNS = ["run", "epoch", "tags", "pixel_acc", "miou", "missing", "extra"]
CLS_COLUMNS = ["run", "epoch", "top1", "correct"]


# --- handlers ------------------------------------------------------------------------------------------------
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
    is used). Returns the gallery, the per-run scores on this image (JSON), a status line, a legend (HTML
    swatches of the classes in the ground truth and the predictions) and a top-5 chart (classification).
    """
    ref = ctx.ws.dataset_split(dataset, split)
    zoom_at = (zoom_x, zoom_y, zoom)
    result = compare(ctx.ws, ctx.renders, ref, image, runs, epochs, opacity=opacity, ensemble=ensemble, zoom=zoom_at)
    ds = ref.open()
    seg = ds.task.dense
    legend = legend_html(ds.classes, ds.palette, result.present) if seg else ""
    columns = SEG_COLUMNS if seg else CLS_COLUMNS
    if any("error" in r for r in result.scores["runs"]):
        columns = columns + ["error"]
    table = markdown_table(result.scores["runs"], columns)
    topk = gr.update(visible=False)
    if result.topk:
        topk = gr.update(value=topk_bars(result.topk, true_label=result.scores.get("true_class")), visible=True)
    return (
        gr.update(value=gallery(result.panels), columns=min(len(result.panels), 4)),
        result.scores,
        result.status + "\n\n" + table,
        legend,
        topk,
    )


def select_dataset(ctx: AppContext, dataset: str):
    """A new dataset: its splits, the runs with its classes (the four best selected), image 0."""
    ref = ctx.ws.sources().get(dataset)
    if ref is None:
        raise ValueError(f"unknown dataset {dataset!r}")
    names = ctx.ws.runs_for_source(dataset)
    return gr.update(choices=ctx.ws.splits(ref), value=ref.split), gr.update(choices=names, value=names[:4]), 0


def open_runs(ctx: AppContext, runs: list[str]):
    """Runs opened from the Runs tab: the dataset of the first one with weights, its split, those of the runs that
    predict its classes (up to 12) and image 0; a message names the runs left out and why."""
    chosen = sweeps.compare_selection(ctx.ws, runs)
    if chosen["left_out"]:
        gr.Info("Not opened in Compare: " + "; ".join(f"{r['run']} ({r['reason']})" for r in chosen["left_out"][:6]))
    ref = ctx.ws.sources()[chosen["source"]]
    return (
        chosen["source"],
        gr.update(choices=ctx.ws.splits(ref), value=chosen["split"]),
        gr.update(choices=ctx.ws.runs_for_source(chosen["source"]), value=chosen["runs"]),
        0,
    )


def select_runs(ctx: AppContext, runs: list[str], memory: dict):
    """One epoch slider per selected run; the epochs list keeps each run's chosen epoch."""
    names = check_count(runs)
    epochs = [memory.get(n, "best") for n in names]
    out: list[Any] = [epochs]
    for k in range(MAX_RUNS):
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
    e = nearest_epoch(ctx.ws.run(names[slot]), value)
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


def split_gallery(ctx: AppContext, dataset: str, split: str, page: int = 1, page_size: int = PAGE_SIZE):
    """One page of the split's thumbnails (made for that page only, once, then served from the cache folder), the
    indices behind them, and the page line."""
    ref = ctx.ws.dataset_split(dataset, split)
    at = page_of(ref.size(), page, page_size)
    idx = list(range(at.start, at.stop))
    ds = ref.open()
    items = [(p, f"{i}: {ds.item_id(i)}") for i, p in zip(idx, thumbnails(ref, idx, ctx.thumbs_dir))]
    return items, idx, f"Images of the split, {at.text}"


def browse_page(
    ctx: AppContext,
    dataset: str,
    split: str,
    runs: list[str],
    epochs: list,
    mode: str,
    page: int,
    page_size: int,
    progress=gr.Progress(),
):
    """A page of the browser: of the split in order, or (``mode`` "hardest") hardest first; and the page number
    shown (a number past the last page shows the last)."""
    number = page_of(ctx.ws.dataset_split(dataset, split).size(), page, page_size).number
    if mode != "hardest":
        return *split_gallery(ctx, dataset, split, number, page_size), number
    items, idx, _, msg = hardest(ctx, dataset, split, runs, epochs, number, page_size, progress)
    return items, idx, msg, number


def hardest_shown(status: str):
    """After the hardest button: the browser is open on page 1 of the hardest-first order (unchanged on a failure)."""
    if status.startswith("**⚠"):
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return gr.update(open=True, label="Browse the split: hardest first"), "hardest", 1, status


def first_page(ctx: AppContext, dataset: str, split: str, page_size: int):
    """A new split: its first page, in order."""
    items, idx, text = split_gallery(ctx, dataset, split, 1, page_size)
    return items, idx, text, 1, "split"


def move(ctx: AppContext, dataset: str, split: str, image: int, direction: str):
    """The next, previous or a random image of the split."""
    return step_index(image, ctx.ws.dataset_split(dataset, split).size(), direction)


def hardest(
    ctx: AppContext,
    dataset: str,
    split: str,
    runs: list[str],
    epochs: list,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    progress=gr.Progress(),
):
    """The split sorted from hardest to easiest: per-image mIoU (or the true class's probability) averaged over the
    runs. Returns page ``page`` of it (``page_size`` thumbnails, made for that page only), the indices behind them,
    the first of them (the image to show) and a status line."""
    ref = ctx.ws.dataset_split(dataset, split)
    ranking, label = hardest_for(ctx.ws, ref, runs, epochs, progress=lambda f, m: progress(f, desc=m))
    at = page_of(len(ranking), page, page_size)
    shown = ranking[at.start : at.stop]
    idx = [i for i, _ in shown]
    items = [(p, f"{i}: {s:.3f}") for p, (i, s) in zip(thumbnails(ref, idx, ctx.thumbs_dir), shown)]
    ends = f"hardest image {ranking[0][0]} … easiest image {ranking[-1][0]}"
    msg = f"Hardest first for {', '.join(runs)} ({label}), {at.text}: {ends}."
    return items, idx, idx[0], msg


def epochs_strip(ctx: AppContext, dataset: str, split: str, image: int, run: str, opacity: float = 0.55):
    """One run's predictions on the image at its saved epochs (at most 12, evenly spaced), with scores."""
    ref = ctx.ws.dataset_split(dataset, split)
    panels, rows = across_epochs(ctx.ws, ctx.renders, ref, image, run, opacity=opacity)
    return gallery(panels), {"run": run, "image": int(image or 0), "epochs": rows}


def zoom_center(ctx: AppContext, dataset: str, split: str, image: int, zoom: float, evt: gr.SelectData):
    """A click on the navigator: the zoom centre (fractions of the image's width and height), zoomed 3x if it was
    not zoomed yet."""
    _, im, _ = ctx.ws.dataset_split(dataset, split).item(image)
    return zoom_from_click(im, evt.index[:2], zoom)


def navigator(ctx: AppContext, dataset: str, split: str, image: int):
    _, im, _ = ctx.ws.dataset_split(dataset, split).item(image)
    return display(im)


def follow_runs(ctx: AppContext, dataset: str):
    """Runs changed on disk: the datasets and this dataset's runs in the menus."""
    sources = list(ctx.ws.sources())
    return gr.update(choices=sources), gr.update(choices=ctx.ws.runs_for_source(dataset) if dataset in sources else [])


# --- sections of the page ------------------------------------------------------------------------------------
def _selection(ctx: AppContext, c: SimpleNamespace) -> None:
    """Dataset, split and image; the runs, the mask opacity and the ensemble switch."""
    ws = ctx.ws
    sources = ws.sources()
    source0 = default_source(ctx)
    ref0 = sources.get(source0)
    c.runs0 = ws.runs_for_source(source0)[:4] if source0 else []  # the dataset shown first, its four best runs
    with gr.Row():
        c.dataset = gr.Dropdown(list(sources), value=source0, label="Dataset", scale=3)
        # choices change with the dataset; the server checks every value (allow_custom_value lets the API send any run's)
        c.split = gr.Dropdown(
            ws.splits(ref0) if ref0 else [], value=ref0.split if ref0 else None, label="Split", scale=1, allow_custom_value=True
        )
        c.index = gr.Number(0, precision=0, minimum=0, label="Image # (Enter)", scale=1)
        with gr.Column(scale=3, min_width=320):
            with gr.Row():
                steps = (("previous", "◀ Previous"), ("next", "Next ▶"), ("random", "Random"))
                c.moves = {d: gr.Button(t, size="sm") for d, t in steps}
            c.hard_b = gr.Button("Hardest for the selected models", size="sm", variant="secondary")
    with gr.Row():
        c.runs = gr.Dropdown(
            ws.runs_for_source(source0) if source0 else [],
            value=c.runs0,
            multiselect=True,
            label=f"Runs (up to {MAX_RUNS})",
            scale=4,
            elem_id="compare-runs",
            allow_custom_value=True,
            filterable=True,
        )
        c.opacity = gr.Slider(0, 1, value=0.55, step=0.05, label="Mask opacity", scale=2)
        c.ensemble = gr.Checkbox(False, label="Add the ensemble of the selected runs", scale=1)


def _epoch_slots(ctx: AppContext, c: SimpleNamespace) -> None:
    """One column per selected run: its name, an epoch slider, best and last."""
    c.epochs = gr.JSON(["best"] * len(c.runs0), label="Epoch of each run (sent to /compare)", visible=False)
    c.memory = gr.State({})
    c.slots = []
    with gr.Accordion("Epoch of each run", open=True):
        with gr.Row(elem_classes="explorer-grid"):
            for k in range(MAX_RUNS):
                name = c.runs0[k] if k < len(c.runs0) else None
                with gr.Column(min_width=200, visible=name is not None, elem_id=f"slot-{k + 1}") as col:
                    head = gr.Markdown(f"**{name}**" if name else "", elem_classes="slot-header")
                    slider = gr.Slider(step=1, label="Epoch", elem_id=f"slot-{k + 1}-epoch", **slider_init(ctx, name))
                    with gr.Row():
                        best_b, last_b = gr.Button("best", size="sm", min_width=50), gr.Button("last", size="sm", min_width=50)
                c.slots.append(SimpleNamespace(col=col, head=head, slider=slider, best=best_b, last=last_b))


def _zoom(c: SimpleNamespace) -> None:
    """A navigator to click and the zoom applied to every column at once."""
    with gr.Accordion("Zoom (every column at once)", open=False):
        with gr.Row():
            c.nav = gr.Image(label="Click to centre the zoom", interactive=False, height=180, scale=1, buttons=[])
            with gr.Column(scale=3):
                c.zoom = gr.Slider(1, 8, value=1, step=0.5, label="Zoom factor (1 = whole image)")
                c.zoom_x = gr.Slider(0, 1, value=0.5, step=0.01, label="Centre x")
                c.zoom_y = gr.Slider(0, 1, value=0.5, step=0.01, label="Centre y")


def _results(c: SimpleNamespace) -> None:
    """The panels, their legend, the top-5 chart, the swipe view and the scores as JSON."""
    c.status = gr.Markdown("", elem_id="compare-status")
    c.panels = gr.Gallery(
        label="Image, ground truth and predictions",
        columns=4,
        height="auto",
        object_fit="contain",
        allow_preview=True,
        interactive=False,
        elem_id="compare-gallery",
        buttons=["download", "fullscreen"],
    )
    c.legend = gr.HTML("", elem_id="compare-legend")  # swatches of the classes on this image only
    c.topk = gr.Plot(label="Top-5 probabilities", visible=False)
    with gr.Accordion("Swipe between the first two runs", open=False):
        c.swipe = gr.ImageSlider(label="first run | second run", type="filepath", elem_id="compare-swipe", max_height=520)
    with gr.Accordion("Scores on this image (JSON, as /compare returns them)", open=False):
        c.scores = gr.JSON(label="scores")


def _agreement(c: SimpleNamespace) -> None:
    """Consensus of the runs and each run's confidence versus its errors, on the image."""
    title = "Agreement and uncertainty: which pixels no run gets right, where each is confidently wrong"
    with gr.Accordion(title, open=False):
        c.agree_b = gr.Button("Show on this image")
        c.agree_md = gr.Markdown("")
        c.agree = gr.Gallery(
            label="Consensus · each run's confidence vs error (grey right and sure, blue right but unsure, yellow wrong and "
            "unsure, red wrong and confident)",
            columns=4,
            height="auto",
            object_fit="contain",
            interactive=False,
            elem_id="compare-agreement",
        )
        c.agree_data = gr.JSON(label="counts", visible=False)


def _across_epochs(c: SimpleNamespace) -> None:
    """One run's predictions at its saved epochs, and what changed between them."""
    with gr.Accordion("Across epochs: one run's predictions on this image, early to final", open=False):
        with gr.Row():
            first = c.runs0[0] if c.runs0 else None
            c.strip_run = gr.Dropdown(c.runs0, value=first, label="Run", scale=3, allow_custom_value=True, filterable=True)
            c.strip_b = gr.Button("Show across epochs", scale=1)
        grid = dict(object_fit="contain", interactive=False)
        c.strip = gr.Gallery(
            label="Predictions at the saved epochs (epoch: mIoU on this image)",
            columns=6,
            height=300,
            elem_id="compare-strip",
            **grid,
        )
        c.strip_scores = gr.JSON(label="scores per epoch", visible=False)
        c.churn_b = gr.Button("What changed between epochs")
        c.churn = gr.Gallery(
            label="Changed pixels (magenta) between consecutive saved epochs",
            columns=6,
            height=260,
            elem_id="compare-churn",
            **grid,
        )
        c.churn_plot = gr.Plot(label="Fraction changed")
        c.churn_data = gr.JSON(visible=False)


def _browse(c: SimpleNamespace) -> None:
    """Thumbnails of the split (or its hardest images first), a page at a time; a click loads one."""
    c.order = gr.State([])  # the dataset indices behind the thumbnails shown
    c.mode = gr.State("split")  # "split" (in order) or "hardest" (hardest first, after the button)
    c.hard_page = gr.Number(1, visible=False, precision=0, label="page")  # the button shows page 1; /hardest any
    with gr.Accordion("Browse the split", open=False) as c.browse_acc:
        with gr.Row():
            c.page = gr.Number(1, label="Page", precision=0, minimum=1, scale=1, elem_id="browse-page")
            c.page_size = gr.Number(PAGE_SIZE, label="Images per page", precision=0, minimum=1, maximum=MAX_PAGE_SIZE, scale=1)
            c.prev_page = gr.Button("◀ Previous page", size="sm", scale=1)
            c.next_page = gr.Button("Next page ▶", size="sm", scale=1)
        c.page_md = gr.Markdown("", elem_id="browse-page-info")
        c.browse = gr.Gallery(
            label="Images of the split (click one)",
            columns=10,
            height=260,
            allow_preview=False,
            object_fit="cover",
            interactive=False,
        )


# --- wiring --------------------------------------------------------------------------------------------------
def _wire_view(ctx: AppContext, c: SimpleNamespace) -> dict:
    """/compare and everything that redraws the panels; returns the event that shows them."""
    view_in = [c.dataset, c.split, c.index, c.runs, c.epochs, c.opacity, c.ensemble, c.zoom_x, c.zoom_y, c.zoom]
    view_out = [c.panels, c.scores, c.status, c.legend, c.topk]
    show = dict(fn=bind(ctx, compare_images, 5, status=2), inputs=view_in, outputs=view_out, **INFER)
    redraws = [c.index.submit, c.opacity.release, c.ensemble.input, c.zoom.release, c.zoom_x.release, c.zoom_y.release]
    gr.on(redraws, **show, api_name="compare", trigger_mode="always_last")
    c.split.input(lambda: 0, None, c.index, **PRIVATE).then(**show, **PRIVATE)
    for direction, b in c.moves.items():
        step = bind(ctx, lambda cx, d, s, i, direction=direction: move(cx, d, s, i, direction), 1)
        b.click(step, [c.dataset, c.split, c.index], c.index, **PRIVATE, **READ).then(**show, **PRIVATE)
    navigate = bind(ctx, zoom_center, 3)
    c.nav.select(navigate, [c.dataset, c.split, c.index, c.zoom], [c.zoom_x, c.zoom_y, c.zoom], **PRIVATE, **READ).then(
        **show, **PRIVATE
    )
    c.index.change(bind(ctx, navigator, 1), [c.dataset, c.split, c.index], c.nav, **PRIVATE, **READ)
    c.panels.change(swipe, [c.panels], c.swipe, **PRIVATE)
    return show


def _wire_runs(ctx: AppContext, c: SimpleNamespace, show: dict) -> dict:
    """Run and dataset menus and the epoch slots; returns the event that lays the slots out."""
    slot_out = [c.epochs] + [x for s in c.slots for x in (s.col, s.head, s.slider)] + [c.strip_run]
    slots = dict(fn=bind(ctx, select_runs, len(slot_out)), inputs=[c.runs, c.memory], outputs=slot_out)
    c.runs.input(**slots, **PRIVATE, **READ).then(**show, **PRIVATE)
    c.dataset.input(bind(ctx, select_dataset, 3), [c.dataset], [c.split, c.runs, c.index], **PRIVATE, **READ).then(
        **slots, **PRIVATE, **READ
    ).then(**show, **PRIVATE)
    for k, s in enumerate(c.slots):
        setter = bind(ctx, lambda cx, r, m, v, k=k: set_epoch(cx, r, m, k, v), 3)
        chosen = [c.epochs, c.memory, s.slider]
        s.slider.release(setter, [c.runs, c.memory, s.slider], chosen, **PRIVATE, **READ).then(**show, **PRIVATE)
        for b, which in ((s.best, "best"), (s.last, "last")):
            jump = bind(ctx, lambda cx, r, m, k=k, w=which: set_epoch(cx, r, m, k, w), 3)
            b.click(jump, [c.runs, c.memory], chosen, **PRIVATE, **READ).then(**show, **PRIVATE)
    return slots


def _wire_extras(ctx: AppContext, c: SimpleNamespace, show: dict, version: gr.Number) -> dict:
    """Hardest images, browsing, agreement, the across-epochs strip and churn; returns the thumbnails event."""
    hard_in = [c.dataset, c.split, c.runs, c.epochs, c.hard_page, c.page_size]
    c.hard_b.click(
        bind(ctx, hardest, 4, status=3), hard_in, [c.browse, c.order, c.index, c.status], api_name="hardest", **LONG
    ).then(
        hardest_shown,
        [c.status],
        [c.browse_acc, c.mode, c.page, c.page_md],
        **PRIVATE,
    ).then(**show, **PRIVATE)
    _wire_pages(ctx, c)
    c.browse.select(picked, [c.order], c.index, **PRIVATE).then(**show, **PRIVATE)
    image = [c.dataset, c.split, c.index]
    agree_out = [c.agree, c.agree_data, c.agree_md]
    c.agree_b.click(bind(ctx, agreement, 3, status=2), image + [c.runs, c.epochs], agree_out, api_name="agreement", **INFER)
    churn_out = [c.churn, c.churn_plot, c.churn_data]
    c.churn_b.click(bind(ctx, epoch_churn, 3), image + [c.strip_run], churn_out, api_name="churn", **INFER)
    strip_in = image + [c.strip_run, c.opacity]
    c.strip_b.click(bind(ctx, epochs_strip, 2), strip_in, [c.strip, c.strip_scores], api_name="epochs_strip", **INFER)
    version.change(bind(ctx, follow_runs, 2), [c.dataset], [c.dataset, c.runs], **PRIVATE, **READ)
    thumbs = dict(
        fn=bind(ctx, first_page, 5, status=2),
        inputs=[c.dataset, c.split, c.page_size],
        outputs=[c.browse, c.order, c.page_md, c.page, c.mode],
    )
    c.split.change(**thumbs, **PRIVATE, **READ)
    return thumbs


def _wire_pages(ctx: AppContext, c: SimpleNamespace) -> None:
    """The page number, its size and the previous / next buttons: that page of the browser, in its mode."""
    pages_in = [c.dataset, c.split, c.runs, c.epochs, c.mode, c.page, c.page_size]
    turn_out = [c.browse, c.order, c.page_md, c.page]
    turn = dict(fn=bind(ctx, browse_page, 4, status=2), inputs=pages_in, outputs=turn_out, **LONG)
    gr.on([c.page.submit, c.page_size.submit], **turn, **PRIVATE, trigger_mode="always_last")
    for b, step in ((c.prev_page, -1), (c.next_page, 1)):
        b.click(lambda p, step=step: max(1, int(p or 1) + step), [c.page], c.page, **PRIVATE).then(**turn, **PRIVATE)


def build(ctx: AppContext, version: gr.Number) -> dict[str, Any]:
    c = SimpleNamespace()
    _selection(ctx, c)
    _epoch_slots(ctx, c)
    _zoom(c)
    _results(c)
    _agreement(c)
    _across_epochs(c)
    _browse(c)
    show = _wire_view(ctx, c)
    slots = _wire_runs(ctx, c, show)
    thumbs = _wire_extras(ctx, c, show, version)
    nav = dict(fn=bind(ctx, navigator, 1), inputs=[c.dataset, c.split, c.index], outputs=c.nav)
    opener = SimpleNamespace(
        label="Compare",
        tab="compare",
        fn=open_runs,
        outputs=[c.dataset, c.split, c.runs, c.index],
        then=[{**slots, **READ}, show],
    )
    return dict(load=[slots, show, thumbs, nav], open=opener)
