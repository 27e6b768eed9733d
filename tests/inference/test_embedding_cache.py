"""The embedding maps' disk cache is keyed by content: a run folder copied elsewhere, with its dataset at another
root and new file times, finds its map; different weights or a different split do not."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import core.inference.embeddings as embeddings
from core.data.camvid import CLASSES, PALETTE
from core.inference.embeddings import cached_embedding, compute_embedding
from core.models import get_model
from core.runs import load_run
from core.train.writer import RunWriter
from tests.data.test_datasets import camvid_layout

ARGS = dict(epoch="best", split="val", method="pca", per_class=20)


def tiny_run(root: Path, data: Path) -> Path:
    torch.manual_seed(0)
    model = get_model("unet", num_classes=11, base_width=4, depth=2)
    info = dict(classes=CLASSES, palette=PALETTE, ignore_index=11, dataset="camvid", data_root=str(data))
    with RunWriter(root / "a", model=model, **info) as w:
        w.log_epoch(1, train_loss=1.0)
    return root / "a"


def no_reducing(*args, **kwargs):
    raise AssertionError("the cached map must be read, not recomputed")


def test_a_copied_run_finds_its_map_at_another_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    camvid_layout(tmp_path / "data-here", n=4, h=24, w=32)
    here = tiny_run(tmp_path / "runs-here", tmp_path / "data-here")
    emb = compute_embedding(load_run(here), **ARGS)
    shutil.copytree(here, tmp_path / "home")
    shutil.copytree(tmp_path / "data-here", tmp_path / "data-home")
    shutil.rmtree(here)
    shutil.rmtree(tmp_path / "data-here")
    home = load_run(tmp_path / "home")
    weights = home.weights_path(home.best_epoch)
    os.utime(weights, (1e9, 1e9))  # another file time, as a copy or a checkout gives

    monkeypatch.setattr(embeddings, "reduce", no_reducing)
    found = cached_embedding(home, data_root=str(tmp_path / "data-home"), **ARGS)
    assert found is not None and found.key == emb.key
    np.testing.assert_array_equal(found.coords, emb.coords)
    np.testing.assert_array_equal(found.image_index, emb.image_index)

    tensors = load_file(weights)  # other weights: another map
    first = next(iter(tensors))
    tensors[first] = tensors[first] + 1
    save_file(tensors, weights)
    assert cached_embedding(home, data_root=str(tmp_path / "data-home"), **ARGS) is None


def test_a_changed_split_is_another_map(tmp_path: Path) -> None:
    camvid_layout(tmp_path / "data", n=4, h=24, w=32)
    run = load_run(tiny_run(tmp_path / "runs", tmp_path / "data"))
    first = compute_embedding(run, **ARGS)
    assert cached_embedding(run, **ARGS).key == first.key
    [image] = sorted((tmp_path / "data" / "val").glob("*.png"))[-1:]
    image.unlink()  # one image fewer: the split's fingerprint changes
    labels = sorted((tmp_path / "data" / "valannot").glob("*.png"))[-1]
    labels.unlink()
    assert cached_embedding(run, **ARGS) is None
