"""Generic folder datasets: images plus masks described by a ``classes.json``.

Layout (``<root>/<split>/`` if that folder exists, else ``<root>/``; train and val sharing a folder
are divided deterministically)::

    classes.json
    images/   any .png/.jpg/.jpeg/.tif
    masks/    .png: class indices, or RGB colours listed in classes.json

``classes.json``::

    {"classes": [{"name": "road", "color": [255, 0, 255]}, ...]   # or {"name": ..., "index": 1}
     "ignore_index": 255,              # optional: label of void pixels (default 255)
     "images": "images", "masks": "masks",          # optional folder names ("." = the split folder)
     "image_key": ["^(\\\\d+)_sat$", "\\\\1"],       # optional regex (pattern, replacement) from a file stem to
     "mask_key": ["^(\\\\d+)_mask$", "\\\\1"],       # the key that pairs image and mask; stems that don't match are skipped
     "color_tolerance": 60,             # optional: RGB masks snap to the nearest colour within this distance
     "splits": {"train": "training", "val": "training"},  # optional split -> folder names
     "val_fraction": 0.2}               # optional, for train and val sharing one folder

See the README for the satellite land-cover (DeepGlobe) and KITTI road configurations.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.data.base import DatasetNotFoundError, VisionDataset, default_palette
from core.data.colormasks import colors_to_indices
from core.data.images import open_rgb
from core.data.registry import register_dataset
from core.data.splits import every_kth_to_val
from core.tasks import SegmentationTask

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def _keyer(rule: list[str] | None):
    if rule is None:
        return lambda stem: stem
    pattern, replacement = re.compile(rule[0]), rule[1]
    return lambda stem: pattern.sub(replacement, stem) if pattern.fullmatch(stem) else None


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


class FolderSegmentation(VisionDataset):
    def __init__(self, split: str, root: Path, spec: dict[str, Any], transform=None) -> None:
        super().__init__(transform)
        entries = spec["classes"]
        self.classes = [e["name"] for e in entries]
        self.ignore_index = int(spec.get("ignore_index", 255))
        self.colors = np.array([e["color"] for e in entries], dtype=np.int64) if "color" in entries[0] else None
        self.palette = [tuple(e["color"]) for e in entries] if self.colors is not None else default_palette(len(entries))
        self.tolerance = float(spec.get("color_tolerance", 60))
        # Index masks: raw value -> position in the class list, everything else void.
        self.lut = np.full(256, self.ignore_index, dtype=np.int64)
        if self.colors is None:
            for i, e in enumerate(entries):
                self.lut[int(e["index"])] = i

        # "splits" maps split names to folders (KITTI: {"train": "training", "val": "training"});
        # a folder shared by train and val is divided deterministically by val_fraction.
        folders = {k: spec.get("splits", {}).get(k, k) for k in ("train", "val", split)}
        base = root / folders[split] if (root / folders[split]).is_dir() else root
        shared = base == root or (split in ("train", "val") and folders["train"] == folders["val"])
        image_dir, mask_dir = base / spec.get("images", "images"), base / spec.get("masks", "masks")
        for d in (image_dir, mask_dir):
            if not d.is_dir():
                raise DatasetNotFoundError(f"folder dataset: {d} is missing. {LAYOUT_HINT}")
        image_key, mask_key = _keyer(spec.get("image_key")), _keyer(spec.get("mask_key"))
        masks = {k: p for p in _files(mask_dir) if p.suffix.lower() == ".png" and (k := mask_key(p.stem)) is not None}
        self.pairs = [(p, masks[k]) for p in _files(image_dir) if (k := image_key(p.stem)) is not None and k in masks]
        if not self.pairs:
            raise DatasetNotFoundError(f"folder dataset: no image in {image_dir} pairs with a mask in {mask_dir}. {LAYOUT_HINT}")
        if shared:  # one folder for train and val: every k-th pair is validation
            if split not in ("train", "val"):
                raise ValueError(f"{root} has no {split}/ folder; without split folders only 'train' and 'val' exist")
            self.pairs = every_kth_to_val(self.pairs, split, float(spec.get("val_fraction", 0.2)))

    def __len__(self) -> int:
        return len(self.pairs)

    def item_id(self, index: int) -> str:
        return self.pairs[index][0].stem

    def decode_mask(self, raw: np.ndarray, where: str) -> np.ndarray:
        """Class indices (H, W) from an index mask or an RGB colour mask."""
        if self.colors is None:
            if raw.ndim != 2:
                raise ValueError(f"{where}: classes.json gives indices, so masks must be single-channel; got {raw.shape}")
            return self.lut[raw.astype(np.uint8)]
        if raw.ndim == 2:
            raise ValueError(f"{where}: classes.json gives colours, so masks must be RGB; got a single-channel mask")
        return colors_to_indices(raw, self.colors, self.ignore_index, self.tolerance)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = self.pairs[index]
        image = open_rgb(image_path)
        with Image.open(mask_path) as im:
            raw = np.asarray(im.convert("RGB") if im.mode in ("P", "RGBA") and self.colors is not None else im)
        mask = self.decode_mask(raw, str(mask_path))
        if mask.shape != image.shape[:2]:
            raise ValueError(f"{mask_path}: mask is {mask.shape}, image {image_path.name} is {image.shape[:2]}")
        return image, mask


LAYOUT_HINT = "Expected <root>[/<split>]/images/ and masks/ beside a classes.json (see core/data/folder.py)."


def read_spec(root: Path) -> dict[str, Any]:
    path = root / "classes.json"
    if not path.is_file():
        raise DatasetNotFoundError(f"folder dataset: {path} is missing. {LAYOUT_HINT}")
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    entries = spec.get("classes")
    if not entries or not all(isinstance(e, dict) and "name" in e for e in entries):
        raise ValueError(f'{path}: "classes" must be a non-empty list of {{"name": ..., "color" or "index": ...}}')
    kinds = {("color" in e, "index" in e) for e in entries}
    if kinds not in ({(True, False)}, {(False, True)}):
        raise ValueError(f'{path}: every class needs exactly one of "color" (RGB masks) or "index" (index masks)')
    return spec


@register_dataset("folder", task=SegmentationTask)
def folder(split: str, root: str | None = None, *, transform=None) -> FolderSegmentation:
    """Images and masks in folders, described by ``<root>/classes.json`` (see the README)."""
    if root is None:
        raise ValueError("the folder dataset needs a root (--data-root) holding classes.json")
    root_path = Path(root)
    return FolderSegmentation(split, root_path, read_spec(root_path), transform)
