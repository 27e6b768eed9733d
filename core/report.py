"""Write a report of runs on a split, for a write-up: ``python -m core.report --help``.

    python -m core.report --runs checkpoints --run camvid/pspnet --run camvid/unet --split val-sample --out report.html
    python -m core.report --runs runs/ --run a --run b --split val --epochs last --images 0,5,12 --out out/report.html

One self-contained HTML file that opens offline (Plotly's JavaScript inlined once, images embedded): the summary
and per-class tables (best value in bold, a dagger where the gap to the best run is not significant under the
paired bootstrap over images), training curves with the best and early-stop epochs, confusion matrices, images
side by side (those given, or the four hardest), across-epoch strips (of the best run, or --strips all),
significance against the best run, calibration, and how the report was made. Beside it: the tables as LaTeX
(booktabs), Markdown and CSV, and the figures as SVG and PNG (with kaleido and a Chromium; otherwise the reason
is printed and the HTML still written).

Missing evaluation results are computed first through ``core.evaluate`` (with a progress bar).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from tqdm.auto import tqdm

from core.explorer.report import parse_images, write_report
from core.explorer.report.build import STRIPS
from core.explorer.workspace import Workspace
from core.runs import RunError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.report", description=__doc__.splitlines()[0])
    p.add_argument("--runs", required=True, help="folder searched for run directories")
    p.add_argument(
        "--run", "--run-name", dest="run", action="append", required=True, help="a run's name under --runs (repeatable)"
    )
    p.add_argument("--split", default=None, help="the split to report on (default: the first run's validation split)")
    p.add_argument("--epochs", default="best", help="best, last or a number (per run the nearest epoch)")
    p.add_argument("--images", default=None, help="image indices shown side by side, e.g. 0,5,12 (default: the 4 hardest)")
    p.add_argument(
        "--strips", choices=STRIPS, default="best", help="across-epoch strips of the best run (by mIoU) or of every run"
    )
    p.add_argument("--out", required=True, help="the HTML file to write (tables and figures go beside it)")
    p.add_argument("--data-root", default=None, help="dataset root overriding the one recorded in the runs")
    p.add_argument("--no-figures", action="store_true", help="skip the SVG and PNG files")
    p.add_argument("--plugins", action="append", default=[], metavar="MODULE", help="import first (models, datasets, measures)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = "python -m core.report " + shlex.join(sys.argv[1:] if argv is None else argv)
    from core.train.import_run import load_plugins

    bar = tqdm(total=100, desc="report", unit="%")
    step = lambda f, m: (bar.set_description(m[:60]), bar.update(max(0, round(100 * f) - bar.n)))  # noqa: E731
    start = time.perf_counter()
    try:
        load_plugins(args.plugins)
        ws = Workspace.discover(args.runs, args.data_root)
        ws.plugins = list(args.plugins)
        files = write_report(
            ws,
            args.run,
            args.out,
            epoch=args.epochs,
            split=args.split,
            images=parse_images(args.images),
            strips=args.strips,
            figures=not args.no_figures,
            progress=step,
            limit=sys.maxsize,  # offline: every missing result is computed
            command=command,
        )
    except (ValueError, KeyError, RunError, FileNotFoundError) as e:
        bar.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    bar.update(100 - bar.n)
    bar.close()
    size = files.html.stat().st_size / 1e6
    print(f"{files.html} ({size:.1f} MB) in {time.perf_counter() - start:.1f} s")
    print("tables: " + ", ".join(str(p) for p in files.tables.values()))
    if files.figures:
        print(f"figures: {len(files.figures)} files in {files.figures[0].parent}")
    elif not args.no_figures:
        print(f"no SVG/PNG figures: {files.figures_missing}; the HTML holds every figure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
