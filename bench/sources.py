"""What a model source's adapter costs: load time and per-image latency through the Predictor, against the raw
library model's forward plus softmax and argmax on the same prepared tensor, at 360x480, batch 1, 2 threads.

    python bench/sources.py [--repeats 20] [--threads 2]

Models: smp Unet with a resnet18 encoder and torchvision's LR-ASPP MobileNetV3-Large, random weights, logged
into a temporary run directory with RunWriter (the run is what the app loads). The Predictor's time includes
its own preprocessing (normalisation) and the softmax and argmax it returns; the goal is a ratio
(raw / Predictor) of at least 0.95, i.e. the adapter costs at most 5%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.data.camvid import CLASSES, PALETTE  # noqa: E402
from core.inference import Predictor  # noqa: E402
from core.train.writer import RunWriter  # noqa: E402

SIZE = (360, 480)


def models() -> dict:
    import segmentation_models_pytorch as smp
    import torchvision

    return {
        "smp:Unet (resnet18)": smp.Unet("resnet18", encoder_weights=None, classes=11),
        "tv:lraspp_mobilenet_v3_large": torchvision.models.segmentation.lraspp_mobilenet_v3_large(
            num_classes=11, weights_backbone=None
        ),
    }


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after two warm-up calls."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(name: str, model: torch.nn.Module, folder: Path, image: np.ndarray, repeats: int) -> None:
    run_dir = folder / name.split()[0].replace(":", "-")
    with RunWriter(run_dir, model=model, classes=CLASSES, palette=PALETTE, ignore_index=11, input_size=SIZE) as w:
        w.log_epoch(1, train_loss=0.0)
    start = time.perf_counter()
    predictor = Predictor(run_dir, "best", device="cpu", batch_size=1)
    load = time.perf_counter() - start
    x, _ = predictor.preprocess([image])
    x = x.to(memory_format=torch.channels_last)
    raw = model.eval().to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def raw_step():
        out = raw(x)
        out = out["out"] if isinstance(out, dict) else out
        out.float().softmax(1).argmax(1)

    t_raw, t_pred = timed(raw_step, repeats), timed(lambda: predictor.predict([image]), repeats)
    print(
        f"{name:<32} load {load:5.2f} s   raw {1000 * t_raw:6.1f} ms   Predictor {1000 * t_pred:6.1f} ms   "
        f"ratio {t_raw / t_pred:.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    image = np.random.default_rng(0).integers(0, 256, (*SIZE, 3), dtype=np.uint8)
    print(f"360x480, batch 1, {args.threads} threads, median of {args.repeats}; ratio = raw / Predictor (goal >= 0.95)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models().items():
            bench(name, model, Path(tmp), image, args.repeats)


if __name__ == "__main__":
    main()
