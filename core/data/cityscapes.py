"""Cityscapes in its official layout: the 19 evaluated classes ("train IDs"), everything else ignored (255).

Label maps store the 34 label IDs of cityscapesScripts' ``labels.py``; 19 of them are the classes models
are trained and scored on, in the order of their train IDs, and the rest (unlabeled, ego vehicle, parking,
guard rail, caravan, ...) are ignored by the official evaluation, so here they are 255. A
``*_labelTrainIds.png`` written by cityscapesScripts' ``createTrainIdLabelImgs`` already holds train IDs
and is read as it is when present. Cities are whatever folders a split holds, so any city and the
coarse annotations (``annotations="gtCoarse"``, splits train, train_extra and val) load the same way.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from core.data.base import VisionDataset
from core.data.images import open_label_map, open_rgb
from core.data.registry import check_split, register_dataset
from core.data.sources import DatasetSource
from core.tasks import SegmentationTask

# (label ID, name, colour) of the 19 evaluated classes, in train-ID order (labels.py).
TRAIN_LABELS = [
    (7, "road", (128, 64, 128)), (8, "sidewalk", (244, 35, 232)), (11, "building", (70, 70, 70)),
    (12, "wall", (102, 102, 156)), (13, "fence", (190, 153, 153)), (17, "pole", (153, 153, 153)),
    (19, "traffic light", (250, 170, 30)), (20, "traffic sign", (220, 220, 0)), (21, "vegetation", (107, 142, 35)),
    (22, "terrain", (152, 251, 152)), (23, "sky", (70, 130, 180)), (24, "person", (220, 20, 60)),
    (25, "rider", (255, 0, 0)), (26, "car", (0, 0, 142)), (27, "truck", (0, 0, 70)), (28, "bus", (0, 60, 100)),
    (31, "train", (0, 80, 100)), (32, "motorcycle", (0, 0, 230)), (33, "bicycle", (119, 11, 32)),
]  # fmt: skip
CLASSES = [name for _, name, _ in TRAIN_LABELS]
PALETTE = [color for _, _, color in TRAIN_LABELS]
IGNORE = 255
# 8-bit label value -> train ID: one table for label-ID maps, one for maps that already hold train IDs.
FROM_LABEL_IDS = np.full(256, IGNORE, dtype=np.int64)
FROM_LABEL_IDS[[label_id for label_id, _, _ in TRAIN_LABELS]] = np.arange(len(TRAIN_LABELS))
FROM_TRAIN_IDS = np.full(256, IGNORE, dtype=np.int64)
FROM_TRAIN_IDS[: len(TRAIN_LABELS)] = np.arange(len(TRAIN_LABELS))

ANNOTATIONS = {"gtFine": ("train", "val", "test"), "gtCoarse": ("train", "train_extra", "val")}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")  # in order of preference when a frame is stored twice
FRAME = re.compile(r"^(?P<frame>.+?_\d+_\d+)(?:_.*)?$")  # aachen_000000_000019[_leftImg8bit]
TEST_NOTE = (
    "Cityscapes test: the official release has no labels for it (every pixel is ignored), so it loads "
    "and predicts, but scores on it mean nothing; the benchmark server scores test predictions"
)

SOURCE = DatasetSource(
    title="Cityscapes",
    obtain="Cityscapes needs a (free) login at https://www.cityscapes-dataset.com/ -> Download: get gtFine_trainvaltest.zip "
    "(241 MB) and leftImg8bit_trainvaltest.zip (11 GB) and unzip both into the same folder.",
    layout="""expected the official Cityscapes layout (both zips unzipped into <root>):
  <root>/leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png   (2975 / 500 / 1525; .jpg also read)
  <root>/gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
      (a _gtFine_labelTrainIds.png beside it is used instead when present)""",
    env_var="CITYSCAPES_ROOT",
    subdir="cityscapes",
    splits=("train", "val"),
    optional_splits=("test",),  # unlabelled in the official release
    sizes={"train": 2975, "val": 500, "test": 1525},
)


class Frame(NamedTuple):
    name: str  # <city>_<seq>_<frame>
    image: Path
    labels: Path
    train_ids: bool  # the label map holds train IDs already (``*_labelTrainIds.png``)


def frame_of(stem: str) -> str | None:
    """The ``<city>_<seq>_<frame>`` prefix that pairs an image with its label maps, or None for other files."""
    m = FRAME.fullmatch(stem)
    return m["frame"] if m else None


def city_images(folder: Path) -> dict[str, Path]:
    """Frame -> image file of one city folder; a frame stored as both PNG and JPEG is read from the PNG."""
    found: dict[str, Path] = {}
    rank = {ext: i for i, ext in enumerate(IMAGE_EXTENSIONS)}
    for path in sorted(folder.iterdir(), key=lambda p: (rank.get(p.suffix.lower(), len(rank)), p.name)):
        frame = frame_of(path.stem)
        if path.suffix.lower() in rank and frame is not None:
            found.setdefault(frame, path)
    return found


def split_frames(root: Path, split: str, annotations: str) -> tuple[list[Frame], int]:
    """(every image of ``split`` that has a label map, how many have none), cities in sorted order."""
    image_root, label_root = root / "leftImg8bit" / split, root / annotations / split
    SOURCE.require(root, (f"leftImg8bit/{split}/", f"{annotations}/{split}/"))
    frames, unlabelled = [], 0
    for city in sorted(d for d in image_root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        labels_dir = label_root / city.name
        label_files = {p.name for p in labels_dir.iterdir()} if labels_dir.is_dir() else set()
        for frame, image in sorted(city_images(city).items()):
            train_ids, label_ids = f"{frame}_{annotations}_labelTrainIds.png", f"{frame}_{annotations}_labelIds.png"
            if train_ids in label_files:
                frames.append(Frame(frame, image, labels_dir / train_ids, True))
            elif label_ids in label_files:
                frames.append(Frame(frame, image, labels_dir / label_ids, False))
            else:
                unlabelled += 1
    if not frames:
        raise SOURCE.not_found(
            f"no image under leftImg8bit/{split}/<city>/ has a {annotations}_labelIds.png or "
            f"{annotations}_labelTrainIds.png under {annotations}/{split}/<city>/ in {root}"
        )
    return frames, unlabelled


class Cityscapes(VisionDataset):
    classes = CLASSES
    palette = PALETTE
    ignore_index = IGNORE

    def __init__(self, split: str, root: Path, annotations: str = "gtFine", transform=None) -> None:
        super().__init__(transform)
        self.frames, unlabelled = split_frames(root, split, annotations)
        notes = [TEST_NOTE] if split == "test" else []
        if unlabelled:
            notes.append(f"{unlabelled} image(s) under leftImg8bit/{split}/ have no {annotations} label map and are left out")
        self.note = "; ".join(notes)

    def __len__(self) -> int:
        return len(self.frames)

    def item_id(self, index: int) -> str:
        return self.frames[index].name

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        frame = self.frames[index]
        image = open_rgb(frame.image)
        raw = open_label_map(frame.labels, image.shape)
        table = FROM_TRAIN_IDS if frame.train_ids else FROM_LABEL_IDS
        return image, table[np.clip(raw, 0, 255)]  # (H, W) train IDs, 255 ignored; clip: 16-bit maps stay in the table


@register_dataset("cityscapes", task=SegmentationTask, source=SOURCE)
def cityscapes(split: str, root: str | None = None, *, annotations: str = "gtFine", transform=None) -> Cityscapes:
    """Cityscapes: 19 classes (train IDs), 255 ignored; ``annotations`` "gtFine" (train/val/test) or "gtCoarse"
    (train/train_extra/val). The test split loads, but its official labels are all ignore: it has no scores."""
    if annotations not in ANNOTATIONS:
        raise ValueError(f"Cityscapes annotations must be one of {', '.join(ANNOTATIONS)}, got {annotations!r}")
    check_split(f"cityscapes ({annotations})", split, ANNOTATIONS[annotations])
    return Cityscapes(split, SOURCE.resolve_root(root), annotations, transform)
