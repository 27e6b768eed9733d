"""Datasets of (image, label map) file pairs whose stored labels become classes through one lookup table.

CamVid and ADE20K differ only in where their pairs are and in that table (CamVid: labels past its 11
classes are void; ADE20K: 0 is ignored and k -> k - 1), so both are ``LabelMapPairs``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.data.base import VisionDataset
from core.data.images import open_label_map, open_rgb

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def pair_by_stem(image_dir: Path, label_dir: Path) -> list[tuple[Path, Path]]:
    """(image, label map) pairs matched by file stem, in image-name order; images may be .png or .jpg."""
    labels = {p.stem: p for p in label_dir.iterdir() if p.suffix.lower() == ".png"}
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    return [(p, labels[p.stem]) for p in images if p.stem in labels]


class LabelMapPairs(VisionDataset):
    """Items are (image, label map) files; ``table`` (256,) maps each stored 8-bit label to a class or the ignore index."""

    table: np.ndarray

    def __init__(self, pairs: list[tuple[Path, Path]], transform=None) -> None:
        super().__init__(transform)
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def item_id(self, index: int) -> str:
        return self.pairs[index][0].stem

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, label_path = self.pairs[index]
        image = open_rgb(image_path)
        stored = open_label_map(label_path, image.shape)
        return image, self.table[np.clip(stored, 0, 255)]  # (H, W) int64; clip: a 16-bit map's large labels hit 255
