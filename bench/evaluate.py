"""What evaluating at scale costs and buys (issue 26's figures). Run it on an idle machine::

    python bench/evaluate.py [--runs checkpoints/camvid] [--data-root ../shared/data/camvid] [--threads 2] [--parts 1,2,3,4]

1. Images/s of ``core.evaluate`` (every measure, label maps, feature sample, and reading the images) against the
   forward-only Predictor (the forward plus argmax, the same batches of 8, images already in memory) on
   camvid/pspnet and camvid/resunet-60min, CamVid val at 360x480: medians of ``--repeats`` runs of each,
   interleaved. Goal: a ratio of at least 0.8 (all the measures together cost at most a quarter of inference).
   The pass runs its batches in streams (one per thread on the CPU): the same forward-only Predictor in those
   streams is printed beside it, the most the pass could reach with that scheduling.
2. One process with 2 threads against two processes (torchrun) with 1 thread each, on the same run and split.
3. The first /boundary click for 2 runs on a generated 300-image split (synthstreets at 256x512), after
   ``core.evaluate``: the app only reads results. Goal: at most 0.3 s.
4. The pass (pspnet) beside a busy process, as beside a training in the background: two spinning ``nice -n 10``
   processes, one per core.

Runs are copied into a temporary folder, so the shipped ones are never written to.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from core.evaluate import Target, evaluate_target  # noqa: E402
from core.inference import Predictor  # noqa: E402
from core.inference.passes import cpu_stream_pool, cpu_streams  # noqa: E402
from core.runs import load_run  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "camvid"


def forward_only(run, data_root: str, batch: int = 8) -> float:
    """Images/s of the forward-only Predictor: preprocessing, the forward (with the test-time flips or scales the run
    records, as every view uses them), upsampling and the argmax (``predict(probs=False)``), in batches."""
    predictor = Predictor(run, "best", device="cpu", batch_size=batch)
    ds = run.open_dataset("val", data_root)
    images = [ds.load(i)[0] for i in range(len(ds))]
    start = time.perf_counter()
    for b in range(0, len(images), batch):
        predictor.predict(images[b : b + batch], probs=False)
    return len(images) / (time.perf_counter() - start)


def forward_streams(run, data_root: str, batch: int = 8) -> float:
    """Images/s of the same forward-only Predictor in the streams a CPU pass runs its batches in
    (``cpu_stream_pool``): what the pass's scheduling gives the forward on its own."""
    predictor = Predictor(run, "best", device="cpu", batch_size=batch)
    ds = run.open_dataset("val", data_root)
    images = [ds.load(i)[0] for i in range(len(ds))]
    start = time.perf_counter()
    with cpu_stream_pool() as (pool, _):
        list(pool.map(lambda b: predictor.predict(images[b : b + batch], probs=False), range(0, len(images), batch)))
    return len(images) / (time.perf_counter() - start)


def full_pass(run, data_root: str) -> float:
    """Images/s of the whole evaluation pass (every measure, label maps, feature sample) on the same split."""
    target = Target(run, run.best_epoch, "val", data_root)
    start = time.perf_counter()
    evaluate_target(target, predictor=Predictor(run, "best", device="cpu", batch_size=8))
    return target.size / (time.perf_counter() - start)


def processes(folder: Path, name: str, data_root: str) -> dict[str, float]:
    """Seconds of the pass: 1 process x 2 threads, then 2 processes x 1 thread (torchrun), from the CLI's own timing."""
    out = {}
    base = ["-m", "core.evaluate", "--runs", str(folder), "--run-name", name, "--split", "val", "--data-root", data_root]
    for label, launcher, threads in (("1 process x 2 threads", [], "2"), ("2 processes x 1 thread", ["torchrun"], "1")):
        shutil.rmtree(folder / name / "evaluation", ignore_errors=True)
        cmd = [sys.executable, *base, "--threads", threads]
        if launcher:
            cmd = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nproc_per_node=2",
                "--master_port=29561",
                *base,
                "--threads",
                "1",
            ]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": threads}
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        out[label] = float(re.search(r"in ([0-9.]+) s ->", done.stdout).group(1))
    return out


def boundary_click(tmp: Path) -> float:
    """Seconds of /boundary for two runs on a 300-image 256x512 split that core.evaluate has computed."""
    from gradio_client import Client

    from tests.app_server import running_app

    runs = tmp / "scale"
    for name in ("unet-w8", "resunet-tiny"):
        shutil.copytree(ROOT / "checkpoints" / name, runs / name)
        cfg = json.loads((runs / name / "run.json").read_text())
        cfg["data"]["options"] = {"num_images": 300, "size": [256, 512]}
        (runs / name / "run.json").write_text(json.dumps(cfg))
    subprocess.run(
        [sys.executable, "-m", "core.evaluate", "--runs", str(runs), "--split", "val", "--epochs", "best"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
    )
    with running_app(runs, tmp / "cache") as (_, url):
        client = Client(url, verbose=False)
        start = time.perf_counter()
        _, _, table, _ = client.predict(["unet-w8", "resunet-tiny"], "best", "val", api_name="/boundary")
        seconds = time.perf_counter() - start
    assert len(table["runs"]) == 2 and not any("error" in r for r in table["runs"]), table
    return seconds


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(ROOT / "checkpoints" / "camvid"))
    ap.add_argument("--data-root", default=str(DEFAULT_DATA))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="forward-only and evaluate runs, interleaved (medians)")
    ap.add_argument("--parts", default="1,2,3,4", help="which of the four measurements to make, e.g. 1,4")
    ap.add_argument("--models", default="pspnet,resunet-60min", help="runs of part 1")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if not parts or not parts <= {"1", "2", "3", "4"}:
        ap.error(f"--parts takes numbers from 1 to 4, not {args.parts!r}")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shutil.copytree(Path(args.runs) / "pspnet", tmp / "pspnet")
        if "1" in parts:
            ratios(tmp, args)
        if "2" in parts:
            print("2. the same pass (pspnet), seconds:")
            for label, seconds in processes(tmp, "pspnet", args.data_root).items():
                print(f"   {label:<24} {seconds:6.1f} s")
        if "3" in parts:
            seconds = boundary_click(tmp)
            print(f"3. first /boundary click, 2 runs, 300 images at 256x512, after core.evaluate: {seconds:.2f} s (goal <= 0.3)")
        if "4" in parts:
            run = load_run(tmp / "pspnet")
            shutil.rmtree(tmp / "pspnet" / "evaluation", ignore_errors=True)
            with busy(2):
                print(f"4. the pass (pspnet) beside two busy nice-10 processes: {full_pass(run, args.data_root):5.2f} images/s")


def ratios(tmp: Path, args: argparse.Namespace) -> None:
    """Part 1: each run's pass against its forward-only Predictor, ``--repeats`` times each, interleaved."""
    print(f"1. core.evaluate against the forward-only Predictor, CamVid val at 360x480, batch 8, {args.threads} threads")
    for name in args.models.split(","):
        if not (tmp / name).exists():
            shutil.copytree(Path(args.runs) / name, tmp / name)
        run = load_run(tmp / name)
        fwd, ev, streamed = [], [], []
        for _ in range(args.repeats):  # interleaved, so all see the machine in the same state
            fwd.append(forward_only(run, args.data_root))
            shutil.rmtree(tmp / name / "evaluation", ignore_errors=True)  # a cold pass each time
            ev.append(full_pass(run, args.data_root))
            streamed.append(forward_streams(run, args.data_root))
        f, e, s = statistics.median(fwd), statistics.median(ev), statistics.median(streamed)
        print(f"   {name:<14} forward {f:5.2f} images/s   evaluate {e:5.2f} images/s   ratio {e / f:.2f} (goal >= 0.8)")
        print(f"   {'':<14} forward in the pass's {cpu_streams(args.threads)} streams {s:5.2f} images/s: ratio {e / s:.2f}")
        print(f"   {'':<14} (medians of {args.repeats}: forward {_list(fwd)}, evaluate {_list(ev)}, streams {_list(streamed)})")


@contextlib.contextmanager
def busy(processes: int):
    """``processes`` spinning Python processes at nice 10 while the block runs."""
    spin = [sys.executable, "-c", "while True: pass"]
    procs = [subprocess.Popen(["nice", "-n", "10", *spin]) for _ in range(processes)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
