"""The training engine on a classification task: the CLI, early stopping on top-1, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from core.runs import load_run
from core.train import main as train_main
from core.train import train
from core.train.config import TrainConfig

TINY = [
    "--arch",
    "small_cnn",
    "--model-arg",
    "base_width=4",
    "--dataset",
    "crops:synthstreets",
    "--data-opt",
    "num_images=12",
    "--data-opt",
    "size=[60,80]",
    "--size",
    "32",
    "32",
    "--batch-size",
    "16",
    "--workers",
    "0",
    "--threads",
    "1",
    "--no-progress",
]


def test_cli_trains_a_classifier_and_stops_early_on_top1(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # lr 0: top-1 never improves after epoch 1, so patience 2 stops at epoch 3 of 6
    assert train_main(TINY + ["--epochs", "6", "--lr", "0", "--patience", "2", "--out", str(out)]) == 0
    run = load_run(out)
    assert run.task.name == "classification" and run.monitor == "top1"
    assert [r["epoch"] for r in run.history] == [1, 2, 3] and run.status["state"] == "early_stopped"
    cfg = json.loads((out / "run.json").read_text())
    assert cfg["model"]["name"] == "small_cnn" and cfg["data"]["name"] == "crops:synthstreets"
    assert cfg["data"]["options"] == {"num_images": 12, "size": [60, 80]} and cfg["data"]["ignore_index"] == -100
    assert cfg["data"]["input_size"] == [32, 32] and len(cfg["data"]["classes"]) == 11
    r = run.history[0]
    assert np.array(r["confusion"]).sum() == len(run.open_dataset("val")) and 0 <= r["top1"] <= r["top5"] <= 1


def test_resume_continues_a_classification_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = TrainConfig(
        arch="small_cnn",
        model_args={"base_width": 4},
        dataset="crops:synthstreets",
        data_options={"num_images": 12, "size": [60, 80]},
        size=(32, 32),
        epochs=1,
        batch_size=16,
        out=str(out),
        workers=0,
        threads=1,
        progress=False,
    )
    train(cfg)
    train(cfg, resume=out)  # finished: a no-op
    assert [r["epoch"] for r in load_run(out).history] == [1]
    train(cfg, resume=out, epochs=2)  # raised: one more epoch
    run = load_run(out)
    assert [r["epoch"] for r in run.history] == [1, 2] and run.epochs == [1, 2]
    assert run.config["train"]["epochs"] == 2 and run.status["state"] == "finished"
    assert run.build_model("last")(torch.zeros(1, 3, 32, 32)).shape == (1, 11)
