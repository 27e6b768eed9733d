"""``python -m core.report`` on two tiny runs whose evaluation is missing: computed through core.evaluate with a
progress bar; the HTML opens in Chromium with every network request blocked and shows every section; its
per-class table is the one /metrics returns; the SVG and PNG figures are valid (where kaleido and Chromium are)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from core import explorer as A
from core import report as cli
from core.explorer import tables
from core.explorer.figures import training_curves
from core.explorer.report import static
from core.explorer.report.html import SECTIONS
from core.explorer.workspace import Workspace

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def made(explorer_runs, tmp_path_factory):
    """The report of fresh copies of seg-a and seg-b (never evaluated), through the command line."""
    runs = tmp_path_factory.mktemp("report-runs")
    for name in ("seg-a", "seg-b"):
        shutil.copytree(explorer_runs / name, runs / name, ignore=shutil.ignore_patterns("evaluation"))
    out = tmp_path_factory.mktemp("report") / "report.html"
    A.clear_caches()
    return runs, out


def test_missing_evaluation_is_computed_with_a_progress_bar(made, capsys):
    runs, out = made
    assert not (runs / "seg-a" / "evaluation").exists()
    argv = [
        "--runs",
        str(runs),
        "--run",
        "seg-a",
        "--run-name",
        "seg-b",
        "--images",
        "0,3",
        "--strips",
        "all",
        "--out",
        str(out),
        "--no-figures",
    ]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "seg-a: images" in err and "seg-b: images" in err and "100%|" in err  # the evaluation's progress, in tqdm's bar
    for name in ("seg-a", "seg-b"):
        assert any((runs / name / "evaluation").rglob("meta.json")), f"{name} was not evaluated by core.evaluate"
    assert out.exists() and (out.parent / "report_per_class.tex").exists() and (out.parent / "report_summary.csv").exists()


def test_bad_input_is_a_message(made, capsys):
    runs, out = made
    assert cli.main(["--runs", str(runs), "--run", "nope", "--out", str(out)]) == 2
    assert cli.main(["--runs", str(runs), "--run", "seg-a", "--images", "0,99", "--out", str(out)]) == 2
    assert cli.main(["--runs", str(runs), "--run", "seg-a", "--out", str(out.with_suffix(".pdf"))]) == 2
    err = capsys.readouterr().err
    assert "no usable run" in err or "nope" in err
    assert "image 99 is not in split" in err and "ending in .html" in err


def test_per_class_table_is_what_metrics_returns(made):
    runs, out = made
    ws = Workspace.discover(runs)
    expected = tables.class_table(ws, ["seg-a", "seg-b"], "best")  # /metrics' "per_class"
    rows = list(csv.reader(io.StringIO((out.parent / "report_per_class.csv").read_text().split("\n\n")[0])))
    assert rows[0][1:-1] == expected["classes"]
    for row, run, label in zip(rows[1:], expected["runs"], expected["labels"]):
        assert row[0] == label
        assert [None if v == "" else float(v) for v in row[1:-1]] == run["scores"]  # every digit


def test_plotly_is_inlined_once_and_nothing_else_is_referenced(made):
    from plotly.offline import get_plotlyjs

    _, out = made
    page = out.read_text()
    js = get_plotlyjs()
    assert page.count(js) == 1 and page.count("<script") == page.count("</script>")
    rest = page.replace(js, "")
    assert "http://" not in rest and "https://" not in rest and 'src="data:image/jpeg;base64,' in rest
    assert "data:image/png;base64," in rest


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed")
def test_offline_in_chromium_every_section_shows(made):
    """Chromium's start and a 5 MB page with 8 plots: 7 to 10 s on a loaded 2-core machine."""
    playwright = pytest.importorskip("playwright.sync_api")
    runs, out = made
    url, refused = out.resolve().as_uri(), []

    def route(r):
        if r.request.url == url:
            return r.continue_()
        refused.append(r.request.url)
        return r.abort()

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.route("**/*", route)
        page.goto(url, wait_until="load")
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length > 0")
        shown = {sid: page.locator(f"section#{sid}").is_visible() for sid, _ in SECTIONS}
        plots = page.eval_on_selector_all(".js-plotly-plot", "els => els.filter(e => e.querySelector('.main-svg')).length")
        divs = page.eval_on_selector_all(".plotly-graph-div", "els => els.length")
        images = page.eval_on_selector_all("img", "els => els.map(e => e.complete && e.naturalWidth > 0)")
        html_rows = page.eval_on_selector_all("#per-class-table tbody tr", "rows => rows.length")
        browser.close()
    assert refused == []  # nothing but the file itself
    assert all(shown.values()), shown
    assert plots == divs >= 6  # per-class bars, curves, 2 confusion matrices, significance, calibration: all drawn
    # the legend, 2 images x (photo, truth, 2 runs), and each run's strip of its saved epochs (2 each)
    assert len(images) == 1 + 2 * 4 + 2 + 2 and all(images)
    assert html_rows == 2


def test_figures_as_svg_and_png(made, tmp_path):
    """Kaleido starts a Chromium: 5 to 12 s on a loaded 2-core machine, most of this test's time."""
    runs, _ = made
    if static.unavailable():
        pytest.skip(static.unavailable())
    curves = training_curves(tables.curves(Workspace.discover(runs), ["seg-a", "seg-b"]))  # the report's curves figure
    paths, reason = static.write_figures({"curves": curves}, tmp_path / "figs")
    assert reason is None and sorted(p.name for p in paths) == ["curves.png", "curves.svg"]
    root = ET.parse(tmp_path / "figs" / "curves.svg").getroot()
    assert root.tag.endswith("svg") and "seg-b" in ET.tostring(root, encoding="unicode")  # the legend's text is in it
    with Image.open(tmp_path / "figs" / "curves.png") as im:
        assert im.format == "PNG" and im.width == static.WIDTH * static.PNG_SCALE


def test_without_kaleido_the_reason_is_given(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "kaleido", None)  # import kaleido raises ImportError
    paths, reason = static.write_figures({"x": None}, tmp_path)
    assert paths == [] and "kaleido" in reason and not tmp_path.joinpath("x.svg").exists()
