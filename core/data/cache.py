"""Decode and resize a dataset once, then serve it from memory as uint8 arrays.

Decoding a JPEG and resizing it costs more than a training step of a small CNN on a CPU;
doing it once per run instead of once per epoch is what makes the loader cheap.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from core.data.base import VisionDataset


def resize_pair(image: np.ndarray, mask: np.ndarray | int, size: tuple[int, int] | None, *, resize_mask: bool = True):
    """Image resized with antialiased bilinear, mask with nearest neighbour (never blended)."""
    if size is None or image.shape[:2] == tuple(size):
        return image, mask
    h, w = size
    image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR, reducing_gap=None))
    if resize_mask and isinstance(mask, np.ndarray):
        mask = np.asarray(Image.fromarray(mask.astype(np.int32)).resize((w, h), Image.NEAREST)).astype(np.int64)
    return image, mask


class InMemory(VisionDataset):
    """A copy of ``base`` held in memory at ``size`` (H, W); masks stay at native size if asked."""

    def __init__(
        self,
        base: VisionDataset,
        size: tuple[int, int] | None,
        *,
        resize_masks: bool = True,
        transform=None,
        progress: bool = True,
    ) -> None:
        super().__init__(transform)
        self.base = base
        for attr in ("task", "classes", "palette", "ignore_index", "mean", "std"):
            setattr(self, attr, getattr(base, attr))
        self.images: list[np.ndarray] = []
        self.targets: list[np.ndarray | int] = []
        for i in tqdm(range(len(base)), desc="caching", unit="img", disable=not progress, leave=False):
            image, target = base.load(i)
            image, target = resize_pair(image, target, size, resize_mask=resize_masks)
            self.images.append(np.ascontiguousarray(image, dtype=np.uint8))
            if isinstance(target, np.ndarray):
                target = target.astype(np.uint8 if target.max(initial=0) < 256 else np.int32)  # 8x less memory
            self.targets.append(target)

    def __len__(self) -> int:
        return len(self.images)

    def item_id(self, index: int) -> str:
        return self.base.item_id(index)

    def load(self, index: int):
        target = self.targets[index]
        return self.images[index], (target.astype(np.int64) if isinstance(target, np.ndarray) else target)
