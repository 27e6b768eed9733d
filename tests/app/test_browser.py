"""The explorer in a real browser (Debian's Chromium through Playwright): every tab opened, two runs
selected, an epoch slider moved, an image uploaded, a map point clicked; one screenshot per tab in
tests/output/screenshots/. Skipped when /usr/bin/chromium is absent (CI sets VE_REQUIRE_BROWSER=1 to fail instead)."""

from __future__ import annotations

import os

import pytest

from core import explorer as A
from tests.app_server import running_app
from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = ROOT / "tests" / "output" / "screenshots"
EXAMPLE = ROOT / "assets" / "examples" / "street_b.jpg"
TIMEOUT = 60_000  # ms; a busy 2-core machine

if not os.path.exists(CHROMIUM):
    if os.environ.get("VE_REQUIRE_BROWSER"):
        raise RuntimeError(f"{CHROMIUM} is missing and VE_REQUIRE_BROWSER is set")
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)
try:
    import playwright.sync_api as playwright
except ImportError:
    if os.environ.get("VE_REQUIRE_BROWSER"):
        raise RuntimeError("Playwright is not installed and VE_REQUIRE_BROWSER is set: pip install -r requirements-dev.txt")
    pytest.skip("playwright is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def page(explorer_runs, tmp_path_factory):
    A.clear_caches()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_app(explorer_runs, tmp_path_factory.mktemp("cache")) as (_, url):
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_page(viewport={"width": 1400, "height": 1000})
            pg.set_default_timeout(TIMEOUT)
            pg.goto(url)
            pg.get_by_role("tab", name="Compare models").wait_for()
            yield pg
            browser.close()


def loaded_images(page, selector: str) -> int:
    """How many <img> under ``selector`` have finished loading a non-empty picture."""
    return page.eval_on_selector_all(f"{selector} img", "els => els.filter(e => e.complete && e.naturalWidth > 0).length")


def wait_images(page, selector: str, n: int = 1) -> None:
    try:
        page.wait_for_function(
            "([sel, n]) => [...document.querySelectorAll(sel + ' img')]"
            ".filter(e => e.complete && e.naturalWidth > 0).length >= n",
            arg=[selector, n],
        )
    except Exception:
        page.screenshot(path=str(SHOTS / "failure.png"), full_page=True)  # what the page showed instead
        raise


def wait_plots(page, selector: str, n: int = 1) -> None:
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel + ' .js-plotly-plot').length >= n", arg=[selector, n])


def choose(page, label: str, option: str) -> None:
    """Pick an option of a dropdown, then click away (a multiselect list stays open otherwise)."""
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    page.locator("h1").first.click()


def test_compare_tab_two_runs_and_an_epoch_slider(page):
    page.get_by_role("tab", name="Compare models").click()
    wait_images(page, "#compare-gallery", 3)
    runs = page.locator("#compare-runs")
    runs.get_by_title("Clear").click()
    for name in ("seg-a", "seg-b"):
        choose(page, "Runs (up to 12)", name)
    page.wait_for_function("() => (document.querySelector('#slot-2')?.innerText || '').includes('seg-b')")
    page.wait_for_function("() => (document.querySelector('#compare-status')?.innerText || '').includes('seg-b')")
    wait_images(page, "#compare-gallery", 4)  # image, ground truth, two predictions
    # move slot 2's epoch (seg-b saves epochs 1 and 3) to 1 with its number box; release happens on blur
    box = page.locator("#slot-2-epoch input[type=number]")
    box.fill("1")
    box.blur()
    page.wait_for_function(
        "() => /seg-b\\s+1\\s/.test(document.querySelector('#compare-status')?.innerText || '')"
    )  # the table row
    assert "seg-a" in page.locator("#slot-1").inner_text()
    page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)


def test_metrics_tab_plots_and_table(page):
    page.get_by_role("tab", name="Metrics").click()
    wait_plots(page, "#metrics-classes")
    wait_plots(page, "#metrics-curves")
    wait_plots(page, "#metrics-heatmap")
    table = page.locator("#metrics-table")
    assert "seg-a" in table.inner_text() and "mIoU" in table.inner_text()
    assert "Road" in page.locator("#metrics-classes").inner_text()
    page.screenshot(path=str(SHOTS / "metrics.png"), full_page=True)


def test_confusion_tab_matrix_and_maps(page):
    page.get_by_role("tab", name="Confusion").click()
    wait_plots(page, "#confusion-matrix")
    wait_images(page, "#confusion-map")
    wait_images(page, "#confusion-maps", 3)  # image, cell, disagreement
    assert "Sky" in page.locator("#confusion-matrix").inner_text()
    page.locator("#confusion-map img").click(position={"x": 40, "y": 40})  # a pixel's true and predicted class
    page.wait_for_function("() => document.body.innerText.includes('Pixel (y=')")
    page.screenshot(path=str(SHOTS / "confusion.png"), full_page=True)


def test_embeddings_tab_map_and_a_clicked_point(page, explorer_runs):
    page.get_by_role("tab", name="Embeddings").click()
    choose(page, "Method", "pca")
    page.get_by_role("button", name="Build map A").click()
    wait_plots(page, "#emb-plot-a")
    page.wait_for_function("() => document.querySelector('#emb-plot-a .js-plotly-plot')?.data?.length > 0")
    # a click on a point (emitted as Plotly would) reaches the app through the page script
    page.evaluate(
        "() => document.querySelector('#emb-plot-a .js-plotly-plot').emit('plotly_click', {points: [{customdata: [3, 'x']}]})"
    )
    wait_images(page, "#emb-image-a")
    page.wait_for_function("() => document.body.innerText.includes('Point 3')")
    page.screenshot(path=str(SHOTS / "embeddings.png"), full_page=True)


def test_upload_tab_overlays_and_uncertainty(page):
    page.get_by_role("tab", name="Upload your own image").click()
    page.locator("#upload-file input[type=file]").set_input_files(str(EXAMPLE))
    wait_images(page, "#upload-gallery", 5)  # the image, then an overlay and an entropy map per segmentation run
    assert "uncertainty" in page.locator("#upload-gallery").inner_text()
    page.screenshot(path=str(SHOTS / "upload.png"), full_page=True)


def click_row(page, table: str, run: str) -> None:
    """Click the cell of run ``run`` in a table (the visible grid cell, not the hidden sizing row)."""
    page.locator(f"{table} [role=gridcell]").filter(has_text=run).first.click()


def table_text(page, table: str) -> str:
    return page.locator(table).inner_text()


def test_runs_tab_filters_and_opens_selected_runs_in_metrics_and_compare(page):
    page.get_by_role("tab", name="Runs").click()
    page.wait_for_function("() => (document.querySelector('#runs-table')?.innerText || '').includes('seg-b')")
    wait_plots(page, "#runs-parcoords")
    first_row = "() => document.querySelector('#runs-table [role=gridcell]')?.innerText"
    top = page.evaluate(first_row)
    page.get_by_label("Descending").click()  # a re-sort: the other end of the score comes first
    page.wait_for_function(f"() => ({first_row})() !== {top!r}")
    choose(page, "Range on column", "seed")
    box = page.locator("#runs-range-min textarea")
    box.fill("1")
    box.press("Enter")  # seed 1 and above: only seg-b
    page.wait_for_function("() => (document.querySelector('#runs-status')?.innerText || '').includes('1 shown')")
    assert "seg-a" not in table_text(page, "#runs-table")
    click_row(page, "#runs-table", "seg-b")
    page.wait_for_function("() => (document.querySelector('#runs-selected')?.innerText || '').includes('seg-b')")
    page.locator("#runs-open-metrics").click()  # the Metrics tab opens on the selection
    page.wait_for_function(
        "() => { const t = document.querySelector('#metrics-table')?.innerText || ''; "
        "return t.includes('seg-b') && !t.includes('seg-a'); }"
    )
    page.get_by_role("tab", name="Runs").click()
    box.fill("")
    box.press("Enter")
    page.wait_for_function("() => (document.querySelector('#runs-status')?.innerText || '').includes('4 shown')")
    click_row(page, "#runs-table", "seg-a")
    page.locator("#runs-open-compare").click()  # seg-b's dataset, both runs
    page.wait_for_function("() => /synthstreets[\\s\\S]*2 runs/.test(document.querySelector('#compare-status')?.innerText || '')")
    status = page.locator("#compare-status").inner_text()
    assert "seg-a" in status and "seg-b" in status
    page.get_by_role("tab", name="Metrics").click()
    page.locator("#metrics-runs input").fill("seg")  # run menus filter as you type
    page.wait_for_function("() => document.querySelectorAll('[role=option]').length === 2")
    assert sorted(o.split()[-1] for o in page.get_by_role("option").all_inner_texts()) == ["seg-a", "seg-b"]
    page.locator("h1").first.click()
    page.get_by_role("tab", name="Runs").click()
    page.screenshot(path=str(SHOTS / "runs-table.png"), full_page=True)


def test_a_new_run_appears_after_refresh_and_shows_in_metrics(page, explorer_runs):
    import shutil

    new = explorer_runs / "seg-new"
    shutil.copytree(explorer_runs / "seg-a", new)
    try:
        page.get_by_role("tab", name="Runs").click()
        page.locator("#refresh-runs").click()
        page.wait_for_function("() => (document.querySelector('#runs-table')?.innerText || '').includes('seg-new')")
        page.screenshot(path=str(SHOTS / "runs.png"), full_page=True)
        page.get_by_role("tab", name="Metrics").click()
        page.locator("#metrics-runs input").click()
        page.get_by_role("option", name="seg-new", exact=True).click()
        page.locator("h1").first.click()
        page.wait_for_function("() => (document.querySelector('#metrics-table')?.innerText || '').includes('seg-new')")
        wait_plots(page, "#metrics-curves")
        page.screenshot(path=str(SHOTS / "metrics-new-run.png"), full_page=True)
    finally:
        shutil.rmtree(new)


def test_a_tab_is_filled_when_first_opened_not_with_the_page(page, explorer_runs, tmp_path, monkeypatch):
    """The page fills the tab it shows; the Confusion tab's matrix is computed on its first opening only, and a
    second visit keeps what it shows. Gradio's chart code is loaded while the page is idle, before any chart.
    About 20 s: an app of its own, built after the Confusion handler is wrapped to count its calls."""
    import app.confusion_tab as confusion_tab

    calls = []

    def counted(*args, **kwargs):
        calls.append(args[1:])
        return real(*args, **kwargs)

    real = confusion_tab.confusion
    monkeypatch.setattr(confusion_tab, "confusion", counted)
    A.clear_caches()
    with running_app(explorer_runs, tmp_path / "cache") as (_, url):
        # a new page of the module's browser: one sync Playwright at a time (a second would find its event loop)
        page = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT)
        plotly = []  # Gradio's chart code, fetched once the page is idle although the Compare tab draws no chart
        page.on("requestfinished", lambda r: plotly.append(r.url) if "/assets/PlotlyPlot-" in r.url else None)
        page.goto(url)
        wait_images(page, "#compare-gallery", 3)  # the shown tab is filled
        assert calls == []
        for _ in range(100):
            if plotly:
                break
            page.wait_for_timeout(100)
        assert plotly and not page.locator(".js-plotly-plot").count()
        page.get_by_role("tab", name="Confusion").click()
        wait_plots(page, "#confusion-matrix")
        assert len(calls) == 1
        page.get_by_role("tab", name="Compare models").click()
        page.get_by_role("tab", name="Confusion").click()
        page.locator("#confusion-matrix").wait_for()
        page.wait_for_timeout(1000)  # what a second filling would have had time to start
        assert len(calls) == 1 and "Sky" in page.locator("#confusion-matrix").inner_text()
        page.close()
