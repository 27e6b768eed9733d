"""A runs folder for the explorer app's tests: tiny runs trained in seconds, plus deliberately broken ones.

``make_explorer_runs(root, tiny_seg_run_dir)`` fills ``root`` with:

* ``seg-a``: the session's ``tiny_seg_run`` (U-Net, 2 epochs) copied;
* ``seg-b``: a second tiny segmentation run (unet_simple, 3 epochs, snapshots of epochs 1 and 3 only);
* ``cls-a``: a tiny classifier (small_cnn) on crops:synthstreets, when a classification model is registered;
* ``camvid-a``: ``seg-a``'s weights recorded as a CamVid run whose data root does not exist (images unavailable);
* ``broken``: a run.json that is not JSON (reported as skipped, never fatal).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from core.train import train
from core.train.config import TrainConfig

SEG_DATA = {"num_images": 16, "size": [48, 64]}


def _train(out: Path, **kw) -> None:
    base = dict(workers=0, threads=1, progress=False, batch_size=8, lr=3e-3, out=str(out))
    train(TrainConfig(**{**base, **kw}))


def has_classifier() -> bool:
    from core.models import list_models

    return "small_cnn" in list_models(task="classification")


def make_explorer_runs(root: Path, tiny_seg_run_dir: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(tiny_seg_run_dir, root / "seg-a")
    _train(
        root / "seg-b",
        arch="unet_simple",
        model_args={"base_width": 4},
        dataset="synthstreets",
        data_options=SEG_DATA,
        size=(48, 64),
        epochs=3,
        snapshot_epochs="1,3",
        seed=1,
    )
    if has_classifier():
        _train(
            root / "cls-a",
            arch="small_cnn",
            model_args={"base_width": 4},
            dataset="crops:synthstreets",
            data_options={"num_images": 6, "size": [48, 64], "max_per_class": 8},
            size=(32, 32),
            epochs=2,
            batch_size=16,
        )
    camvid = root / "camvid-a"
    shutil.copytree(tiny_seg_run_dir, camvid)
    cfg = json.loads((camvid / "run.json").read_text())
    cfg["data"].update(name="camvid", root=str(root / "no-such-camvid"), options={})
    (camvid / "run.json").write_text(json.dumps(cfg))
    (root / "broken").mkdir()
    (root / "broken" / "run.json").write_text("{ not json")
    return root
