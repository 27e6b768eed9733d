"""PASCAL VOC 2012 and 2007 segmentation, through ``torchvision.datasets.VOCSegmentation``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from torchvision.datasets import VOCSegmentation

from core.data.base import DatasetNotFoundError, VisionDataset, default_palette
from core.data.images import pil_to_rgb
from core.data.registry import check_split, register_dataset
from core.tasks import SegmentationTask

CLASSES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip
SPLITS = {"2012": ("train", "val", "trainval"), "2007": ("train", "val", "trainval", "test")}


class VOC(VisionDataset):
    classes = CLASSES
    palette = default_palette(21)  # VOC's own colour map
    ignore_index = 255

    def __init__(self, voc: VOCSegmentation, transform=None) -> None:
        super().__init__(transform)
        self.voc = voc

    def __len__(self) -> int:
        return len(self.voc)

    def item_id(self, index: int) -> str:
        return Path(self.voc.images[index]).stem

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image, target = self.voc[index]  # PIL RGB image, PIL "P" mask whose indices are the classes
        return pil_to_rgb(image), np.asarray(target, dtype=np.int64)


def _voc(year: str, split: str, root: str | None, download: bool, transform) -> VOC:
    check_split(f"voc{year}", split, SPLITS[year])
    path = Path(
        root if root is not None else os.environ.get("VOC_ROOT", Path(os.environ.get("VISION_EXPLORER_DATA", "data")) / "voc")
    )
    try:
        voc = VOCSegmentation(str(path), year=year, image_set=split, download=download)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted."
        raise DatasetNotFoundError(
            f"PASCAL VOC {year} not found under {path}: expected {path}/VOCdevkit/VOC{year}/ with JPEGImages/, "
            f"SegmentationClass/ and ImageSets/Segmentation/{split}.txt. Pass root=... (--data-root), set $VOC_ROOT, "
            "or download=True on a machine with internet."
        ) from e
    return VOC(voc, transform)


@register_dataset("voc2012", task=SegmentationTask)
def voc2012(split: str, root: str | None = None, *, download: bool = False, transform=None) -> VOC:
    """PASCAL VOC 2012 segmentation: 21 classes, 255 (object borders) ignored."""
    return _voc("2012", split, root, download, transform)


@register_dataset("voc2007", task=SegmentationTask)
def voc2007(split: str, root: str | None = None, *, download: bool = False, transform=None) -> VOC:
    """PASCAL VOC 2007 segmentation: 21 classes, 255 (object borders) ignored."""
    return _voc("2007", split, root, download, transform)
