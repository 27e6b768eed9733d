"""Tab "Embeddings": 2-D maps of a run's feature space (t-SNE, PCA, UMAP), two side by side, and their points."""

from __future__ import annotations

from typing import Any

import gradio as gr

from app.common import PRIVATE, READ, AppContext, bind, default_run, epoch_slider, slider_init
from core.explorer import (
    ClassificationTask,
    EmbeddingsUnavailableError,
    SegmentationTask,
    check_method,
    embedding,
    embedding_methods,
    map_steps,
    nearest_epoch,
    point_view,
)
from core.explorer.figures import embedding_scatter

# Clicking a point of a map copies its index into the point box and presses "Show" (Plotly's click
# event does not reach Gradio by itself). Attached to every new plot of the two maps.
CLICK_JS = """
() => {
  const wire = () => {
    for (const side of ["a", "b"]) {
      const plot = document.querySelector(`#emb-plot-${side} .js-plotly-plot`);
      if (!plot || plot.__explorerWired || !plot.on) continue;
      plot.__explorerWired = true;
      plot.on("plotly_click", (ev) => {
        const pt = ev && ev.points && ev.points[0];
        if (!pt || !pt.customdata) return;
        const input = document.querySelector(`#emb-point-${side} input`);
        if (!input) return;
        input.value = String(pt.customdata[0]);
        input.dispatchEvent(new Event("input", { bubbles: true }));
        input.dispatchEvent(new Event("change", { bubbles: true }));
        setTimeout(() => document.querySelector(`#emb-show-${side}`)?.click(), 50);
      });
    }
  };
  new MutationObserver(wire).observe(document.body, { childList: true, subtree: true });
  wire();
}
"""


def _checked(ctx: AppContext, run: str, epoch: int | str, split: str, method: str):
    r = ctx.ws.run(run)
    ref = ctx.ws.run_split(run, split)  # a split this run's dataset recorded: never a free string in a file name
    check_method(method, embedding_methods())
    return r, nearest_epoch(r, epoch), ref


def _figure(run, emb, name: str, extra: str = "", selected: int | None = None):
    title = f"{name} @ epoch {emb.epoch} · {emb.split} · {emb.method} · {len(emb.coords)} {run.task.unit}{extra}"
    return embedding_scatter(emb.coords, emb.labels, emb.preds, run.classes, run.palette, title=title, selected=selected)


def embedding_map(ctx: AppContext, run: str, epoch: int | str, split: str, method: str, progress=gr.Progress()):
    """The run's feature map at ``epoch`` on ``split``: from the cache at once, else a quick PCA preview
    first and then the map, with progress. Streams (figure, status)."""
    r, e, ref = _checked(ctx, run, epoch, split, method)
    ref.open()  # a missing dataset is a clear message before any work
    steps = map_steps(r, e, split, method, data_root=ctx.ws.data_root, progress=lambda f, m: progress(f, desc=m))
    try:
        for emb, preview in steps:
            if preview:
                yield _figure(r, emb, run, f" — PCA preview, {method} computing…"), f"PCA preview shown; computing {method}…"
            else:
                yield _figure(r, emb, run), f"{run} @ {e} ({method}, {len(emb.coords)} points). Click a point or type its number."
    except EmbeddingsUnavailableError as unavailable:  # a capability of the run's model, not an error: no map, the reason
        yield None, f"{run} @ {e}: {unavailable}"


def embedding_point(ctx: AppContext, run: str, epoch: int | str, split: str, method: str, point: int):
    """A point of a built map: its image (the pixel marked, for segmentation), true and predicted class."""
    r, e, ref = _checked(ctx, run, epoch, split, method)
    emb = embedding(r, e, split, method, data_root=ctx.ws.data_root, cached_only=True)
    if emb is None:
        raise ValueError("build the map first")
    image, p = point_view(emb, r, ref, point)
    where = f"image {p['image']} (`{p['item_id']}`)" + (f", pixel (y={p['pixel'][0]}, x={p['pixel'][1]})" if p["pixel"] else "")
    verdict = "✓ right" if p["true"] == p["predicted"] else "✗ wrong"
    md = f"Point **{p['point']}**: true **{p['true']}**, predicted **{p['predicted']}** ({verdict}) — {where}"
    return image, md, _figure(r, emb, run, selected=p["point"])


def select_run(ctx: AppContext, run: str):
    return epoch_slider(ctx, run, "best"), gr.update(choices=ctx.ws.splits(ctx.ws.dataset(run)) if run else [])


def build(ctx: AppContext, version: gr.Number) -> dict[str, Any]:
    ws = ctx.ws
    methods = embedding_methods()
    run0 = default_run(ctx, ClassificationTask if ws.names_for(ClassificationTask) else SegmentationTask)
    first = {"a": run0, "b": default_run(ctx, SegmentationTask) or run0}  # map B: pixels of a segmentation run
    splits0 = ws.splits(ws.dataset(run0)) if run0 else []
    with gr.Row():
        split = gr.Dropdown(splits0, value=splits0[0] if splits0 else None, label="Split", scale=1, allow_custom_value=True)
        method = gr.Dropdown(methods, value=methods[0] if methods else None, label="Method", scale=1, elem_id="emb-method")
        second = gr.Checkbox(False, label="Second map side by side", scale=1)
    status = gr.Markdown(
        "Choose a run and press **Build map**. A t-SNE map takes a while the first time, then comes from the cache."
    )
    loads = []
    with gr.Row(equal_height=False):
        for side, visible in (("a", True), ("b", False)):
            api = {"api_name": "embedding"} if side == "a" else PRIVATE
            with gr.Column(visible=visible, min_width=420) as col:
                if side == "b":
                    second.input(lambda on: gr.update(visible=bool(on)), [second], col, **PRIVATE)
                with gr.Row():
                    run = gr.Dropdown(ws.names, value=first[side], label=f"Run ({side.upper()})", scale=3, filterable=True)
                    epoch = gr.Slider(step=1, label="Epoch", scale=2, **slider_init(ctx, first[side]))
                build_b = gr.Button(f"Build map {side.upper()}", variant="primary")
                plot = gr.Plot(label=f"Map {side.upper()}", elem_id=f"emb-plot-{side}")
                with gr.Row():
                    point = gr.Number(
                        None,
                        precision=0,
                        minimum=0,
                        label="Point (hover shows its number; click a point)",
                        elem_id=f"emb-point-{side}",
                        scale=3,
                    )
                    show_b = gr.Button("Show", elem_id=f"emb-show-{side}", scale=1)
                point_img = gr.Image(label="The point's image", interactive=False, elem_id=f"emb-image-{side}")
                point_md = gr.Markdown("")
            # a cached map is a fast read; a cold one is computed once (concurrent requests wait for it), so no
            # lane of its own: it must not hold up other maps' reads
            build_b.click(bind(ctx, embedding_map, 2, status=1), [run, epoch, split, method], [plot, status], **api, **READ)
            point_ev = dict(
                fn=bind(ctx, embedding_point, 3), inputs=[run, epoch, split, method, point], outputs=[point_img, point_md, plot]
            )
            show_b.click(**point_ev, **({"api_name": "embedding_point"} if side == "a" else PRIVATE), **READ)
            point.submit(**point_ev, **PRIVATE, **READ)
            run.input(bind(ctx, select_run, 2), [run], [epoch, split], **PRIVATE, **READ)
            version.change(lambda: gr.update(choices=ws.names), None, run, **PRIVATE)
            loads.append(dict(fn=bind(ctx, select_run, 2), inputs=[run], outputs=[epoch, split]))
    return dict(load=loads[:1])
