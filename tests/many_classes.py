"""A runs folder with many classes for the app's tests and benchmarks, made in about a second, nothing downloaded:
a folder dataset of three 32x48 images (classes.json, index masks in train/ and val/) and two runs logged with
``RunWriter``, whose validation confusion matrix is written by hand and whose model predicts one class everywhere
(a U-Net with a zero classifier and a one-hot bias).

``MANY`` has ADE20K's 150 classes; ``FEW`` the same layout at CamVid's 11, to compare with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.data.base import default_palette
from core.models import get_model
from core.train.writer import RunWriter

WORDS = ["wall", "chest of drawers", "sky", "swimming pool", "traffic light", "car", "kitchen island", "person"]


@dataclass(frozen=True)
class ManyClasses:
    k: int
    image_classes: tuple[tuple[int, ...], ...]  # the classes in each image's ground truth, in stripes
    predicts: dict[str, int]  # run name -> the class it predicts everywhere
    mistakes: dict[tuple[int, int], int]  # (true, predicted) -> pixels; class i has 1000 + i pixels right

    @property
    def classes(self) -> list[str]:
        return [f"{i:03d} {WORDS[i % len(WORDS)]}" for i in range(self.k)]

    def confusion(self) -> np.ndarray:
        cm = np.diag(1000 + np.arange(self.k))  # (K, K)
        for (t, p), n in self.mistakes.items():
            cm[t, p] = n
        return cm


MANY = ManyClasses(
    150,
    ((3, 77, 140), (5, 7), (0, 100, 149)),
    {"run-a": 42, "run-b": 140},
    {(5, 7): 900, (100, 3): 700, (149, 0): 400, (7, 5): 300, (60, 61): 200},
)
FEW = ManyClasses(11, ((3, 7, 10), (5, 7), (0, 1, 9)), {"run-a": 4, "run-b": 10}, {(5, 7): 900, (1, 3): 700, (9, 0): 400})


def write_dataset(root: Path, fx: ManyClasses) -> None:
    """root/classes.json and three 32x48 images with their index masks (a void border) in train/ and val/."""
    root.mkdir(parents=True)
    entries = [{"name": n, "index": i} for i, n in enumerate(fx.classes)]
    (root / "classes.json").write_text(json.dumps({"classes": entries, "ignore_index": 255}))
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for k, present in enumerate(fx.image_classes):
            mask = np.full((32, 48), 255, dtype=np.uint8)
            for j, c in enumerate(present):
                mask[2:30, 2 + 15 * j : 2 + 15 * (j + 1)] = c
            Image.fromarray(mask).save(root / split / "masks" / f"im{k}.png")
            Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(root / split / "images" / f"im{k}.png")


def write_run(out: Path, data_root: Path, fx: ManyClasses, predicted: int) -> None:
    """Two epochs of a U-Net whose classifier is zero with a one-hot bias (it predicts ``predicted`` everywhere)."""
    torch.manual_seed(0)
    model = get_model("unet_simple", num_classes=fx.k, base_width=4)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.bias[predicted] = 1.0
    with RunWriter(
        out,
        model=model,
        arch="unet_simple",
        model_args={"base_width": 4},
        classes=fx.classes,
        palette=[tuple(int(v) for v in c) for c in default_palette(fx.k)],
        ignore_index=255,
        input_size=(32, 48),
        dataset="folder",
        data_root=str(data_root),
    ) as w:
        for epoch in (1, 2):
            w.log_epoch(epoch, train_loss=1.0 / epoch, confusion=fx.confusion())


def make_runs(root: Path, fx: ManyClasses = MANY) -> Path:
    """The dataset in root/data and the runs in root/runs (returned)."""
    write_dataset(root / "data", fx)
    for name, c in fx.predicts.items():
        write_run(root / "runs" / name, root / "data", fx, c)
    return root / "runs"
