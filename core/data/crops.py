"""``crops:<source>``: a classification dataset cut from any registered segmentation dataset.

Each item is a crop centred on one connected region (8-connected, ``scipy.ndimage.label``) of
one class in a source mask, labelled with that class. Void pixels never form a region; regions
smaller than ``min_area`` source pixels are skipped. The crop is the region's box grown by
``context`` about its centre, its shorter side widened until the sides differ by at most
``max_aspect`` (square-ish: a thin pole keeps most of its pixels in the crop; ``max_aspect=1``
gives squares), moved inside the image and clipped to it; the transforms resize it later.
``max_per_class`` keeps a fixed random subset of the commoner classes.

``get_dataset("crops:camvid", "train", root)`` -> ``crops("train", root, source="camvid")``; any
other option (``num_images``, ``size``, ``download``, ...) goes to the source dataset.

The index (one row per region) is built by scanning the source masks once and is kept in memory
for the life of the process, so reopening the same split is instant.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from core.data.base import VisionDataset
from core.data.image_folders import CLASSIFICATION_IGNORE
from core.data.registry import dataset_task, get_dataset, register_dataset
from core.tasks import ClassificationTask

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
# Index columns: source item, class, region number within (item, class), box y0, y1, x0, x1 (exclusive), area.
COLUMNS = ("item", "label", "region", "y0", "y1", "x0", "x1", "area")
_INDEX_CACHE: dict[tuple, np.ndarray] = {}


def region_index(mask: np.ndarray, num_classes: int, min_area: int) -> list[tuple[int, ...]]:
    """(label, region, y0, y1, x0, x1, area) of every connected region of a class in ``mask`` (H, W)."""
    rows = []
    for c in np.unique(mask):
        if not 0 <= c < num_classes:  # void and anything outside the label set
            continue
        regions, n = ndimage.label(mask == c, structure=EIGHT_CONNECTED)
        areas = np.bincount(regions.ravel(), minlength=n + 1)
        for r, box in enumerate(ndimage.find_objects(regions), start=1):
            if box is not None and areas[r] >= min_area:
                rows.append((int(c), r, box[0].start, box[0].stop, box[1].start, box[1].stop, int(areas[r])))
    return rows


def crop_box(
    y0: int, y1: int, x0: int, x1: int, height: int, width: int, context: float, max_aspect: float = 2.0
) -> tuple[int, int, int, int]:
    """The box scaled by ``context`` about its centre, its short side widened so the sides differ by
    at most ``max_aspect`` (1 = a square), then moved inside the image (and clipped to it)."""
    h, w = context * (y1 - y0), context * (x1 - x0)
    long = max(h, w)
    h, w = max(h, long / max_aspect), max(w, long / max_aspect)

    def span(lo: int, hi: int, side: float, limit: int) -> tuple[int, int]:
        s = min(max(1, int(side + 0.5)), limit)
        start = min(max((lo + hi - s) // 2, 0), limit - s)
        return start, start + s

    top, bottom = span(y0, y1, h, height)
    left, right = span(x0, x1, w, width)
    return top, bottom, left, right


class Crops(VisionDataset):
    task = ClassificationTask
    ignore_index = CLASSIFICATION_IGNORE

    def __init__(self, source: VisionDataset, index: np.ndarray, context: float, max_aspect: float, transform=None) -> None:
        super().__init__(transform)
        self.source, self.index, self.context, self.max_aspect = source, index, context, max_aspect
        self.classes = list(source.classes)
        self.palette = [tuple(c) for c in source.palette[: len(self.classes)]]
        self.mean, self.std = source.mean, source.std
        self.labels = index[:, 1].astype(np.int64) if len(index) else np.zeros(0, dtype=np.int64)
        self._recent: OrderedDict[int, np.ndarray] = OrderedDict()  # items are grouped by source image

    def __len__(self) -> int:
        return len(self.index)

    def item_id(self, index: int) -> str:
        item, label, region = (int(v) for v in self.index[index, :3])
        return f"{self.source.item_id(item)}:{self.classes[label]}#{region}"

    def source_item(self, index: int) -> int:
        """Index of the source image the crop comes from."""
        return int(self.index[index, 0])

    def box(self, index: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) of crop ``index`` in its source image of ``height`` x ``width``."""
        y0, y1, x0, x1 = (int(v) for v in self.index[index, 3:7])
        return crop_box(y0, y1, x0, x1, height, width, self.context, self.max_aspect)

    def _source_image(self, item: int) -> np.ndarray:
        if item not in self._recent:
            self._recent[item] = self.source.load(item)[0]
            while len(self._recent) > 4:
                self._recent.popitem(last=False)
        return self._recent[item]

    def load(self, index: int) -> tuple[np.ndarray, int]:
        image = self._source_image(int(self.index[index, 0]))
        top, bottom, left, right = self.box(index, *image.shape[:2])
        return image[top:bottom, left:right].copy(), int(self.index[index, 1])  # its own writable memory, not a view


def build_index(source: VisionDataset, min_area: int, *, desc: str, progress: bool | None = None) -> np.ndarray:
    """(N, 8) int64 rows (see ``COLUMNS``), in source order: one pass over every source mask.

    ``progress=None`` shows a bar only on a terminal.
    """
    rows = []
    for i in tqdm(range(len(source)), desc=desc, unit="img", leave=False, disable=None if progress is None else not progress):
        mask = np.asarray(source.load(i)[1])
        rows += [(i, *r) for r in region_index(mask, len(source.classes), min_area)]
    return np.array(rows, dtype=np.int64).reshape(-1, len(COLUMNS))


def cap_per_class(index: np.ndarray, max_per_class: int, seed: int = 0) -> np.ndarray:
    """At most ``max_per_class`` rows of each class: a fixed random subset, order kept."""
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(index), dtype=bool)
    for c in np.unique(index[:, 1]):
        rows = np.flatnonzero(index[:, 1] == c)
        keep[rows if len(rows) <= max_per_class else rng.choice(rows, max_per_class, replace=False)] = True
    return index[keep]


@register_dataset("crops", task=ClassificationTask)
def crops(
    split: str,
    root: str | None = None,
    *,
    source: str,
    min_area: int = 64,
    context: float = 1.5,
    max_aspect: float = 2.0,
    max_per_class: int | None = None,
    transform=None,
    **source_options: Any,
) -> Crops:
    """Region crops of segmentation dataset ``source`` (``crops:camvid``); other options go to the source."""
    if not dataset_task(source).dense:
        raise ValueError(f"crops:{source}: the source must be a segmentation dataset, {source!r} is not")
    if min_area < 1 or context < 1.0 or max_aspect < 1.0:
        raise ValueError(f"crops: min_area must be >= 1, context and max_aspect >= 1; got {min_area}, {context}, {max_aspect}")
    base = get_dataset(source, split, root, **source_options)
    key = (source, split, str(root), json.dumps(source_options, sort_keys=True, default=str), int(min_area))
    if key not in _INDEX_CACHE:
        _INDEX_CACHE[key] = build_index(base, min_area, desc=f"crops:{source} {split}: finding regions")
    index = _INDEX_CACHE[key]
    if max_per_class is not None:
        index = cap_per_class(index, int(max_per_class))
    return Crops(base, index, float(context), float(max_aspect), transform)
