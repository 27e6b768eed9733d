"""Tab "Compare models": one image, its ground truth and the predictions of up to six runs side by side."""

from __future__ import annotations

import random
from typing import Any, Sequence

import gradio as gr
import numpy as np

from app.common import HIDDEN, MAX_SLOTS, AppContext, epoch_slider_update, fmt, guard, presence_md, slider_init
from app.figures import topk_bars
from core import analysis as A
from core import visualize as V

MAX_GALLERY = 500  # thumbnails shown for a split (any index can still be typed)
MAX_STRIP = 12  # epochs in the "across epochs" strip (evenly spaced, always the first and the last)


# --- helpers (server side; everything the browser sends is checked here) ----------------------------------
def dataset_ref(ctx: AppContext, source: str, split: str) -> A.DatasetRef:
    """The dataset split called ``source``/``split``; only datasets of discovered runs and their splits."""
    sources = ctx.ws.sources()
    if source not in sources:
        raise ValueError(f"unknown dataset {source!r}; choose one of: {', '.join(sources) or 'none (no runs found)'}")
    ref = sources[source]
    if split not in ctx.ws.splits(ref):
        raise ValueError(f"dataset {ref.name} has no split {split!r} here; splits: {', '.join(ctx.ws.splits(ref))}")
    return ref.with_split(split)


def default_source(ctx: AppContext) -> str | None:
    """The dataset shown first: a segmentation dataset whose images are available, if there is one."""
    sources = ctx.ws.sources()
    seg = [s for s in sources if ctx.ws.run(ctx.ws.runs_for_source(s)[0]).task == "segmentation"]
    for label in seg:
        try:
            sources[label].open()
            return label
        except Exception:  # noqa: BLE001  (unavailable here; shown with a message if chosen)
            continue
    return (seg or list(sources) or [None])[0]


def check_runs(ctx: AppContext, runs: Sequence[str] | None, ds) -> list[str]:
    """The selected run names (at most MAX_SLOTS), each discovered and predicting this dataset's classes."""
    runs = list(runs or [])[:MAX_SLOTS]
    for name in runs:
        run = ctx.ws.run(name)
        if run.classes != list(ds.classes) or run.task != ds.task:
            raise ValueError(f"run {name} ({run.task}) does not predict this dataset's classes; pick runs of the same kind of dataset")
    return runs


def load_item(ref: A.DatasetRef, index: Any) -> tuple[int, np.ndarray, Any]:
    n = ref.size()
    if index is None:
        index = 0
    i = int(index)
    if not 0 <= i < n:
        raise IndexError(f"image {i} does not exist: split {ref.split!r} has images 0 to {n - 1}")
    image, target = ref.load(i)
    return i, image, target


def display(image: np.ndarray) -> np.ndarray:
    return V.enlarge(image, 240)


def render_prediction(ds, image: np.ndarray, target: Any, run, epoch: int, pred: Any, opacity: float, title: str) -> tuple[Any, str]:
    """(overlay image or None, Markdown) for one model's prediction on a dataset image."""
    classes = ds.classes
    if run.task == "segmentation":
        s = A.image_scores(pred, target, len(classes), ds.ignore_index)
        p = A.class_presence(pred, target, len(classes), ds.ignore_index)
        md = f"{title}  \npixel acc **{fmt(s['pixel_acc'])}** · mIoU **{fmt(s['miou'])}**  \n{presence_md(p, classes)}"
        return display(V.overlay(image, pred, ds.palette, opacity=opacity, ignore_index=ds.ignore_index)), md
    top = pred.topk(5)
    mark = "✓" if top[0][0] == target else "✗"
    lines = [f"{j + 1}. {classes[c]} — {p:.3f}" + (" ← true" if c == target else "") for j, (c, p) in enumerate(top)]
    return None, f"{title}  \ntop-1 **{classes[top[0][0]]}** {mark}  \n" + "  \n".join(lines)


def slot_header(run, name: str) -> str:
    return f"**{name}**  \n{run.arch} · {run.config['model'].get('num_params') or 0:,} parameters"


def slot_title(run, epoch: int) -> str:
    tags = [t for t, e in (("best", run.best_epoch), ("last", run.last_epoch)) if e == epoch]
    return f"epoch **{epoch}**" + (f" ({', '.join(tags)})" if tags else "")


# --- the tab -----------------------------------------------------------------------------------------------------
def build(ctx: AppContext) -> dict[str, Any]:
    ws = ctx.ws
    sources = ws.sources()
    source0 = default_source(ctx)
    ref0 = sources[source0] if source0 else None
    compatible0 = ws.runs_for_source(source0) if source0 else []
    runs0 = compatible0[:2]

    with gr.Row():
        dataset = gr.Dropdown(list(sources), value=source0, label="Dataset", scale=3)
        split = gr.Dropdown(ws.splits(ref0) if ref0 else [], value=ref0.split if ref0 else None, label="Split", scale=1, allow_custom_value=True)
        index = gr.Number(0, precision=0, minimum=0, label="Image # (Enter)", scale=1)
        with gr.Column(scale=3, min_width=320):
            with gr.Row():
                prev_b = gr.Button("◀ Previous", size="sm")
                next_b = gr.Button("Next ▶", size="sm")
                rand_b = gr.Button("Random", size="sm")
            hard_b = gr.Button("Hardest for the selected models", size="sm", variant="secondary")
    with gr.Row():
        runs = gr.Dropdown(compatible0, value=runs0, multiselect=True, max_choices=MAX_SLOTS, label=f"Runs (up to {MAX_SLOTS})", scale=4, allow_custom_value=True, elem_id="compare-runs")
        opacity = gr.Slider(0, 1, value=0.55, step=0.05, label="Mask opacity", scale=2)
        ensemble = gr.Checkbox(False, label="Add the ensemble of the selected runs", scale=1)
    order = gr.State([])  # dataset index of each gallery position
    with gr.Accordion("Browse the split", open=False) as browse:
        gallery = gr.Gallery(label="Images of the split (click one)", columns=10, height=260, allow_preview=False, object_fit="cover", interactive=False)
    status = gr.Markdown("", elem_id="compare-status")
    with gr.Row(equal_height=False, elem_classes="explorer-grid"):
        with gr.Column(min_width=240):
            gr.Markdown("**Image**  \n&nbsp;", elem_classes="slot-header")
            image_out = gr.Image(label="Image", show_label=False, format="png", interactive=False, buttons=["download", "fullscreen"], elem_id="compare-image")
        with gr.Column(min_width=240):
            gt_head = gr.Markdown("**Ground truth**  \n&nbsp;", elem_classes="slot-header")
            gt_out = gr.Image(label="Ground truth", show_label=False, format="png", interactive=False, buttons=["download", "fullscreen"])
        slots = []
        for i in range(MAX_SLOTS):
            name = runs0[i] if i < len(runs0) else None
            with gr.Column(min_width=240, visible=name is not None, elem_id=f"slot-{i + 1}") as col:
                header = gr.Markdown(slot_header(ctx.ws.run(name), name) if name else "", elem_classes="slot-header")
                slider = gr.Slider(step=1, label="Epoch", elem_id=f"slot-{i + 1}-epoch", **slider_init(ctx, ctx.ws.run(name) if name else None))
                with gr.Row():
                    best_b = gr.Button("best", size="sm", min_width=60)
                    last_b = gr.Button("last", size="sm", min_width=60)
                img = gr.Image(label=f"Prediction {i + 1}", show_label=False, format="png", interactive=False, buttons=["download", "fullscreen"],
                               elem_id=f"slot-{i + 1}-image")
                md = gr.Markdown("", elem_id=f"slot-{i + 1}-text")
            slots.append(dict(col=col, header=header, slider=slider, best=best_b, last=last_b, img=img, md=md))
        with gr.Column(min_width=240, visible=False) as ens_col:
            gr.Markdown("**Ensemble**  \nmean probabilities of the selected runs", elem_classes="slot-header")
            ens_img = gr.Image(label="Ensemble", show_label=False, format="png", interactive=False)
            ens_md = gr.Markdown("")
    legend_out = gr.Image(label="Classes", show_label=False, format="png", interactive=False, height=90, container=False, buttons=[])
    topk_plot = gr.Plot(label="Top-5 probabilities", visible=False)
    with gr.Accordion("Across epochs: one run's predictions on this image, early to final", open=False):
        with gr.Row():
            strip_run = gr.Dropdown(runs0, value=runs0[0] if runs0 else None, label="Run", scale=3, allow_custom_value=True)
            strip_b = gr.Button("Show across epochs", scale=1)
        strip = gr.Gallery(label="Predictions at every saved epoch (epoch: mIoU on this image)", columns=6, height=300, allow_preview=True, object_fit="contain", interactive=False)

    epochs = [s["slider"] for s in slots]
    slot_outs = [c for s in slots for c in (s["slider"], s["img"], s["md"])]
    main_outs = [image_out, gt_out, legend_out, status, topk_plot, *slot_outs, ens_col, ens_img, ens_md, gt_head]

    # --- handlers ---------------------------------------------------------------------------------------------
    def extras(ref, ds, index, image, target, names, epoch_values, use_ensemble, opacity) -> list[Any]:
        """Top-5 chart (classification; the ensemble as one more model) and the ensemble column."""
        members = [(ws.run(n), A.nearest_epoch(ws.run(n), e)) for n, e in zip(names, epoch_values)]
        ens_pred = A.predict_items(members, ref, [index])[0] if use_ensemble and len(members) >= 2 else None
        if ds.task == "classification" and members:
            preds = [A.predict_items([m], ref, [index])[0] for m in members]
            entries = [(n, [(ds.classes[c], p) for c, p in pr.topk(5)]) for n, pr in zip(names, preds)]
            if ens_pred is not None:
                entries.append(("ensemble", [(ds.classes[c], p) for c, p in ens_pred.topk(5)]))
            topk = gr.update(value=topk_bars(entries, true_label=ds.classes[target]), visible=True)
        else:
            topk = gr.update(visible=False)
        if not use_ensemble:
            return [topk, gr.update(visible=False), gr.skip(), gr.skip()]
        if ens_pred is None:
            return [topk, gr.update(visible=True), gr.update(value=None, visible=False), "Select at least two runs for an ensemble."]
        ens_title = " + ".join(f"{n}@{e}" for n, (_, e) in zip(names, members))
        img, md = render_prediction(ds, image, target, members[0][0], 0, ens_pred, opacity, ens_title)
        return [topk, gr.update(visible=True), gr.update(value=img, visible=img is not None), md]

    @guard(len(main_outs), status=3)
    def compare(dataset_name, split_name, image_index, run_names, *rest):
        """The whole grid: image, ground truth, every selected run's prediction, ensemble and top-5."""
        epoch_values, opacity_v, use_ensemble = rest[:MAX_SLOTS], rest[MAX_SLOTS], rest[MAX_SLOTS + 1]
        ref = dataset_ref(ctx, dataset_name, split_name)
        ds = ref.open()
        names = check_runs(ctx, run_names, ds)
        i, image, target = load_item(ref, image_index)
        seg = ds.task == "segmentation"
        gt = display(V.overlay(image, target, ds.palette, opacity=opacity_v, ignore_index=ds.ignore_index)) if seg else None
        legend = V.class_legend(ds.classes, ds.palette, width=1100) if seg else None
        out: list[Any] = [display(image), gr.update(value=gt, visible=seg), gr.update(value=legend, visible=seg)]
        truth = "" if seg else f" · true class **{ds.classes[target]}**"
        out += [f"{ref.name} · {ref.split} · image {i} of {ref.size()} (`{ds.item_id(i)}`){truth}", gr.skip()]
        epochs_used = []
        for k in range(MAX_SLOTS):
            if k >= len(names):
                out += [gr.skip(), gr.skip(), gr.skip()]
                continue
            run = ws.run(names[k])
            e = A.nearest_epoch(run, epoch_values[k])
            epochs_used.append(e)
            pred = A.predict_items([(run, e)], ref, [i])[0]
            img, md = render_prediction(ds, image, target, run, e, pred, opacity_v, slot_title(run, e))
            out += [gr.update(value=e), gr.update(value=img, visible=img is not None), md]
        ex = extras(ref, ds, i, image, target, names, epochs_used, use_ensemble, opacity_v)
        out[4] = ex[0]
        head = "**Ground truth**  \n&nbsp;" if seg else f"**Ground truth**  \nclass **{ds.classes[target]}**"
        return tuple(out + ex[1:] + [head])

    def make_slot_handler(k: int):
        @guard(3, status=2)
        def compare_slot(dataset_name, split_name, image_index, run_names, epoch, opacity_v):
            """One run's column after its epoch changed (the others are untouched)."""
            ref = dataset_ref(ctx, dataset_name, split_name)
            ds = ref.open()
            names = check_runs(ctx, run_names, ds)
            if k >= len(names):
                return gr.skip(), gr.skip(), gr.skip()
            i, image, target = load_item(ref, image_index)
            run = ws.run(names[k])
            e = A.nearest_epoch(run, epoch)
            pred = A.predict_items([(run, e)], ref, [i])[0]
            img, md = render_prediction(ds, image, target, run, e, pred, opacity_v, slot_title(run, e))
            return gr.update(value=e), gr.update(value=img, visible=img is not None), md

        return compare_slot

    extras_outs = [topk_plot, ens_col, ens_img, ens_md]

    @guard(len(extras_outs), status=3)
    def compare_extras(dataset_name, split_name, image_index, run_names, *rest):
        """Ensemble column and top-5 chart, after a single column changed."""
        epoch_values, opacity_v, use_ensemble = rest[:MAX_SLOTS], rest[MAX_SLOTS], rest[MAX_SLOTS + 1]
        ref = dataset_ref(ctx, dataset_name, split_name)
        ds = ref.open()
        names = check_runs(ctx, run_names, ds)
        i, image, target = load_item(ref, image_index)
        epochs_used = [A.nearest_epoch(ws.run(n), e) for n, e in zip(names, epoch_values)]
        return tuple(extras(ref, ds, i, image, target, names, epochs_used, use_ensemble, opacity_v))

    runs_outs = [c for s in slots for c in (s["col"], s["header"], s["slider"])] + [strip_run]

    @guard(len(runs_outs))
    def select_runs(dataset_name, run_names):
        """Show one column per selected run, with an epoch slider over that run's saved epochs."""
        names = list(run_names or [])[:MAX_SLOTS]
        for n in names:
            ws.run(n)
        out: list[Any] = []
        for k in range(MAX_SLOTS):
            if k < len(names):
                run = ws.run(names[k])
                out += [gr.update(visible=True), slot_header(run, names[k]), epoch_slider_update(ctx, names[k], "best")]
            else:
                out += [gr.update(visible=False), "", gr.skip()]
        out.append(gr.update(choices=names, value=names[0] if names else None))
        return tuple(out)

    @guard(5, status=3)
    def select_dataset(dataset_name):
        """A new dataset: its splits, the runs with its classes, and image 0."""
        sources = ws.sources()
        if dataset_name not in sources:
            raise ValueError(f"unknown dataset {dataset_name!r}")
        ref = sources[dataset_name]
        names = ws.runs_for_source(dataset_name)
        return (gr.update(choices=ws.splits(ref), value=ref.split), gr.update(choices=names, value=names[:2]), 0, "", [])

    @guard(4, status=2)
    def split_gallery(dataset_name, split_name):
        """Thumbnails of the split (written once, then served from the cache folder)."""
        ref = dataset_ref(ctx, dataset_name, split_name)
        ds = ref.open()
        n = min(len(ds), MAX_GALLERY)
        paths = A.thumbnails(ref, range(n), ctx.thumbs_dir)
        more = f" (first {n} of {len(ds)})" if n < len(ds) else ""
        items = [(p, f"{i}: {ds.item_id(i)}") for i, p in enumerate(paths)]
        return items, list(range(n)), f"{len(ds)} images{more}", gr.update(label="Browse the split")

    def pick(order_v, evt: gr.SelectData):
        """The dataset index of the clicked thumbnail."""
        pos = evt.index if isinstance(evt.index, int) else evt.index[0]
        return order_v[pos] if 0 <= pos < len(order_v) else gr.skip()

    def make_step(move: str):
        @guard(1)
        def step(dataset_name, split_name, image_index):
            n = dataset_ref(ctx, dataset_name, split_name).size()
            i = int(image_index or 0)
            if move == "random":
                return random.randrange(n)
            return (i + (1 if move == "next" else -1)) % n

        step.__name__ = f"image_{move}"
        return step

    @guard(5, status=3)
    def hardest(dataset_name, split_name, run_names, *epoch_values, progress=gr.Progress()):
        """Sort the split by per-image mIoU (or true-class probability) averaged over the selected runs."""
        ref = dataset_ref(ctx, dataset_name, split_name)
        ds = ref.open()
        names = check_runs(ctx, run_names, ds)
        if not names:
            raise ValueError("select at least one run first")
        models = [[(ws.run(n), A.nearest_epoch(ws.run(n), e))] for n, e in zip(names, epoch_values)]
        ranking = A.hardest_images(models, ref, progress=lambda f, m: progress(f, desc=m))[:MAX_GALLERY]
        idx = [i for i, _ in ranking]
        paths = A.thumbnails(ref, idx, ctx.thumbs_dir)
        metric = "mIoU" if ds.task == "segmentation" else "p(true)"
        items = [(p, f"{i}: {fmt(s)}") for p, (i, s) in zip(paths, ranking)]
        msg = f"Hardest first for {', '.join(names)}: image {idx[0]} ({metric} {fmt(ranking[0][1])}) … easiest image {ranking[-1][0]}."
        return items, idx, idx[0], msg, gr.update(open=True, label=f"Browse the split: hardest first (image #: {metric})")

    @guard(2, status=1)
    def across_epochs(dataset_name, split_name, image_index, run_name, opacity_v):
        """One run's predictions on this image at each saved epoch (at most 12, evenly spaced)."""
        ref = dataset_ref(ctx, dataset_name, split_name)
        ds = ref.open()
        check_runs(ctx, [run_name] if run_name else [], ds)
        if not run_name:
            raise ValueError("select a run first")
        run = ws.run(run_name)
        i, image, target = load_item(ref, image_index)
        saved = run.epochs or [run.last_epoch]
        if len(saved) > MAX_STRIP:
            picks = np.unique(np.linspace(0, len(saved) - 1, MAX_STRIP).round().astype(int))
            saved = [saved[j] for j in picks]
        items = []
        for e in saved:
            pred = A.predict_items([(run, e)], ref, [i])[0]
            if run.task == "segmentation":
                s = A.image_scores(pred, target, len(ds.classes), ds.ignore_index)
                ov = display(V.overlay(image, pred, ds.palette, opacity=opacity_v, ignore_index=ds.ignore_index))
                path = ctx.render_path(("strip", str(run.path), e, ref, i, round(opacity_v, 3)), ov)
                items.append((path, f"epoch {e}: {fmt(s['miou'], 2)}"))
            else:
                c, p = pred.topk(1)[0]
                path = ctx.render_path(("strip-img", ref, i), display(image))
                items.append((path, f"epoch {e} · {ds.classes[c]} ({p:.2f})" + (" ✓" if c == target else " ✗")))
        return items, f"{run_name}: {len(items)} saved epochs on image {i}"

    # --- wiring -------------------------------------------------------------------------------------------------
    compare_in = [dataset, split, index, runs, *epochs, opacity, ensemble]
    gallery_ev = dict(fn=split_gallery, inputs=[dataset, split], outputs=[gallery, order, status, browse])

    dataset.input(select_dataset, [dataset], [split, runs, index, status, strip], api_name="select_dataset").then(
        **gallery_ev, api_name="split_gallery_after_dataset", **HIDDEN
    ).then(select_runs, [dataset, runs], runs_outs, api_name="select_runs_after_dataset", **HIDDEN).then(
        compare, compare_in, main_outs, api_name="compare_after_dataset", **HIDDEN
    )  # fmt: skip
    split.input(lambda: 0, None, index, api_name="reset_index", **HIDDEN).then(**gallery_ev, api_name="split_gallery").then(
        compare, compare_in, main_outs, api_name="compare_after_split", **HIDDEN
    )
    runs.input(select_runs, [dataset, runs], runs_outs, api_name="select_runs").then(compare, compare_in, main_outs, api_name="compare_after_runs", **HIDDEN)
    for ev, name in ((index.submit, "compare"), (opacity.release, "compare_opacity"), (ensemble.input, "compare_ensemble")):
        ev(compare, compare_in, main_outs, api_name=name, trigger_mode="always_last")
    gallery.select(pick, [order], index, api_name="pick_image").then(compare, compare_in, main_outs, api_name="compare_after_pick", **HIDDEN)
    for b, move in ((prev_b, "previous"), (next_b, "next"), (rand_b, "random")):
        b.click(make_step(move), [dataset, split, index], index, api_name=f"image_{move}").then(
            compare, compare_in, main_outs, api_name=f"compare_after_{move}", **HIDDEN
        )
    hard_b.click(hardest, [dataset, split, runs, *epochs], [gallery, order, index, status, browse], api_name="hardest").then(
        compare, compare_in, main_outs, api_name="compare_after_hardest", **HIDDEN
    )
    for k, s in enumerate(slots):
        slot_in = [dataset, split, index, runs, s["slider"], opacity]
        slot_out = [s["slider"], s["img"], s["md"]]
        handler = make_slot_handler(k)
        s["slider"].release(handler, slot_in, slot_out, api_name=f"compare_slot_{k + 1}", trigger_mode="always_last").then(
            compare_extras, compare_in, extras_outs, api_name=f"compare_extras_{k + 1}", **HIDDEN
        )
        for btn, which in ((s["best"], "best"), (s["last"], "last")):
            btn.click(_jump(ctx, k, which), [runs], s["slider"], api_name=f"slot_{k + 1}_{which}").then(
                handler, slot_in, slot_out, api_name=f"compare_slot_{k + 1}_{which}"
            ).then(compare_extras, compare_in, extras_outs, api_name=f"compare_extras_{k + 1}_{which}", **HIDDEN)
    strip_b.click(across_epochs, [dataset, split, index, strip_run, opacity], [strip, status], api_name="across_epochs")

    return dict(load=[(split_gallery, [dataset, split], [gallery, order, status, browse]), (select_runs, [dataset, runs], runs_outs),
                      (compare, compare_in, main_outs)],
                dataset=dataset, split=split, index=index, runs=runs)  # fmt: skip


def _jump(ctx: AppContext, k: int, which: str):
    @guard(1)
    def jump(run_names):
        """Move slot ``k``'s slider to its run's best or last epoch."""
        names = list(run_names or [])
        if k >= len(names):
            return gr.skip()
        return gr.update(value=A.nearest_epoch(ctx.ws.run(names[k]), which))

    jump.__name__ = f"slot_{k + 1}_{which}"
    return jump
