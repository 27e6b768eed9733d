"""What every dataset exposes, and the base class that applies the joint transforms."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from core.tasks import SegmentationTask, Task

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Palette = list[tuple[int, int, int]]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing; the message names the expected layout and how to get it.

    ``problem`` is the part that says what is wrong (by default the first line), so a summary of
    several splits can list each problem and print the layout once.
    """

    def __init__(self, message: str, *, problem: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem or message.splitlines()[0]


def default_palette(num_classes: int) -> Palette:
    """Distinct colours for datasets that define none (the PASCAL VOC bit-interleaving scheme)."""
    palette = []
    for i in range(num_classes):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette.append((r, g, b))
    return palette


class VisionDataset(Dataset):
    """Base of every dataset. Subclasses implement ``__len__``, ``load`` and ``item_id``.

    Attributes every dataset has: ``task``, ``classes``, ``palette``, ``ignore_index``,
    ``mean`` and ``std`` (the normalisation its images need).

    ``dataset[i]`` returns ``transform(image, target)`` where ``image`` is a
    ``tv_tensors.Image`` (3, H, W) uint8 and ``target`` a ``tv_tensors.Mask`` (H, W) int64 for
    segmentation or an ``int`` for classification. Without a transform the raw pair is returned.
    """

    task: type[Task] = SegmentationTask
    classes: list[str]
    palette: Palette
    ignore_index: int = 255
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    note: str = ""  # what a reader should know about this split (e.g. that it is a shipped sample)

    def __init__(self, transform: Callable | None = None) -> None:
        self.transform = transform

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | int]:
        """Raw sample: image (H, W, 3) uint8 and mask (H, W) integer array, or a class index."""
        raise NotImplementedError

    def item_id(self, index: int) -> str:
        """A stable human-readable name of item ``index`` (usually the file stem)."""
        return f"{index:05d}"

    def __len__(self) -> int:
        raise NotImplementedError

    def item_files(self, index: int) -> list[Path]:
        """The files item ``index`` is read from (image, label map), for ``fingerprint``; none for a generated set."""
        pairs = getattr(self, "pairs", None)
        return [p for p in pairs[index] if isinstance(p, Path)] if pairs is not None else []

    def fingerprint(self) -> str:
        """What identifies this split's content wherever it is: its items' ids, file names and sizes, hashed.
        Never absolute paths or times, so a result computed on another machine is recognised here."""
        if getattr(self, "_fingerprint", None) is not None:  # a split does not change under an opened dataset
            return self._fingerprint
        h = hashlib.sha256(f"{type(self).__name__}:{len(self)}".encode())
        for i in range(len(self)):
            h.update(self.item_id(i).encode())
            for f in self.item_files(i):
                h.update(f"{f.name}:{f.stat().st_size}".encode())
        self._fingerprint = h.hexdigest()[:24]
        return self._fingerprint

    def __getitem__(self, index: int):
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        image, target = self.load(index)
        image = np.ascontiguousarray(image)
        if not image.flags.writeable:  # PIL-backed arrays are read-only; torch wants its own memory
            image = image.copy()
        image = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))  # (3, H, W)
        if self.task.dense:
            target = tv_tensors.Mask(torch.from_numpy(np.asarray(target, dtype=np.int64)))  # (H, W)
        if self.transform is None:
            return image, target
        return self.transform(image, target)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def info(self) -> dict:
        """The description a run directory records, enough to rebuild preprocessing and legends."""
        return {
            "task": self.task.name,
            "classes": list(self.classes),
            "palette": [list(c) for c in self.palette],
            "ignore_index": int(self.ignore_index),
            "mean": list(self.mean),
            "std": list(self.std),
        }
