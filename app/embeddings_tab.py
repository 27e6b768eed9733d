"""Tab "Embeddings": 2-D maps of a run's feature space (t-SNE, PCA, UMAP), two side by side, and their points."""

from __future__ import annotations

from typing import Any

import gradio as gr

from app.common import HIDDEN, AppContext, default_run, epoch_slider_update, guard, slider_init
from app.compare import display
from app.figures import embedding_scatter
from core import analysis as A
from core import visualize as V

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


def _split_choices(ctx: AppContext, name: str | None) -> list[str]:
    return ctx.ws.splits(ctx.ws.dataset(name)) if name else []


def build(ctx: AppContext) -> dict[str, Any]:
    ws = ctx.ws
    methods = A.embedding_methods()
    names = ws.names
    cls = ws.names_for("classification")
    run0 = default_run(ctx, "classification" if cls else "segmentation")
    splits0 = _split_choices(ctx, run0)
    if not methods:
        gr.Markdown("**Embedding maps are not available**: `core.embeddings` could not be imported.")
    with gr.Row():
        split = gr.Dropdown(splits0, value=splits0[0] if splits0 else None, label="Split", scale=1, allow_custom_value=True)
        method = gr.Dropdown(methods, value=methods[0] if methods else None, label="Method", scale=1, elem_id="emb-method")
        second = gr.Checkbox(False, label="Second map side by side", scale=1)
    status = gr.Markdown("Choose a run and press **Build map**. A t-SNE map takes a while the first time, then comes from the cache.")
    maps = {}
    with gr.Row(equal_height=False):
        for side, visible in (("a", True), ("b", False)):
            with gr.Column(visible=visible, min_width=420) as col:
                with gr.Row():
                    run = gr.Dropdown(names, value=run0, label=f"Run ({side.upper()})", scale=3)
                    epoch = gr.Slider(step=1, label="Epoch", scale=2, **slider_init(ctx, ws.run(run0) if run0 else None))
                build_b = gr.Button(f"Build map {side.upper()}", variant="primary")
                plot = gr.Plot(label=f"Map {side.upper()}", elem_id=f"emb-plot-{side}")
                with gr.Row():
                    point = gr.Number(None, precision=0, minimum=0, placeholder="e.g. 12", label="Point (hover shows its number; click a point)",
                                      elem_id=f"emb-point-{side}", scale=3)  # fmt: skip
                    show_b = gr.Button("Show", elem_id=f"emb-show-{side}", scale=1)
                point_img = gr.Image(label="The point's image", format="png", interactive=False, elem_id=f"emb-image-{side}")
                point_md = gr.Markdown("")
            maps[side] = dict(col=col, run=run, epoch=epoch, build=build_b, plot=plot, point=point, show=show_b, img=point_img, md=point_md)

    def figure(run, emb, name, title_extra="", selected=None):
        what = "images" if run.task == "classification" else "pixels"
        title = f"{name} @ epoch {emb.epoch} · {emb.split} · {emb.method} · {len(emb.coords)} {what}{title_extra}"
        return embedding_scatter(emb.coords, emb.labels, emb.preds, run.classes, run.palette, title=title, selected=selected)

    def make_builder(side: str):
        @guard(2, status=1)
        def build_map(run_name, epoch_v, split_v, method_v, progress=gr.Progress()):
            """The map from the cache if there is one; else a quick PCA preview first, then the full map with progress."""
            run = ws.run(run_name)
            e = A.nearest_epoch(run, epoch_v)
            if split_v not in _split_choices(ctx, run_name):
                raise ValueError(f"run {run_name}'s dataset has no split {split_v!r}; splits: {', '.join(_split_choices(ctx, run_name))}")
            if method_v not in A.embedding_methods():
                raise ValueError(f"unknown method {method_v!r}; available: {', '.join(A.embedding_methods()) or 'none'}")
            ws.dataset(run_name, split_v).open()  # a missing dataset is a clear message before any work
            emb = A.embedding(run, e, split_v, method_v, data_root=ws.data_root, cached_only=True)
            if emb is None and method_v != "pca":
                pca = A.embedding(run, e, split_v, "pca", data_root=ws.data_root,
                                  progress=lambda f, m: progress(0.3 * f, desc=f"PCA preview: {m}"))  # fmt: skip
                yield figure(run, pca, run_name, " — PCA preview, " + method_v + " computing…"), f"PCA preview shown; computing {method_v}…"
            if emb is None:
                emb = A.embedding(run, e, split_v, method_v, data_root=ws.data_root, progress=lambda f, m: progress(f, desc=m))
            yield figure(run, emb, run_name), f"Map {side.upper()}: {run_name} @ {e} ({method_v}, {len(emb.coords)} points). Click a point or type its number."

        build_map.__name__ = f"embedding_map_{side}"
        return build_map

    def make_point(side: str):
        @guard(3)
        def show_point(run_name, epoch_v, split_v, method_v, point_v):
            """A point of the map: its image, true and predicted class; for a pixel, the pixel is marked."""
            run = ws.run(run_name)
            e = A.nearest_epoch(run, epoch_v)
            emb = A.embedding(run, e, split_v, method_v, data_root=ws.data_root, cached_only=True)
            if emb is None:
                raise ValueError("build the map first")
            if point_v is None or not 0 <= int(point_v) < len(emb.coords):
                raise IndexError(f"point must be between 0 and {len(emb.coords) - 1}")
            j = int(point_v)
            ref = ws.dataset(run_name, split_v)
            i = int(emb.image_index[j])
            image, _ = ref.load(i)
            true_c, pred_c = run.classes[int(emb.labels[j])], run.classes[int(emb.preds[j])]
            verdict = "✓ right" if true_c == pred_c else "✗ wrong"
            where = f"image {i} (`{ref.open().item_id(i)}`)"
            if emb.yx is not None:
                y, x = (int(v) for v in emb.yx[j])
                image = V.mark_pixel(image, (y, x))
                where += f", pixel (y={y}, x={x})"
            md = f"Point **{j}**: true **{true_c}**, predicted **{pred_c}** ({verdict}) — {where}"
            return display(image), md, figure(run, emb, run_name, selected=j)

        show_point.__name__ = f"embedding_point_{side}"
        return show_point

    def select_run(run_name):
        return epoch_slider_update(ctx, run_name, "best"), gr.update(choices=_split_choices(ctx, run_name))

    for side, m in maps.items():
        m["build"].click(make_builder(side), [m["run"], m["epoch"], split, method], [m["plot"], status], api_name=f"embedding_map_{side}")
        m["show"].click(make_point(side), [m["run"], m["epoch"], split, method, m["point"]], [m["img"], m["md"], m["plot"]],
                        api_name=f"embedding_point_{side}")  # fmt: skip
        m["point"].submit(make_point(side), [m["run"], m["epoch"], split, method, m["point"]], [m["img"], m["md"], m["plot"]],
                          api_name=f"embedding_point_{side}_submit", **HIDDEN)  # fmt: skip
        m["run"].input(guard(2)(select_run), [m["run"]], [m["epoch"], split], api_name=f"embedding_select_run_{side}")
    second.input(lambda on: gr.update(visible=bool(on)), [second], maps["b"]["col"], api_name="embedding_second_map")
    loads = [(guard(2)(select_run), [m["run"]], [m["epoch"], split]) for m in (maps["a"],)]
    return dict(load=loads)
