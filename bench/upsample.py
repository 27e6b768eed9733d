"""What resizing only the pixels in question saves (``core.inference.upsample``), on trained models. Run it on an
idle machine::

    python bench/upsample.py [--runs checkpoints/camvid] [--data-root ../shared/data/camvid] [--threads 2]

For each CamVid segmentation run: its logits (360x480) on a val image, resized to 1536x2048 (a 4:3 photo at
2048 px, as Compare or an upload shows it) and 1024x2048 (Cityscapes' size), then the argmax: every map resized
(``F.interpolate``, channels-last, then the argmax, as before) against ``upsampled_labels``. Prints the medians
of ``--repeats`` interleaved timings, the share of pixels in question and the labels that differ (ties at
float32 rounding level only). Without the CamVid data it uses the shipped 24-image val sample.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from core.inference import Predictor  # noqa: E402
from core.inference.upsample import _resized, agreed_labels, upsampled_labels  # noqa: E402
from core.runs import discover_runs  # noqa: E402

SIZES = ((1536, 2048), (1024, 2048))


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def in_question(logits: torch.Tensor, size: tuple[int, int]) -> float:
    """Share of the output pixels whose 2x2 source block holds more than one class."""
    return float((agreed_labels(logits.permute(1, 2, 0).argmax(-1), size) < 0).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(ROOT / "checkpoints" / "camvid"))
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "camvid"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    runs, _ = discover_runs(Path(args.runs))
    print(f"{args.threads} threads; medians of {args.repeats}; milliseconds per image")
    print(f"{'run':<16}{'size':>11}{'in question':>13}{'every map':>11}{'in question only':>18}{'ratio':>7}{'differ':>8}")
    for run in (r for r in runs if r.task.dense):
        split = "val" if Path(args.data_root).is_dir() else "val-sample"
        image = run.open_dataset(split, args.data_root if split == "val" else None).load(0)[0]
        predictor = Predictor(run, "best", device="cpu", tta_flip=False)
        x, _ = predictor.preprocess([image])
        with torch.inference_mode():
            logits = predictor.model(x.contiguous(memory_format=torch.channels_last))["out"][0].float()  # (K, h, w)
            for size in SIZES:
                old, want = timed(lambda: _resized(logits.permute(1, 2, 0).contiguous(), size), args.repeats)
                new, got = timed(lambda: upsampled_labels(logits, size), args.repeats)
                share, differ = in_question(logits, size), int((got != want).sum())
                row = f"{run.name:<16}{size[1]:>5}x{size[0]:<5}{share:>12.1%}{old * 1e3:>11.0f}{new * 1e3:>18.0f}"
                print(f"{row}{old / new:>7.1f}{differ:>8}")


if __name__ == "__main__":
    main()
