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

# The suite runs on pytest-xdist (``-n auto``, pyproject.toml): tests are mostly one thread each, so two
# processes on two cores take about half the time. Each module goes to one worker whole, so its module fixtures
# (an app, a browser, a trained run) are built once; the modules that start the app on the shipped runs share
# a worker, as they write the same evaluation and embedding caches in checkpoints/. (A scheduler of our own:
# xdist 3.8's ``xdist_group`` marks no longer reach its scheduler under pytest 9.)
MAX_WORKERS = 4  # enough to fill a laptop; each worker imports torch and Gradio (about 1 GB)
SHIPPED_RUNS_MODULES = {"test_fresh_clone.py", "test_screenshots.py", "test_readme_api.py"}


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: one worker per core this process may use, at most ``MAX_WORKERS``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_WORKERS))


def work_unit(nodeid: str) -> str:
    """The unit a worker takes whole: the test's module, or "shipped-runs" for the modules in ``SHIPPED_RUNS_MODULES``."""
    module = nodeid.split("::", 1)[0]
    return "shipped-runs" if module.rsplit("/", 1)[-1] in SHIPPED_RUNS_MODULES else module


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByModule(config, log)


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
