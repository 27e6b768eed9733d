"""Training-step time of each shipped zoo architecture in float32 and in bfloat16 autocast, on this CPU.

Run from the repo root: ``python bench/zoo_precision.py [--runs checkpoints/camvid] [--threads 2]
[--steps 3] [--warmup 2]``.

Each segmentation run's model is rebuilt from its ``run.json`` (architecture and widths) in the
memory format the engine trains it in (channels-last where it trains safely) and timed on random data at the
zoo's batch and crop (8 x 288x384, 11 classes):
one AdamW step of cross-entropy (plus 0.4 x aux), as ``core.train.engine`` runs it with ``--amp off`` and
``--amp bf16``. bfloat16 pays off only on CPUs with native bfloat16 arithmetic (AVX512-BF16 or AMX);
the flag line says whether this one has it. Median of ``--steps`` timed steps after ``--warmup``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from core.models import get_model  # noqa: E402
from core.runs import load_run  # noqa: E402
from core.train.engine import autocast_context  # noqa: E402
from core.utils.device import channels_last_trains_safely  # noqa: E402

BATCH, CROP = 8, (288, 384)


def cpu_bf16_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown (no /proc/cpuinfo)"
    found = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return ", ".join(found) if found else "none (bfloat16 is emulated: expect it to be slower)"


def step_seconds(model: torch.nn.Module, amp: str, channels_last: bool, steps: int, warmup: int, k: int) -> float:
    """Median seconds of one training step (forward, loss, backward, AdamW) under ``amp``."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(BATCH, 3, *CROP).contiguous(memory_format=fmt)  # (B, 3, H, W)
    y = torch.randint(k, (BATCH, *CROP))  # (B, H, W)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with autocast_context(torch.device("cpu"), amp):
            out = model(x)
            loss = F.cross_entropy(out["out"].float(), y)
            if "aux" in out:
                loss = loss + 0.4 * F.cross_entropy(out["aux"].float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="checkpoints/camvid")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    runs = [load_run(p) for p in sorted(Path(args.runs).iterdir()) if (p / "run.json").is_file()]
    runs = [r for r in runs if r.task.dense]
    if not runs:
        sys.exit(f"no segmentation run under {args.runs}")
    print(f"torch {torch.__version__}, {args.threads} threads; CPU bfloat16 flags: {cpu_bf16_flags()}")
    print(f"one training step, batch {BATCH} at {CROP[0]}x{CROP[1]}, median of {args.steps}\n")
    print("| run | memory format | float32 (s) | bfloat16 (s) | speed-up |")
    print("|---|---|---:|---:|---:|")
    for run in runs:
        model = get_model(run.arch, **run.model_args)
        channels_last = channels_last_trains_safely(model, torch.device("cpu"))  # the engine's own choice
        fp32 = step_seconds(model, "off", channels_last, args.steps, args.warmup, run.num_classes)
        bf16 = step_seconds(model, "bf16", channels_last, args.steps, args.warmup, run.num_classes)
        fmt = "channels-last" if channels_last else "contiguous"
        print(f"| {run.name} | {fmt} | {fp32:.2f} | {bf16:.2f} | {fp32 / bf16:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
