"""CIFAR-10 and CIFAR-100 through torchvision's own loader.

CIFAR has no validation split: ``val`` is the official test batch, as is usual for CIFAR.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from torchvision.datasets import CIFAR10, CIFAR100

from core.data.base import DatasetNotFoundError, VisionDataset, default_palette
from core.data.image_folders import CLASSIFICATION_IGNORE
from core.data.registry import check_split, register_dataset
from core.tasks import ClassificationTask

SPLITS = ("train", "val", "test")
LAYOUTS = {
    "cifar10": "<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}",
    "cifar100": "<root>/cifar-100-python/{train, test, meta}",
}


def resolve_root(root: str | os.PathLike | None) -> Path:
    """``root`` if given, else ``$VISION_EXPLORER_DATA/cifar``, else ``./data/cifar``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("VISION_EXPLORER_DATA", "data")) / "cifar"


class CIFAR(VisionDataset):
    task = ClassificationTask
    ignore_index = CLASSIFICATION_IGNORE
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)

    def __init__(self, name: str, split: str, root: Path, download: bool, transform=None) -> None:
        super().__init__(transform)
        cls = CIFAR10 if name == "cifar10" else CIFAR100
        try:
            tv = cls(str(root), train=split == "train", download=download)
        except RuntimeError as e:  # torchvision: "Dataset not found or corrupted"
            raise DatasetNotFoundError(
                f"{name} not found under {root} ({e}). Expected the python-version archive extracted as\n  {LAYOUTS[name]}\n"
                "Pass root=... (--data-root), set $VISION_EXPLORER_DATA, or download=True on a machine with internet."
            ) from e
        self.images = tv.data  # (N, 32, 32, 3) uint8
        self.labels = np.asarray(tv.targets, dtype=np.int64)
        self.classes = list(tv.classes)
        self.palette = default_palette(len(self.classes))
        self.split = split

    def __len__(self) -> int:
        return len(self.labels)

    def item_id(self, index: int) -> str:
        return f"{self.split}_{index:05d}"

    def load(self, index: int) -> tuple[np.ndarray, int]:
        return self.images[index], int(self.labels[index])


@register_dataset("cifar10", task=ClassificationTask)
def cifar10(split: str, root: str | None = None, *, download: bool = False, transform=None) -> CIFAR:
    """CIFAR-10: 50,000 train and 10,000 test images of 32x32, 10 classes; ``val`` = the test batch."""
    check_split("cifar10", split, SPLITS)
    return CIFAR("cifar10", split, resolve_root(root), download, transform)


@register_dataset("cifar100", task=ClassificationTask)
def cifar100(split: str, root: str | None = None, *, download: bool = False, transform=None) -> CIFAR:
    """CIFAR-100 (fine labels): 50,000 train and 10,000 test images, 100 classes; ``val`` = the test batch."""
    check_split("cifar100", split, SPLITS)
    return CIFAR("cifar100", split, resolve_root(root), download, transform)
