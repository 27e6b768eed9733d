"""``python -m core.data.download <name> [ROOT]``: describes a dataset, checks a tree with the dataset's own reader."""

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from core.data import DatasetNotFoundError, get_dataset
from core.data.download import main, sourced_datasets
from tests.data.test_cityscapes import two_cities
from tests.data.test_datasets import save


def test_every_dataset_with_files_of_its_own_says_where_it_comes_from():
    assert {"ade20k", "camvid", "cityscapes", "cvat"} <= set(sourced_datasets())
    assert "synthstreets" not in sourced_datasets() and "folder" not in sourced_datasets()


@pytest.mark.parametrize("name", sorted(sourced_datasets()))
def test_a_wrong_root_names_what_is_missing_the_layout_and_the_env_var(name, tmp_path, monkeypatch):
    source = sourced_datasets()[name]
    monkeypatch.delenv(source.env_var, raising=False)
    with pytest.raises(DatasetNotFoundError) as e:
        get_dataset(name, source.splits[0], root=str(tmp_path / "nowhere"))
    message = str(e.value)
    assert f"is missing under {tmp_path / 'nowhere'}" in message and source.layout in message and f"${source.env_var}" in message
    monkeypatch.setenv(source.env_var, str(tmp_path / "from-env"))
    with pytest.raises(DatasetNotFoundError, match=f"is missing under {tmp_path / 'from-env'}"):
        get_dataset(name, source.splits[0])


def test_without_root_it_says_where_to_get_it(capsys):
    assert main(["cityscapes"]) == 0
    out = capsys.readouterr().out
    assert (
        "https://www.cityscapes-dataset.com/" in out
        and "gtFine_trainvaltest.zip" in out
        and "leftImg8bit_trainvaltest.zip" in out
    )
    assert "leftImg8bit/{train,val,test}/<city>/" in out and "$CITYSCAPES_ROOT" in out


def test_a_good_cityscapes_tree_is_fine(tmp_path, capsys, monkeypatch):
    """Run as ``python -m core.data.download cityscapes ROOT`` (in this process: a new one spends seconds importing torch)."""
    two_cities(tmp_path)
    monkeypatch.setattr(sys, "argv", ["python -m core.data.download", "cityscapes", str(tmp_path)])
    monkeypatch.delitem(sys.modules, "core.data.download")  # run afresh as __main__, as python -m does
    with pytest.raises(SystemExit) as end:
        runpy.run_module("core.data.download", run_name="__main__", alter_sys=True)
    assert end.value.code == 0
    out = capsys.readouterr().out
    assert f"Cityscapes under {tmp_path} is fine" in out and f"--data-root {tmp_path}" in out
    assert "train  3 images (the official release has 2975)" in out and "test   absent (optional)" in out


def test_a_tree_missing_a_folder_names_it(tmp_path, capsys):
    two_cities(tmp_path)
    for p in sorted((tmp_path / "gtFine" / "val").rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    (tmp_path / "gtFine" / "val").rmdir()
    assert main(["cityscapes", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"val    gtFine/val/ is missing under {tmp_path}" in err and "train  3 images" in err
    assert "expected the official Cityscapes layout" in err and "cityscapes-dataset.com" in err


def test_an_incomplete_public_tree_is_checked_not_replaced(tmp_path, capsys):
    """CamVid is downloaded only into a missing or empty folder: an exit code of 1, not 2, means no download was tried."""
    save(tmp_path / "train" / "a.png", np.zeros((2, 2, 3), np.uint8))
    save(tmp_path / "trainannot" / "a.png", np.zeros((2, 2), np.uint8))
    assert main(["camvid", str(tmp_path)]) == 1
    assert f"val/ is missing under {tmp_path}" in capsys.readouterr().err
    assert (tmp_path / "train" / "a.png").exists()


def test_an_unknown_dataset_lists_the_valid_ones(capsys):
    with pytest.raises(SystemExit):
        main(["citiscapes", str(Path("."))])
    assert "cityscapes" in capsys.readouterr().err
