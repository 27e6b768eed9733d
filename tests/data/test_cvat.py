"""A CVAT "Segmentation mask 1.1" export: labelmap colours -> class indices, unknown colours void, subset lists."""

from pathlib import Path

import numpy as np
import pytest

from core.data import DatasetNotFoundError, get_dataset, list_datasets
from core.data.download import main
from tests.data.test_datasets import save

LABELMAP = """# label:color_rgb:parts:actions
background:0,0,0::
road:128,64,128::
car:0,0,142:wheel,door:
traffic: sign:220,220,0::
"""
COLORS = np.array([(0, 0, 0), (128, 64, 128), (0, 0, 142), (220, 220, 0)], dtype=np.uint8)
NAMES = ["frame_000", "frame_001", "frame_002", "frame_003", "frame_004", "seq2/frame_000"]  # CVAT keeps sub-folders


def cvat_export(root: Path, lists: dict[str, list[str]] | None = None) -> dict[str, np.ndarray]:
    """Six images with colour masks; each mask has one unknown colour (void) at (0, 0). Returns name -> labels."""
    (root / "labelmap.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "labelmap.txt").write_text(LABELMAP)
    truth = {}
    for i, name in enumerate(NAMES):
        labels = np.arange(12).reshape(3, 4) % 4
        labels = np.roll(labels, i, axis=1)
        rgb = COLORS[labels].copy()
        rgb[0, 0] = (10, 200, 10)  # not in the labelmap
        labels[0, 0] = 255
        save(root / "JPEGImages" / f"{name}.jpg", np.full((3, 4, 3), 20 * i, np.uint8))
        save(root / "SegmentationClass" / f"{name}.png", rgb)
        save(root / "SegmentationObject" / f"{name}.png", rgb)  # instance masks: not read
        truth[name] = labels
    for subset, names in (lists or {}).items():
        (root / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Segmentation" / f"{subset}.txt").write_text("".join(f"{n}\n" for n in names))
    return truth


def names(ds) -> list[str]:
    return [ds.item_id(i) for i in range(len(ds))]


def test_colours_become_labelmap_indices_and_unknown_colours_are_void(tmp_path):
    truth = cvat_export(tmp_path, {"train": NAMES[:4], "val": NAMES[4:]})
    assert "cvat" in list_datasets()
    train = get_dataset("cvat", "train", root=str(tmp_path))
    assert train.classes == ["background", "road", "car", "traffic: sign"] and train.ignore_index == 255
    assert train.palette == [tuple(c) for c in COLORS.tolist()]
    assert names(train) == NAMES[:4] and not train.note
    for i in range(len(train)):
        np.testing.assert_array_equal(train[i][1].numpy(), truth[train.item_id(i)])
    val = get_dataset("cvat", "val", root=str(tmp_path))
    assert names(val) == ["frame_004", "seq2/frame_000"]
    np.testing.assert_array_equal(val[1][1].numpy(), truth["seq2/frame_000"])


def test_a_tolerance_snaps_near_colours_as_the_folder_dataset_does(tmp_path):
    truth = cvat_export(tmp_path)
    rgb = COLORS[truth["frame_000"].clip(0, 3)].copy()
    rgb[0, 0] = (5, 5, 140)  # near car
    save(tmp_path / "SegmentationClass" / "frame_000.png", rgb)
    exact = get_dataset("cvat", "val", root=str(tmp_path))
    snapped = get_dataset("cvat", "val", root=str(tmp_path), color_tolerance=10)
    assert exact.item_id(0) == "frame_000" and exact[0][1][0, 0] == 255 and snapped[0][1][0, 0] == 2
    with pytest.raises(ValueError, match="cannot be negative"):
        get_dataset("cvat", "val", root=str(tmp_path), color_tolerance=-1)


def test_without_train_and_val_lists_every_fifth_image_is_val(tmp_path):
    cvat_export(tmp_path / "plain")
    train, val = (get_dataset("cvat", s, root=str(tmp_path / "plain")) for s in ("train", "val"))
    assert names(val) == ["frame_000", "seq2/frame_000"] and names(train) == NAMES[1:5]
    assert "every fifth image is val" in val.note
    cvat_export(tmp_path / "default", {"default": NAMES[1:]})  # CVAT's single subset
    train, val = (get_dataset("cvat", s, root=str(tmp_path / "default")) for s in ("train", "val"))
    assert names(val) == ["frame_001"] and len(train) == 4 and "default.txt" in val.note
    assert len(get_dataset("cvat", "default", root=str(tmp_path / "default"))) == 5
    with pytest.raises(ValueError, match="no split 'test'.* are default"):
        get_dataset("cvat", "test", root=str(tmp_path / "default"))
    cvat_export(tmp_path / "subsets", {"Train": NAMES[:3], "Validation": NAMES[3:]})
    with pytest.raises(ValueError, match="no split 'train'.* are Train, Validation"):
        get_dataset("cvat", "train", root=str(tmp_path / "subsets"))
    assert len(get_dataset("cvat", "Validation", root=str(tmp_path / "subsets"))) == 3


def test_a_wrong_export_is_named(tmp_path, capsys):
    with pytest.raises(DatasetNotFoundError, match=r"labelmap.txt is missing under .*\n.*Segmentation mask 1.1"):
        get_dataset("cvat", "train", root=str(tmp_path))
    cvat_export(tmp_path)
    (tmp_path / "labelmap.txt").write_text("background:0,0,0::\ncar:0,0::\n")
    with pytest.raises(ValueError, match=r"labelmap.txt:2: expected name:r,g,b:parts:actions"):
        get_dataset("cvat", "train", root=str(tmp_path))
    (tmp_path / "labelmap.txt").write_text("background:0,0,0::\ncar:0,0,0::\n")
    with pytest.raises(ValueError, match="'car' and 'background' share the colour"):
        get_dataset("cvat", "train", root=str(tmp_path))
    (tmp_path / "labelmap.txt").write_text(LABELMAP)
    assert main(["cvat", str(tmp_path)]) == 0
    assert "train  4 images" in capsys.readouterr().out
    for p in (tmp_path / "JPEGImages").rglob("*.jpg"):
        p.unlink()
    assert main(["cvat", str(tmp_path)]) == 1
    assert "split 'train' has no image in JPEGImages/" in capsys.readouterr().err
