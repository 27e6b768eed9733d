"""Cityscapes on tiny official-layout trees: label IDs -> train IDs, labelTrainIds, PNG and JPEG images, splits."""

from pathlib import Path

import numpy as np
import pytest

from core.data import DatasetNotFoundError, get_dataset, list_datasets
from tests.data.test_datasets import save

# A 4x6 label-ID map holding all 19 evaluated classes and six ignored IDs
# (unlabeled 0, ego vehicle 1, parking 9, caravan 29, trailer 30, and 34, past the official list).
LABEL_IDS = np.array(
    [[7, 8, 11, 12, 13, 17],
     [19, 20, 21, 22, 23, 24],
     [25, 26, 27, 28, 31, 32],
     [33, 0, 1, 9, 29, 34]], dtype=np.uint8,
)  # fmt: skip
TRAIN_IDS = np.array(
    [[0, 1, 2, 3, 4, 5],
     [6, 7, 8, 9, 10, 11],
     [12, 13, 14, 15, 16, 17],
     [18, 255, 255, 255, 255, 255]],
)  # fmt: skip


def write_frame(root: Path, split: str, frame: str, labels: np.ndarray, *, ext: str = ".png", train_ids=None) -> np.ndarray:
    """One frame: its image (named as in the release) and its labelIds map, plus a labelTrainIds map if given."""
    city = frame.split("_")[0]
    image = np.random.default_rng(len(frame)).integers(0, 256, (*labels.shape, 3), dtype=np.uint8)
    save(root / "leftImg8bit" / split / city / f"{frame}_leftImg8bit{ext}", image)
    save(root / "gtFine" / split / city / f"{frame}_gtFine_labelIds.png", labels)
    save(root / "gtFine" / split / city / f"{frame}_gtFine_color.png", np.zeros((*labels.shape, 3), np.uint8))  # not read
    if train_ids is not None:
        save(root / "gtFine" / split / city / f"{frame}_gtFine_labelTrainIds.png", train_ids.astype(np.uint8))
    return image


def two_cities(root: Path, *, train_ids: bool = False, ext: str = ".png") -> None:
    """train: aachen (2 frames) and bochum (1); val: frankfurt (1). Frames differ by a roll of the map."""
    for split, frame, shift in [
        ("train", "aachen_000000_000019", 0),
        ("train", "aachen_000001_000019", 1),
        ("train", "bochum_000000_000313", 2),
        ("val", "frankfurt_000000_000294", 3),
    ]:
        labels = np.roll(LABEL_IDS, shift, axis=1)
        write_frame(root, split, frame, labels, ext=ext, train_ids=np.roll(TRAIN_IDS, shift, axis=1) if train_ids else None)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_label_ids_become_train_ids_in_every_city(tmp_path, ext):
    two_cities(tmp_path, ext=ext)
    assert "cityscapes" in list_datasets()
    ds = get_dataset("cityscapes", "train", root=str(tmp_path))
    assert [ds.item_id(i) for i in range(len(ds))] == ["aachen_000000_000019", "aachen_000001_000019", "bochum_000000_000313"]
    assert ds.num_classes == 19 and ds.classes[0] == "road" and ds.classes[6] == "traffic light" and ds.classes[18] == "bicycle"
    assert ds.palette[0] == (128, 64, 128) and ds.palette[13] == (0, 0, 142) and ds.ignore_index == 255
    for i, shift in enumerate([0, 1, 2]):
        image, mask = ds[i]
        assert image.shape == (3, 4, 6)
        np.testing.assert_array_equal(mask.numpy(), np.roll(TRAIN_IDS, shift, axis=1))
    val = get_dataset("cityscapes", "val", root=str(tmp_path))
    assert len(val) == 1 and val.item_id(0) == "frankfurt_000000_000294" and not val.note
    np.testing.assert_array_equal(val[0][1].numpy(), np.roll(TRAIN_IDS, 3, axis=1))


def test_label_train_ids_are_read_as_they_are_when_present(tmp_path):
    two_cities(tmp_path, train_ids=True)
    # bochum's train-ID map says something the label-ID map does not: the reader must take it as it is
    odd = np.full((4, 6), 255, np.uint8)
    odd[0, 0], odd[3, 5] = 18, 200  # 200 is not a train ID: ignored
    save(tmp_path / "gtFine" / "train" / "bochum" / "bochum_000000_000313_gtFine_labelTrainIds.png", odd)
    ds = get_dataset("cityscapes", "train", root=str(tmp_path))
    np.testing.assert_array_equal(ds[0][1].numpy(), TRAIN_IDS)
    expected = np.full((4, 6), 255)
    expected[0, 0] = 18
    np.testing.assert_array_equal(ds[2][1].numpy(), expected)


def test_png_and_jpeg_frames_pair_by_their_name_prefix(tmp_path):
    write_frame(tmp_path, "val", "lindau_000000_000019", LABEL_IDS, ext=".jpg")
    png = write_frame(tmp_path, "val", "munster_000000_000019", LABEL_IDS)
    # the same frame again as JPEG: read once, from the lossless PNG
    save(tmp_path / "leftImg8bit" / "val" / "munster" / "munster_000000_000019_leftImg8bit.jpg", png // 2)
    # a JPEG named by the bare frame prefix also pairs
    save(tmp_path / "leftImg8bit" / "val" / "lindau" / "lindau_000001_000019.jpeg", png)
    save(tmp_path / "gtFine" / "val" / "lindau" / "lindau_000001_000019_gtFine_labelIds.png", LABEL_IDS)
    ds = get_dataset("cityscapes", "val", root=str(tmp_path))
    assert [ds.item_id(i) for i in range(len(ds))] == ["lindau_000000_000019", "lindau_000001_000019", "munster_000000_000019"]
    image, mask = ds.load(2)
    np.testing.assert_array_equal(image, png)
    for i in range(3):
        np.testing.assert_array_equal(ds[i][1].numpy(), TRAIN_IDS)


def test_test_split_loads_all_ignored_and_says_so(tmp_path):
    two_cities(tmp_path)
    write_frame(tmp_path, "test", "berlin_000000_000019", np.zeros((4, 6), np.uint8))  # the release's test labels: void
    ds = get_dataset("cityscapes", "test", root=str(tmp_path))
    assert len(ds) == 1 and (ds[0][1] == 255).all() and "no labels" in ds.note


def test_images_without_labels_are_left_out_and_counted(tmp_path):
    two_cities(tmp_path)
    save(tmp_path / "leftImg8bit" / "val" / "ulm" / "ulm_000000_000019_leftImg8bit.png", np.zeros((4, 6, 3), np.uint8))
    ds = get_dataset("cityscapes", "val", root=str(tmp_path))
    assert len(ds) == 1 and "1 image(s) under leftImg8bit/val/ have no gtFine label map" in ds.note


def test_coarse_annotations_and_their_splits(tmp_path):
    save(
        tmp_path / "leftImg8bit" / "train_extra" / "erlangen" / "erlangen_000000_000001_leftImg8bit.png",
        np.zeros((4, 6, 3), np.uint8),
    )
    save(tmp_path / "gtCoarse" / "train_extra" / "erlangen" / "erlangen_000000_000001_gtCoarse_labelIds.png", LABEL_IDS)
    ds = get_dataset("cityscapes", "train_extra", root=str(tmp_path), annotations="gtCoarse")
    np.testing.assert_array_equal(ds[0][1].numpy(), TRAIN_IDS)
    with pytest.raises(ValueError, match="valid splits: train, val, test"):
        get_dataset("cityscapes", "train_extra", root=str(tmp_path))
    with pytest.raises(ValueError, match="must be one of gtFine, gtCoarse, got 'fine'"):
        get_dataset("cityscapes", "train", root=str(tmp_path), annotations="fine")


def test_a_split_without_label_maps_says_which_files_it_looked_for(tmp_path, monkeypatch):
    """(A missing folder is named for every dataset in test_download.py.)"""
    two_cities(tmp_path)
    monkeypatch.setenv("CITYSCAPES_ROOT", str(tmp_path))
    assert len(get_dataset("cityscapes", "train")) == 3
    (tmp_path / "gtFine" / "val" / "frankfurt" / "frankfurt_000000_000294_gtFine_labelIds.png").unlink()
    with pytest.raises(DatasetNotFoundError, match="no image under leftImg8bit/val/<city>/ has a gtFine_labelIds.png"):
        get_dataset("cityscapes", "val")
