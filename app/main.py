"""Vision Explorer: compare runs, read their metrics, inspect errors and feature spaces in the browser.

    python app/main.py [--runs checkpoints/] [--data-root ../shared/data/camvid] [--host 127.0.0.1] [--port 7860] [--share]
                       [--max-upload-side 1024]

``build_app(runs_dir, data_root)`` returns the ``gr.Blocks`` (tests start it on a free port with
``launch_app``). Each user action is one named API endpoint for ``gradio_client`` (see the README's
"API" section); the events that only wire the page are private. Only runs discovered under ``--runs``
can be chosen: the browser sends run names, never paths.
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

from app import compare_tab, confusion_tab, embeddings_tab, metrics_tab, runs_tab, upload_tab  # noqa: E402
from app.common import PRIVATE, READ, AppContext, default_cache_dir, fill_on_first_open, private_dir  # noqa: E402
from core.explorer import MAX_UPLOAD_SIDE, Workspace, check_upload_side  # noqa: E402
from core.explorer.figures import warm_up  # noqa: E402

MAX_UPLOAD = "25mb"
CSS = """
.gradio-container {max-width: 1600px !important}
#explorer-header h1 {margin-bottom: 0}
#explorer-header p {margin-top: 4px; color: var(--body-text-color-subdued)}
/* grids of run columns: equal columns that wrap, hidden ones take no space */
.explorer-grid {display: grid !important; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 12px}
.explorer-grid > .hide, .explorer-grid > [style*="display: none"] {display: none !important}
.slot-header p {margin: 0; line-height: 1.35}
"""


def preload_plots_js() -> str:
    """A page-load script that imports Gradio's Plotly chunk (4.6 MB of JavaScript) once the page is idle.

    Gradio fetches and runs it when the first chart is drawn, which a 2-core machine's browser takes 2-3 s to do:
    the first chart of every tab but the first would pay it on the click. Importing it from the page's own
    assets folder, by the file name this Gradio ships, makes it one module shared with Gradio's own import.
    Without such a file (another Gradio), nothing is preloaded."""
    assets = Path(gr.__file__).parent / "templates" / "frontend" / "assets"
    chunks = sorted(assets.glob("PlotlyPlot-*.js"))
    if len(chunks) != 1:
        return "() => {}"
    return f"""() => {{
  const load = () => {{
    const entry = document.querySelector('script[type="module"][src*="/assets/"]');
    const base = entry ? entry.src.slice(0, entry.src.lastIndexOf("/") + 1) : new URL("assets/", document.baseURI).href;
    import(base + "{chunks[0].name}").catch(() => {{}});  // only a head start: Gradio imports it anyway
  }};
  (window.requestIdleCallback || ((f) => setTimeout(f, 500)))(load, {{ timeout: 2000 }});
}}"""


def page_js() -> str:
    """What runs when a page opens: the embedding maps' click wiring and the charts' preload."""
    return f"() => {{ ({embeddings_tab.CLICK_JS.strip()})(); ({preload_plots_js()})(); }}"


def header_md(ws: Workspace) -> str:
    n = len(ws.runs)
    tasks = sorted({r.task.name for r in ws.runs.values()})
    line = f"{n} run{'s' if n != 1 else ''} ({', '.join(tasks) or 'none'}) in `{ws.runs_dir}`"
    if ws.data_root:
        line += f" · data root `{ws.data_root}`"
    if not n:
        line += (
            f"  \n**No runs yet.** Train one, e.g. `python -m core.train --arch unet --dataset synthstreets "
            f"--epochs 3 --out {ws.runs_dir}/unet`; it appears in the Runs tab while it trains (restart the app "
            "to get the other tabs once it has weights)."
        )
    return f"# Vision Explorer\n{line}"


def load_plugins(modules: list[str]) -> None:
    """Import the modules named on the command line (they register models or datasets). Nothing else is
    ever imported: a run directory alone cannot make the app run code."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise SystemExit(f"--plugins {name}: cannot import it ({e}); is its package on PYTHONPATH?") from e


def build_app(
    runs_dir: str | Path,
    data_root: str | None = None,
    *,
    cache_dir: str | Path | None = None,
    plugins: list[str] | None = None,
    max_upload_side: int = MAX_UPLOAD_SIDE,
) -> gr.Blocks:
    """The explorer for the runs under ``runs_dir``; ``data_root`` overrides the dataset roots recorded in runs;
    ``plugins`` are modules to import first (models or datasets registered outside this project); uploads are
    downscaled to ``max_upload_side`` pixels on their longest side (a positive number, else a ``ValueError``)."""
    side = check_upload_side(max_upload_side)
    load_plugins(plugins or [])
    ws = Workspace.discover(runs_dir, data_root)
    ws.plugins = list(plugins or [])
    warm_up()  # plotly's first figure of a kind costs ~0.5 s: paid here, not on the first click
    ctx = AppContext(ws, private_dir(Path(cache_dir)) if cache_dir else default_cache_dir(), max_upload_side=side)
    opening: list[tuple[gr.Tab, list[dict]]] = []  # each tab and the events that fill it
    with gr.Blocks(title="Vision Explorer") as demo:
        header = gr.Markdown(header_md(ws), elem_id="explorer-header")
        if ws.problems:
            with gr.Accordion(f"{len(ws.problems)} run folder(s) skipped", open=False):
                gr.Markdown("\n".join(f"- `{name}`: {why}" for name, why in ws.problems))
        version = gr.Number(0, visible=False)  # bumped when runs change on disk; every tab follows it
        runs_tab.add_timer(ctx, version)
        version.change(lambda: header_md(ws), None, header, **PRIVATE)
        with gr.Tabs() as tabs:
            targets = []  # tabs the Runs tab opens selected runs in
            for title, tab_id, module in (
                ("Compare models", "compare", compare_tab),
                ("Metrics", "metrics", metrics_tab),
                ("Confusion", "confusion", confusion_tab),
                ("Embeddings", "embeddings", embeddings_tab),
                ("Upload your own image", "upload", upload_tab),
            ):
                if not (ws.listed if module is metrics_tab else ws.runs):  # Metrics reads histories: runs need no weights
                    continue
                with gr.Tab(title, id=tab_id) as tab:
                    built = module.build(ctx, version)
                opening.append((tab, built.get("load", [])))
                targets += [built["open"]] if "open" in built else []
            with gr.Tab("Runs", id="runs") as tab:
                opening.append((tab, runs_tab.build(ctx, version, tabs=tabs, targets=targets).get("load", [])))
        (_, shown), *others = opening
        for event in shown:  # the tab shown first is filled with the page, each event in its concurrency lane
            demo.load(**{**READ, **event}, **PRIVATE)
        for tab, events in others:  # the others when first opened
            fill_on_first_open(tab, events)
    demo.explorer_context = ctx  # for tests and the benchmarks
    return demo


def launch_app(demo: gr.Blocks, *, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False, **kwargs):
    """Start the server with the app's theme, styles and click script, an upload size limit, and only the
    example images and the render folder allowed as files to serve."""
    if host not in ("127.0.0.1", "localhost", "::1") or share:
        exposed = "a public gradio.live link" if share else f"every machine that can reach this one on {host}"
        print(
            f"warning: the explorer is reachable from {exposed}. Anyone there can browse every run under "
            f"{demo.explorer_context.ws.runs_dir}, read its images and run its models. Use --host 127.0.0.1 to keep it local.",
            file=sys.stderr,
            flush=True,
        )
    demo.queue(default_concurrency_limit=1)  # each event declares its lane (app.common READ / INFER / LONG)
    return demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        css=CSS,
        js=page_js(),
        theme=gr.themes.Soft(primary_hue="indigo"),
        max_file_size=MAX_UPLOAD,
        footer_links=["api"],
        show_error=True,
        **kwargs,
        # the example images, and the thumbnails and renders the handlers return (wherever --cache-dir puts them)
        allowed_paths=[str(upload_tab.ASSETS), str(demo.explorer_context.cache_dir)],
    )


def upload_side(text: str) -> int:
    """--max-upload-side: a positive whole number of pixels, else argparse's usage error with the reason."""
    try:
        return check_upload_side(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python app/main.py", description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--runs", default=str(ROOT / "checkpoints"), help="folder searched for run directories")
    p.add_argument(
        "--data-root", default=None, help="dataset root overriding the one recorded in runs (e.g. ../shared/data/camvid)"
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0 exposes the app to the network)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: half the cores, at most 4)")
    p.add_argument(
        "--cache-dir", default=None, help="folder for thumbnails and rendered images (default: ~/.cache/vision-explorer)"
    )
    p.add_argument(
        "--max-upload-side",
        type=upload_side,
        default=MAX_UPLOAD_SIDE,
        metavar="PIXELS",
        help="uploaded images are downscaled to this longest side before the runs see them (the result says so)",
    )
    p.add_argument(
        "--plugins",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module first, e.g. mypkg.models registering your own architectures (repeatable)",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    import torch

    torch.set_num_threads(args.threads or max(1, min(4, (os.cpu_count() or 2) // 2)))
    demo = build_app(
        args.runs, args.data_root, cache_dir=args.cache_dir, plugins=args.plugins, max_upload_side=args.max_upload_side
    )
    launch_app(demo, host=args.host, port=args.port, share=args.share)


if __name__ == "__main__":
    main()
