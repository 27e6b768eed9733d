"""Every run shipped in checkpoints/ loads at every saved epoch and predicts a sample image; each
segmentation run's final epoch is more accurate on the sample than its first epoch (so the shipped
snapshots really show learning). Runs whose dataset is absent use its shipped sample (CamVid: the 24 val
images in assets/), as a fresh clone does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.explorer import Workspace
from core.inference import Predictor

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_IMAGES = 8


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    """The shipped runs, with every dataset root pointed at an empty folder: the fresh-clone view."""
    return Workspace.discover(ROOT / "checkpoints", str(tmp_path_factory.mktemp("no-data")))


def shipped() -> list[str]:
    return sorted(Workspace.discover(ROOT / "checkpoints").runs)


def sample(ws: Workspace, name: str) -> tuple[list[np.ndarray], list]:
    """The first images of the first split this machine serves for the run (the shipped sample when absent)."""
    ref = ws.dataset(name)
    ref = ref.with_split(ws.splits(ref)[0])
    items = [ref.load(i) for i in range(min(SAMPLE_IMAGES, ref.size()))]
    return [im for im, _ in items], [t for _, t in items]


def pixel_accuracy(labels: list[np.ndarray], targets: list[np.ndarray], ignore: int) -> float:
    right = sum(int(((p == t) & (t != ignore)).sum()) for p, t in zip(labels, targets))
    return right / sum(int((t != ignore).sum()) for t in targets)


def test_the_shipped_runs_include_the_camvid_zoo(ws):
    names = shipped()
    assert not ws.problems, ws.problems
    camvid = [n for n in names if n.startswith("camvid/")]
    for arch in ("fcn_baseline", "fcn32s", "fcn8s", "unet", "resnet_fcn", "pspnet", "lraspp", "resunet"):
        assert any(ws.run(n).arch == arch for n in camvid), f"no {arch} in the CamVid zoo"
    assert {ws.run(n).task for n in camvid} == {"segmentation", "classification"}
    for n in camvid:
        if ws.run(n).task == "segmentation":
            assert len(ws.run(n).epochs) >= 5, f"{n} ships {ws.run(n).epochs}: the across-epochs views need 5 or more"


@pytest.mark.parametrize("name", shipped())
def test_every_saved_epoch_loads_and_predicts_and_the_last_beats_the_first(ws, name):
    run = ws.run(name)
    images, targets = sample(ws, name)
    accuracy = {}
    for epoch in run.epochs:
        preds = Predictor(run, epoch).predict(images)
        if run.task == "segmentation":
            labels = [p.labels for p in preds]
            assert all(lab.shape == t.shape for lab, t in zip(labels, targets))
            accuracy[epoch] = pixel_accuracy(labels, targets, run.ignore_index)
        else:
            probs = np.stack([p.probs for p in preds])
            assert probs.shape == (len(images), run.num_classes) and np.allclose(probs.sum(1), 1, atol=1e-4)
    if run.task == "segmentation":
        first, last = run.epochs[0], run.epochs[-1]
        assert accuracy[last] > accuracy[first], f"{name}: pixel accuracy per epoch on the sample: {accuracy}"
