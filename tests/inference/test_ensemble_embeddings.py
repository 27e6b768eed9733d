"""Ensembles, evaluation and feature maps on tiny runs trained here (small_cnn on crops:synthstreets, U-Net)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import core.inference.embeddings as embeddings
from core.inference import Predictor, evaluate_predictor
from core.inference.embeddings import available_methods, cached_embedding, compute_embedding, place_image
from core.inference.ensemble import Ensemble, EnsembleError
from core.runs import load_run
from core.train import train
from core.train.config import TrainConfig

DATA = {"num_images": 96, "size": [90, 120]}  # about 1,200 region crops per split


@pytest.fixture(scope="module")
def cls_runs(tmp_path_factory) -> list[Path]:
    """Two 3-epoch small_cnn runs on crops:synthstreets that differ only in their seed."""
    root = tmp_path_factory.mktemp("cls_runs")
    outs = []
    for seed in (0, 1):
        cfg = TrainConfig(
            arch="small_cnn",
            model_args={"base_width": 8},
            dataset="crops:synthstreets",
            data_options=DATA,
            size=(32, 32),
            epochs=3,
            batch_size=32,
            lr=3e-3,
            seed=seed,
            cache=True,
            out=str(root / f"cnn{seed}"),
            workers=0,
            threads=1,
            progress=False,
        )
        outs.append(train(cfg))
    return outs


def test_classification_run_history(cls_runs: list[Path]) -> None:
    run = load_run(cls_runs[0])
    assert run.task.name == "classification" and run.epochs == [1, 2, 3] and run.classes[3] == "Road"
    for r in run.history:
        assert {"train_loss", "val_loss", "top1", "top5", "mean_acc", "class_acc", "confusion"} <= set(r)
        assert np.array(r["confusion"]).shape == (11, 11) and len(r["class_acc"]) == 11
        assert 0 <= r["top1"] <= r["top5"] <= 1
    assert run.status["state"] == "finished"


def test_ensemble_averages_member_probabilities(cls_runs: list[Path]) -> None:
    a, b = (load_run(p) for p in cls_runs)
    ds = a.open_dataset("val")
    images = [ds.load(i)[0] for i in range(6)]
    pa = Predictor(a, "best", device="cpu").predict(images)
    pb = Predictor(b, 2, device="cpu").predict(images)
    for weights, (wa, wb) in ((None, (0.5, 0.5)), ([3.0, 1.0], (0.75, 0.25))):
        ens = Ensemble([(a, "best"), (b, 2)], weights, device="cpu")
        assert ens.task.name == "classification" and ens.classes == a.classes and ens.ignore_index == a.ignore_index
        assert ens.name.startswith(f"ensemble({a.name}@best") and f"{b.name}@2" in ens.name
        out = ens.predict(images)
        for o, x, y in zip(out, pa, pb):
            np.testing.assert_allclose(o.probs, wa * x.probs + wb * y.probs, atol=1e-6)
            np.testing.assert_allclose(np.exp(o.logits), o.probs, atol=1e-6)
            assert o.features.shape == (x.features.size + y.features.size,)


def test_evaluate_matches_the_engines_top1_and_ensembles_are_sane(cls_runs: list[Path]) -> None:
    a, b = (load_run(p) for p in cls_runs)
    ds = a.open_dataset("val")
    m = evaluate_predictor(Predictor(a, 3, device="cpu"), ds, batch_size=64, progress=False)
    assert {"top1", "top5", "mean_acc", "class_acc", "confusion", "nll", "num_items"} <= set(m)
    assert m["num_items"] == len(ds) == np.array(m["confusion"]).sum()
    # the engine scored the same split at the same size (its cache resized with PIL, here torchvision)
    assert m["top1"] == pytest.approx(a.record(3)["top1"], abs=0.03)
    ens = evaluate_predictor(Ensemble([(a, 3), (b, 3)], device="cpu"), ds, batch_size=64, progress=False)
    assert 1 / 11 < ens["top1"] <= ens["top5"] <= 1 and np.isfinite(ens["nll"])


def test_ensemble_refuses_different_label_sets(cls_runs: list[Path], tiny_seg_run, tmp_path: Path) -> None:
    a = load_run(cls_runs[0])
    with pytest.raises(EnsembleError, match="classification"):
        Ensemble([(a, "best"), (load_run(tiny_seg_run[0]), "best")])
    other = tmp_path / "other"
    shutil.copytree(cls_runs[1], other)
    cfg = json.loads((other / "run.json").read_text())
    cfg["data"]["classes"] = [c.upper() for c in cfg["data"]["classes"]]
    (other / "run.json").write_text(json.dumps(cfg))
    with pytest.raises(EnsembleError, match="label set"):
        Ensemble([(a, "best"), (load_run(other), "best")])
    with pytest.raises(EnsembleError, match="weights"):
        Ensemble([(a, "best")], [1.0, 2.0])


def test_classification_embedding_is_cached_and_places_images(cls_runs: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    run = load_run(cls_runs[0])
    assert {"tsne", "pca"} <= set(available_methods())
    args = dict(epoch=3, split="train", method="tsne", per_class=1000, n_iter=100, early_exaggeration_iter=50, n_jobs=1)
    assert cached_embedding(run, **args) is None
    seen = []
    emb = compute_embedding(run, progress=lambda f, msg: seen.append(f), **args)
    n = len(emb)
    assert n >= 1000 and emb.coords.shape == (n, 2) and emb.coords.dtype == np.float32 and np.isfinite(emb.coords).all()
    assert emb.yx is None and emb.epoch == 3 and emb.split == "train" and emb.method == "tsne"
    assert emb.labels.shape == emb.preds.shape == emb.image_index.shape == (n,)
    ds = run.open_dataset("train")
    assert len(set(emb.image_index.tolist())) == n
    assert all(ds.labels[i] == y for i, y in zip(emb.image_index[:50], emb.labels[:50]))
    assert seen[-1] == 1.0 and seen == sorted(seen)
    files = list((run.path / "embeddings").glob("*.npz"))
    assert len(files) == 1

    def no_reducing(*a, **k):
        raise AssertionError("the cached map must be reloaded, not recomputed")

    monkeypatch.setattr(embeddings, "reduce", no_reducing)
    again = compute_embedding(run, **args)
    np.testing.assert_array_equal(again.coords, emb.coords)
    np.testing.assert_array_equal(cached_embedding(run, **args).image_index, emb.image_index)
    monkeypatch.undo()

    pca = compute_embedding(run, epoch=3, split="train", method="pca", per_class=1000)
    assert pca.coords.shape == (n, 2) and pca.projection is not None
    image, label = ds.load(int(emb.image_index[0]))
    placed = place_image(run, pca, image)
    np.testing.assert_allclose(placed["xy"], pca.coords[0], atol=1e-3)  # PCA places exactly
    assert placed["neighbors"][0] == 0  # the image itself is its nearest map point
    placed = place_image(run, emb, image)
    assert placed["xy"].shape == (2,) and 5 <= len(placed["neighbors"]) <= 10 and placed["neighbors"][0] == 0
    np.testing.assert_allclose(placed["xy"], emb.coords[0], atol=0.02)  # dominated by the exact match (map spans ~50)


def test_segmentation_embedding_samples_pixels_in_original_coordinates(tiny_seg_run) -> None:
    run = load_run(tiny_seg_run[0])
    emb = compute_embedding(run, epoch=2, method="pca", per_class=40, max_items=6)
    n = len(emb)
    assert emb.yx is not None and emb.yx.shape == (n, 2) and np.bincount(emb.labels).max() <= 40
    ds = run.open_dataset(emb.split)
    image, mask = ds.load(int(emb.image_index[0]))
    assert ((emb.yx[:, 0] < mask.shape[0]) & (emb.yx[:, 1] < mask.shape[1])).all()
    for i in range(0, n, max(1, n // 25)):  # every point's label is the mask at its pixel
        _, m = ds.load(int(emb.image_index[i]))
        assert m[emb.yx[i, 0], emb.yx[i, 1]] == emb.labels[i]
    # predictions agree with the Predictor at those pixels
    p = Predictor(run, 2, device="cpu").predict([image])[0]
    rows = np.flatnonzero(emb.image_index == emb.image_index[0])
    assert (p.labels[emb.yx[rows, 0], emb.yx[rows, 1]] == emb.preds[rows]).mean() > 0.95
    placed = place_image(run, emb, image)
    assert placed["xy"].ndim == 2 and placed["xy"].shape[1] == 2 and placed["yx"].shape == placed["xy"].shape
    assert len(placed["neighbors"]) > 0


def test_segmentation_points_map_back_through_a_resize(tiny_seg_run, tmp_path: Path) -> None:
    """A run whose input size differs from the images': points still carry original-image pixels."""
    copy = tmp_path / "resized"
    shutil.copytree(tiny_seg_run[0], copy, ignore=shutil.ignore_patterns("embeddings"))
    cfg = json.loads((copy / "run.json").read_text())
    cfg["data"]["input_size"] = [32, 40]  # the images are 48 x 64
    (copy / "run.json").write_text(json.dumps(cfg))
    run = load_run(copy)
    emb = compute_embedding(run, epoch=2, method="pca", per_class=30, max_items=4)
    ds = run.open_dataset(emb.split)
    predictor = Predictor(run, 2, device="cpu")
    for i in np.unique(emb.image_index):
        image, mask = ds.load(int(i))
        rows = np.flatnonzero(emb.image_index == i)
        y, x = emb.yx[rows, 0], emb.yx[rows, 1]
        assert (mask[y, x] == emb.labels[rows]).all()
        pred = predictor.predict([image])[0].labels  # (48, 64), upsampled from 32 x 40
        assert pred.shape == mask.shape and (pred[y, x] == emb.preds[rows]).mean() > 0.95
    assert emb.yx[:, 0].max() >= 32 or emb.yx[:, 1].max() >= 40  # coordinates beyond the input size occur


def test_segmentation_ensemble_and_evaluation(tiny_seg_run) -> None:
    run = load_run(tiny_seg_run[0])
    ds = run.open_dataset("val")
    images = [ds.load(i)[0] for i in range(3)]
    ens = Ensemble([(run, 1), (run, 2)], [1, 3], device="cpu")
    p1, p2 = (Predictor(run, e, device="cpu").predict(images) for e in (1, 2))
    for o, x, y in zip(ens.predict(images), p1, p2):
        np.testing.assert_allclose(o.probs, 0.25 * x.probs + 0.75 * y.probs, atol=1e-6)
        assert o.labels.shape == images[0].shape[:2]
    single = evaluate_predictor(Predictor(run, 2, device="cpu"), ds, progress=False)
    assert single["miou"] == pytest.approx(run.record(2)["miou"], abs=1e-6)  # same images, same size, same matrix
    both = evaluate_predictor(ens, ds, progress=False)
    assert {"pixel_acc", "mean_acc", "miou", "fwiou", "iou", "class_acc", "confusion"} <= set(both)
    assert 0 < both["pixel_acc"] <= 1 and np.array(both["confusion"]).sum() == np.array(single["confusion"]).sum()


def test_tsne_separates_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 8, (4, 32))
    labels = np.repeat(np.arange(4), 60)
    x = (centres[labels] + rng.normal(0, 1, (240, 32))).astype(np.float32)
    coords = embeddings.tsne(x, n_iter=150, early_exaggeration_iter=50, n_jobs=1)
    assert coords.shape == (240, 2)
    from sklearn.neighbors import KNeighborsClassifier

    assert KNeighborsClassifier(5).fit(coords, labels).score(coords, labels) > 0.95
