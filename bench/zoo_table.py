"""The tables of a zoo of runs, read from their histories, as Markdown (for the README and BENCHMARKS.md):

    python bench/zoo_table.py checkpoints/camvid

Segmentation: run, architecture, parameters, budget, precision (float32 or bfloat16), epochs, val mIoU / pixel
accuracy / mean accuracy at the final epoch (the one shipped as "last") and the best, training images/s (median
over epochs); then the per-class IoU of each run's final epoch. Classification: top-1 and top-5 instead.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.runs import Run, discover_runs  # noqa: E402


def _f(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _budget(run: Run) -> str:
    """The wall-clock budget, or the fixed epoch count a budget was turned into (``--epochs``)."""
    train = run.config.get("train", {})
    if train.get("budget_min"):
        return f"{train['budget_min']:g} min"
    return f"{train['epochs']} epochs" if train.get("epochs") else "–"


def _precision(run: Run) -> str:
    """What the run computed in, as its run.json records it (runs from before the record: "–")."""
    return run.config.get("runtime", {}).get("precision") or "–"


def _row(run: Run) -> dict:
    last = run.history[-1]
    best = run.record(run.best_epoch) if run.best_epoch is not None else last
    speeds = [r["images_per_s"] for r in run.history if r.get("images_per_s")]
    return {
        "last": last,
        "best": best,
        "speed": statistics.median(speeds) if speeds else None,
        "params": run.config["model"].get("num_params"),
        "epochs": len(run.history),
    }


def segmentation_tables(runs: list[tuple[str, Run]]) -> str:
    head = (
        "| run | architecture | parameters | budget | precision | epochs | val mIoU (final) | best (epoch) | pixel acc"
        " | mean acc | train images/s |\n|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for name, run in runs:
        r = _row(run)
        last, best = r["last"], r["best"]
        lines.append(
            f"| {name} | {run.arch} | {r['params'] / 1e6:.2f}M | {_budget(run)} | {_precision(run)} | {r['epochs']} "
            f"| {_f(last.get('miou'))}"
            f" | {_f(best.get('miou'))} ({best['epoch']}) | {_f(last.get('pixel_acc'))} | {_f(last.get('mean_acc'))}"
            f" | {_f(r['speed'], 1)} |"
        )
    classes = runs[0][1].classes
    lines += ["", "| run | " + " | ".join(classes) + " |", "|---|" + "---:|" * len(classes)]
    for name, run in runs:
        iou = run.history[-1].get("iou") or [None] * len(classes)
        lines.append(f"| {name} | " + " | ".join(_f(v, 2) for v in iou) + " |")
    return "\n".join(lines)


def classification_table(runs: list[tuple[str, Run]]) -> str:
    lines = [
        "| run | architecture | parameters | budget | epochs | val top-1 (final) | top-5 | train images/s |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for name, run in runs:
        r = _row(run)
        lines.append(
            f"| {name} | {run.arch} | {r['params'] / 1e6:.2f}M | {_budget(run)} | {r['epochs']} | {_f(r['last'].get('top1'))}"
            f" | {_f(r['last'].get('top5'))} | {_f(r['speed'], 0)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, help="a folder of runs, e.g. checkpoints/camvid")
    args = ap.parse_args(argv)
    found, problems = discover_runs(args.runs)
    for path, why in problems:
        print(f"skipped {path}: {why}")
    runs = [(str(r.path.relative_to(args.runs)), r) for r in found if r.history]
    seg = [(n, r) for n, r in runs if r.task.dense]
    cls = [(n, r) for n, r in runs if not r.task.dense]
    if seg:
        print(segmentation_tables(sorted(seg, key=lambda x: -(x[1].history[-1].get("miou") or 0))), end="\n\n")
    if cls:
        print(classification_table(cls))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
