"""Cost of boundary IoU and calibration on a full split, cold and cached.

    python bench/evaluation.py --runs RUNS_DIR [--data-root ../shared/data/camvid] [--split val] [--max-runs 6] [--threads 2]

For up to ``--max-runs`` segmentation runs of one dataset (the CamVid zoo: 101 val images at 360x480):

* cold: one pass per run from its snapshot (predictions with probabilities, per-image confusion, boundary
  counts, calibration sums, segment recall), written to the run's evaluation/ folder; and, on the same
  predictions, the time of the boundary-IoU and calibration measures alone;
* cached from disk (a fresh process would see this: the memory caches cleared) and from memory: the
  ``/boundary`` and ``/calibration`` tables for all the runs. Goal: cached under 0.3 s.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from core.evaluation.boundary import boundary_counts  # noqa: E402
from core.evaluation.calibration import calibration_sums  # noqa: E402
from core.explorer import (  # noqa: E402
    Workspace,
    assess,  # noqa: E402
    clear_caches,
    get_predictor,
)
from core.explorer.quality import FOLDER  # noqa: E402


def main() -> None:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--runs", required=True)
    a.add_argument("--data-root", default=None)
    a.add_argument("--split", default="val")
    a.add_argument("--max-runs", type=int, default=6)
    a.add_argument("--threads", type=int, default=2)
    args = a.parse_args()
    torch.set_num_threads(args.threads)
    ws = Workspace.discover(args.runs, args.data_root)
    source = next(s for s in ws.sources() if ws.run(ws.runs_for_source(s)[0]).task.dense)
    names = [n for n in ws.runs_for_source(source) if ws.run(n).task.dense][: args.max_runs]
    for n in names:  # a cold start: no cached measures
        shutil.rmtree(ws.run(n).path / FOLDER, ignore_errors=True)
    ref = ws.run_split(names[0], args.split)
    images = [ref.load(i) for i in range(ref.size())]
    h, w = images[0][0].shape[:2]
    print(
        f"{len(names)} runs ({', '.join(names)}) on {ref.source} {args.split}: "
        f"{len(images)} images at {h}x{w}; {args.threads} threads"
    )

    measures = 0.0
    for n in names:  # the measures alone, on predictions already made
        run = ws.run(n)
        preds = get_predictor([(run, run.best_epoch)]).predict([im for im, _ in images])
        t0 = time.perf_counter()
        for p, (_, target) in zip(preds, images):
            boundary_counts(p.labels, target, run.num_classes, run.ignore_index)
            calibration_sums(p.probs, target, run.num_classes, run.ignore_index)
        measures += time.perf_counter() - t0
    clear_caches()
    t0 = time.perf_counter()
    assess.boundary_table(ws, names, "best", args.split)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    assess.calibration_table(ws, names, "best", args.split)
    calib_after = time.perf_counter() - t0
    clear_caches()
    t0 = time.perf_counter()
    assess.boundary_table(ws, names, "best", args.split)
    assess.calibration_table(ws, names, "best", args.split)
    disk = time.perf_counter() - t0
    t0 = time.perf_counter()
    assess.boundary_table(ws, names, "best", args.split)
    assess.calibration_table(ws, names, "best", args.split)
    memory = time.perf_counter() - t0
    print(f"cold: one pass per run from its snapshot (both measures, all {len(names)} runs)   {cold:7.1f} s")
    print(f"  of which boundary IoU + calibration on the predictions                         {measures:7.1f} s")
    print(f"calibration after boundary IoU (same pass, cached)                              {calib_after * 1000:7.0f} ms")
    print(f"cached, from the runs' evaluation/ files (memory caches cleared)                 {disk * 1000:7.0f} ms")
    print(f"cached, from memory                                                             {memory * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
