"""ADE20K SceneParsing (the MIT Scene Parsing Benchmark release, ADEChallengeData2016): 150 classes.

Annotations store 0 for "other" (pixels outside the 150 classes) and k = 1..150 for class k. The
benchmark scores the 150 classes only, so 0 is ignored and k becomes k - 1 ("reduce zero label"), which
frees 255 to be the ignore index. Class names follow objectInfo150 (first name of each entry), and the
palette is the one mmsegmentation's ADE20KDataset uses, so colours match the published figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.data.labelmaps import LabelMapPairs, pair_by_stem
from core.data.registry import check_split, register_dataset
from core.data.sources import DatasetSource
from core.tasks import SegmentationTask

CLASSES = [
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
    "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
    "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
    "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
    "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
    "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass",
    "clock", "flag",
]  # fmt: skip
PALETTE = [
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3), (120, 120, 80), (140, 140, 140),
    (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7), (150, 5, 61), (120, 120, 70),
    (8, 255, 51), (255, 6, 82), (143, 255, 140), (204, 255, 4), (255, 51, 7), (204, 70, 3), (0, 102, 200),
    (61, 230, 250), (255, 6, 51), (11, 102, 255), (255, 7, 71), (255, 9, 224), (9, 7, 230), (220, 220, 220),
    (255, 9, 92), (112, 9, 255), (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10),
    (7, 255, 255), (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20),
    (255, 8, 41), (255, 5, 153), (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255), (140, 140, 140),
    (250, 10, 15), (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0), (153, 255, 0), (0, 0, 255),
    (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255), (11, 200, 200), (255, 82, 0), (0, 255, 245),
    (0, 61, 255), (0, 255, 112), (0, 255, 133), (255, 0, 0), (255, 163, 0), (255, 102, 0), (194, 255, 0),
    (0, 143, 255), (51, 255, 0), (0, 82, 255), (0, 255, 41), (0, 255, 173), (10, 0, 255), (173, 255, 0),
    (0, 255, 153), (255, 92, 0), (255, 0, 255), (255, 0, 245), (255, 0, 102), (255, 173, 0), (255, 0, 20),
    (255, 184, 184), (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204), (0, 255, 194), (0, 255, 82),
    (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255), (0, 122, 255), (0, 255, 163), (255, 153, 0),
    (0, 255, 10), (255, 112, 0), (143, 255, 0), (82, 0, 255), (163, 255, 0), (255, 235, 0), (8, 184, 170),
    (133, 0, 255), (0, 255, 92), (184, 0, 255), (255, 0, 31), (0, 184, 255), (0, 214, 255), (255, 0, 112),
    (92, 255, 0), (0, 224, 255), (112, 224, 255), (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0),
    (255, 0, 163), (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0), (255, 0, 235), (245, 0, 255),
    (255, 0, 122), (255, 245, 0), (10, 190, 212), (214, 255, 0), (0, 204, 255), (20, 0, 255), (255, 255, 0),
    (0, 153, 255), (0, 41, 255), (0, 255, 204), (41, 0, 255), (41, 255, 0), (173, 0, 255), (0, 245, 255),
    (71, 0, 255), (122, 0, 255), (0, 255, 184), (0, 92, 255), (184, 255, 0), (0, 133, 255), (255, 214, 0),
    (25, 194, 194), (102, 255, 0), (92, 0, 255),
]  # fmt: skip
IGNORE = 255
# Stored label -> class: 0 ("other") ignored, k -> k - 1, anything past 150 ignored.
REDUCE_ZERO = np.full(256, IGNORE, dtype=np.int64)
REDUCE_ZERO[1 : len(CLASSES) + 1] = np.arange(len(CLASSES))
FOLDERS = {"train": "training", "val": "validation"}
RELEASE = "ADEChallengeData2016"

SOURCE = DatasetSource(
    title="ADE20K",
    obtain="ADE20K SceneParsing is the MIT Scene Parsing Benchmark release: download ADEChallengeData2016.zip "
    "(about 920 MB) from http://sceneparsing.csail.mit.edu/ and unzip it into <root>.",
    layout=f"""expected the ADEChallengeData2016 layout (<root> may also be the {RELEASE} folder itself):
  <root>/{RELEASE}/images/training/*.jpg       <root>/{RELEASE}/annotations/training/*.png     (20210)
  <root>/{RELEASE}/images/validation/*.jpg     <root>/{RELEASE}/annotations/validation/*.png   (2000)""",
    env_var="ADE20K_ROOT",
    subdir="ade20k",
    splits=("train", "val"),
    sizes={"train": 20210, "val": 2000},
)


def release_prefix(root: Path) -> str:
    """Where the release sits, relative to ``root``: inside ``ADEChallengeData2016/``, or ``root`` is that folder."""
    return "" if not (root / RELEASE).is_dir() and (root / "images").is_dir() else f"{RELEASE}/"


def split_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    """(image, annotation) pairs of ``split``, matched by file stem (ADE_train_00000001)."""
    prefix, folder = release_prefix(root), FOLDERS[split]
    image_rel, label_rel = f"{prefix}images/{folder}/", f"{prefix}annotations/{folder}/"
    SOURCE.require(root, (image_rel, label_rel))
    pairs = pair_by_stem(root / image_rel, root / label_rel)
    if not pairs:
        raise SOURCE.not_found(f"no image in {image_rel} has an annotation of the same name in {label_rel} under {root}")
    return pairs


class ADE20K(LabelMapPairs):
    classes = CLASSES
    palette = PALETTE
    ignore_index = IGNORE
    table = REDUCE_ZERO


@register_dataset("ade20k", task=SegmentationTask, source=SOURCE)
def ade20k(split: str, root: str | None = None, *, transform=None) -> ADE20K:
    """ADE20K SceneParsing: 150 classes, "other" (0) ignored as 255 and k -> k - 1; splits train and val."""
    check_split("ade20k", split, tuple(FOLDERS))
    return ADE20K(split_pairs(SOURCE.resolve_root(root), split), transform)
