"""Shared fixtures. Tests use tiny data they make themselves and never download anything."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# One intra-op thread: on a shared 2-core machine, two spinning OpenMP threads per process
# slow everything down many times over when another process holds a core.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED_CAMVID = ROOT.parent / "shared" / "data" / "camvid"


def subprocess_env() -> dict[str, str]:
    """Environment for ``python -m core.train`` subprocesses: the repo importable, one thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.fixture(scope="session")
def tiny_seg_run(tmp_path_factory):
    """A 2-epoch U-Net run on a tiny synthstreets split, with the in-memory model's outputs per epoch."""
    from core.train import train
    from core.train.config import TrainConfig

    out = tmp_path_factory.mktemp("runs") / "unet-tiny"
    probe = torch.Generator().manual_seed(123)
    x = torch.randn(2, 3, 48, 64, generator=probe)
    outputs: dict[int, torch.Tensor] = {}

    def record(epoch: int, model: torch.nn.Module) -> None:
        model.eval()
        with torch.inference_mode():
            outputs[epoch] = model(x)["out"].clone()

    cfg = TrainConfig(
        arch="unet",
        model_args={"base_width": 4, "depth": 3},
        dataset="synthstreets",
        data_options={"num_images": 16, "size": [48, 64]},
        size=(48, 64),
        epochs=2,
        batch_size=4,
        lr=3e-3,
        out=str(out),
        workers=0,
        threads=1,
        progress=False,
        class_weighting="median",
    )
    train(cfg, on_epoch_end=record)
    return out, x, outputs


@pytest.fixture(scope="session")
def explorer_runs(tiny_seg_run, tmp_path_factory):
    """A runs folder for the explorer app (see tests/explorer_runs.py): two segmentation runs, a classifier
    (when one is registered), a run whose dataset is unavailable and a broken folder."""
    from tests.explorer_runs import make_explorer_runs

    return make_explorer_runs(tmp_path_factory.mktemp("explorer") / "runs", tiny_seg_run[0])
