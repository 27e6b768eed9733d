"""Classification datasets on tiny data the tests write themselves: file names, folders, region crops, CIFAR."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data import DatasetNotFoundError, dataset_options, get_dataset
from core.data.crops import crop_box


def _png(path: Path, value: int, size: tuple[int, int] = (12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, dtype=np.uint8)).save(path)


# ---------------------------------------------------------------------------- filename_labels


def test_filename_labels_sorts_numeric_labels_numerically(tmp_path: Path) -> None:
    for label in ("10", "2", "1"):
        for i in range(3):
            _png(tmp_path / "train" / f"{label}_{i:03d}.png", int(label))
    _png(tmp_path / "val" / "10_000.png", 10)
    (tmp_path / "train" / "notes.txt").write_text("not an image")
    ds = get_dataset("filename_labels", "train", str(tmp_path))
    assert ds.task.name == "classification" and ds.classes == ["1", "2", "10"]
    assert len(ds) == 9 and ds.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    image, label = ds.load(8)
    assert image.shape == (12, 10, 3) and image.dtype == np.uint8 and image[0, 0, 0] == 10 and label == 2
    assert ds.item_id(0) == "train/1_000"
    val = get_dataset("filename_labels", "val", str(tmp_path))
    assert len(val) == 1 and val.classes == ["10"] and val.load(0)[1] == 0
    assert ds.ignore_index not in range(len(ds.classes))


def test_filename_labels_without_split_folders_holds_out_every_fifth_file_per_class(tmp_path: Path) -> None:
    for label in ("cat", "dog_big"):  # a label may itself contain underscores
        for i in range(10):
            _png(tmp_path / f"{label}_{i}.png", 1)
    train = get_dataset("filename_labels", "train", str(tmp_path))
    val = get_dataset("filename_labels", "val", str(tmp_path))
    assert train.classes == val.classes == ["cat", "dog_big"]
    assert len(train) == 16 and len(val) == 4 and np.bincount(val.labels).tolist() == [2, 2]
    assert {train.item_id(i) for i in range(len(train))}.isdisjoint(val.item_id(i) for i in range(len(val)))
    with pytest.raises(DatasetNotFoundError, match=r"\{label\}_\{index\}"):
        get_dataset("filename_labels", "train", str(tmp_path / "missing"))


# -------------------------------------------------------------------------------- imagefolder


def test_imagefolder_classes_are_sorted_folder_names(tmp_path: Path) -> None:
    for split, n in (("train", 3), ("val", 1)):
        for value, cls in enumerate(("zebra", "ant", "bee")):
            for i in range(n):
                _png(tmp_path / split / cls / f"{i}.png", value)
    ds = get_dataset("imagefolder", "train", str(tmp_path))
    assert ds.classes == ["ant", "bee", "zebra"] and len(ds) == 9
    image, label = ds.load(ds.labels.tolist().index(2))
    assert label == 2 and image[0, 0, 0] == 0  # zebra was written with value 0
    assert len(get_dataset("imagefolder", "val", str(tmp_path))) == 3
    with pytest.raises(DatasetNotFoundError, match="ImageFolder"):
        get_dataset("imagefolder", "test", str(tmp_path))


# ------------------------------------------------------------------------------------- crops


def _segmentation_folder(root: Path) -> None:
    """A ``folder`` segmentation dataset: classes a=1, b=2, c=3 in index masks, 255 = void."""
    (root).mkdir(parents=True, exist_ok=True)
    spec = {"classes": [{"name": n, "index": i} for n, i in (("a", 1), ("b", 2), ("c", 3))], "ignore_index": 255}
    (root / "classes.json").write_text(json.dumps(spec))
    masks = []
    m = np.zeros((40, 60), dtype=np.uint8)  # raw 0 is not a class: void
    m[2:12, 2:12] = 1  # a: 100 px
    m[20:30, 40:50] = 1  # a: 100 px, a separate region
    m[25:34, 5:14] = 2  # b: 81 px
    m[0:5, 30:35] = 2  # b: 25 px < min_area -> skipped
    m[14:22, 20:28] = 3  # c: two 8x8 squares touching at a corner: one 8-connected region of 128 px
    m[22:30, 28:36] = 3
    m[35:40, 50:60] = 255  # void
    masks.append(m)
    m2 = np.zeros((40, 60), dtype=np.uint8)
    m2[:, :] = 2  # one region covering the whole image
    masks.append(m2)
    for split in ("train", "val"):
        for i, mask in enumerate(masks):
            image = np.random.default_rng(i).integers(0, 255, (40, 60, 3), dtype=np.uint8)
            image[..., 0] = mask * 50  # red channel encodes the class, so crops can be checked
            (root / split / "images").mkdir(parents=True, exist_ok=True)
            (root / split / "masks").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / split / "images" / f"im{i}.png")
            Image.fromarray(mask).save(root / split / "masks" / f"im{i}.png")


def test_crops_one_item_per_connected_region(tmp_path: Path) -> None:
    _segmentation_folder(tmp_path)
    ds = get_dataset("crops:folder", "train", str(tmp_path), min_area=64)
    assert ds.task.name == "classification" and ds.classes == ["a", "b", "c"] and len(ds.palette) == 3
    # image 0: a, a, b (the 25 px b region is too small), c (diagonal squares joined); image 1: one b region
    assert len(ds) == 5
    assert sorted(ds.labels[:4].tolist()) == [0, 0, 1, 2] and ds.labels[4] == 1
    assert ds.item_id(0).startswith("im0:") and len({ds.item_id(i) for i in range(len(ds))}) == 5
    for i in range(len(ds)):
        crop, label = ds.load(i)
        assert crop.ndim == 3 and crop.dtype == np.uint8
        h, w = crop.shape[:2]
        centre = crop[h // 2, w // 2, 0]
        assert centre == (label + 1) * 50  # the red channel encodes the class
    # a 10x10 region with context 1.5 -> a 15x15 square, inside the image
    first_a = int(np.flatnonzero(ds.labels == 0)[0])
    assert ds.load(first_a)[0].shape[:2] == (15, 15)
    # the whole-image region: the square is clipped to the image
    assert ds.load(4)[0].shape[:2] == (40, 60)
    assert ds.ignore_index not in range(3)


def test_crops_options_min_area_cap_and_source_options(tmp_path: Path) -> None:
    _segmentation_folder(tmp_path)
    small = get_dataset("crops:folder", "train", str(tmp_path), min_area=20)
    assert len(small) == 6  # now the 25 px region counts
    none = get_dataset("crops:folder", "train", str(tmp_path), min_area=200)
    assert none.labels.tolist() == [1]  # only the whole-image region
    capped = get_dataset("crops:folder", "train", str(tmp_path), min_area=20, max_per_class=1)
    assert np.bincount(capped.labels).tolist() == [1, 1, 1]
    wide = get_dataset("crops:folder", "train", str(tmp_path), context=3.0)
    assert wide.load(int(np.flatnonzero(wide.labels == 0)[0]))[0].shape[:2] == (30, 30)

    options = set(dataset_options("crops:synthstreets"))
    assert {"min_area", "context", "max_aspect", "max_per_class", "num_images", "size"} <= options
    synth = get_dataset("crops:synthstreets", "val", num_images=3, size=(60, 80))
    assert len(synth) > 0 and synth.classes[3] == "Road"
    assert all(max(synth.load(i)[0].shape[:2]) <= 80 for i in range(len(synth)))
    with pytest.raises(TypeError, match="valid options"):
        get_dataset("crops:synthstreets", "val", num_imgs=3)
    with pytest.raises(ValueError, match="segmentation"):
        get_dataset("crops:filename_labels", "train", str(tmp_path))


def test_crop_box_is_square_centred_and_inside() -> None:
    assert crop_box(10, 20, 10, 14, 100, 100, 1.5, 1.0) == (7, 22, 4, 19)  # a square of side 15 around the centre
    assert crop_box(10, 20, 10, 14, 100, 100, 1.5, 2.0) == (7, 22, 8, 16)  # 15 x 8: the width grows to half the height
    assert crop_box(10, 20, 10, 40, 100, 100, 1.0, 4.0) == (10, 20, 10, 40)  # within the aspect limit: unchanged
    assert crop_box(0, 4, 0, 4, 100, 100, 2.0) == (0, 8, 0, 8)  # pushed inside at the corner
    assert crop_box(0, 50, 0, 10, 30, 100, 1.0, 1.0) == (0, 30, 0, 50)  # taller than the image: clipped


# -------------------------------------------------------------------------------------- CIFAR


def _fake_cifar(root: Path, n: int = 4) -> None:
    """CIFAR-10's python batches in their real format (the test writes them; torchvision reads them)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    for b, name in enumerate(names):
        data = rng.integers(0, 255, (n, 3 * 32 * 32), dtype=np.uint8)
        data[:, 0] = b  # red value of pixel (0, 0) = batch number
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": [(b + i) % 10 for i in range(n)]}, f)
    with open(folder / "batches.meta", "wb") as f:
        names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        pickle.dump({"label_names": names}, f)


def test_cifar10_reads_torchvisions_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        get_dataset("cifar10", "train", str(tmp_path))
    _fake_cifar(tmp_path)
    # Only torchvision's MD5 check is replaced (the stand-in files cannot match the real checksums);
    # the batches themselves go through torchvision's own reader.
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda path, md5=None: os.path.isfile(path))
    train = get_dataset("cifar10", "train", str(tmp_path))
    test = get_dataset("cifar10", "val", str(tmp_path))
    assert len(train) == 20 and len(test) == 4 and train.classes[1] == "automobile"
    image, label = train.load(5)  # batch 2, item 1
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and image[0, 0, 0] == 1 and label == 2
    assert test.load(0)[0][0, 0, 0] == 5 and test.task.name == "classification"
    x, y = get_dataset("cifar10", "test", str(tmp_path))[3]
    assert tuple(x.shape) == (3, 32, 32) and y == (5 + 3) % 10
