"""The runs table and the Metrics tab with many runs: a generated 120-run sweep against a 12-run one, in one go.

    python bench/runs_table.py [--runs 120] [--small 12] [--repeats 5] [--threads 1] [--no-browser] [--json out.json]

Each sweep (tests/sweep_runs.py: run.json and history.jsonl only, as a sweep looks before its first snapshots) is
served by ``app/main.py`` in a subprocess and measured:

* ``/runs`` through ``gradio_client``: the whole table (every run, sorted by the score), and a query (a text filter,
  a range, seeds grouped);
* the Runs tab in Chromium: from opening the page to the table and its parallel-coordinates plot drawn (the page's
  own load event reported beside it), then a re-sort (the "Descending" box clicked) until the table shows the new
  first row;
* the Metrics tab with every run: ``/metrics`` through ``gradio_client``, and in Chromium from "Open in Metrics"
  (after "Select the shown runs") to the training curves drawn with one legend entry per run.

The goal: the 120-run table answered (``/runs``) and redrawn (re-sort) within 1 s, and at most 3x the same with
12 runs; opening the page starts every tab of the app and is reported, not judged. Medians of ``--repeats`` (two
re-sorts each); the browser is Debian's Chromium (``/usr/bin/chromium``) through Playwright.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.app_latency import wait_for_page  # noqa: E402
from core.explorer import Workspace, sweeps  # noqa: E402
from tests.sweep_runs import make_sweep  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PAGE = "page: load event (the app's shell, any number of runs)"
OPENED = "Runs tab: page opened to table + plot drawn"
RESORTED = "Runs tab: re-sorted to table drawn"
TIMEOUT_MS = 120_000
QUERY = ("large", "mIoU", True, "lr", "1e-3", "1e-2", ["seed"])  # search, sort, descending, range column, from, to, group


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median_s(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def first_runs(folder: Path) -> tuple[str, str]:
    """The first run of the table sorted by the score, descending and ascending (what the page must show)."""
    ws = Workspace.discover(folder)
    return tuple(sweeps.table(ws, sort_by="mIoU", descending=d)["rows"][0]["run"] for d in (True, False))


def serve(folder: Path, cache: Path, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, str(ROOT / "app" / "main.py"), "--runs", str(folder), "--port", str(port)]
    cmd += ["--threads", str(threads), "--cache-dir", str(cache)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    wait_for_page(url, proc)
    return proc, url


def api_times(url: str, names: list[str], repeats: int) -> dict[str, list[float]]:
    from gradio_client import Client

    client = Client(url, verbose=False)
    out: dict[str, list[float]] = {
        "/runs (every run)": [],
        "/runs (filter, range, seeds grouped)": [],
        "/metrics (every run)": [],
    }
    for _ in range(repeats):
        t0 = time.perf_counter()
        data = client.predict(api_name="/runs")[2]
        out["/runs (every run)"].append(time.perf_counter() - t0)
        assert len(data["rows"]) == len(names), data.get("total")
        t0 = time.perf_counter()
        client.predict(*QUERY, api_name="/runs")
        out["/runs (filter, range, seeds grouped)"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        summary = client.predict(names, "best", api_name="/metrics")[3]["summary"]
        out["/metrics (every run)"].append(time.perf_counter() - t0)
        assert len(summary) == len(names)
    return out


FIRST_CELL = "(run) => document.querySelector('#runs-table [role=gridcell]')?.innerText.trim() === run"
PARCOORDS = "() => document.querySelector('#runs-parcoords .js-plotly-plot')?.data?.[0]?.type === 'parcoords'"
SELECTED = "(runs) => runs.every(r => (document.querySelector('#runs-selected')?.innerText || '').includes(r))"
CURVES = (
    "(n) => { const d = document.querySelector('#metrics-curves .js-plotly-plot')?.data || []; "
    "return d.filter(t => t.showlegend !== false).length === n; }"
)


def browser_times(url: str, n: int, first: tuple[str, str], repeats: int) -> dict[str, list[float]]:
    import playwright.sync_api as pw

    out: dict[str, list[float]] = {key: [] for key in (PAGE, OPENED, RESORTED, "Metrics: Open in Metrics to curves drawn")}
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        for _ in range(repeats):
            t0 = time.perf_counter()
            page.goto(url, wait_until="load")
            out[PAGE].append(time.perf_counter() - t0)
            page.get_by_role("tab", name="Runs").click()
            page.wait_for_function(FIRST_CELL, arg=first[0])
            page.wait_for_function(PARCOORDS)
            out[OPENED].append(time.perf_counter() - t0)
            for k in range(2):  # ascending, then descending again
                t0 = time.perf_counter()
                page.get_by_label("Descending", exact=True).click()
                page.wait_for_function(FIRST_CELL, arg=first[1 - k])
                out[RESORTED].append(time.perf_counter() - t0)
            page.get_by_role("button", name="Select the shown runs").click()
            page.wait_for_function(SELECTED, arg=list(first))  # the first and the last row's runs among the selection
            t0 = time.perf_counter()
            page.locator("#runs-open-metrics").click()
            page.wait_for_function(CURVES, arg=n)
            out["Metrics: Open in Metrics to curves drawn"].append(time.perf_counter() - t0)
        browser.close()
    return out


def measure(n: int, root: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    folder = make_sweep(root / f"sweep{n}" / "runs", n)
    names = list(Workspace.discover(folder).listed)
    proc, url = serve(folder, root / f"cache{n}", args.threads)
    try:
        results = api_times(url, names, args.repeats)
        if args.browser:
            results.update(browser_times(url, n, first_runs(folder), args.repeats))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=120, help="runs of the large sweep (at most 120)")
    p.add_argument("--small", type=int, default=12, help="runs of the small sweep it is compared with")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the app process")
    p.add_argument("--no-browser", dest="browser", action="store_false", help="only the API (no Chromium)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args()
    if args.browser and not os.path.exists(CHROMIUM):
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install chromium), or pass --no-browser")
    root = Path(tempfile.mkdtemp(prefix="runs_table-"))
    try:
        results = {n: measure(n, root, args) for n in (args.small, args.runs)}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"runs table with {args.runs} and {args.small} runs; app threads {args.threads}; CPU cores {os.cpu_count()}; "
        f"medians of {args.repeats}"
    )
    width = max(len(k) for k in results[args.runs])
    print(f"{'':<{width}}  {args.small:>6} runs  {args.runs:>6} runs   ratio")
    for key in results[args.runs]:
        small, large = median_s(results[args.small][key]), median_s(results[args.runs][key])
        print(f"{key:<{width}}  {small * 1000:8.0f} ms  {large * 1000:8.0f} ms  {large / small:6.1f}x")
    # the table answered (/runs) and redrawn in the open page; opening the page also starts every tab of the app
    table_keys = [k for k in results[args.runs] if k.startswith("/runs") or k == RESORTED]
    worst = max(median_s(results[args.runs][k]) for k in table_keys)
    ratio = max(median_s(results[args.runs][k]) / median_s(results[args.small][k]) for k in table_keys)
    print(
        f"goal, runs table with {args.runs} runs within 1 s: {'met' if worst <= 1 else 'missed'} (slowest {worst:.2f} s); "
        f"at most 3x {args.small} runs: {'met' if ratio <= 3 else 'missed'} (largest ratio {ratio:.1f}x)"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({str(n): r for n, r in results.items()}, indent=2))


if __name__ == "__main__":
    main()
