"""What a report costs (issue 28's figures): 6 CamVid zoo runs on the shipped val sample (24 images). Run it as::

    python bench/report.py [--runs checkpoints/camvid] [--screenshot docs/screenshots/report.jpg]

1. Cold: ``python -m core.report`` on runs never evaluated: the evaluation (mostly inference) and the report.
2. Warm, after ``core.evaluate``: the same command again (the process, Python's imports included), and
   ``write_report`` in a process that has imported everything, its caches emptied. Goal: at most 10 s. Then the
   same with the strips of every run (``--strips all``: two more model passes per run, on one image).
3. The size of the HTML file (goal: at most 8 MB, of which about 4.6 MB is Plotly's JavaScript), and the time of
   the SVG and PNG figures (kaleido and a Chromium), reported apart.

The runs are copied into a temporary folder, so the shipped ones are never written to.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plotly.offline import get_plotlyjs  # noqa: E402

from core import explorer as A  # noqa: E402
from core.explorer.report import write_report  # noqa: E402
from core.explorer.report.static import write_figures  # noqa: E402
from core.explorer.workspace import Workspace  # noqa: E402

RUNS = ["fcn8s", "fcn_baseline", "lraspp", "pspnet", "resnet_fcn", "unet"]
SPLIT = "val-sample"


def command(runs: Path, out: Path) -> list[str]:
    names = [a for n in RUNS for a in ("--run", n)]
    return [sys.executable, "-m", "core.report", "--runs", str(runs), *names, "--split", SPLIT, "--out", str(out), "--no-figures"]


def timed_process(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def screenshot(html: Path, path: Path) -> None:
    """The top of the report (tables and per-class bars) as a JPEG, as the README shows it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())
        page.goto(html.resolve().as_uri(), wait_until="load")
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length > 0")
        page.wait_for_timeout(1000)
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), type="jpeg", quality=80)
        browser.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default=str(ROOT / "checkpoints" / "camvid"))
    p.add_argument("--screenshot", default=None, help="save a screenshot of the report here (JPEG)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs, out = Path(tmp) / "runs", Path(tmp) / "out" / "report.html"
        for n in RUNS:
            shutil.copytree(Path(args.runs) / n, runs / n, ignore=shutil.ignore_patterns("evaluation"))
        cold = timed_process(command(runs, out))
        print(f"cold: {cold:.1f} s (python -m core.report on {len(RUNS)} runs never evaluated, {SPLIT}: 24 images)")
        warm_process = timed_process(command(runs, out))
        print(f"warm: {warm_process:.1f} s (the same command again: the process, Python's imports included)")
        ws = Workspace.discover(runs)
        A.clear_caches()
        start = time.perf_counter()
        files = write_report(ws, RUNS, out, split=SPLIT, figures=False)
        print(f"warm: {time.perf_counter() - start:.1f} s (write_report, caches emptied, imports done; goal <= 10 s)")
        A.clear_caches()
        start = time.perf_counter()
        write_report(ws, RUNS, out.with_name("all.html"), split=SPLIT, strips="all", figures=False)
        print(f"warm with --strips all: {time.perf_counter() - start:.1f} s (a model pass per run and strip epoch)")
        size, plotly = out.stat().st_size / 1e6, len(get_plotlyjs().encode()) / 1e6
        print(f"size: {size:.2f} MB, of which Plotly's JavaScript {plotly:.2f} MB (goal <= 8 MB)")
        start = time.perf_counter()
        paths, missing = write_figures(files.report.figures(), out.with_name("report_figures"))
        if missing:
            print(f"figures: none ({missing})")
        else:
            mb = sum(f.stat().st_size for f in paths) / 1e6
            print(f"figures: {len(paths)} SVG and PNG files ({mb:.1f} MB) in {time.perf_counter() - start:.1f} s (kaleido)")
        if args.screenshot:
            screenshot(out, Path(args.screenshot))
            print(f"screenshot: {args.screenshot}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
