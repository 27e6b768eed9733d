"""Tab "Upload your own image": every selected run on an uploaded image, its uncertainty, and its place on
a classifier's embedding map."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr

from app.common import INFER, LONG, PRIVATE, AppContext, bind, gallery, preferred_runs
from core.explorer import (
    MAX_RUNS,
    ClassificationTask,
    SegmentationTask,
    check_count,
    check_method,
    embedding,
    embedding_methods,
    legend_html,
    nearest_epoch,
    place_on_embedding,
    placement_split,
    read_image,
    read_upload,
    thumbnails,
)
from core.explorer.figures import embedding_scatter, topk_bars
from core.explorer.uploads import analyze

ASSETS = Path(__file__).resolve().parents[1] / "assets"
EXAMPLES = ASSETS / "examples"


def example_paths() -> list[str]:
    """The example images shipped in assets/ (the only files an example click can load): three real CamVid
    street scenes from the val sample, then the synthetic ones."""
    camvid = sorted((ASSETS / "camvid-val-sample" / "val").glob("*.jpg"))[::8][:3]
    return [str(p) for p in camvid] + sorted(str(p) for p in EXAMPLES.glob("*.jpg"))


def upload(ctx: AppContext, image: str | None, runs: list[str], opacity: float = 0.55):
    """Each run (at its best epoch) on an uploaded image: overlay and uncertainty map with the predicted
    classes, or the top-5 classes. Returns a gallery, the results as JSON, a status line, a legend and a chart."""
    if not image:
        return [], {}, "Upload an image or click an example.", gr.update(visible=False), gr.update(visible=False)
    names = check_count(runs)
    members = [(n, (ctx.ws.run(n), nearest_epoch(ctx.ws.run(n), "best"))) for n in names]
    result = analyze(ctx.renders, read_upload(image, max_side=ctx.max_upload_side), members, opacity=opacity)
    seg = next((r for _, (r, _) in members if r.task.dense), None)
    legend = gr.update(value="", visible=False)
    if seg:  # swatches of the classes the runs predicted on this image only
        legend = gr.update(value=legend_html(seg.classes, seg.palette, result.present), visible=True)
    topk = gr.update(value=topk_bars(result.topk), visible=True) if result.topk else gr.update(visible=False)
    return gr.update(value=gallery(result.panels), columns=min(len(result.panels), 4)), result.scores, result.status, legend, topk


def place(ctx: AppContext, image: str | None, run: str, method: str, progress=gr.Progress()):
    """The image on the classification run's embedding map of its training split (or, without the dataset, of its
    shipped sample), with its nearest images there."""
    check_method(method, embedding_methods())
    if not image:
        raise ValueError("upload an image (or click an example) first")
    if not run:
        raise ValueError("no classification run found: train one to place images on its embedding map")
    r = ctx.ws.run(run)
    if r.task.dense:
        raise ValueError(f"run {run} is a {r.task.name} run; choose a classification run")
    e = nearest_epoch(r, "best")
    split, is_train = placement_split(ctx.ws, run)
    ref = ctx.ws.run_split(run, split)
    emb = embedding(r, e, split, method, data_root=ctx.ws.data_root, progress=lambda f, m: progress(f, desc=m))
    placed = place_on_embedding(r, emb, read_image(image, max_side=ctx.max_upload_side))
    nb = [int(j) for j in placed["neighbors"]]
    title = f"{run} @ {e}: {split} split ({emb.method})"
    extra = {"xy": placed["xy"], "name": "your image", "neighbors": nb}
    fig = embedding_scatter(emb.coords, emb.labels, emb.preds, r.classes, r.palette, title=title, extra=extra)
    idx = [int(emb.image_index[j]) for j in nb]
    ds = ref.open()
    thumbs = thumbnails(ref, idx, ctx.thumbs_dir)
    items = [(p, f"{ds.item_id(i)} · {r.classes[int(emb.labels[j])]}") for p, i, j in zip(thumbs, idx, nb)]
    kind = "training" if is_train else f"{split} (the training images are not on this machine)"
    return fig, items, f"Placed on {run}'s {split} map next to {len(nb)} {kind} images"


def follow_runs(ctx: AppContext):
    """Runs changed on disk: the menus offer them."""
    return gr.update(choices=ctx.ws.names), gr.update(choices=ctx.ws.names_for(ClassificationTask))


# --- sections of the page ------------------------------------------------------------------------------------
def _inputs(ctx: AppContext, c: SimpleNamespace) -> None:
    """The image (a file, or an example), the runs and the mask opacity."""
    cls = preferred_runs(ctx, ClassificationTask)
    runs0 = (preferred_runs(ctx, SegmentationTask)[:2] + cls[:1]) or ctx.ws.names[:2]
    c.examples = example_paths()
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280):
            c.image = gr.File(
                label="Upload an image (JPEG, PNG, WebP…)",
                file_types=["image"],
                type="filepath",
                height=120,
                elem_id="upload-file",
            )
            c.ex = gr.Gallery(
                [(p, Path(p).stem) for p in c.examples],
                label="…or click an example",
                columns=2,
                height=230,
                allow_preview=False,
                object_fit="cover",
                interactive=False,
            )
        with gr.Column(scale=2, min_width=320):
            label = f"Runs (best epoch; up to {MAX_RUNS})"
            c.runs = gr.Dropdown(ctx.ws.names, value=runs0, multiselect=True, label=label, elem_id="upload-runs", filterable=True)
            c.opacity = gr.Slider(0, 1, value=0.55, step=0.05, label="Mask opacity")
            c.status = gr.Markdown("Upload an image or click an example.", elem_id="upload-status")


def _results(c: SimpleNamespace) -> None:
    """Each run's prediction and uncertainty on the image, its legend, top-5 chart and the results as JSON."""
    c.panels = gr.Gallery(
        label="Your image, each run's prediction and its uncertainty (dark = sure, bright = unsure)",
        columns=4,
        height="auto",
        object_fit="contain",
        interactive=False,
        elem_id="upload-gallery",
    )
    c.legend = gr.HTML("", visible=False, elem_id="upload-legend")
    c.topk = gr.Plot(label="Top-5 probabilities (classification runs)", visible=False)
    with gr.Accordion("Results as JSON (what /upload returns)", open=False):
        c.data = gr.JSON(label="results")


def _placement(ctx: AppContext, c: SimpleNamespace) -> None:
    """A classification run's embedding map with the image placed on it, and its nearest training images."""
    cls = preferred_runs(ctx, ClassificationTask)
    methods = embedding_methods()
    gr.Markdown("### Where does it fall on a classifier's embedding map?")
    with gr.Row():
        label = "Classification run (best epoch)"
        c.emb_run = gr.Dropdown(
            cls, value=cls[0] if cls else None, label=label, scale=2, allow_custom_value=True, filterable=True
        )
        c.emb_method = gr.Dropdown(methods, value=methods[0] if methods else None, label="Method", scale=1)
        c.place_b = gr.Button("Place my image on the map", scale=1, variant="primary")
    with gr.Row(equal_height=False):
        c.place_plot = gr.Plot(label="Embedding of the training split", scale=3)
        c.neighbors = gr.Gallery(
            label="Nearest training images", columns=3, height=380, object_fit="contain", interactive=False, scale=2
        )


def build(ctx: AppContext, version: gr.Number) -> dict[str, Any]:
    c = SimpleNamespace()
    _inputs(ctx, c)
    _results(c)
    _placement(ctx, c)
    show_out = [c.panels, c.data, c.status, c.legend, c.topk]
    show = dict(fn=bind(ctx, upload, 5, status=2), inputs=[c.image, c.runs, c.opacity], outputs=show_out, **INFER)
    c.image.upload(**show, api_name="upload")
    gr.on([c.image.clear, c.runs.input, c.opacity.release], **show, **PRIVATE, trigger_mode="always_last")

    def use_example(evt: gr.SelectData):
        """The clicked example's path (from the fixed list, never from the browser)."""
        pos = evt.index if isinstance(evt.index, int) else evt.index[0]
        return c.examples[pos] if 0 <= pos < len(c.examples) else gr.skip()

    c.ex.select(use_example, None, c.image, **PRIVATE).then(**show, **PRIVATE)
    version.change(bind(ctx, follow_runs, 2), None, [c.runs, c.emb_run], **PRIVATE)
    place_out = [c.place_plot, c.neighbors, c.status]
    place_in = [c.image, c.emb_run, c.emb_method]
    c.place_b.click(bind(ctx, place, 3, status=2), place_in, place_out, api_name="place", **LONG)
    return {}
