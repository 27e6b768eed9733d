"""Every registered segmentation model trains for an epoch through ``python -m core.train`` and loads back."""

import json

import pytest
import torch

from core.models import list_models
from core.runs import load_run
from core.train import main as train_main
from tests.models.test_segmentation import SMALL


@pytest.mark.parametrize("name", list_models(task="segmentation"))
def test_one_epoch_through_the_cli_and_reload(name, tmp_path):
    cfg = SMALL[name][0]
    out = tmp_path / name
    args = [
        "--arch",
        name,
        "--dataset",
        "synthstreets",
        "--data-opt",
        "num_images=4",
        "--data-opt",
        "size=[40,56]",
        "--size",
        "40",
        "56",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--workers",
        "0",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    for key, value in cfg.items():
        args += ["--model-arg", f"{key}={json.dumps(value)}"]
    assert train_main(args) == 0
    run = load_run(out)
    assert run.arch == name and run.epochs == [1] and len(run.history) == 1
    model = run.build_model("last")
    with torch.inference_mode():
        out_map = model(torch.randn(1, 3, 40, 56))["out"]
    assert out_map.shape == (1, 11, 40, 56) and torch.isfinite(out_map).all()
