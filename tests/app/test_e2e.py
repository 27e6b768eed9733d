"""The explorer app end to end: started on a free port with tiny runs, every public endpoint called through
``gradio_client``, and the returned images, tables, figures and JSON checked against core."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import explorer as A
from core import visualize as V
from core.evaluation.per_image import disagreement, image_scores
from core.explorer.compare import display
from core.explorer.tables import class_table
from core.inference import Predictor
from tests.app_server import running_app
from tests.conftest import ROOT

gradio_client = pytest.importorskip("gradio_client")
EXAMPLE = ROOT / "assets" / "examples" / "street_a.jpg"


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


def as_served(image: np.ndarray, tmp_path: Path, suffix: str = ".jpg") -> np.ndarray:
    """``image`` after the app's own encoding (JPEG for photos), so a served file can be compared exactly."""
    path = tmp_path / f"expected{suffix}"
    V.save_image(image, path, quality=90)
    return np.asarray(Image.open(path).convert("RGB"))


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


def compare(client, ws, index, runs, epochs, opacity=0.5, ensemble=False, zoom=(0.5, 0.5, 1.0)):
    source = ws.dataset(runs[0]).source
    return client.predict(source, "val", index, runs, epochs, opacity, ensemble, *zoom, api_name="/compare")


def test_public_endpoints_have_named_parameters_and_match_the_readme(app):
    _, client = app
    api = client.view_api(return_format="dict", print_info=False)
    public = sorted(api["named_endpoints"])
    params = {name: [p["parameter_name"] for p in ep["parameters"]] for name, ep in api["named_endpoints"].items()}
    assert not [f"{n}({p})" for n, ps in params.items() for p in ps if re.fullmatch(r"param_\d+", p)]
    assert params["/compare"][:7] == ["dataset", "split", "image", "runs", "epochs", "opacity", "ensemble"]
    assert params["/metrics"] == ["runs", "epoch", "top", "classes"] and params["/upload"][:2] == ["image", "runs"]
    assert params["/embedding"] == ["run", "epoch", "split", "method"] and params["/confusion"] == ["run", "epoch", "by"]
    assert params["/class_epoch"] == ["run", "top", "classes"]
    assert params["/runs"] == ["search", "sort_by", "descending", "range_column", "range_min", "range_max", "group_by"]
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## API", 1)[1].split("\n## ", 1)[0]
    documented = sorted(set(re.findall(r'api_name="(/[a-z_]+)"', section)))
    assert documented == public, "the README's API section documents exactly the public endpoints"
    assert len(public) <= 25 and not api["unnamed_endpoints"]  # one endpoint per user action, no more (25th: /report)


def test_compare_matches_core_and_a_second_call_does_not_run_models(app, ws, monkeypatch, tmp_path):
    _, client = app
    calls = []
    real = Predictor.predict
    monkeypatch.setattr(Predictor, "predict", lambda self, images, **kw: calls.append(len(images)) or real(self, images, **kw))
    A.PREDICTIONS.clear()
    panels, scores, status, legend, _ = compare(client, ws, 3, ["seg-a", "seg-b"], [2, 3], ensemble=True)
    ref = ws.dataset("seg-a")
    image, target = ref.load(3)
    assert "image 3" in status and "| seg-a | 2 |" in status
    panels = value(panels)
    assert [p["caption"].split(" ·")[0] for p in panels] == [
        "image 3: val_00003",
        "ground truth",
        "seg-a @ 2 (best)" if ws.run("seg-a").best_epoch == 2 else "seg-a @ 2 (last)",
        "seg-b @ 3 (best, last)" if ws.run("seg-b").best_epoch == 3 else "seg-b @ 3 (last)",
        "ensemble of 2 runs",
    ][: len(panels)]
    np.testing.assert_array_equal(read(panels[0]["image"]), as_served(display(image), tmp_path))
    palette = ref.open().palette
    np.testing.assert_array_equal(
        read(panels[1]["image"]), as_served(display(V.overlay(image, target, palette, opacity=0.5, ignore_index=11)), tmp_path)
    )
    rows, shown = {r["run"]: r for r in scores["runs"]}, {int(c) for c in np.unique(target) if c != 11}
    for k, (name, epoch) in enumerate([("seg-a", 2), ("seg-b", 3)]):
        pred = Predictor(ws.run(name), epoch).predict([image])[0].labels
        shown |= {int(c) for c in np.unique(pred)}
        np.testing.assert_array_equal(
            read(panels[2 + k]["image"]),
            as_served(display(V.overlay(image, pred, palette, opacity=0.5, ignore_index=11)), tmp_path),
        )
        s = image_scores(pred, target, 11, 11)
        assert (
            rows[name]["epoch"] == epoch
            and rows[name]["miou"] == pytest.approx(s["miou"])
            and rows[name]["pixel_acc"] == pytest.approx(s["pixel_acc"])
        )
    from core.inference.ensemble import Ensemble

    ens = Ensemble([(ws.run("seg-a"), 2), (ws.run("seg-b"), 3)]).predict([image])[0].labels
    assert rows["ensemble"]["members"] == ["seg-a@2", "seg-b@3"]
    assert rows["ensemble"]["miou"] == pytest.approx(image_scores(ens, target, 11, 11)["miou"])
    classes = ref.open().classes  # the legend: the classes of the ground truth and of every prediction shown
    expected = [classes[c] for c in sorted(shown | {int(c) for c in np.unique(ens)})]
    assert re.findall(r'data-class="([^"]+)"', legend) == expected
    n_calls = len(calls)
    assert n_calls > 0
    # same image at another opacity: only re-blended, no model runs
    panels2 = value(compare(client, ws, 3, ["seg-a", "seg-b"], [2, 3], opacity=0.9, ensemble=True)[0])
    assert len(calls) == n_calls
    assert not np.array_equal(read(panels2[2]["image"]), read(panels[2]["image"]))


def test_compare_takes_lists_of_any_length_snaps_epochs_and_refuses_too_many(app, ws):
    _, client = app
    runs = ["seg-a", "seg-b"] * 4  # 8 columns
    _, scores, status, _, _ = compare(client, ws, 0, runs, ["best", 2, "last"])
    assert [r["epoch"] for r in scores["runs"]] == [
        ws.run("seg-a").best_epoch,
        1,
        2,
        ws.run("seg-b").best_epoch,
        ws.run("seg-a").best_epoch,
        ws.run("seg-b").best_epoch,
        ws.run("seg-a").best_epoch,
        ws.run("seg-b").best_epoch,
    ]
    # seg-b saved epochs 1 and 3: 2 lies between, the earlier wins; missing epochs are "best"
    out = compare(client, ws, 0, ["seg-a", "seg-b"] * 7, [])
    assert "at most 12 runs" in out[2]


def test_zoom_is_applied_to_every_panel(app, ws, tmp_path):
    _, client = app
    panels, *_ = compare(client, ws, 1, ["seg-a"], ["best"], zoom=(0.25, 0.75, 4))
    image, _ = ws.dataset("seg-a").load(1)
    expected = V.zoom(V.enlarge(image, 240), (0.25, 0.75), 4)
    np.testing.assert_array_equal(read(value(panels)[0]["image"]), as_served(expected, tmp_path))
    with pytest.raises(Exception, match="greater than maximum value 8"):  # Gradio checks the slider's range itself
        compare(client, ws, 1, ["seg-a"], ["best"], zoom=(0.5, 0.5, 99))


def test_hardest_images_and_epochs_strip(app, ws):
    _, client = app
    source = ws.dataset("seg-a").source
    gallery, index, status = client.predict(source, "val", ["seg-a", "seg-b"], [2, 3], api_name="/hardest")
    ref = ws.dataset("seg-a")
    expected = A.hardest_images([A.split_stats(ws, (ws.run("seg-a"), 2), ref), A.split_stats(ws, (ws.run("seg-b"), 3), ref)])
    assert index == expected[0][0]
    assert [int(g["caption"].split(":")[0]) for g in gallery] == [i for i, _ in expected]
    strip, data = client.predict(source, "val", 5, "seg-b", 0.5, api_name="/epochs_strip")
    assert [g["caption"].split(":")[0] for g in strip] == ["epoch 1", "epoch 3"]
    assert [r["epoch"] for r in data["epochs"]] == [1, 3]


def test_metrics_from_history(app, ws):
    _, client = app
    table, bars, curves, data, status = client.predict(["seg-a", "seg-b", "camvid-a"], "best", api_name="/metrics")
    rows = {r[0]: dict(zip(table["headers"], r)) for r in table["data"]}
    assert set(rows) == {"seg-a", "seg-b", "camvid-a"}  # camvid-a's images are unavailable, its history is not
    run = ws.run("seg-b")
    rec = run.record(run.best_epoch)
    # the runs table of the Runs tab: the keys that differ (here the architecture and the dataset, not the parameter
    # count, which the two architectures share), rounded to what a reader needs (scores to 3 decimals, time in minutes)
    assert rows["seg-b"]["architecture"] == "unet_simple" and rows["camvid-a"]["dataset"] == "camvid"
    assert (
        run.config["model"]["num_params"] == ws.run("seg-a").config["model"]["num_params"]
        and "parameters (M)" not in rows["seg-b"]
    )
    assert rows["seg-b"]["mIoU"] == round(rec["miou"], 3)
    assert rows["seg-b"]["train time (min)"] == round(run.status["train_time"] / 60, 1)
    assert data["summary"][1]["mIoU"] == pytest.approx(rec["miou"])
    fig = figure(bars)
    assert fig["data"][1]["x"] == run.classes and fig["data"][1]["name"] == f"seg-b @{run.best_epoch}"
    assert fig["data"][1]["y"] == pytest.approx(rec["iou"], nan_ok=True)
    names = [t["name"] for t in figure(curves)["data"]]
    assert "seg-a" in names and "seg-b best epoch" in names
    heat = figure(client.predict("seg-a", api_name="/class_epoch"))
    assert heat["data"][0]["y"] == run.classes and heat["data"][0]["x"] == ["1", "2"]
    # per-class scores at a chosen epoch: each run's nearest evaluated epoch
    _, bars, _, data, _ = client.predict(["seg-a", "seg-b"], "2", api_name="/metrics")
    assert [t["name"] for t in figure(bars)["data"]] == ["seg-a @2", "seg-b @2"]
    assert data["per_class"]["runs"][1]["scores"] == pytest.approx(run.record(2)["iou"], nan_ok=True)
    # a class filter: the chosen classes only, the best mean IoU of the two runs first
    _, bars, _, data, _ = client.predict(["seg-a", "seg-b"], "2", 15, ["Sky", "Road"], api_name="/metrics")
    mean = {c: np.nanmean([r["scores"][run.classes.index(c)] for r in data["per_class"]["runs"]]) for c in ("Sky", "Road")}
    assert figure(bars)["data"][0]["x"] == sorted(mean, key=lambda c: -mean[c]) == data["shown_classes"]


def test_runs_table_lists_every_run_sorts_filters_and_says_what_is_wrong(app, ws):
    _, client = app
    table, parcoords, data, status = client.predict(api_name="/runs")  # defaults: sorted by the score, best first
    names = {r["run"] for r in data["rows"]}
    assert {"seg-a", "seg-b", "camvid-a"} <= names and "broken" not in names
    assert any(u["run"] == "broken" and "not valid JSON" in u["reason"] for u in data["unavailable"])
    assert {"architecture", "dataset"} <= set(data["config_keys"]) and table["headers"] == data["columns"]
    assert data["score"] == "mIoU" and [r[0] for r in table["data"]] == [r["run"] for r in data["rows"]]
    scores = [r["mIoU"] for r in data["rows"] if r["mIoU"] is not None]
    assert scores == sorted(scores, reverse=True) and f"{len(names)} runs" in status
    row = {r["run"]: r for r in data["rows"]}["seg-b"]
    run = ws.run("seg-b")
    assert row["mIoU"] == pytest.approx(run.record(run.best_epoch)["miou"]) and row["architecture"] == "unet_simple"
    assert row["state"] == "finished" and row["snapshots"] == 2 and row["epoch"] == row["of"] == 3
    assert figure(parcoords)["data"][0]["type"] == "parcoords"
    _, _, data, status = client.predict("unet", "run", False, "seed", "1", "1", [], api_name="/runs")  # text and a range
    assert [r["run"] for r in data["rows"]] == ["seg-b"] and data["shown"] == 1  # seed 1, and "unet" in unet_simple
    *_, status = client.predict("", "run", False, "architecture", "0", "1", [], api_name="/runs")
    assert "cannot filter 'architecture' by a range" in status


def test_confusion_matrix_cell_and_disagreement(app, ws, tmp_path):
    _, client = app
    run = ws.run("seg-a")
    slider, plot, table, data, status = client.predict("seg-a", 2, api_name="/confusion")
    cm = np.asarray(run.record(2)["confusion"])
    assert data["matrix"] == cm.tolist()
    hm = figure(plot)["data"][0]
    np.testing.assert_array_equal(arr(hm["customdata"]), cm)
    assert hm["z"][3] == pytest.approx((cm[3] / cm[3].sum()).tolist())
    assert table["headers"][1:] == run.classes and [r[1:] for r in table["data"]] == cm.tolist()
    off = cm - np.diag(np.diag(cm))
    t, p = np.unravel_index(np.argmax(off), off.shape)  # the largest mistake heads the most confused pairs
    assert data["shown"] == run.classes and data["pairs"][0] == {
        "true": run.classes[t],
        "predicted": run.classes[p],
        "pixels": int(off[t, p]),
        "share": pytest.approx(off[t, p] / cm[t].sum()),
    }
    ref = ws.dataset("seg-a")
    image, target = ref.load(1)
    pred = Predictor(run, 2).predict([image])[0].labels
    b = int(np.bincount(pred[target == 3], minlength=11).argmax())
    panels, cmap, counts, stat = client.predict(
        "seg-a", 2, "val", 1, "Road", run.classes[b], "seg-b", 3, api_name="/confusion_image"
    )
    n = int(((target == 3) & (pred == b)).sum())
    assert counts["cell_pixels"] == n and counts["cell"] == ["Road", run.classes[b]]
    assert counts["wrong_pixels"] == int(((target != 11) & (pred != target)).sum())
    expected = as_served(display(V.highlight(image, (target == 3) & (pred == b))), tmp_path)
    np.testing.assert_array_equal(read(panels[1]["image"]), expected)
    assert read(cmap).shape == (240, 320, 3)
    pred_b = Predictor(ws.run("seg-b"), 3).predict([image])[0].labels
    cats, expected = disagreement(target, pred, pred_b, 11, 11)
    assert list(counts["disagreement"].values()) == expected and sum(expected) == int((target != 11).sum())
    np.testing.assert_array_equal(read(panels[2]["image"]), V.enlarge(V.category_map(cats), 240))  # PNG: exact
    gallery, msg = client.predict("seg-a", 2, "val", "Road", run.classes[b], api_name="/confusion_cell_images")
    top = A.top_images_for_cell(A.split_stats(ws, (run, 2), ref), 3, b, 12)
    assert [g["caption"] for g in gallery] == [f"{i}: {n:,} px" for i, n in top] and str(top[0][0]) in msg


def test_unavailable_dataset_falls_back_to_the_shipped_sample(app, ws):
    _, client = app
    out = compare(client, ws, 0, ["camvid-a"], [2])  # its val split is not on this machine
    assert "no split 'val' here; splits: val-sample" in out[2]
    source = ws.dataset("camvid-a").source
    panels, scores, status, _, _ = client.predict(
        source, "val-sample", 0, ["camvid-a"], [2], 0.5, False, 0.5, 0.5, 1.0, api_name="/compare"
    )
    assert scores["item_id"] == "0016E5_07959" and "24 of 101 images" in status and len(value(panels)) == 3
    assert client.predict("camvid-a", api_name="/class_epoch")["type"] == "plotly"  # the app keeps serving


def test_upload_an_example_and_an_unreadable_file(app, ws, tmp_path):
    _, client = app
    from gradio_client import handle_file

    runs = ["seg-a", "seg-b"] + (["cls-a"] if "cls-a" in ws.runs else [])
    panels, data, status, legend, topk = client.predict(handle_file(str(EXAMPLE)), runs, 0.5, api_name="/upload")
    image = A.read_image(EXAMPLE)
    panels = value(panels)
    np.testing.assert_array_equal(read(panels[0]["image"]), as_served(display(image), tmp_path))
    assert f"{image.shape[1]}×{image.shape[0]}" in status and data["width"] == image.shape[1]
    pred = Predictor(ws.run("seg-a"), "best").predict([image])[0]
    np.testing.assert_array_equal(
        read(panels[1]["image"]), as_served(V.overlay(image, pred.labels, ws.run("seg-a").palette, opacity=0.5), tmp_path)
    )
    np.testing.assert_array_equal(read(panels[2]["image"]), as_served(V.entropy_map(pred.entropy(), 11), tmp_path))
    assert data["runs"][0]["mean_entropy"] == pytest.approx(float(pred.entropy().mean()), rel=1e-5)
    pred_b = Predictor(ws.run("seg-b"), "best").predict([image])[0]
    shown = sorted(set(np.unique(pred.labels).tolist()) | set(np.unique(pred_b.labels).tolist()))
    legend = legend if isinstance(legend, str) else legend["value"]  # the legend: the classes predicted here only
    assert re.findall(r'data-class="([^"]+)"', legend) == [ws.run("seg-a").classes[c] for c in shown]
    if "cls-a" in ws.runs:
        fig = figure(topk)
        assert fig["data"][0]["name"] == "cls-a" and set(fig["data"][0]["x"]) <= set(ws.run("cls-a").classes)
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"\x00 this is not a jpeg")
    assert "not an image" in client.predict(handle_file(str(bad)), runs, 0.5, api_name="/upload")[2]
    assert client.predict(handle_file(str(EXAMPLE)), ["seg-a"], 0.5, api_name="/upload")[0]  # still serving


def test_classification_compare_shows_top5(app, ws):
    if "cls-a" not in ws.runs:
        pytest.skip("no classification model registered")
    _, client = app
    _, scores, status, _, topk = compare(client, ws, 0, ["cls-a"], [2])
    ref = ws.dataset("cls-a")
    _, label = ref.load(0)
    fig = figure(topk)
    assert f"true class: {ws.run('cls-a').classes[label]}" in fig["layout"]["title"]["text"]
    pred = Predictor(ws.run("cls-a"), 2).predict([ref.load(0)[0]])[0]
    assert fig["data"][0]["y"][0] == pytest.approx(pred.topk(5)[0][1], abs=1e-6)
    assert scores["runs"][0]["top1"] == ws.run("cls-a").classes[pred.topk(1)[0][0]] and scores["true_class"] in status


def test_embedding_map_point_and_placing_an_upload(app, ws):
    if "cls-a" not in ws.runs:
        pytest.skip("no classification model registered")
    _, client = app
    from gradio_client import handle_file

    plot, status = client.predict("cls-a", 2, "val", "pca", api_name="/embedding")
    fig = figure(plot)
    run = ws.run("cls-a")
    groups = [t["legendgroup"] for t in fig["data"] if t.get("legendgroup")]
    assert groups and set(groups) <= set(run.classes) and fig["data"][0]["type"] == "scattergl"
    emb = A.embedding(run, 2, "val", "pca", cached_only=True)
    assert sum(len(arr(t["x"])) for t in fig["data"]) == len(emb.coords)
    img, md, _ = client.predict("cls-a", 2, "val", "pca", 0, api_name="/embedding_point")
    assert f"true **{run.classes[int(emb.labels[0])]}**" in md
    assert read(img).shape == V.enlarge(ws.dataset("cls-a").load(int(emb.image_index[0]))[0], 240).shape
    # a split name that is not one of the run's is refused before it reaches a file name
    _, bad = client.predict("cls-a", 2, "../../etc", "pca", api_name="/embedding")
    assert "no split" in bad
    plot3, gallery, msg = client.predict(handle_file(str(EXAMPLE)), "cls-a", "pca", api_name="/place")
    assert "your image" in [t["name"] for t in figure(plot3)["data"]] and len(gallery) > 0


def _split_predictions(ws, name, epoch):
    ref = ws.dataset(name)
    predictor = Predictor(ws.run(name), epoch, device="cpu")
    for i in range(ref.size()):
        image, target = ref.load(i)
        yield predictor.predict([image])[0], target


def test_boundary_calibration_and_segment_sizes_match_core(app, ws):
    from core.evaluation.agreement import segment_recall, segment_recall_counts
    from core.evaluation.boundary import boundary_counts, boundary_iou
    from core.evaluation.calibration import calibration_sums, ece

    _, client = app
    plot, table, data, text = client.predict(["seg-a", "seg-b"], "best", "val", api_name="/boundary")
    counts, calib, segs = np.zeros((3, 11), np.int64), np.zeros((11, 15, 3)), np.zeros((11, 3, 2), np.int64)
    for pred, target in _split_predictions(ws, "seg-a", ws.run("seg-a").best_epoch):
        counts += boundary_counts(pred.labels, target, 11, 11)
        calib += calibration_sums(pred.probs, target, 11, 11)
        segs += segment_recall_counts(pred.labels, target, 11, 11)
    assert data["runs"][0]["boundary_iou"] == pytest.approx(boundary_iou(counts).tolist(), nan_ok=True)
    assert data["runs"][0]["iou"] == pytest.approx(
        ws.run("seg-a").record(ws.run("seg-a").best_epoch)["iou"], nan_ok=True
    )  # same val split
    assert "boundary" in text and len(table["data"]) == 22
    assert list((ws.run("seg-a").path / "evaluation").glob("*/measures/boundary.npz")), "stored in the run like the embeddings"
    _, _, cal, text = client.predict(["seg-a"], "best", "val", api_name="/calibration")
    assert cal["runs"][0]["ece"] == pytest.approx(ece(calib)) and "ECE" in text
    assert sum(cal["runs"][0]["reliability"]["count"]) == int(
        (np.concatenate([t.ravel() for _, t in _split_predictions(ws, "seg-a", 2)]) != 11).sum()
    )
    _, sizes = client.predict(["seg-a"], "best", "val", api_name="/segment_sizes")
    got = np.array([[np.nan if v is None else v for v in row] for row in sizes["runs"][0]["recall"]])
    np.testing.assert_allclose(got, segment_recall(segs))
    assert sizes["runs"][0]["segments"] == segs[..., 1].tolist()


def test_significance_of_two_runs(app, ws):
    _, client = app
    text, violin, pooled, diff, data = client.predict("seg-a", "best", "seg-b", "best", "val", api_name="/significance")
    a, b = ws.run("seg-a"), ws.run("seg-b")
    assert data["difference"] == pytest.approx(a.record(a.best_epoch)["miou"] - b.record(b.best_epoch)["miou"])
    assert data["interval"][0] <= data["difference"] <= data["interval"][1] and data["resamples"] == 1000
    assert len(data["per_image_a"]) == ws.dataset("seg-a").size() and data["verdict"] in text
    assert [t["name"] for t in figure(violin)["data"]] == [data["run_a"], data["run_b"]]
    assert "formula" in json.dumps(figure(pooled)) or "TP / (TP + FP + FN)" in json.dumps(figure(pooled))


def test_report_export_of_the_selection(app, ws):
    _, client = app
    html, files, latex, markdown, csv_text, status = client.predict(["seg-a", "seg-b"], "best", "val", "1,2", api_name="/report")
    page = Path(value(html)).read_text()
    assert page.count("<section") == 10 and "image 1:" in page and "image 2:" in page and "MB, opens offline" in status
    assert "python -m core.report --runs" in page and "--run seg-a --run seg-b --split val --epochs best --images 1,2" in page
    per_class = class_table(ws, ["seg-a", "seg-b"], "best")
    assert f"{per_class['runs'][0]['scores'][0]:.3f}" in latex and latex.count(r"\toprule") == 2  # summary, per class
    assert markdown.count("| run |") == 2 and csv_text.startswith("run,parameters (M)")
    assert sorted(Path(f).suffix for f in value(files)) == [".csv", ".csv", ".md", ".md", ".tex", ".tex"]
    _, _, _, _, _, refused = client.predict(["seg-a", "seg-b"], "best", "val", "0,x", api_name="/report")
    assert "0,5,12" in refused  # a bad image list is a message; the app keeps serving


def test_consensus_confidence_and_churn_on_an_image(app, ws):
    from core.evaluation.agreement import churn, consensus

    _, client = app
    source = ws.dataset("seg-a").source
    panels, data, text = client.predict(source, "val", 2, ["seg-a", "seg-b"], [2, 3], api_name="/agreement")
    image, target = ws.dataset("seg-a").load(2)
    preds = [Predictor(ws.run(n), e).predict([image])[0].labels for n, e in (("seg-a", 2), ("seg-b", 3))]
    right, none = consensus(preds, target, 11, 11)
    assert data["right_by"] == np.bincount(right[right != 255], minlength=3).tolist()
    assert list(data["none_right_by_class"].values()) == none.tolist() and len(panels) == 3
    gallery, line, steps = client.predict(source, "val", 2, "seg-b", api_name="/churn")
    p1, p3 = (Predictor(ws.run("seg-b"), e).predict([image])[0].labels for e in (1, 3))
    _, counts, fraction = churn(p1, p3, target, 11, 11)
    assert (
        steps["steps"][0]["fraction"] == pytest.approx(fraction)
        and list(steps["steps"][0]["by_class"].values()) == counts.tolist()
    )
