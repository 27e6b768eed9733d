"""ADE20K SceneParsing on a three-image ADEChallengeData2016 tree: 0 -> ignored, k -> k - 1, splits."""

from pathlib import Path

import numpy as np
import pytest

from core.data import DatasetNotFoundError, get_dataset, list_datasets
from core.data.download import main
from tests.data.test_datasets import save

# Stored labels: 0 is "other", 1..150 the classes; 151 is past the release's labels.
STORED = np.array([[0, 1, 2, 13], [150, 149, 0, 151]], dtype=np.uint8)
EXPECTED = np.array([[255, 0, 1, 12], [149, 148, 255, 255]])


def ade_tree(root: Path) -> Path:
    """Two training images and one validation image under root/ADEChallengeData2016/."""
    release = root / "ADEChallengeData2016"
    for folder, stem, shift in [
        ("training", "ADE_train_00000001", 0),
        ("training", "ADE_train_00000002", 1),
        ("validation", "ADE_val_00000001", 2),
    ]:
        save(release / "images" / folder / f"{stem}.jpg", np.full((2, 4, 3), 40 * shift, np.uint8))
        save(release / "annotations" / folder / f"{stem}.png", np.roll(STORED, shift, axis=1))
    return release


def test_zero_is_ignored_and_classes_shift_down(tmp_path):
    ade_tree(tmp_path)
    assert "ade20k" in list_datasets()
    train = get_dataset("ade20k", "train", root=str(tmp_path))
    assert [train.item_id(i) for i in range(len(train))] == ["ADE_train_00000001", "ADE_train_00000002"]
    assert train.num_classes == 150 and len(set(train.classes)) == 150 and len(train.palette) == 150
    assert train.classes[:3] == ["wall", "building", "sky"] and train.classes[12] == "person" and train.classes[-1] == "flag"
    assert train.palette[0] == (120, 120, 120) and train.ignore_index == 255
    for i in range(2):
        np.testing.assert_array_equal(train[i][1].numpy(), np.roll(EXPECTED, i, axis=1))
    val = get_dataset("ade20k", "val", root=str(tmp_path))
    assert len(val) == 1 and val.item_id(0) == "ADE_val_00000001"
    np.testing.assert_array_equal(val[0][1].numpy(), np.roll(EXPECTED, 2, axis=1))
    assert val[0][0].shape == (3, 2, 4)


def test_the_root_may_be_the_release_folder_itself(tmp_path, monkeypatch):
    release = ade_tree(tmp_path)
    assert len(get_dataset("ade20k", "train", root=str(release))) == 2
    monkeypatch.setenv("ADE20K_ROOT", str(tmp_path))
    assert len(get_dataset("ade20k", "val")) == 1


def test_a_wrong_tree_names_the_missing_folder(tmp_path, capsys):
    with pytest.raises(ValueError, match="valid splits: train, val"):
        get_dataset("ade20k", "test", root=str(tmp_path))
    release = ade_tree(tmp_path)
    (release / "annotations" / "validation" / "ADE_val_00000001.png").unlink()
    (release / "annotations" / "validation").rmdir()
    with pytest.raises(DatasetNotFoundError, match=r"ADEChallengeData2016/annotations/validation/ is missing under .*\n.*layout"):
        get_dataset("ade20k", "val", root=str(tmp_path))
    assert main(["ade20k", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "val    ADEChallengeData2016/annotations/validation/ is missing" in err and "ADEChallengeData2016.zip" in err
    assert main(["ade20k", str(ade_tree(tmp_path / "good"))]) == 0
    assert "train  2 images (the official release has 20210)" in capsys.readouterr().out
