"""A fresh clone, through ``gradio_client``: the app on the shipped runs with no dataset on the machine
(every data root points at an empty folder made by the test, as on a clone without the shared data) opens on
the CamVid zoo and shows it on the shipped 24-image val sample in every tab."""

from __future__ import annotations

import pytest

from app.common import default_run, default_source
from core import explorer as A
from core.inference import Predictor
from tests.app.test_e2e import figure, read, value
from tests.app_server import running_app
from tests.conftest import ROOT

gradio_client = pytest.importorskip("gradio_client")
SAMPLE = ROOT / "assets" / "camvid-val-sample"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    A.clear_caches()
    empty = tmp_path_factory.mktemp("no-data")
    with running_app(ROOT / "checkpoints", tmp_path_factory.mktemp("cache"), str(empty)) as (demo, url):
        client = gradio_client.Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
        yield demo.explorer_context, client


def zoo(ws, task: str) -> list[str]:
    names = [n for n in ws.ranked(ws.names) if n.startswith("camvid/") and ws.run(n).task.name == task]
    if not names:
        pytest.skip(f"no CamVid {task} run in checkpoints/")
    return names


def test_opens_on_the_camvid_zoo_and_compares_on_the_sample(app):
    ctx, client = app
    ws = ctx.ws
    runs = zoo(ws, "segmentation")[:3]
    source = ws.dataset(runs[0]).source
    assert default_source(ctx) == source and default_run(ctx) == runs[0]  # the app opens on the zoo, best run first
    assert default_run(ctx, A.ClassificationTask).startswith("camvid/")
    offered = ws.runs_for_source(source)  # the Compare and Metrics menus: the zoo first, best first, then the demo runs
    assert offered[: len(zoo(ws, "segmentation"))] == zoo(ws, "segmentation") and len(offered) > len(zoo(ws, "segmentation"))
    assert ws.splits(ws.dataset(runs[0])) == ["val-sample"]
    panels, scores, status, _, _ = client.predict(
        source, "val-sample", 5, runs, ["best"] * len(runs), 0.5, False, 0.5, 0.5, 1.0, api_name="/compare"
    )
    assert "val sample: 24 of 101 images" in status and "full val split" in status
    assert len(value(panels)) == len(runs) + 2 and read(value(panels)[0]["image"]).shape[2] == 3  # image, truth, runs
    image, target = ws.dataset(runs[0], "val-sample").load(5)
    labels = Predictor(ws.run(runs[0]), "best").predict([image])[0].labels
    expected = float(((labels == target) & (target != 11)).sum() / (target != 11).sum())
    assert scores["runs"][0]["pixel_acc"] == pytest.approx(expected, abs=1e-4)


def test_metrics_confusion_and_embeddings_of_camvid(app):
    ctx, client = app
    ws = ctx.ws
    runs = zoo(ws, "segmentation")
    table, _, curves, metrics, _ = client.predict(runs, "best", api_name="/metrics")
    assert {row["run"] for row in metrics["summary"]} == set(runs)
    assert all(0.0 < row["mIoU"] <= 1.0 and row["parameters (M)"] > 0 for row in metrics["summary"])  # they differ
    run = ws.run(runs[0])
    last = run.epochs[-1]
    _, _, counts, matrix, _ = client.predict(runs[0], last, api_name="/confusion")
    assert matrix["classes"] == run.classes and matrix["matrix"] == run.record(last)["confusion"]
    maps, _, errors, _ = client.predict(
        runs[0], last, "val-sample", 0, "Road", "Sidewalk", runs[-1], 20, api_name="/confusion_image"
    )
    image, target = ws.dataset(runs[0], "val-sample").load(0)
    pred = Predictor(run, last).predict([image])[0].labels
    assert len(value(maps)) >= 2 and errors["wrong_pixels"] == int(((target != 11) & (pred != target)).sum()) > 0
    plot, text = client.predict(runs[0], last, "val-sample", "pca", api_name="/embedding")
    assert len(figure(plot)["data"]) > 0, text
    crops = zoo(ws, "classification")
    plot, text = client.predict(crops[0], ws.run(crops[0]).epochs[-1], "val-sample", "pca", api_name="/embedding")
    assert len(figure(plot)["data"]) > 0, text


def test_upload_a_shipped_street_image_and_list_the_runs(app):
    ctx, client = app
    ws = ctx.ws
    runs = zoo(ws, "segmentation")[:2] + zoo(ws, "classification")[:1]
    image = sorted((SAMPLE / "val").glob("*.jpg"))[0]
    panels, results, status, _, _ = client.predict(gradio_client.handle_file(str(image)), runs, 0.5, api_name="/upload")
    assert "480×360" in status and len(results["runs"]) == 3 and len(value(panels)) >= 3
    plot, neighbours, text = client.predict(gradio_client.handle_file(str(image)), runs[-1], "pca", api_name="/place")
    assert "val-sample map" in text and len(neighbours) > 0 and len(figure(plot)["data"]) > 0, text
    _, _, live, _ = client.predict(api_name="/runs")
    listed = {r["run"] for r in live["rows"]}
    assert set(runs) <= listed and {n for n in ws.names if n.startswith("camvid/")} <= listed
