"""Tab "Upload your own image": every selected run on an uploaded image, its uncertainty, and its place on
a classifier's embedding map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from app.common import INFER, LONG, PRIVATE, AppContext, bind, gallery, preferred_runs
from app.figures import embedding_scatter, topk_bars
from core import visualize as V
from core.explorer import (
    ClassificationTask,
    SegmentationTask,
    embedding,
    embedding_methods,
    nearest_epoch,
    place_on_embedding,
    read_image,
    thumbnails,
)
from core.explorer.compare import MAX_COMPARE
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
    names = list(runs or [])
    if len(names) > MAX_COMPARE:
        raise ValueError(f"at most {MAX_COMPARE} runs at once; {len(names)} are selected. Deselect some.")
    members = [(n, (ctx.ws.run(n), nearest_epoch(ctx.ws.run(n), "best"))) for n in names]
    result = analyze(ctx.renders, read_image(image), members, opacity=opacity)
    seg = next((r for _, (r, _) in members if r.task.dense), None)
    legend = (
        gr.update(
            value=ctx.renders.path(
                ("legend", tuple(seg.classes)), lambda: V.class_legend(seg.classes, seg.palette, width=1100), photo=False
            ),
            visible=True,
        )
        if seg
        else gr.update(visible=False)
    )
    topk = gr.update(value=topk_bars(result.topk), visible=True) if result.topk else gr.update(visible=False)
    return gr.update(value=gallery(result.panels), columns=min(len(result.panels), 4)), result.scores, result.status, legend, topk


def place(ctx: AppContext, image: str | None, run: str, method: str, progress=gr.Progress()):
    """The image on the classification run's embedding map of its training split (or, without the dataset, of its
    shipped sample), with its nearest images there."""
    if method not in embedding_methods():
        raise ValueError(f"unknown embedding method {method!r}; available: {', '.join(embedding_methods()) or 'none'}")
    if not image:
        raise ValueError("upload an image (or click an example) first")
    if not run:
        raise ValueError("no classification run found: train one to place images on its embedding map")
    r = ctx.ws.run(run)
    if r.task.dense:
        raise ValueError(f"run {run} is a {r.task.name} run; choose a classification run")
    e = nearest_epoch(r, "best")
    train = r.data.get("train_split", "train")
    here = ctx.ws.splits(ctx.ws.dataset(run))
    split = train if train in here else here[0]  # without the dataset: its shipped sample
    ref = ctx.ws.run_split(run, split)
    emb = embedding(r, e, split, method, data_root=ctx.ws.data_root, progress=lambda f, m: progress(f, desc=m))
    placed = place_on_embedding(r, emb, read_image(image))
    nb = [int(j) for j in placed["neighbors"]]
    fig = embedding_scatter(
        emb.coords,
        emb.labels,
        emb.preds,
        r.classes,
        r.palette,
        title=f"{run} @ {e}: {split} split ({emb.method})",
        extra={"xy": placed["xy"], "name": "your image", "neighbors": nb},
    )
    idx = [int(emb.image_index[j]) for j in nb]
    ds = ref.open()
    items = [
        (p, f"{ds.item_id(i)} · {r.classes[int(emb.labels[j])]}")
        for p, i, j in zip(thumbnails(ref, idx, ctx.thumbs_dir), idx, nb)
    ]
    kind = "training" if split == train else f"{split} (the training images are not on this machine)"
    return fig, items, f"Placed on {run}'s {split} map next to {len(nb)} {kind} images"


def build(ctx: AppContext, version: gr.Number) -> dict[str, Any]:
    ws = ctx.ws
    cls = preferred_runs(ctx, ClassificationTask)
    runs0 = (preferred_runs(ctx, SegmentationTask)[:2] + cls[:1]) or ws.names[:2]
    examples = example_paths()
    methods = embedding_methods()
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280):
            image = gr.File(
                label="Upload an image (JPEG, PNG, WebP…)",
                file_types=["image"],
                type="filepath",
                height=120,
                elem_id="upload-file",
            )
            ex = gr.Gallery(
                [(p, Path(p).stem) for p in examples],
                label="…or click an example",
                columns=2,
                height=230,
                allow_preview=False,
                object_fit="cover",
                interactive=False,
            )
        with gr.Column(scale=2, min_width=320):
            runs = gr.Dropdown(
                ws.names, value=runs0, multiselect=True, label=f"Runs (best epoch; up to {MAX_COMPARE})", elem_id="upload-runs"
            )
            opacity = gr.Slider(0, 1, value=0.55, step=0.05, label="Mask opacity")
            status = gr.Markdown("Upload an image or click an example.", elem_id="upload-status")
    panels = gr.Gallery(
        label="Your image, each run's prediction and its uncertainty (dark = sure, bright = unsure)",
        columns=4,
        height="auto",
        object_fit="contain",
        interactive=False,
        elem_id="upload-gallery",
    )
    legend = gr.Image(show_label=False, interactive=False, height=90, container=False, buttons=[], visible=False)
    topk = gr.Plot(label="Top-5 probabilities (classification runs)", visible=False)
    with gr.Accordion("Results as JSON (what /upload returns)", open=False):
        data = gr.JSON(label="results")
    gr.Markdown("### Where does it fall on a classifier's embedding map?")
    with gr.Row():
        emb_run = gr.Dropdown(
            cls, value=cls[0] if cls else None, label="Classification run (best epoch)", scale=2, allow_custom_value=True
        )
        emb_method = gr.Dropdown(methods, value=methods[0] if methods else None, label="Method", scale=1)
        place_b = gr.Button("Place my image on the map", scale=1, variant="primary")
    with gr.Row(equal_height=False):
        place_plot = gr.Plot(label="Embedding of the training split", scale=3)
        neighbors = gr.Gallery(
            label="Nearest training images", columns=3, height=380, object_fit="contain", interactive=False, scale=2
        )

    show = dict(
        fn=bind(ctx, upload, 5, status=2), inputs=[image, runs, opacity], outputs=[panels, data, status, legend, topk], **INFER
    )
    image.upload(**show, api_name="upload")
    gr.on([image.clear, runs.input, opacity.release], **show, **PRIVATE, trigger_mode="always_last")

    def use_example(evt: gr.SelectData):
        """The clicked example's path (from the fixed list, never from the browser)."""
        pos = evt.index if isinstance(evt.index, int) else evt.index[0]
        return examples[pos] if 0 <= pos < len(examples) else gr.skip()

    ex.select(use_example, None, image, **PRIVATE).then(**show, **PRIVATE)
    version.change(
        lambda: (gr.update(choices=ws.names), gr.update(choices=ws.names_for(ClassificationTask))),
        None,
        [runs, emb_run],
        **PRIVATE,
    )
    place_b.click(
        bind(ctx, place, 3, status=2), [image, emb_run, emb_method], [place_plot, neighbors, status], api_name="place", **LONG
    )
    return {}
