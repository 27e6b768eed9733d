"""``synthstreets``: procedurally rendered street scenes with CamVid's classes, no download."""

from __future__ import annotations

import numpy as np

from core.data.base import VisionDataset
from core.data.registry import check_split, register_dataset
from core.data.synthstreets.render import CLASSES, PALETTE, VOID, render_scene
from core.tasks import SegmentationTask

SPLITS = ("train", "val", "test")
DEFAULT_SIZES = {"train": 600, "val": 100, "test": 100}
# Each split draws scene indices from its own range, so no scene is in two splits.
SPLIT_OFFSET = {"train": 0, "val": 10_000_000, "test": 20_000_000}


class SynthStreets(VisionDataset):
    classes = list(CLASSES)
    palette = list(PALETTE)
    ignore_index = VOID

    def __init__(self, split: str, num_images: int, size: tuple[int, int], seed: int, transform=None) -> None:
        super().__init__(transform)
        self.split, self.num_images, self.size, self.seed = split, num_images, size, seed

    def __len__(self) -> int:
        return self.num_images

    def item_id(self, index: int) -> str:
        return f"{self.split}_{index:05d}"

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image, mask = render_scene(self.seed, SPLIT_OFFSET[self.split] + index, self.size[0], self.size[1])
        return image, mask.astype(np.int64)


@register_dataset("synthstreets", task=SegmentationTask)
def synthstreets(
    split: str,
    root: str | None = None,
    *,
    num_images: int | None = None,
    size: tuple[int, int] = (180, 240),
    seed: int = 0,
    transform=None,
) -> SynthStreets:
    """Street scenes rendered from (seed, index) at ``size`` (H, W); split sizes default to 600/100/100."""
    check_split("synthstreets", split, SPLITS)
    n = DEFAULT_SIZES[split] if num_images is None else int(num_images)
    if n <= 0:
        raise ValueError(f"num_images must be positive, got {n}")
    return SynthStreets(split, n, (int(size[0]), int(size[1])), int(seed), transform)
