"""Concurrent users: many ``gradio_client`` clients at once against the explorer, with mixed requests.

    python bench/load.py [--runs checkpoints] [--clients 20] [--requests 5] [--threads 1] [--port 7991]

Starts ``app/main.py`` on the runs (the shipped ones by default), then runs ``--clients`` clients in
parallel, each sending ``--requests`` requests that cycle through compare, metrics, confusion, an
embedding map and an upload, on different images. Prints failures, p50/p95/max latency per kind of
request, and the server's peak resident memory (VmHWM). Goal on 2 cores: no failure, p95 <= 5 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.explorer import ClassificationTask, Workspace  # noqa: E402

KINDS = ("compare", "metrics", "confusion", "embedding", "upload")
EXAMPLE = ROOT / "assets" / "examples" / "street_a.jpg"


def plan(ws: Workspace) -> dict:
    """What the requests ask for: a segmentation dataset with up to 6 of its runs, and a classifier if any."""
    for source, ref in ws.sources().items():
        seg = [n for n in ws.runs_for_source(source) if ws.run(n).task.dense]
        try:
            ref.size()
        except Exception:  # noqa: BLE001  (its images are not here)
            continue
        if seg:
            cls = ws.names_for(ClassificationTask)
            return {
                "source": source,
                "runs": seg[:6],
                "split": ws.sources()[source].split,
                "size": ws.sources()[source].size(),
                "map_run": (cls or seg)[0],
                "map_split": ws.dataset((cls or seg)[0]).split,
            }
    raise SystemExit(f"no segmentation run under {ws.runs_dir}")


def request(client, kind: str, p: dict, k: int, upload) -> None:
    """One request of ``kind``; ``k`` varies the image so caches are not all warm."""
    runs, image = p["runs"], k % p["size"]
    if kind == "compare":
        out = client.predict(
            p["source"], p["split"], image, runs, ["best"] * len(runs), 0.55, False, 0.5, 0.5, 1.0, api_name="/compare"
        )
        assert out[1]["runs"], out[2]
    elif kind == "metrics":
        assert client.predict(runs, "best", api_name="/metrics")[3]["summary"]
    elif kind == "confusion":
        assert client.predict(runs[k % len(runs)], 1, api_name="/confusion")[3]["matrix"]
    elif kind == "embedding":
        out = client.predict(p["map_run"], 1, p["map_split"], "pca", api_name="/embedding")
        assert out[0] is not None, out[1]
    else:
        out = client.predict(upload, runs[:3], 0.55, api_name="/upload")
        assert out[1]["runs"], out[2]


def load_test(url: str, p: dict, clients: int, requests: int) -> tuple[dict[str, list[float]], list[str]]:
    """Latencies per kind of request and the failures, from ``clients`` concurrent clients."""
    from gradio_client import Client, handle_file

    times: dict[str, list[float]] = {k: [] for k in KINDS}
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    downloads = tempfile.TemporaryDirectory(prefix="load-")

    def user(c: int) -> None:
        client = Client(url, verbose=False, download_files=downloads.name)
        upload = handle_file(str(EXAMPLE))
        start.wait()
        for r in range(requests):
            kind = KINDS[(c + r) % len(KINDS)]
            t0 = time.perf_counter()
            try:
                request(client, kind, p, c * requests + r, upload)
            except Exception as e:  # noqa: BLE001  (every failure is counted and reported)
                with lock:
                    failures.append(f"client {c} {kind}: {type(e).__name__}: {str(e)[:200]}")
                continue
            with lock:
                times[kind].append(time.perf_counter() - t0)

    threads = [threading.Thread(target=user, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    downloads.cleanup()
    return times, failures


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))] if xs else float("nan")


def report(times: dict[str, list[float]], failures: list[str]) -> None:
    total = sum(len(v) for v in times.values()) + len(failures)
    print(f"{len(failures)} failures out of {total} requests")
    for f in failures[:10]:
        print("  ", f)
    for kind, xs in times.items():
        if xs:
            print(
                f"{kind:<10} n={len(xs):3d}  p50 {statistics.median(xs):6.2f} s   "
                f"p95 {pct(xs, 0.95):6.2f} s   max {max(xs):6.2f} s"
            )
    every = [x for xs in times.values() for x in xs]
    print(
        f"{'all':<10} n={len(every):3d}  p50 {statistics.median(every):6.2f} s   "
        f"p95 {pct(every, 0.95):6.2f} s   max {max(every):6.2f} s"
    )


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (Linux: VmHWM in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--runs", default=str(ROOT / "checkpoints"))
    a.add_argument("--clients", type=int, default=20)
    a.add_argument("--requests", type=int, default=5)
    a.add_argument("--threads", type=int, default=1, help="torch threads of the app")
    a.add_argument("--port", type=int, default=7991)
    args = a.parse_args()
    from bench.app_latency import wait_for_page

    p = plan(Workspace.discover(args.runs))
    tmp = Path(tempfile.mkdtemp(prefix="load-"))
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
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{args.port}/"
        wait_for_page(url, proc)
        t0 = time.perf_counter()
        times, failures = load_test(url, p, args.clients, args.requests)
        wall = time.perf_counter() - t0
        print(
            f"{args.clients} clients x {args.requests} mixed requests on {', '.join(p['runs'])} ({p['source']}); "
            f"app threads {args.threads}, {os.cpu_count()} cores; wall {wall:.1f} s"
        )
        report(times, failures)
        print(f"server peak RSS {peak_rss_mb(proc.pid):.0f} MB")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)  # the app's cache


if __name__ == "__main__":
    main()
