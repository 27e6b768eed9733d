"""The app on the runs shipped in checkpoints/ (the CamVid zoo on the shipped val sample, and the
synthstreets demo), in a real browser: every tab and every view has content, and each is screenshot into
tests/output/screenshots/shipped-*.png (the README's pictures come from these)."""

from __future__ import annotations

import os

import pytest

from core import explorer as A
from tests.app.test_browser import ARGS, CHROMIUM, SHOTS, TIMEOUT, wait_images, wait_plots
from tests.app_server import running_app
from tests.conftest import ROOT

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    A.clear_caches()
    SHOTS.mkdir(parents=True, exist_ok=True)
    # the shipped sample, as on a fresh clone, also where the full dataset is found: every view of this module is
    # then computed on 24 images (on CamVid's 101, the first run of the suite spent ~2 more minutes here)
    no_data = str(tmp_path_factory.mktemp("no-data"))
    with running_app(ROOT / "checkpoints", tmp_path_factory.mktemp("cache"), no_data) as (demo, url):
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_page(viewport={"width": 1500, "height": 1100})
            pg.set_default_timeout(TIMEOUT * 3)
            pg.goto(url)
            pg.get_by_role("tab", name="Compare models").wait_for()
            pg.demo = demo
            yield pg
            browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"shipped-{name}.png"), full_page=True)


def test_compare_opens_on_real_street_scenes(page):
    wait_images(page, "#compare-gallery", 4)
    status = page.locator("#compare-status").inner_text()
    if any(n.startswith("camvid/") for n in page.demo.explorer_context.ws.runs):
        assert "camvid" in status and ("val sample" in status or " val " in status)
    shot(page, "compare")
    page.get_by_text("Agreement and uncertainty").click()
    page.get_by_role("button", name="Show on this image").click()
    wait_images(page, "#compare-agreement", 2)
    shot(page, "compare-agreement")


def test_metrics_and_evaluation_views(page):
    page.get_by_role("tab", name="Metrics").click()
    wait_plots(page, "#metrics-curves")
    shot(page, "metrics")
    page.get_by_role("button", name="Boundary IoU").click()
    page.wait_for_function("() => (document.querySelector('#metrics-quality')?.innerText || '').includes('boundary')")
    shot(page, "boundary")
    page.get_by_role("button", name="Calibration").click()
    page.wait_for_function("() => (document.querySelector('#metrics-quality')?.innerText || '').includes('Reliability')")
    shot(page, "calibration")
    page.get_by_role("button", name="Paired bootstrap over images").click()
    page.wait_for_function("() => /mIoU/.test(document.querySelector('#metrics-verdict')?.innerText || '')")
    wait_plots(page, "#metrics-violin")
    shot(page, "significance")


def test_confusion_embeddings_upload_and_runs(page):
    page.get_by_role("tab", name="Confusion").click()
    wait_plots(page, "#confusion-matrix")
    wait_images(page, "#confusion-maps", 2)
    shot(page, "confusion")
    page.get_by_role("tab", name="Embeddings").click()
    page.get_by_role("button", name="Build map A").click()
    wait_plots(page, "#emb-plot-a")
    page.wait_for_function("() => document.querySelector('#emb-plot-a .js-plotly-plot')?.data?.length > 0")
    page.get_by_label("Second map side by side").check()  # map B: the pixels of a segmentation run
    page.get_by_role("button", name="Build map B").click()
    page.wait_for_function(
        "() => (document.querySelector('#emb-plot-b .js-plotly-plot')?.layout?.title?.text || '').includes('@')"
    )
    shot(page, "embeddings")
    page.get_by_role("tab", name="Upload your own image").click()
    page.locator("#upload-file input[type=file]").set_input_files(
        str(sorted((ROOT / "assets" / "camvid-val-sample" / "val").glob("*.jpg"))[5])
    )
    wait_images(page, "#upload-gallery", 3)
    shot(page, "upload")
    page.get_by_role("tab", name="Runs").click()
    page.wait_for_function("() => (document.querySelector('#runs-table')?.innerText || '').includes('finished')")
    shot(page, "runs")
