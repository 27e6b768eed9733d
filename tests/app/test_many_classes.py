"""The app at 150 classes (ADE20K's count), in Chromium at 1600x1000, asserted in the DOM: the confusion heatmap
shows at most 30 classes with labels that do not overlap, the cell pickers and the confusion map come before
2,000 px, the most confused pairs cover every class, the Compare legend holds exactly the classes of the image,
and the per-class chart labels every bar it shows. Screenshots go to tests/output/screenshots/many-classes-*.png.

The fixture is cheap (tests/many_classes.py): a folder dataset of three 32x48 images with 150 classes, and two runs
logged with ``RunWriter`` whose validation confusion matrix is written by hand and whose model predicts one class
everywhere: run-a class 42, run-b class 140."""

from __future__ import annotations

import os

import numpy as np
import pytest

from core import explorer as A
from tests.app.test_browser import ARGS, CHROMIUM, SHOTS, TIMEOUT, wait_images, wait_plots
from tests.app_server import running_app
from tests.many_classes import MANY, make_runs

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api")

CLASSES = MANY.classes


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """One app and one browser for the module; the Compare tab open on image 0 of the 150-class split. About 17 s:
    two runs logged, the app built and started, Chromium launched, the page's first views drawn."""
    root = tmp_path_factory.mktemp("many")
    runs = make_runs(root, MANY)
    A.clear_caches()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_app(runs, root / "cache") as (_, url):
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_page(viewport={"width": 1600, "height": 1000})
            pg.set_default_timeout(TIMEOUT)
            pg.goto(url)
            pg.get_by_role("tab", name="Compare models").wait_for()
            yield pg
            browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"many-classes-{name}.png"), full_page=True)


def tick_boxes(page, selector: str, axis: str = "xtick") -> list[dict]:
    return page.eval_on_selector_all(
        f"{selector} .{axis} text",
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {text: e.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom}; })",
    )


def overlapping(boxes: list[dict]) -> list[tuple[str, str]]:
    """Pairs of labels whose boxes intersect (one pixel of slack for anti-aliasing)."""
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if (
                min(a["right"], b["right"]) - max(a["left"], b["left"]) > 1
                and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > 1
            ):
                out.append((a["text"], b["text"]))
    return out


def page_top(page, selector: str) -> float:
    return page.eval_on_selector(selector, "e => e.getBoundingClientRect().top + window.scrollY")


def test_compare_legend_holds_exactly_the_classes_of_the_image(page):
    wait_images(page, "#compare-gallery", 4)
    page.wait_for_function("() => document.querySelectorAll('#compare-legend .legend-class').length > 0")
    shown = page.eval_on_selector_all("#compare-legend .legend-class", "els => els.map(e => e.dataset.class)")
    # image 0: ground truth 3, 77 and 140; run-a predicts 42, run-b 140
    assert shown == [CLASSES[i] for i in (3, 42, 77, 140)]
    shot(page, "compare")


def test_confusion_tab_at_150_classes(page):
    """Waits for the tab's first matrix and image (about 10 s on a busy 2-core machine: two model passes)."""
    page.get_by_role("tab", name="Confusion").click()
    wait_plots(page, "#confusion-matrix")
    page.wait_for_function("() => document.querySelectorAll('#confusion-matrix .xtick text').length > 0")
    ticks = tick_boxes(page, "#confusion-matrix")
    cm = MANY.confusion()
    frequent = sorted(np.argsort(-cm.sum(1), kind="stable")[:30])  # the 30 classes with most true pixels
    assert [t["text"] for t in ticks] == [CLASSES[i] for i in frequent]
    assert overlapping(ticks) == [] and overlapping(tick_boxes(page, "#confusion-matrix", "ytick")) == []
    assert page.eval_on_selector_all("#confusion-matrix .textpoint", "els => els.length") == 0  # no cell text
    assert page_top(page, "#confusion-pickers") < 2000 and page_top(page, "#confusion-map") < 2000
    rows_of = "#confusion-pairs [role=row][data-index]"  # the grid's rows (a hidden table sizes the columns)
    page.wait_for_function("sel => document.querySelectorAll(sel).length >= 5", arg=rows_of)
    rows = page.eval_on_selector_all(
        rows_of, "rows => rows.map(r => [...r.querySelectorAll('[role=gridcell]')].map(c => c.innerText.trim()))"
    )
    expected = [  # all five mistakes, most pixels first: share = pixels / the true class's pixels
        (5, 7, 900, 900 / 1905),
        (100, 3, 700, 700 / 1800),
        (149, 0, 400, 400 / 1549),
        (7, 5, 300, 300 / 1307),
        (60, 61, 200, 200 / 1260),
    ]
    got = [(r[0], r[1], int(r[2].replace(",", "")), float(r[3])) for r in rows]
    assert got == [(CLASSES[t], CLASSES[p], n, pytest.approx(100 * s, abs=0.006)) for t, p, n, s in expected]
    shot(page, "confusion")
    page.locator("#confusion-by").get_by_label("error", exact=True).check()  # the classes with most errors instead
    page.wait_for_function(
        "n => [...document.querySelectorAll('#confusion-matrix .xtick text')].map(e => e.textContent).includes(n)",
        arg=CLASSES[61],
    )
    assert len(tick_boxes(page, "#confusion-matrix")) == 30


def test_per_class_chart_labels_every_bar(page):
    page.get_by_role("tab", name="Metrics").click()
    wait_plots(page, "#metrics-classes")
    page.wait_for_function("() => document.querySelectorAll('#metrics-classes .xtick text').length > 0")
    ticks = tick_boxes(page, "#metrics-classes")
    assert len(ticks) == 30 and overlapping(ticks) == []  # the best and worst 15 of 150, each labelled
    page.get_by_role("button", name="Boundary IoU").click()  # a measure's per-class chart: only the scored classes
    page.wait_for_function("() => (document.querySelector('#metrics-quality')?.innerText || '').includes('without a score')")
    scored = {c for present in MANY.image_classes for c in present} | set(
        MANY.predicts.values()
    )  # in a ground truth or predicted
    assert {t["text"] for t in tick_boxes(page, "#metrics-quality")} == {CLASSES[c] for c in scored}
    shot(page, "metrics")
