"""Vision Explorer: compare runs, read their metrics, inspect errors and feature spaces in the browser.

    python app/main.py [--runs checkpoints/] [--data-root ../shared/data/camvid] [--host 127.0.0.1] [--port 7860] [--share]

``build_app(runs_dir, data_root)`` returns the ``gr.Blocks`` (tests start it on a free port with
``launch_app``). Every event has an ``api_name``, so the app is also an API for ``gradio_client``.
Only runs discovered under ``--runs`` can be chosen: the browser sends run names, never paths.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python app/main.py` puts app/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

import gradio as gr  # noqa: E402

from app import compare, confusion_tab, embeddings_tab, metrics_tab, upload_tab  # noqa: E402
from app.common import AppContext, default_cache_dir, private_dir  # noqa: E402
from core.analysis import Workspace  # noqa: E402

MAX_UPLOAD = "25mb"
CSS = """
.gradio-container {max-width: 1600px !important}
#explorer-header h1 {margin-bottom: 0}
#explorer-header p {margin-top: 4px; color: var(--body-text-color-subdued)}
/* image grids: equal columns that wrap, hidden run columns take no space */
.explorer-grid {display: grid !important; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 12px}
.explorer-grid > .hide, .explorer-grid > [style*="display: none"] {display: none !important}
.slot-header p {margin: 0; line-height: 1.35}
"""


def header_md(ws: Workspace) -> str:
    n = len(ws.runs)
    tasks = sorted({r.task for r in ws.runs.values()})
    line = f"{n} run{'s' if n != 1 else ''} ({', '.join(tasks) or 'none'}) in `{ws.runs_dir}`"
    if ws.data_root:
        line += f" · data root `{ws.data_root}`"
    if not n:
        line += (f"  \n**No runs found.** Train one, e.g. `python -m core.train --arch unet --dataset synthstreets "
                 f"--epochs 3 --out {ws.runs_dir}/unet`, then restart the app.")  # fmt: skip
    return f"# Vision Explorer\n{line}"


def build_app(runs_dir: str | Path, data_root: str | None = None, *, cache_dir: str | Path | None = None) -> gr.Blocks:
    """The explorer for the runs under ``runs_dir``; ``data_root`` overrides the dataset roots recorded in runs."""
    ws = Workspace.discover(runs_dir, data_root)
    ctx = AppContext(ws, private_dir(Path(cache_dir)) if cache_dir else default_cache_dir())
    loads = []
    with gr.Blocks(title="Vision Explorer") as demo:
        gr.Markdown(header_md(ws), elem_id="explorer-header")
        if ws.problems:
            with gr.Accordion(f"{len(ws.problems)} run folder(s) skipped", open=False):
                gr.Markdown("\n".join(f"- `{name}`: {why}" for name, why in ws.problems))
        if ws.runs:
            with gr.Tabs():
                with gr.Tab("Compare models", id="compare"):
                    loads += compare.build(ctx)["load"]
                with gr.Tab("Metrics", id="metrics"):
                    loads += metrics_tab.build(ctx)["load"]
                with gr.Tab("Confusion", id="confusion"):
                    loads += confusion_tab.build(ctx)["load"]
                with gr.Tab("Embeddings", id="embeddings"):
                    loads += embeddings_tab.build(ctx)["load"]
                with gr.Tab("Upload your own image", id="upload"):
                    upload_tab.build(ctx)
        for k, (fn, inputs, outputs) in enumerate(loads):
            demo.load(fn, inputs, outputs, api_name=f"load_{k}_{fn.__name__}", api_visibility="undocumented")
    demo.explorer_context = ctx  # for tests and the benchmark
    return demo


def launch_app(demo: gr.Blocks, *, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False, **kwargs):
    """Start the server with the app's theme, styles and click script, an upload size limit, and the example folder allowed."""
    return demo.launch(
        server_name=host, server_port=port, share=share, css=CSS, js=embeddings_tab.CLICK_JS, theme=gr.themes.Soft(primary_hue="indigo"),
        max_file_size=MAX_UPLOAD, footer_links=["api"], **kwargs,
        # the example images, and the thumbnails and renders the handlers return (wherever --cache-dir puts them)
        allowed_paths=[str(upload_tab.ASSETS), str(demo.explorer_context.cache_dir)],
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python app/main.py", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    p.add_argument("--runs", default=str(ROOT / "checkpoints"), help="folder searched for run directories")
    p.add_argument("--data-root", default=None, help="dataset root overriding the one recorded in runs (e.g. ../shared/data/camvid)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 exposes the app to the network)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: half the cores, at most 4)")
    p.add_argument("--cache-dir", default=None, help="folder for thumbnails and rendered images (default: the temp folder)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads or max(1, min(4, (os.cpu_count() or 2) // 2)))
    demo = build_app(args.runs, args.data_root, cache_dir=args.cache_dir)
    launch_app(demo, host=args.host, port=args.port, share=args.share)


if __name__ == "__main__":
    main()
