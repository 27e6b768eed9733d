"""Every run shipped in checkpoints/ loads at every saved epoch and predicts a sample image; each
segmentation run's final epoch is more accurate on the sample than its first epoch (so the shipped
snapshots really show learning). Runs whose dataset is absent use its shipped sample (CamVid: the 24 val
images in assets/), as a fresh clone does."""

from __future__ import annotations

import numpy as np
import pytest

from core.explorer import Workspace
from core.inference import Predictor
from tests.conftest import ROOT

SAMPLE_IMAGES = 4


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
    assert {ws.run(n).task.name for n in camvid} == {"segmentation", "classification"}
    # the across-epochs views show the learning from epoch 1 to the final one: 5 snapshots of the flagship (the
    # best-ranked run), 4 of each 15-minute run and 3 of the superseded resunet-60min (issue 30 made room so)
    ranked = [n for n in ws.ranked(camvid) if ws.run(n).task.name == "segmentation"]
    assert ranked[0] == "camvid/resunet-inorm-60min", ranked  # the flagship (issue 30) is listed first
    for n in ranked:
        run = ws.run(n)
        least = 5 if n == ranked[0] else 4 if run.config["train"].get("budget_min") == 15 else 3
        assert len(run.epochs) >= least, f"{n} ships {run.epochs}: the across-epochs views need {least} or more"
        assert run.epochs[0] == 1 and run.epochs[-1] == run.status["stopped_epoch"], f"{n} ships {run.epochs}"


PER_RUN = {"arch", "model_args", "out", "snapshot_epochs"}  # what may differ between the zoo's 15-minute runs


def test_the_15_minute_zoo_shares_one_recipe_budget_and_precision(ws):
    """The fair comparison the zoo claims: one recipe (size, crops, augmentation, class weights, schedule, EMA),
    one wall-clock budget and one computing precision; only the architecture, its widths and the snapshot epochs
    differ."""
    zoo = {n: ws.run(n) for n in sorted(ws.runs) if n.startswith("camvid/") and ws.run(n).task.name == "segmentation"}
    zoo = {n: r for n, r in zoo.items() if r.config["train"].get("budget_min") == 15}
    assert len({r.arch for r in zoo.values()}) >= 7, sorted(zoo)
    recipes = {n: {k: v for k, v in r.config["train"].items() if k not in PER_RUN} for n, r in zoo.items()}
    first, recipe = next(iter(recipes.items()))
    for n, other in recipes.items():
        assert other == recipe, f"{n} differs from {first}: {sorted(k for k in recipe if recipe[k] != other.get(k))}"
    precisions = {n: r.config.get("runtime", {}).get("precision") for n, r in zoo.items()}
    assert len(set(precisions.values())) == 1 and None not in precisions.values(), precisions


@pytest.mark.parametrize("name", shipped())
def test_every_saved_epoch_loads_and_predicts_and_the_last_beats_the_first(ws, name):
    run = ws.run(name)
    images, targets = sample(ws, name)
    accuracy = {}
    ends = (run.epochs[0], run.epochs[-1])
    for epoch in run.epochs:
        n = len(images) if epoch in ends else 2  # middle epochs: loaded and run on 2 images (time)
        preds = Predictor(run, epoch).predict(images[:n])
        if run.task.name == "segmentation":
            labels = [p.labels for p in preds]
            assert all(lab.shape == t.shape for lab, t in zip(labels, targets[:n]))
            accuracy[epoch] = pixel_accuracy(labels, targets[:n], run.ignore_index)
        else:
            probs = np.stack([p.probs for p in preds])
            assert probs.shape == (n, run.num_classes) and np.allclose(probs.sum(1), 1, atol=1e-4)
    if run.task.name == "segmentation":
        first, last = run.epochs[0], run.epochs[-1]
        assert accuracy[last] > accuracy[first], f"{name}: pixel accuracy per epoch on the sample: {accuracy}"
