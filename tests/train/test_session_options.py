"""Whole tiny runs with the issue-30 training options: progressive resizing (fresh, with loader worker processes,
and resumed mid-schedule) and the rare-class crop, each recorded in run.json."""

from __future__ import annotations

import json

import pytest
import torch

import core.train.session as session
from core.runs import load_run
from core.train import train
from core.train.config import TrainConfig


def tiny(out, **options) -> TrainConfig:
    base = dict(
        arch="unet",
        model_args={"base_width": 4, "depth": 3},
        data_options={"num_images": 8, "size": [48, 64]},
        size=(48, 64),
        batch_size=4,
        out=str(out),
        workers=0,
        threads=1,
        progress=False,
    )
    return TrainConfig(**{**base, **options})


@pytest.fixture
def batch_shapes(monkeypatch) -> dict[int, set]:
    """Epoch -> the (H, W) of the image batches the training loop received."""
    shapes: dict[int, set] = {}
    real = session.train_one_epoch

    def spy(model, loader, *args, desc: str = "", **kwargs):
        epoch = int(desc.split()[1].split("/")[0])  # "epoch 3/3"

        class Recording:
            def __len__(self) -> int:
                return len(loader)

            def __iter__(self):
                for images, targets in loader:
                    assert images.shape[-2:] == targets.shape[-2:]
                    shapes.setdefault(epoch, set()).add(tuple(images.shape[-2:]))
                    yield images, targets

        return real(model, Recording(), *args, desc=desc, **kwargs)

    monkeypatch.setattr(session, "train_one_epoch", spy)
    return shapes


def test_staged_run_trains_small_then_full_and_validates_at_full_size(tmp_path, batch_shapes, capsys) -> None:
    out = tmp_path / "run"
    train(tiny(out, epochs=3, resize_stages="0.5x2,1x1", workers=1))  # a worker process: the loader is made anew
    run = load_run(out)
    assert [r["epoch"] for r in run.history] == [1, 2, 3] and run.status["state"] == "finished"
    assert batch_shapes == {1: {(24, 32)}, 2: {(24, 32)}, 3: {(48, 64)}}  # crops follow the stage
    assert run.config["train"]["resize_stages"] == "0.5x2,1x1" and run.input_size == (48, 64)
    assert all(r["miou"] is not None for r in run.history)
    text = capsys.readouterr().out
    assert "epoch 1: training at 0.5x the size (24x32 images, 24x32 crops)" in text and "epoch 3: training at 1x" in text


def test_resumed_staged_run_follows_its_epoch(tmp_path, batch_shapes, capsys) -> None:
    out = tmp_path / "run"
    cfg = tiny(out, epochs=3, resize_stages="0.5x2,1x1", cache=True, rare_crop=0.5)

    def stop_after_first(epoch: int, model: torch.nn.Module) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, on_epoch_end=stop_after_first)
    assert "rare-class crop (p 0.5) on:" in capsys.readouterr().out
    recorded = json.loads((out / "run.json").read_text())
    recorded["train"]["rare_crop_classes"] = [0]  # what resuming must use, rather than counting again
    (out / "run.json").write_text(json.dumps(recorded))
    batch_shapes.clear()
    train(cfg, resume=out)
    assert batch_shapes == {2: {(24, 32)}, 3: {(48, 64)}}
    run = load_run(out)
    assert [r["epoch"] for r in run.history] == [1, 2, 3]
    assert "rare-class crop (p 0.5) on: Sky\n" in capsys.readouterr().out


def test_rare_crop_run_records_its_classes(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    train(tiny(out, epochs=1, rare_crop=1.0, crop=(24, 32), class_weighting="median"))
    train_cfg = load_run(out).config["train"]
    rare = train_cfg["rare_crop_classes"]
    assert train_cfg["rare_crop"] == 1.0 and train_cfg["rare_classes"] is None  # automatic ...
    assert rare and all(0 <= c < 11 for c in rare) and len(train_cfg["class_weights"]) == 11  # ... and resolved
    assert "rare-class crop (p 1) on:" in capsys.readouterr().out
    plain = tmp_path / "plain"
    train(tiny(plain, epochs=1))
    assert "rare_crop_classes" not in load_run(plain).config["train"]  # default runs record what they always did
