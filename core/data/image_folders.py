"""Classification datasets from image files: ``imagefolder`` and ``filename_labels``.

``imagefolder`` (torchvision's ImageFolder layout)::

    <root>/<split>/<class>/*.png|jpg      classes = sorted folder names

``filename_labels`` (the report's 50-class data)::

    <root>/<split>/{label}_{index}.png    classes = sorted distinct labels (numerically if all are numbers)

Both also accept ``<root>/`` without split folders; then every ``round(1 / val_fraction)``-th
file of each class (in sorted order) is the ``val`` split and the rest ``train``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from core.data.base import DatasetNotFoundError, VisionDataset, default_palette
from core.data.images import open_rgb
from core.data.registry import register_dataset
from core.tasks import ClassificationTask

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Classification labels are all in [0, K); -100 (PyTorch's default) can never collide with a class,
# whereas the segmentation default 255 would silently drop class 255 of a large label set.
CLASSIFICATION_IGNORE = -100


class ImageFiles(VisionDataset):
    """A list of (image file, class index) pairs; ``labels`` holds every item's class without decoding."""

    task = ClassificationTask
    ignore_index = CLASSIFICATION_IGNORE

    def __init__(self, items: list[tuple[Path, int]], classes: list[str], root: Path, transform=None) -> None:
        super().__init__(transform)
        self.items, self.classes, self.root = items, classes, root
        self.palette = default_palette(len(classes))
        self.labels = np.array([label for _, label in items], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)

    def item_id(self, index: int) -> str:
        path = self.items[index][0]
        return f"{path.parent.name}/{path.stem}"

    def load(self, index: int) -> tuple[np.ndarray, int]:
        path, label = self.items[index]
        return open_rgb(path), int(label)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _split_folder(name: str, root: Path, split: str, hint: str) -> tuple[Path, bool]:
    """(folder holding the split, whether it must still be divided into train/val)."""
    if not root.is_dir():
        raise DatasetNotFoundError(f"{name}: {root} does not exist. {hint}")
    if (root / split).is_dir():
        return root / split, False
    if split not in ("train", "val"):
        raise DatasetNotFoundError(
            f"{name}: {root / split} is missing; without split folders only 'train' and 'val' exist. {hint}"
        )
    if any((root / s).is_dir() for s in ("train", "val", "test")):
        raise DatasetNotFoundError(f"{name}: {root / split} is missing. {hint}")
    return root, True


def _take_split(items: list[tuple[Path, int]], split: str, val_fraction: float) -> list[tuple[Path, int]]:
    """Every k-th item of each class (in the given order) is validation: deterministic and stratified."""
    every = max(2, round(1 / val_fraction))
    seen: dict[int, int] = {}
    out = []
    for path, label in items:
        n = seen.get(label, 0)
        seen[label] = n + 1
        if (n % every == every - 1) == (split == "val"):
            out.append((path, label))
    return out


IMAGEFOLDER_HINT = "Expected <root>/<split>/<class>/*.png (torchvision ImageFolder layout), or <root>/<class>/*.png."


@register_dataset("imagefolder", task=ClassificationTask)
def imagefolder(split: str, root: str | None = None, *, val_fraction: float = 0.2, transform=None) -> ImageFiles:
    """One folder per class; classes are the sorted folder names."""
    if root is None:
        raise ValueError(f"the imagefolder dataset needs a root (--data-root). {IMAGEFOLDER_HINT}")
    folder, divide = _split_folder("imagefolder", Path(root), split, IMAGEFOLDER_HINT)
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    items = [(p, i) for i, c in enumerate(classes) for p in _images(folder / c)]
    if not items:
        raise DatasetNotFoundError(f"imagefolder: no images in class folders under {folder}. {IMAGEFOLDER_HINT}")
    if divide:
        items = _take_split(items, split, val_fraction)
    return ImageFiles(items, classes, Path(root), transform)


FILENAME_RE = re.compile(r"^(?P<label>.+)_(?P<index>\d+)$")
FILENAME_HINT = "Expected <root>/<split>/{label}_{index}.png (e.g. 17_0042.png), or the files directly in <root>/."


def _label_order(labels: set[str]) -> list[str]:
    if all(re.fullmatch(r"-?\d+", s) for s in labels):
        return sorted(labels, key=int)  # "2" before "10"
    return sorted(labels)


@register_dataset("filename_labels", task=ClassificationTask)
def filename_labels(split: str, root: str | None = None, *, val_fraction: float = 0.2, transform=None) -> ImageFiles:
    """Images named ``{label}_{index}.png``; classes are the sorted distinct labels."""
    if root is None:
        raise ValueError(f"the filename_labels dataset needs a root (--data-root). {FILENAME_HINT}")
    folder, divide = _split_folder("filename_labels", Path(root), split, FILENAME_HINT)
    parsed = [(p, m["label"], int(m["index"])) for p in _images(folder) if (m := FILENAME_RE.fullmatch(p.stem))]
    if not parsed:
        raise DatasetNotFoundError(f"filename_labels: no file named {{label}}_{{index}} in {folder}. {FILENAME_HINT}")
    classes = _label_order({label for _, label, _ in parsed})
    position = {c: i for i, c in enumerate(classes)}
    parsed.sort(key=lambda t: (position[t[1]], t[2], t[0].name))
    items = [(p, position[label]) for p, label, _ in parsed]
    if divide:
        items = _take_split(items, split, val_fraction)
    return ImageFiles(items, classes, Path(root), transform)
