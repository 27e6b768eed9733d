"""The runs table and the Metrics tab on a 120-run sweep (tests/sweep_runs.py: run.json and history.jsonl only, no
weights) through the API: /runs lists every run, filtered, grouped and sorted as core computes it, with its
parallel-coordinates plot; /metrics takes all 120 runs from their histories; the views that run models keep 12."""

from __future__ import annotations

import pytest

from core import explorer as A
from core.explorer import sweeps
from tests.app.test_e2e import figure
from tests.app_server import running_app
from tests.sweep_runs import make_sweep

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def sweep_app(tmp_path_factory):
    A.clear_caches()
    root = make_sweep(tmp_path_factory.mktemp("sweep") / "runs")
    with running_app(root, tmp_path_factory.mktemp("cache")) as (demo, url):
        yield demo.explorer_context.ws, gradio_client.Client(url, verbose=False)


def test_runs_on_120_runs_match_core(sweep_app):
    ws, client = sweep_app
    table, plot, data, status = client.predict(api_name="/runs")
    assert data["total"] == len(data["rows"]) == len(table["data"]) == 120 and status.startswith("120 runs · 120 shown")
    query = dict(search="large", sort_by="mIoU", descending=True, range_column="lr", range_min=1e-3, range_max=1e-2)
    table, plot, data, status = client.predict("large", "mIoU", True, "lr", "0.001", "1e-2", ["seed"], api_name="/runs")
    expected = sweeps.table(ws, **query, group_by=["seed"])
    assert data["rows"] == expected["rows"] and data["columns"] == expected["columns"]
    assert len(data["rows"]) == 2 * 3 * 2 and {r["runs"] for r in data["rows"]} == {3} and data["shown"] == 36
    assert "grouped by seed into 12 rows" in status and table["data"][0][data["columns"].index("seed")] == "0, 1, 2"
    mean, std = data["rows"][0]["mIoU"], data["rows"][0]["mIoU std"]
    assert table["data"][0][table["headers"].index("mIoU")] == f"{round(mean, 3)} ± {round(std, 3)}"
    pc = figure(plot)["data"][0]
    assert pc["type"] == "parcoords" and len(pc["line"]["color"]) == 36
    assert [d["label"] for d in pc["dimensions"]] == [d["label"] for d in expected["parcoords"]["dimensions"]]
    *_, status = client.predict("", "mIoU", True, "lr", "a lot", "", [], api_name="/runs")
    assert "from: expected a number such as 0.001" in status


def test_a_resort_reorders_the_table_and_leaves_the_plot_as_drawn(sweep_app, tmp_path):
    import gradio as gr

    from app import runs_tab
    from app.common import AppContext

    ws, _ = sweep_app
    ctx = AppContext(ws, tmp_path)
    table, plot, data, status = runs_tab.resort(ctx, "", "mIoU", False, None, "", "", [])
    assert plot == gr.skip()  # sorting keeps the same runs: the parallel coordinates are not sent again
    scores = [r["mIoU"] for r in data["rows"]]
    assert len(scores) == 120 and scores == sorted(scores) and status.startswith("120 runs · 120 shown")
    assert list(table["run"]) == [r["run"] for r in data["rows"]]


def test_metrics_takes_all_120_runs_from_their_histories(sweep_app):
    ws, client = sweep_app
    names = list(ws.listed)
    table, classes, curves, data, status = client.predict(names, "best", api_name="/metrics")
    assert len(data["summary"]) == len(table["data"]) == 120 and status.startswith("120 runs")
    assert {r["run"] for r in data["summary"]} == set(names) and "tag.family" in data["columns"]
    heat = figure(classes)["data"][0]  # past 12 runs, per-class scores as a run x class heatmap
    assert heat["type"] == "heatmap" and len(heat["y"]) == 120 and heat["x"] == ["sky", "road", "car"]
    fig = figure(curves)
    assert sum(1 for t in fig["data"] if t.get("showlegend") is not False) == 120  # one legend entry per run
    assert fig["layout"]["legend"]["itemclick"] == "toggle" and fig["layout"]["legend"]["groupclick"] == "togglegroup"
    # the views that run each model over a split keep their own limit, and say why the others cannot run
    *_, text = client.predict(names[:13], "best", "val", api_name="/boundary")
    assert "at most 12 runs at once; 13 are selected" in text
    *_, text = client.predict(names[:2], "best", "val", api_name="/calibration")
    assert "has no saved weights yet" in text
