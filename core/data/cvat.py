"""CVAT's "Segmentation mask 1.1" export: VOC-style colour masks described by ``labelmap.txt``.

Layout of an export unzipped into ``<root>`` (with "Save images" on)::

    labelmap.txt                       # label:color_rgb:parts:actions, e.g. "car:0,0,142::"; "#" starts a comment
    JPEGImages/<name>.<ext>            # the images (any extension; <name> may hold sub-folders)
    SegmentationClass/<name>.png       # colour masks, one labelmap colour per class
    ImageSets/Segmentation/<subset>.txt    # optional: the names in each subset (CVAT writes default.txt)

Classes are the labelmap's lines in order (CVAT writes ``background`` first, so it is class 0). A
colour the labelmap does not list is void (255), unless ``color_tolerance`` lets it snap to the
nearest listed colour as the ``folder`` dataset does. Each subset list is a split; without a train or
val list, train and val divide ``default.txt`` (or every image) as ``folder`` does: every fifth is val.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from core.data.base import VisionDataset
from core.data.colormasks import colors_to_indices
from core.data.images import open_rgb
from core.data.registry import register_dataset
from core.data.sources import DatasetSource
from core.data.splits import every_kth_to_val
from core.tasks import SegmentationTask

IGNORE = 255
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
LISTS = "ImageSets/Segmentation"

SOURCE = DatasetSource(
    title="CVAT export",
    obtain="In CVAT: Actions -> Export task (or dataset) -> format 'Segmentation mask 1.1', with 'Save images' on; "
    "unzip the archive into <root>.",
    layout=f"""expected a CVAT 'Segmentation mask 1.1' export:
  <root>/labelmap.txt                 label:r,g,b:parts:actions per class, background first
  <root>/JPEGImages/<name>.jpg|png    the images
  <root>/SegmentationClass/<name>.png colour masks
  <root>/{LISTS}/<subset>.txt   optional: each subset (train, val, default...) is a split""",
    env_var="CVAT_ROOT",
    subdir="cvat",
    splits=("train", "val"),
)


def read_labelmap(path: Path) -> list[tuple[str, tuple[int, int, int]]]:
    """(name, colour) of each class, in file order; a malformed line is a ValueError naming the line."""
    entries: list[tuple[str, tuple[int, int, int]]] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.rsplit(":", 3)  # a name may hold ":"; the last three fields never do
        values = fields[1].split(",") if len(fields) == 4 else []
        if not fields[0] or len(values) != 3 or not all(v.strip().isdigit() and int(v) <= 255 for v in values):
            raise ValueError(f"{path}:{number}: expected name:r,g,b:parts:actions (e.g. car:0,0,142::), got {line!r}")
        r, g, b = (int(v) for v in values)
        entries.append((fields[0], (r, g, b)))
    if not entries:
        raise ValueError(f"{path} lists no labels; expected lines name:r,g,b:parts:actions")
    if len(entries) > IGNORE:
        raise ValueError(f"{path} lists {len(entries)} labels; at most {IGNORE} fit beside the ignore index {IGNORE}")
    seen: dict[tuple[int, int, int], str] = {}
    for name, color in entries:
        if color in seen:
            raise ValueError(f"{path}: {name!r} and {seen[color]!r} share the colour {color}; a mask could not tell them apart")
        seen[color] = name
    return entries


def files_by_name(folder: Path, extensions: tuple[str, ...]) -> dict[str, Path]:
    """``<name>`` (path under ``folder`` without extension, as the subset lists write it) -> file."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions)
    return {p.relative_to(folder).with_suffix("").as_posix(): p for p in files}


def subset_lists(root: Path) -> dict[str, Path]:
    folder = root / LISTS
    return {p.stem: p for p in sorted(folder.glob("*.txt"))} if folder.is_dir() else {}


def read_list(path: Path) -> list[str]:
    return [name for line in path.read_text().splitlines() if (name := line.strip())]


def split_names(root: Path, split: str, every: list[str]) -> tuple[list[str], str]:
    """(the names in ``split``, a note on where they came from); ``every`` is every annotated image's name."""
    lists = subset_lists(root)
    if split in lists:
        return read_list(lists[split]), ""
    if split in ("train", "val") and set(lists) <= {"default"}:  # one subset: divide it as the folder dataset does
        if "default" in lists:
            names, where = read_list(lists["default"]), f"{LISTS}/default.txt"
        else:
            names, where = every, "every annotated image"
        return every_kth_to_val(names, split), f"train and val divided from {where}: every fifth image is val"
    have = ", ".join(lists) or "none"
    raise ValueError(
        f"the CVAT export under {root} has no split {split!r}: its subset lists ({LISTS}/*.txt) are {have}; "
        "'train' and 'val' are divided from the export only when it has no train or val list of its own"
    )


class CVATSegmentation(VisionDataset):
    ignore_index = IGNORE

    def __init__(self, split: str, root: Path, color_tolerance: float = 0.0, transform=None) -> None:
        super().__init__(transform)
        SOURCE.require(root, ("labelmap.txt", "SegmentationClass/", "JPEGImages/"))
        entries = read_labelmap(root / "labelmap.txt")
        self.classes = [name for name, _ in entries]
        self.palette = [color for _, color in entries]
        self.colors = np.array(self.palette, dtype=np.int64)  # (K, 3)
        self.tolerance = color_tolerance
        images = files_by_name(root / "JPEGImages", IMAGE_EXTENSIONS)
        masks = files_by_name(root / "SegmentationClass", (".png",))
        names, self.note = split_names(root, split, sorted(masks))
        self.pairs = [(n, images[n], masks[n]) for n in names if n in images and n in masks]
        if missing := len(names) - len(self.pairs):
            self.note = "; ".join(filter(None, [self.note, f"{missing} listed image(s) without an image or a mask left out"]))
        if not self.pairs:
            raise SOURCE.not_found(f"split {split!r} has no image in JPEGImages/ with a mask in SegmentationClass/ under {root}")

    def __len__(self) -> int:
        return len(self.pairs)

    def item_id(self, index: int) -> str:
        return self.pairs[index][0]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        _, image_path, mask_path = self.pairs[index]
        image = open_rgb(image_path)
        with Image.open(mask_path) as im:
            rgb = np.asarray(im.convert("RGB"))  # (H, W, 3); CVAT writes RGB or palette PNGs
        if rgb.shape[:2] != image.shape[:2]:
            raise ValueError(f"{mask_path}: mask is {rgb.shape[:2]}, its image {image_path.name} is {image.shape[:2]}")
        return image, colors_to_indices(rgb, self.colors, IGNORE, self.tolerance)


@register_dataset("cvat", task=SegmentationTask, source=SOURCE)
def cvat(split: str, root: str | None = None, *, color_tolerance: float = 0.0, transform=None) -> CVATSegmentation:
    """A CVAT "Segmentation mask 1.1" export: classes and colours from labelmap.txt, unlisted colours 255.

    ``color_tolerance`` > 0 snaps colours within that RGB distance to the nearest class (for resized
    or re-saved masks); splits are the export's subset lists, or train/val divided every fifth image.
    """
    if color_tolerance < 0:
        raise ValueError(f"color_tolerance is an RGB distance, so it cannot be negative; got {color_tolerance}")
    return CVATSegmentation(split, SOURCE.resolve_root(root), color_tolerance, transform)
