"""Latency of the explorer app as a client sees it (through ``gradio_client``), on this machine's CPU.

    python bench/app_latency.py [--runs checkpoints] [--repeats 7] [--threads 1] [--port 7990] [--json bench/out/app_latency.json]

Starts ``app/main.py`` in a subprocess and reports:

* start-up: from launching the process to the first served page (HTTP 200 on ``/``);
* the compare grid of six segmentation runs on one image: the very first call (models built and run),
  a new image (models in memory, predictions computed) and the same image again (cached: the rendered
  files are served again);
* a change of epoch of one run column: to an epoch not seen yet (model built and run) and back (cached);
* the upload tab on a new image with the six runs (decode, downscale, inference, overlays, entropy maps),
  and the same image again; and on a 12-megapixel photo (4000x3000 JPEG).

Times include downloading the returned images as a browser loads them: in parallel over 6 connections
(``gradio_client`` alone fetches them one after another, which no browser does).
The shipped demo runs in ``checkpoints/`` (six segmentation, two classification) are the default;
``--runs checkpoints/camvid`` measures the 360x480 CamVid zoo (``--runs`` also narrows to a sub-folder).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.explorer import Workspace  # noqa: E402

SLOTS = 6


class BrowserLikeClient:
    """``gradio_client.Client.predict`` whose returned files are then fetched as a browser does: in parallel,
    six at a time, over kept-alive connections."""

    def __init__(self, url: str) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import httpx
        from gradio_client import Client

        self.client = Client(url, verbose=False, download_files=False)
        self.http = httpx.Client(limits=httpx.Limits(max_connections=6, max_keepalive_connections=6))
        self.pool = ThreadPoolExecutor(6)

    def predict(self, *args, **kwargs):
        out = self.client.predict(*args, **kwargs)
        urls = []

        def collect(v) -> None:
            if isinstance(v, dict):
                if v.get("url") and (v.get("path") or v.get("meta")):
                    urls.append(v["url"])
                for x in v.values():
                    collect(x)
            elif isinstance(v, (list, tuple)):
                for x in v:
                    collect(x)

        collect(out)
        for r in self.pool.map(self.http.get, urls):
            r.raise_for_status()
        return out


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(0.95 * (len(xs) - 1))))]


def stats(xs: list[float]) -> str:
    if len(xs) == 1:
        return f"{xs[0] * 1000:8.0f} ms (single call)"
    return f"median {statistics.median(xs) * 1000:7.0f} ms   p95 {p95(xs) * 1000:7.0f} ms   (n={len(xs)})"


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def wait_for_page(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    t_end = time.time() + timeout
    while time.time() < t_end:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"no page at {url} after {timeout} s")


def pick_runs(ws: Workspace) -> tuple[str, str, list[str]]:
    """A segmentation dataset with at least six runs: its label, the split shown first, six of its runs."""
    for source, ref in ws.sources().items():
        names = [n for n in ws.runs_for_source(source) if ws.run(n).task.dense]
        if len(names) >= SLOTS:
            return source, ref.split, names[:SLOTS]
    raise SystemExit(f"need {SLOTS} segmentation runs of one dataset under {ws.runs_dir}")


def variants(example: Path, n: int, folder: Path, size: tuple[int, int] | None = None) -> list[Path]:
    """``n`` distinct images (crops and flips of an example, resized to ``size`` if given), so every upload is new
    to the app's cache."""
    from PIL import Image, ImageOps

    base = Image.open(example).convert("RGB")
    out = []
    for i in range(n):
        im = base.crop((i, i // 2, base.width - (i % 5), base.height - (i % 3)))
        im = ImageOps.mirror(im) if i % 2 else im
        if size is not None:
            im = im.resize(size, Image.BICUBIC)
        path = folder / f"upload_{i}{'_' + 'x'.join(map(str, size)) if size else ''}.jpg"
        im.save(path, quality=90)
        out.append(path)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default=str(ROOT / "checkpoints"), help="run folder (default: the shipped demo runs)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the app process")
    p.add_argument("--port", type=int, default=7990)
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args()

    from gradio_client import handle_file

    ws = Workspace.discover(args.runs)
    source, split, runs = pick_runs(ws)
    epochs = {n: ws.run(n).epochs for n in runs}
    tmp = Path(tempfile.mkdtemp(prefix="app_latency-"))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        str(ROOT / "app" / "main.py"),
        "--runs",
        args.runs,
        "--port",
        str(args.port),
        "--threads",
        str(args.threads),
        "--cache-dir",
        str(tmp / "cache"),
    ]
    url = f"http://127.0.0.1:{args.port}/"
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    results: dict[str, list[float]] = {}
    try:
        wait_for_page(url, proc)
        results["start-up to first served page"] = [time.perf_counter() - t0]
        client = BrowserLikeClient(url)

        def compare(index: int, epochs: list[int]) -> None:
            out = client.predict(source, split, index, runs, epochs, 0.55, False, 0.5, 0.5, 1.0, api_name="/compare")
            assert out[1].get("runs"), out[2]

        best = [ws.run(n).best_epoch or epochs[n][-1] for n in runs]
        first, _ = timed(compare, 0, best)
        results["compare 6 runs: first call (models built + run)"] = [first]
        cold, warm = [], []
        for i in range(1, args.repeats + 1):
            cold.append(timed(compare, i, best)[0])
            warm.append(timed(compare, i, best)[0])
        results["compare 6 runs: new image (models in memory)"] = cold
        results["compare 6 runs: same image again (cached)"] = warm

        # one column's epoch scrubbed: a not-yet-seen epoch, then back to one already seen
        name = max(runs, key=lambda n: len(epochs[n]))
        k = runs.index(name)
        new_epoch, back = [], []
        for i, e in enumerate(epochs[name][:-1][: args.repeats]):
            index = 1 + (i % args.repeats)
            new_epoch.append(timed(compare, index, best[:k] + [e] + best[k + 1 :])[0])
            back.append(timed(compare, index, best)[0])
        results[f"epoch change of one column ({name}): new epoch"] = new_epoch
        results[f"epoch change of one column ({name}): back (cached)"] = back

        example = ROOT / "assets" / "examples" / "street_a.jpg"
        up_new, up_again, big = [], [], []
        for path in variants(example, args.repeats, tmp):
            up_new.append(timed(client.predict, handle_file(str(path)), runs, 0.55, api_name="/upload")[0])
            up_again.append(timed(client.predict, handle_file(str(path)), runs, 0.55, api_name="/upload")[0])
        results["upload, 6 runs: new image"] = up_new
        results["upload, 6 runs: same image again (cached)"] = up_again
        for path in variants(example, args.repeats, tmp, size=(4000, 3000)):
            big.append(timed(client.predict, handle_file(str(path)), runs, 0.55, api_name="/upload")[0])
        results["upload, 6 runs: new 12-megapixel photo"] = big
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)  # the app's cache and the generated photos

    print(f"runs: {', '.join(runs)} ({source}); app threads: {args.threads}; CPU cores: {os.cpu_count()}")
    width = max(len(k) for k in results)
    for key, xs in results.items():
        print(f"{key:<{width}}  {stats(xs)}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"runs": runs, "threads": args.threads, "seconds": results}, indent=2))


if __name__ == "__main__":
    main()
