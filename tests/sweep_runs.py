"""Sweeps of runs for tests and benchmarks, written directly: run.json and history.jsonl only (no training, no
weights, so each run is listed as having no weights yet), 120 runs in well under a second.

``make_sweep(root, n)`` writes the first ``n`` runs of a grid of 4 learning rates x 5 widths x 2 flip
probabilities x 3 seeds (120 runs), named ``lr0.001-w16-f0.5-s2``, each with a ``family`` tag (small or
large) and a final mIoU from ``sweep_miou``. ``write_run`` writes one run with a chosen final mIoU.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

from core.train.config import TrainConfig

CLASSES = ["sky", "road", "car"]
PALETTE = [[70, 130, 180], [128, 64, 128], [0, 0, 142]]
LRS = (1e-4, 1e-3, 1e-2, 1e-1)
WIDTHS = (4, 8, 16, 32, 64)
HFLIPS = (0.0, 0.5)
SEEDS = (0, 1, 2)


def sweep_miou(lr: float, width: int, hflip: float, seed: int) -> float:
    """The final mIoU of a run of the grid: best at lr 1e-3, better when wider and with flips, a little seed noise."""
    return round(0.30 + 0.03 * math.log2(width / 4) - 0.05 * abs(math.log10(lr) + 3) + 0.04 * hflip + 0.01 * seed, 6)


def write_run(
    folder: Path,
    *,
    lr: float,
    width: int = 8,
    seed: int = 0,
    hflip: float = 0.5,
    miou: float = 0.5,
    epochs: int = 5,
    tags: dict[str, Any] | None = None,
    state: str = "finished",
) -> Path:
    """One run of ``epochs`` epochs whose mIoU climbs to ``miou`` at the last epoch (its best)."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig(
        arch="unet", model_args={"base_width": width}, lr=lr, seed=seed, hflip=hflip, epochs=epochs, out=str(folder)
    ).to_dict()
    cfg.pop("tags")
    run = {
        "format": 1,
        "task": "segmentation",
        "model": {
            "source": "registry",
            "name": "unet",
            "args": {"in_channels": 3, "base_width": width, "depth": 3, "num_classes": len(CLASSES)},
            "num_params": 1900 * width * width,
        },
        "data": {
            "name": "synthstreets",
            "options": {"num_images": 64},
            "train_split": "train",
            "val_split": "val",
            "classes": CLASSES,
            "palette": PALETTE,
            "ignore_index": 255,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.25, 0.25, 0.25],
            "input_size": [48, 64],
        },
        "train": {**cfg, "class_weights": None},
        "tags": tags or {},
        "status": {"state": state, "stopped_epoch": epochs, "train_time": 6.0 * epochs},
    }
    (folder / "run.json").write_text(json.dumps(run))
    lines = []
    for e in range(1, epochs + 1):
        m = miou * e / epochs
        lines.append(
            {
                "epoch": e,
                "train_loss": 1.5 - m,
                "val_loss": 1.6 - m,
                "pixel_acc": min(1.0, m + 0.3),
                "mean_acc": min(1.0, m + 0.1),
                "miou": m,
                "fwiou": min(1.0, m + 0.2),
                "iou": [min(1.0, m + 0.1), m, max(0.0, m - 0.1)],
                "lr": lr,
                "epoch_time": 6.0,
                "train_time": 6.0 * e,
            }
        )
    (folder / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder


def sweep_grid() -> list[tuple[float, int, float, int]]:
    """(lr, width, hflip, seed) of the 120 runs, seeds innermost."""
    return list(itertools.product(LRS, WIDTHS, HFLIPS, SEEDS))


def run_name(lr: float, width: int, hflip: float, seed: int) -> str:
    return f"lr{lr:g}-w{width}-f{hflip:g}-s{seed}"


def make_sweep(root: Path, n: int = 120) -> Path:
    """``root`` with the first ``n`` runs of the grid (see the module docstring)."""
    for lr, width, hflip, seed in sweep_grid()[:n]:
        write_run(
            root / run_name(lr, width, hflip, seed),
            lr=lr,
            width=width,
            seed=seed,
            hflip=hflip,
            miou=sweep_miou(lr, width, hflip, seed),
            tags={"family": "small" if width <= 8 else "large"},
        )
    return root
