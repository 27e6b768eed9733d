"""The explorer app end to end: started on a free port with tiny runs, every tab's main endpoint called
through ``gradio_client``, and the returned images, tables and figures checked against core."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import analysis as A
from core import visualize as V
from core.inference import Predictor
from core.metrics import per_image_scores
from tests.app_server import running_app

gradio_client = pytest.importorskip("gradio_client")
SLOTS = 6
EXAMPLE = Path(__file__).resolve().parents[1] / "assets" / "examples" / "street_a.jpg"


@pytest.fixture(scope="module")
def app(explorer_runs, tmp_path_factory):
    A.clear_caches()
    with running_app(explorer_runs, tmp_path_factory.mktemp("cache")) as (demo, url):
        client = gradio_client.Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
        yield demo, client


@pytest.fixture(scope="module")
def ws(app):
    return app[0].explorer_context.ws


def value(out):
    """The value inside a ``gr.update`` dict, or the output itself."""
    return out.get("value") if isinstance(out, dict) and out.get("__type__") == "update" else out


def read(path) -> np.ndarray:
    return np.asarray(Image.open(value(path)).convert("RGB"))


def arr(v) -> np.ndarray:
    """A Plotly JSON array: a plain list, or a typed array ``{"dtype", "bdata", "shape"}`` (base64)."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        return a.reshape([int(n) for n in str(v["shape"]).split(",")]) if v.get("shape") else a
    return np.asarray(v)


def figure(out) -> dict:
    out = value(out)
    assert out["type"] == "plotly"
    return json.loads(out["plot"])


def compare_args(ws, index, runs, epochs, opacity=0.5, ensemble=False):
    source = ws.dataset(runs[0]).source
    padded = list(epochs) + [1] * (SLOTS - len(epochs))
    return (source, "val", index, runs, *padded, opacity, ensemble)


def test_compare_grid_matches_core_and_a_second_call_does_not_run_models(app, ws, monkeypatch):
    demo, client = app
    calls = []
    real = Predictor.predict
    monkeypatch.setattr(Predictor, "predict", lambda self, images: calls.append(len(images)) or real(self, images))
    A.PREDICTIONS.clear()
    out = client.predict(*compare_args(ws, 3, ["seg-a", "seg-b"], [2, 3], ensemble=True), api_name="/compare")
    image_out, gt_out, legend_out, status = out[:4]
    slots = [out[5 + 3 * k : 8 + 3 * k] for k in range(SLOTS)]
    ens_img, ens_md = out[-3], out[-2]
    ref = ws.dataset("seg-a")
    image, target = ref.load(3)
    assert "image 3" in status
    np.testing.assert_array_equal(read(image_out), V.enlarge(image, 240))  # PNG: exact
    np.testing.assert_array_equal(read(gt_out), V.enlarge(V.overlay(image, target, ref.open().palette, opacity=0.5, ignore_index=11), 240))
    assert read(legend_out).shape[1] == 1100
    for (slider, img, md), (name, epoch) in zip(slots, [("seg-a", 2), ("seg-b", 3)]):
        run = ws.run(name)
        pred = Predictor(run, epoch).predict([image])[0].labels
        np.testing.assert_array_equal(read(img), V.enlarge(V.overlay(image, pred, run.palette, opacity=0.5, ignore_index=11), 240))
        s = per_image_scores(torch.from_numpy(pred)[None], torch.from_numpy(target)[None], 11, 11)
        assert f"pixel acc **{float(s['pixel_acc'][0]):.3f}**" in md and f"mIoU **{float(s['miou'][0]):.3f}**" in md
        assert "**Truth:**" in md and "**Predicted:**" in md
        assert value(slider) == epoch
    from core.ensemble import Ensemble

    ens = Ensemble([(ws.run("seg-a"), 2), (ws.run("seg-b"), 3)]).predict([image])[0].labels
    np.testing.assert_array_equal(read(ens_img), V.enlarge(V.overlay(image, ens, ws.run("seg-a").palette, opacity=0.5, ignore_index=11), 240))
    assert "seg-a@2 + seg-b@3" in ens_md
    n_calls = len(calls)
    assert n_calls > 0
    # same image at another opacity: only re-blended, no model runs
    out2 = client.predict(*compare_args(ws, 3, ["seg-a", "seg-b"], [2, 3], opacity=0.9, ensemble=True), api_name="/compare")
    assert len(calls) == n_calls
    assert not np.array_equal(read(out2[6]), read(slots[0][1]))


def test_epoch_change_of_one_column_snaps_to_a_saved_epoch(app, ws):
    _, client = app
    source = ws.dataset("seg-a").source
    slider, img, md = client.predict(source, "val", 0, ["seg-a", "seg-b"], 2, 0.5, api_name="/compare_slot_2")
    assert value(slider) == 1  # seg-b saved epochs 1 and 3: 2 is between, the earlier wins
    assert "epoch **1**" in md and read(img).shape == (240, 320, 3)
    best = client.predict(["seg-a", "seg-b"], api_name="/slot_2_last")
    assert value(best) == 3


def test_select_runs_shows_one_column_per_run(app, ws):
    _, client = app
    out = client.predict(ws.dataset("seg-a").source, ["seg-b"], api_name="/select_runs")
    # per slot: header and slider (the column's visibility is layout, not an API output)
    assert "seg-b" in out[0] and "unet_simple" in out[0] and (out[1]["minimum"], out[1]["maximum"]) == (1, 3)
    assert all(out[2 * k] == "" for k in range(1, SLOTS))
    assert value(out[-1]) == "seg-b"


def test_hardest_images_and_across_epochs(app, ws):
    _, client = app
    source = ws.dataset("seg-a").source
    gallery, index, status = client.predict(source, "val", ["seg-a", "seg-b"], 2, 3, 1, 1, 1, 1, api_name="/hardest")
    expected = A.hardest_images([[(ws.run("seg-a"), 2)], [(ws.run("seg-b"), 3)]], ws.dataset("seg-a"))
    assert index == expected[0][0]
    assert [int(g["caption"].split(":")[0]) for g in gallery] == [i for i, _ in expected]
    assert gallery[0]["caption"] == f"{expected[0][0]}: {expected[0][1]:.3f}"
    strip, msg = client.predict(source, "val", 5, "seg-b", 0.5, api_name="/across_epochs")
    assert [g["caption"].split(":")[0] for g in strip] == ["epoch 1", "epoch 3"]
    assert "seg-b" in msg
    image, _ = ws.dataset("seg-b").load(5)
    run = ws.run("seg-b")
    pred = Predictor(run, 3).predict([image])[0].labels
    np.testing.assert_array_equal(read(strip[1]["image"]), V.enlarge(V.overlay(image, pred, run.palette, opacity=0.5, ignore_index=11), 240))


def test_metrics_tab_from_history(app, ws):
    _, client = app
    table, bars, curves, status = client.predict(["seg-a", "seg-b", "camvid-a"], "best", api_name="/metrics")
    rows = {r[0]: dict(zip(table["headers"], r)) for r in table["data"]}
    assert set(rows) == {"seg-a", "seg-b", "camvid-a"}  # camvid-a's images are unavailable, its history is not
    run = ws.run("seg-b")
    rec = run.record(run.best_epoch)
    assert rows["seg-b"]["mIoU"] == pytest.approx(rec["miou"], abs=1e-4)
    assert rows["seg-b"]["parameters"] == run.config["model"]["num_params"]
    fig = figure(bars)
    assert fig["data"][1]["x"] == run.classes
    assert fig["data"][1]["name"] == f"seg-b @{run.best_epoch}"
    assert fig["data"][1]["y"] == pytest.approx([v if v is not None else None for v in rec["iou"]], nan_ok=True)
    names = [t["name"] for t in figure(curves)["data"]]
    assert "seg-a val" in names and "seg-b best epoch" in names
    heat = figure(client.predict("seg-a", api_name="/iou_heatmap"))
    assert heat["data"][0]["y"] == run.classes and heat["data"][0]["x"] == ["1", "2"]
    # per-class scores at a chosen epoch: each run's nearest evaluated epoch
    _, bars, _, _ = client.predict(["seg-a", "seg-b"], "chosen", 2, api_name="/metrics")
    fig = figure(bars)
    assert [t["name"] for t in fig["data"]] == ["seg-a @2", "seg-b @2"]
    assert fig["data"][1]["y"] == pytest.approx(run.record(2)["iou"], nan_ok=True)


def test_confusion_matrix_cell_and_disagreement(app, ws):
    _, client = app
    run = ws.run("seg-a")
    slider, plot, table, status = client.predict("seg-a", 2, api_name="/confusion_matrix")
    cm = np.asarray(run.record(2)["confusion"])
    hm = figure(plot)["data"][0]
    assert hm["x"] == run.classes and hm["y"] == run.classes
    np.testing.assert_array_equal(arr(hm["customdata"]), cm)
    row = cm[3] / cm[3].sum()
    assert hm["z"][3] == pytest.approx(row.tolist())
    assert table["headers"][1:] == run.classes and [r[1:] for r in table["data"]] == cm.tolist()
    # the cell (true Road, predicted b) on image 1
    ref = ws.dataset("seg-a")
    _, target = ref.load(1)
    pred = Predictor(run, 2).predict([ref.load(1)[0]])[0].labels
    b = int(np.bincount(pred[target == 3], minlength=11).argmax())
    out = client.predict("seg-a", 2, "val", 1, "Road", run.classes[b], "seg-b", 3, api_name="/confusion_image")
    image_out, cmap_out, cell_out, legend_out, errors_md, cell_title, dis_img, dis_legend, stat = out
    n = int(((target == 3) & (pred == b)).sum())
    assert f"**{n:,}** pixels" in cell_title
    cell = read(cell_out)
    mask = V.enlarge(np.repeat(((target == 3) & (pred == b))[:, :, None].astype(np.uint8), 3, axis=2), 240)[:, :, 0] > 0
    assert (cell[mask] == V.HIGHLIGHT_COLOR).all()
    assert read(cmap_out).shape == (240, 320, 3) and "wrong pixels" in errors_md
    pred_b = Predictor(ws.run("seg-b"), 3).predict([ref.load(1)[0]])[0].labels
    _, counts = A.disagreement(target, pred, pred_b, 11, 11)
    np.testing.assert_array_equal(read(dis_img), V.enlarge(V.category_map(A.disagreement(target, pred, pred_b, 11, 11)[0]), 240))
    assert sum(counts) == int((target != 11).sum())
    gallery, msg = client.predict("seg-a", 2, "val", "Road", run.classes[b], api_name="/confusion_cell_images")
    stats = A.split_stats([(run, 2)], ref)
    top = A.top_images_for_cell(stats, 3, b, 12)
    assert [g["caption"] for g in gallery] == [f"{i}: {n:,} px" for i, n in top]


def test_unavailable_dataset_is_a_clear_message(app, ws):
    _, client = app
    out = client.predict(*compare_args(ws, 0, ["camvid-a"], [2]), api_name="/compare")
    assert "--data-root" in out[3] and "camvid" in out[3]
    # the app keeps serving
    assert client.predict("camvid-a", api_name="/iou_heatmap")["type"] == "plotly"


def test_upload_an_example_and_an_unreadable_file(app, ws, tmp_path):
    _, client = app
    from gradio_client import handle_file

    runs = ["seg-a", "seg-b"] + (["cls-a"] if "cls-a" in ws.runs else [])
    out = client.predict(handle_file(str(EXAMPLE)), runs, 0.5, api_name="/analyze_upload")
    preview, status, legend, topk = out[:4]
    image = A.read_image(EXAMPLE)
    np.testing.assert_array_equal(read(preview), V.enlarge(image, 240))
    assert f"{image.shape[1]}×{image.shape[0]}" in status
    header, overlay, entropy, md = out[4:8]  # the first run's column
    pred = Predictor(ws.run("seg-a"), "best").predict([image])[0]
    assert "seg-a" in header
    np.testing.assert_array_equal(read(overlay), V.overlay(image, pred.labels, ws.run("seg-a").palette, opacity=0.5))
    np.testing.assert_array_equal(read(entropy), V.entropy_map(pred.entropy(), 11))
    assert "Predicted" in md and "entropy" in md
    if "cls-a" in ws.runs:
        fig = figure(topk)
        assert fig["data"][0]["name"] == "cls-a" and set(fig["data"][0]["x"]) <= set(ws.run("cls-a").classes)
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"\x00 this is not a jpeg")
    out = client.predict(handle_file(str(bad)), runs, 0.5, api_name="/analyze_upload")
    assert "not an image" in out[1]
    assert client.predict(handle_file(str(EXAMPLE)), ["seg-a"], 0.5, api_name="/analyze_upload")[0]  # still serving


def test_classification_compare_shows_top5(app, ws):
    if "cls-a" not in ws.runs:
        pytest.skip("no classification model registered")
    _, client = app
    out = client.predict(*compare_args(ws, 0, ["cls-a"], [2]), api_name="/compare")
    ref = ws.dataset("cls-a")
    _, label = ref.load(0)
    fig = figure(out[4])
    assert f"true class: {ws.run('cls-a').classes[label]}" in fig["layout"]["title"]["text"]
    pred = Predictor(ws.run("cls-a"), 2).predict([ref.load(0)[0]])[0]
    assert fig["data"][0]["y"][0] == pytest.approx(pred.topk(5)[0][1], abs=1e-6)
    assert re.search(r"top-1 \*\*\w+\*\*", out[7])
    assert f"class **{ws.run('cls-a').classes[label]}**" in out[-1]  # the ground-truth header


def test_embedding_map_point_and_placing_an_upload(app, ws):
    if "cls-a" not in ws.runs:
        pytest.skip("no classification model registered")
    _, client = app
    from gradio_client import handle_file

    plot, status = client.predict("cls-a", 2, "val", "pca", api_name="/embedding_map_a")
    fig = figure(plot)
    run = ws.run("cls-a")
    groups = [t["legendgroup"] for t in fig["data"] if t.get("legendgroup")]
    assert groups and set(groups) <= set(run.classes) and fig["data"][0]["type"] == "scattergl"
    emb = A.embedding(run, 2, "val", "pca", cached_only=True)
    assert sum(len(arr(t["x"])) for t in fig["data"]) == len(emb.coords)
    img, md, plot2 = client.predict("cls-a", 2, "val", "pca", 0, api_name="/embedding_point_a")
    assert f"true **{run.classes[int(emb.labels[0])]}**" in md
    np.testing.assert_array_equal(read(img), V.enlarge(ws.dataset("cls-a").load(int(emb.image_index[0]))[0], 240))
    plot3, gallery, msg = client.predict(handle_file(str(EXAMPLE)), "cls-a", "pca", api_name="/place_upload")
    names = [t["name"] for t in figure(plot3)["data"]]
    assert "your image" in names and len(gallery) > 0
