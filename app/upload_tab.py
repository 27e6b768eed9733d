"""Tab "Upload your own image": every selected run on an uploaded image, uncertainty, and its place on an embedding map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from app.common import HIDDEN, MAX_SLOTS, AppContext, guard, images_available, presence_md
from app.compare import display
from app.figures import embedding_scatter, topk_bars
from core import analysis as A
from core import visualize as V

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "examples"


def example_paths() -> list[str]:
    """The example images shipped in assets/examples (the only files an example click can load)."""
    return sorted(str(p) for p in ASSETS.glob("*.jpg"))


def build(ctx: AppContext) -> dict[str, Any]:
    ws = ctx.ws
    methods = A.embedding_methods()
    seg = ws.names_for("segmentation")
    cls = ws.names_for("classification")
    seg = sorted(seg, key=lambda n: not images_available(ctx, n))  # runs of available datasets are the better known ones
    runs0 = (seg[:2] + cls[:1]) or ws.names[:2]
    examples = example_paths()
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280):
            upload = gr.File(label="Upload an image (JPEG, PNG, WebP…)", file_types=["image"], type="filepath", height=120, elem_id="upload-file")
            example_gallery = gr.Gallery([(p, Path(p).stem) for p in examples], label="…or click an example", columns=2, height=230,
                                         allow_preview=False, object_fit="cover", interactive=False)  # fmt: skip
        with gr.Column(scale=2, min_width=320):
            runs = gr.Dropdown(ws.names, value=runs0, multiselect=True, max_choices=MAX_SLOTS, label=f"Runs (best epoch; up to {MAX_SLOTS})")
            opacity = gr.Slider(0, 1, value=0.55, step=0.05, label="Mask opacity")
            status = gr.Markdown("Upload an image or click an example.", elem_id="upload-status")
    with gr.Row(equal_height=False, elem_classes="explorer-grid"):
        with gr.Column(min_width=240):
            gr.Markdown("**Your image**  \nas the models see it (at most 1024 px)", elem_classes="slot-header")
            preview = gr.Image(show_label=False, format="png", interactive=False, elem_id="upload-preview")
        slots = []
        for i in range(MAX_SLOTS):
            with gr.Column(min_width=240, visible=False, elem_id=f"upload-slot-{i + 1}") as col:
                header = gr.Markdown("", elem_classes="slot-header")
                img = gr.Image(label="Prediction", show_label=False, format="png", interactive=False)
                ent = gr.Image(label="Uncertainty", show_label=False, format="png", interactive=False)
                md = gr.Markdown("")
            slots.append((col, header, img, ent, md))
    legend_out = gr.Image(show_label=False, format="png", interactive=False, height=90, container=False, buttons=[], visible=False)
    topk_plot = gr.Plot(label="Top-5 probabilities (classification runs)", visible=False)
    gr.Markdown("### Where does it fall on a classifier's embedding map?")
    with gr.Row():
        emb_run = gr.Dropdown(cls, value=cls[0] if cls else None, label="Classification run (best epoch)", scale=2)
        emb_method = gr.Dropdown(methods, value=methods[0] if methods else None, label="Method", scale=1)
        place_b = gr.Button("Place my image on the map", scale=1, variant="primary")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            place_plot = gr.Plot(label="Embedding of the training split")
        with gr.Column(scale=2):
            neighbors = gr.Gallery(label="Nearest training images", columns=3, height=380, allow_preview=True, object_fit="contain", interactive=False)

    outs = [preview, status, legend_out, topk_plot] + [c for s in slots for c in s]

    @guard(len(outs), status=1)
    def analyze_upload(file_path, run_names, opacity_v):
        """Each selected run on the uploaded image: overlay, classes and uncertainty, or top-5 probabilities."""
        if not file_path:
            return (None, "Upload an image or click an example.", gr.update(visible=False), gr.update(visible=False),
                    *[gr.update(visible=False) if j % 5 == 0 else gr.skip() for j in range(5 * MAX_SLOTS)])  # fmt: skip
        image = A.read_image(file_path)
        names = list(run_names or [])[:MAX_SLOTS]
        members = [(ws.run(n), A.nearest_epoch(ws.run(n), "best")) for n in names]
        out: list[Any] = [display(image), f"{image.shape[1]}×{image.shape[0]} px · {len(names)} runs", gr.skip(), gr.skip()]
        slot_out: list[Any] = []
        entries, legend_run = [], None
        for k in range(MAX_SLOTS):
            if k >= len(members):
                slot_out += [gr.update(visible=False), gr.skip(), gr.skip(), gr.skip(), gr.skip()]
                continue
            run, e = members[k]
            pred = A.predict_image([(run, e)], image)
            head = f"**{names[k]}**  \n{run.arch} · epoch {e}"
            if run.task == "segmentation":
                legend_run = legend_run or run
                p = A.class_presence(pred.labels, None, run.num_classes, run.ignore_index)
                ov = display(V.overlay(image, pred.labels, run.palette, opacity=opacity_v))
                entropy = pred.entropy()
                ent = display(V.entropy_map(entropy, run.num_classes))
                mean_h = float(entropy.mean())
                md = (f"{presence_md(p, run.classes)}  \nLower image: uncertainty (per-pixel entropy; dark = sure, bright = unsure), "
                      f"mean {mean_h:.2f} nats of at most {np.log(run.num_classes):.2f}")  # fmt: skip
                slot_out += [gr.update(visible=True), head, gr.update(value=ov, visible=True), gr.update(value=ent, visible=True), md]
            else:
                top = pred.topk(5)
                entries.append((names[k], [(run.classes[c], p) for c, p in top]))
                md = "  \n".join(f"{j + 1}. {run.classes[c]} — {p:.3f}" for j, (c, p) in enumerate(top))
                slot_out += [gr.update(visible=True), head, gr.update(value=None, visible=False), gr.update(value=None, visible=False), md]
        if legend_run is not None:
            out[2] = gr.update(value=V.class_legend(legend_run.classes, legend_run.palette, width=1100), visible=True)
        else:
            out[2] = gr.update(visible=False)
        out[3] = gr.update(value=topk_bars(entries), visible=True) if entries else gr.update(visible=False)
        return tuple(out + slot_out)

    def use_example(evt: gr.SelectData):
        """The clicked example's path (from the fixed list, never from the browser)."""
        pos = evt.index if isinstance(evt.index, int) else evt.index[0]
        return examples[pos] if 0 <= pos < len(examples) else gr.skip()

    @guard(3, status=2)
    def place_upload(file_path, run_name, method, progress=gr.Progress()):
        """The image on the run's embedding map of its training split, with its nearest training images."""
        if method not in A.embedding_methods():
            raise ValueError(f"unknown embedding method {method!r}; available: {', '.join(A.embedding_methods()) or 'none'}")
        if not file_path:
            raise ValueError("upload an image (or click an example) first")
        if not run_name:
            raise ValueError("no classification run found: train one to place images on its embedding map")
        image = A.read_image(file_path)
        run = ws.run(run_name)
        if run.task != "classification":
            raise ValueError(f"run {run_name} is a {run.task} run; choose a classification run")
        e = A.nearest_epoch(run, "best")
        split = run.data.get("train_split", "train")
        emb = A.embedding(run, e, split, method, data_root=ws.data_root, progress=lambda f, m: progress(f, desc=m))
        placed = A.place_on_embedding(run, emb, image, data_root=ws.data_root)
        nb = [int(j) for j in placed["neighbors"]]
        fig = embedding_scatter(emb.coords, emb.labels, emb.preds, run.classes, run.palette,
                                title=f"{run_name} @ {e}: {split} split ({emb.method})",
                                extra={"xy": placed["xy"], "name": "your image", "neighbors": nb})  # fmt: skip
        ref = ws.dataset(run_name, split)
        ds = ref.open()
        idx = [int(emb.image_index[j]) for j in nb]
        paths = A.thumbnails(ref, idx, ctx.thumbs_dir)
        items = [(p, f"{ds.item_id(i)} · {run.classes[int(emb.labels[j])]}") for p, i, j in zip(paths, idx, nb)]
        return fig, items, f"Placed on {run_name}'s {split} map next to {len(nb)} training images"

    analyze_in = [upload, runs, opacity]
    upload.upload(analyze_upload, analyze_in, outs, api_name="analyze_upload")
    upload.clear(analyze_upload, analyze_in, outs, api_name="analyze_clear", **HIDDEN)
    example_gallery.select(use_example, None, upload, api_name="use_example").then(analyze_upload, analyze_in, outs, api_name="analyze_example", **HIDDEN)
    runs.input(analyze_upload, analyze_in, outs, api_name="analyze_runs", **HIDDEN, trigger_mode="always_last")
    opacity.release(analyze_upload, analyze_in, outs, api_name="analyze_opacity", **HIDDEN, trigger_mode="always_last")
    place_b.click(place_upload, [upload, emb_run, emb_method], [place_plot, neighbors, status], api_name="place_upload")
    return {}
