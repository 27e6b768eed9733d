"""core.explorer (runs by name, caches, hardest images, confusion cells, uploads), core.evaluation.per_image and
core.runs.history."""

import io
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from core import explorer as A
from core.data import DatasetNotFoundError
from core.evaluation import per_image as M
from core.evaluation.metrics import per_image_scores
from core.explorer import predictions
from core.inference import Predictor
from core.runs import RunError
from core.runs import history as H


@pytest.fixture(scope="module")
def ws(explorer_runs):
    A.clear_caches()
    return A.Workspace.discover(explorer_runs)


def member(ws, name, epoch="best"):
    run = ws.run(name)
    return [(run, A.nearest_epoch(run, epoch))]


def test_lru_bounds_by_count_and_weight():
    c = A.LRU(max_items=2)
    c.put("a", 1), c.put("b", 2), c.get("a"), c.put("c", 3)
    assert "b" not in c and c.get("a") == 1 and c.get("c") == 3  # b was the least recently used
    assert (c.hits, c.misses) == (3, 0)
    w = A.LRU(max_items=10, max_weight=10, weigh=len)
    w.put("x", "aaaaaa"), w.put("y", "bbbbbb")
    assert "x" not in w and "y" in w
    assert w.get_or_create("z", lambda: "c") == "c" and w.get_or_create("z", lambda: "never") == "c"


def test_workspace_names_runs_and_reports_broken_folders(ws):
    assert {"seg-a", "seg-b", "camvid-a"} <= set(ws.names)
    assert any(name == "broken" and "not valid JSON" in why for name, why in ws.problems)
    for bad in ("nope", "../seg-a", str(ws.runs_dir / "seg-a"), None):
        with pytest.raises(RunError, match="unknown run"):
            ws.run(bad)
    assert set(ws.peers("seg-a")) == {"seg-a", "seg-b", "camvid-a"}  # same task and classes
    assert "cls-a" not in ws.peers("seg-a")
    assert set(ws.runs_for_source(ws.dataset("seg-a").source)) == set(ws.peers("seg-a"))


def test_nearest_epoch_snaps_to_saved_snapshots(ws):
    run = ws.run("seg-b")
    assert run.epochs == [1, 3]
    assert A.nearest_epoch(run, 2) == 1 and A.nearest_epoch(run, 2.6) == 3 and A.nearest_epoch(run, 99) == 3
    assert A.nearest_epoch(run, "last") == 3 and A.nearest_epoch(run, "best") == run.best_epoch


def test_unavailable_dataset_says_which_data_root_to_pass(ws):
    with pytest.raises(DatasetNotFoundError, match="--data-root"):
        ws.dataset("camvid-a").open()


def test_predictions_match_the_predictor_and_are_cached(ws, monkeypatch):
    ref = ws.dataset("seg-a")
    ((run, epoch),) = member(ws, "seg-a")
    image, target = ref.load(2)
    direct = Predictor(run, epoch).predict([image])[0].labels
    calls = []
    real = Predictor.predict
    monkeypatch.setattr(Predictor, "predict", lambda self, images, **kw: calls.append(len(images)) or real(self, images, **kw))
    # label maps an earlier test's evaluation stored for these session-wide runs would be read instead of
    # predicted (tests/evaluation/test_evaluate.py covers that road): this test is about the memory cache
    monkeypatch.setattr(predictions, "_stored", lambda members, ref: None)
    A.PREDICTIONS.clear()
    first = A.predict_items([(run, epoch)], ref, [1, 2, 3])
    np.testing.assert_array_equal(first[1], direct)
    assert sum(calls) == 3
    again = A.predict_items([(run, epoch)], ref, [3, 2])
    assert sum(calls) == 3, "cached predictions must not run the model again"
    np.testing.assert_array_equal(again[1], first[1])
    A.predict_items([(run, epoch)], ref, [2, 4])
    assert sum(calls) == 4  # only the missing item


def test_image_scores_are_core_metrics(ws):
    ref = ws.dataset("seg-a")
    pred = A.predict_items(member(ws, "seg-a"), ref, [0])[0]
    _, target = ref.load(0)
    s = M.image_scores(pred, target, 11, 11)
    ref_s = per_image_scores(torch.from_numpy(pred.astype(np.int64))[None], torch.from_numpy(target)[None], 11, 11)
    assert s["pixel_acc"] == pytest.approx(float(ref_s["pixel_acc"][0]))
    assert s["miou"] == pytest.approx(float(ref_s["miou"][0]))
    keep = target != 11
    assert s["pixel_acc"] == pytest.approx((pred[keep] == target[keep]).mean())


def test_hardest_images_average_per_image_miou_over_models(ws):
    ref = ws.dataset("seg-a")
    models = [member(ws, "seg-a"), member(ws, "seg-b")]
    ranking = A.hardest_images([A.split_stats(ws, m[0], ref) for m in models])
    assert sorted(i for i, _ in ranking) == list(range(ref.size()))
    scores = [s for _, s in ranking]
    assert scores == sorted(scores)
    i, s = ranking[0]
    _, target = ref.load(i)
    expected = np.mean([M.image_scores(A.predict_items(m, ref, [i])[0], target, 11, 11)["miou"] for m in models])
    assert s == pytest.approx(expected)


def test_confusion_cell_pixels_and_images_with_most_cell_pixels(ws):
    ref = ws.dataset("seg-a")
    m = member(ws, "seg-a")
    stats = A.split_stats(ws, m[0], ref)
    assert A.split_stats(ws, m[0], ref).images is stats.images  # read once from the evaluation result
    n = ref.size()
    # the cell with most errors over the split
    total = np.asarray(ws.run("seg-a").record(m[0][1])["confusion"])
    off = total - np.diag(np.diag(total))
    a, b = np.unravel_index(off.argmax(), off.shape)
    counts = []
    for i in range(n):
        _, target = ref.load(i)
        pred = A.predict_items(m, ref, [i])[0]
        mask = M.cell_mask(target, pred, a, b)
        np.testing.assert_array_equal(mask, (target == a) & (pred == b))
        counts.append(int(mask.sum()))
    top = A.top_images_for_cell(stats, a, b, limit=5)
    assert [c for _, c in top] == sorted(counts, reverse=True)[: len(top)]
    assert all(counts[i] == c for i, c in top)


def test_disagreement_categories_partition_labelled_pixels():
    target = np.array([[0, 1, 2, 3, 9]])
    a = np.array([[0, 1, 0, 0, 0]])
    b = np.array([[0, 0, 2, 0, 0]])
    cats, counts = M.disagreement(target, a, b, num_classes=4, ignore_index=9)
    np.testing.assert_array_equal(cats, [[0, 1, 2, 3, 255]])
    assert counts == [1, 1, 1, 1]


def test_class_presence_and_error_pairs():
    target = np.array([[0, 0, 1, 9]])
    pred = np.array([[0, 2, 2, 1]])
    p = M.class_presence(pred, target, 3, 9)
    assert (p.truth, p.predicted, p.missing, p.extra) == ([0, 1], [0, 2], [1], [2])
    assert M.class_presence(pred, None, 3, 9).predicted == [0, 1, 2]
    assert M.error_pairs(pred, target, 3, 9) == [(0, 2, 1), (1, 2, 1)]


def test_summary_rows_and_series_come_from_history(ws):
    rows = {r["run"]: r for r in H.summary_rows(ws.runs)}
    run = ws.run("seg-a")
    best = run.record(run.best_epoch)
    row = rows["seg-a"]
    assert row["mIoU"] == pytest.approx(best["miou"]) and row["val loss"] == pytest.approx(best["val_loss"])
    assert row["parameters"] == run.config["model"]["num_params"] and row["best epoch"] == run.best_epoch
    assert row["top-1"] is None
    epochs, values = H.class_scores_by_epoch(run)
    assert epochs == [1, 2] and values.shape == (11, 2)
    np.testing.assert_allclose(np.nan_to_num(values[:, 1], nan=-1), [-1 if v is None else v for v in run.record(2)["iou"]])
    cm = H.confusion_at(run, 2)
    norm = H.row_normalize(cm)
    rows_with_pixels = cm.sum(1) > 0
    np.testing.assert_allclose(norm[rows_with_pixels].sum(1), 1.0)
    assert np.isnan(norm[~rows_with_pixels]).all()
    if "cls-a" in ws.runs:
        assert rows["cls-a"]["top-1"] == pytest.approx(ws.run("cls-a").record(ws.run("cls-a").best_epoch)["top1"])


def _jpeg_with_orientation(orientation: int) -> bytes:
    im = Image.new("RGB", (40, 20), (200, 30, 30))
    im.paste((30, 30, 200), (0, 0, 10, 20))  # a blue band on the left
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def test_read_image_applies_exif_converts_downscales_and_refuses_garbage(tmp_path):
    rotated = A.read_image(_jpeg_with_orientation(6))  # 90 degrees clockwise: 40x20 becomes 20x40
    assert rotated.shape == (40, 20, 3) and rotated.dtype == np.uint8
    assert rotated[:10, :, 2].mean() > 150  # the left band is now at the top
    rgba = io.BytesIO()
    Image.new("RGBA", (3000, 1500), (1, 2, 3, 0)).save(rgba, "PNG")
    big = A.read_image(rgba.getvalue())
    assert big.shape == (512, 1024, 3)
    grey = io.BytesIO()
    Image.new("L", (5, 4), 7).save(grey, "PNG")
    assert A.read_image(grey.getvalue()).shape == (4, 5, 3)
    with pytest.raises(ValueError, match="not an image"):
        A.read_image(b"definitely not an image")
    path = tmp_path / "cut.png"
    path.write_bytes(rgba.getvalue()[:200])
    with pytest.raises(ValueError, match="damaged or truncated"):
        A.read_image(path)
    with pytest.raises(ValueError, match="cannot read"):
        A.read_image(tmp_path / "missing.jpg")


def test_predict_image_is_cached_by_content(ws, monkeypatch):
    calls = []
    real = Predictor.predict
    monkeypatch.setattr(Predictor, "predict", lambda self, images, **kw: calls.append(1) or real(self, images, **kw))
    image = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    A.UPLOADS.clear()
    p1 = A.predict_image(member(ws, "seg-a"), image)
    p2 = A.predict_image(member(ws, "seg-a"), image.copy())
    assert len(calls) == 1 and p1 is p2 and p1.labels.shape == (30, 40)


def test_thumbnails_are_written_once(ws, tmp_path):
    ref = ws.dataset("seg-a")
    paths = A.thumbnails(ref, [0, 1], tmp_path)
    assert len(paths) == 2 and all(os.path.exists(p) for p in paths)
    before = [os.stat(p).st_mtime_ns for p in paths]
    assert A.thumbnails(ref, [0, 1], tmp_path) == paths
    assert [os.stat(p).st_mtime_ns for p in paths] == before
    assert Image.open(paths[0]).size == (64, 48)


def test_classification_split_stats(ws):
    if "cls-a" not in ws.runs:
        pytest.skip("no classification model registered")
    ref = ws.dataset("cls-a")
    stats = A.split_stats(ws, member(ws, "cls-a")[0], ref)
    n = ref.size()
    assert stats.accuracy.shape == (n,) and set(np.unique(stats.accuracy)) <= {0.0, 1.0}
    assert sum(int(stats.images.cell(a, b, 11).sum()) for a in range(11) for b in range(11)) == n
    preds = A.predict_items(member(ws, "cls-a"), ref, list(range(n)))
    labels = [ref.load(i)[1] for i in range(n)]
    assert np.mean([int(np.argmax(p.probs)) == y for p, y in zip(preds, labels)]) == pytest.approx(stats.accuracy.mean())
    assert all(0 <= s <= 1 for s in stats.score if not math.isnan(s))


def test_ensemble_predictions_are_cached_like_a_run(ws):
    from core.inference.ensemble import Ensemble

    ref = ws.dataset("seg-a")
    members = member(ws, "seg-a") + member(ws, "seg-b")
    got = A.predict_items(members, ref, [0, 1])
    direct = Ensemble(members).predict([ref.load(0)[0], ref.load(1)[0]])
    for g, d in zip(got, direct):
        np.testing.assert_array_equal(g, d.labels)
    assert A.predict_items(members, ref, [1])[0] is got[1]


def test_scored_epoch_skips_epochs_without_validation(tmp_path):
    """Runs trained with --val-every have epochs without scores; charts use the evaluated ones."""
    import json as _json

    from core.runs import load_run
    from core.runs.history import class_scores_by_epoch, evaluated_epochs, scored_epoch

    run_dir = tmp_path / "r"
    (run_dir / "weights").mkdir(parents=True)
    cfg = {
        "format": 1,
        "task": "segmentation",
        "model": {"name": "unet", "args": {}},
        "data": {"name": "custom", "classes": ["a", "b"], "palette": [[0, 0, 0], [1, 1, 1]], "ignore_index": 255},
    }
    (run_dir / "run.json").write_text(_json.dumps(cfg))
    history = [
        {"epoch": 1, "train_loss": 1.0},
        {"epoch": 2, "train_loss": 0.9, "val_loss": 0.8, "miou": 0.4, "iou": [0.5, 0.3]},
        {"epoch": 3, "train_loss": 0.8},
        {"epoch": 4, "train_loss": 0.7, "val_loss": 0.7, "miou": 0.3, "iou": [0.4, 0.2]},
    ]
    (run_dir / "history.jsonl").write_text("".join(_json.dumps(r) + "\n" for r in history))
    run = load_run(run_dir)
    assert evaluated_epochs(run) == [2, 4]
    assert (
        scored_epoch(run, "last") == 4 and scored_epoch(run, 1) == 2 and scored_epoch(run, 3) == 2 and scored_epoch(run, 3.6) == 4
    )
    epochs, values = class_scores_by_epoch(run)
    assert epochs == [2, 4] and values.shape == (2, 2) and values[0, 1] == 0.4


# --- logic that moved out of app/ (hand-computed cases) -------------------------------------------------------
def test_worst_cell_and_wrong_pixels():
    cm = np.array([[9, 1, 0], [5, 9, 2], [0, 7, 1]])
    assert M.worst_cell(cm) == (2, 1)  # 7 is the largest off-diagonal count
    assert M.worst_cell(np.array([[4]])) == (0, 0)
    target = np.array([[0, 1, 11], [2, 2, 1]])
    pred = np.array([[0, 2, 5], [2, 1, 1]])
    assert M.wrong_pixels(pred, target, 3, 11) == 2  # (0,1) and (1,1); the void pixel is not counted


def test_spread_epochs_keeps_first_and_last():
    assert H.spread_epochs([1, 2, 3], 12) == [1, 2, 3]
    assert H.spread_epochs(list(range(1, 21)), 5) == [1, 6, 11, 15, 20]  # linspace(0, 19, 5) rounded: 0, 4.75, 9.5, 14.25, 19
    assert len(H.spread_epochs(list(range(100)), 12)) == 12


def test_align_class_scores_across_label_sets():
    classes, series = H.align_class_scores([("a", ["x", "y"], [0.1, 0.2]), ("b", ["y", "z"], [0.3, 0.4])])
    assert classes == ["x", "y", "z"]
    assert series == [("a", [0.1, 0.2, None]), ("b", [None, 0.3, 0.4])]


def test_early_stop_epoch_only_for_early_stopped_runs(ws):
    run = ws.run("seg-a")
    assert H.early_stop_epoch(run) is None
    stopped = type(run)(
        path=run.path, config={**run.config, "status": {"state": "early_stopped", "stopped_epoch": 7}}, history=run.history
    )
    assert H.early_stop_epoch(stopped) == 7


def test_row_normalize_is_recall_per_true_class():
    out = H.row_normalize(np.array([[3, 1], [0, 0]]))
    assert out[0].tolist() == [0.75, 0.25] and np.isnan(out[1]).all()


def test_map_steps_previews_with_pca_only_when_the_map_is_not_cached(ws):
    run = ws.run("cls-a") if "cls-a" in ws.runs else ws.run("seg-a")
    e = A.nearest_epoch(run, "best")
    steps = list(A.map_steps(run, e, "val", "tsne"))
    assert [(emb.method, preview) for emb, preview in steps] == [("pca", True), ("tsne", False)]
    again = list(A.map_steps(run, e, "val", "tsne"))
    assert [(emb.method, preview) for emb, preview in again] == [("tsne", False)]  # cached now: no preview
    assert list(A.map_steps(run, e, "val", "pca"))[0][1] is False
