"""Render time and class pixel shares of the synthstreets renderer, next to CamVid's shares.

Run from the repo root: ``python bench/synthstreets.py [--scenes 200] [--seed 0]``.
Timings are per scene, single-threaded, including the numpy post-processing. Wall-clock is what a
data loader sees; CPU time (process time) is printed too because on a shared machine the wall-clock
figures swell with other people's load.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from core.data.synthstreets.render import CLASSES, render_scene  # noqa: E402

# CamVid 11-class train split pixel shares (percent), void last.
CAMVID_SHARES = (16.9, 23.3, 1.0, 31.7, 4.5, 9.7, 1.2, 1.1, 5.9, 0.6, 0.3, 4.0)


def time_size(seed: int, n: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-scene wall and CPU times (s), class pixel counts (12,) and per-scene presence (n, 12)."""
    render_scene(seed, 10**6, height, width)  # warm-up: imports, Pillow's first-call costs
    times, cpu, counts, present = [], [], np.zeros(12, np.int64), np.zeros((n, 12), bool)
    for i in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        _, mask = render_scene(seed, i, height, width)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        c = np.bincount(mask.ravel(), minlength=12)
        counts += c
        present[i] = c > 0
    return np.array(times), np.array(cpu), counts, present


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    stats = {}
    for h, w in ((180, 240), (360, 480)):
        t, cpu, counts, present = time_size(args.seed, args.scenes, h, w)
        stats[(h, w)] = (counts, present)
        print(
            f"{w}x{h}: wall mean {1e3 * t.mean():.2f} ms  p95 {1e3 * np.percentile(t, 95):.2f} ms  "
            f"max {1e3 * t.max():.2f} ms | CPU mean {1e3 * cpu.mean():.2f} ms  "
            f"p95 {1e3 * np.percentile(cpu, 95):.2f} ms  over {args.scenes} scenes"
        )
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    counts, present = stats[(180, 240)]
    share = 100 * counts / counts.sum()
    print("\nPixel shares at 240x180 ('in scenes': share of scenes where the class appears)")
    print(f"{'class':<12}{'synth %':>9}{'CamVid %':>10}{'in scenes %':>13}")
    for name, sh, cam, pr in zip(CLASSES + ("void",), share, CAMVID_SHARES, present.mean(0) * 100):
        print(f"{name:<12}{sh:>9.2f}{cam:>10.1f}{pr:>13.0f}")


if __name__ == "__main__":
    main()
