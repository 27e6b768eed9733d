"""The app at 150 classes (ADE20K's count), in Chromium at 1600x1000, asserted in the DOM: the confusion heatmap
shows at most 30 classes with labels that do not overlap, the cell pickers and the confusion map come before
2,000 px, the most confused pairs cover every class, the Compare legend holds exactly the classes of the image,
and the per-class chart labels every bar it shows. Screenshots go to tests/output/screenshots/many-classes-*.png.

The fixture is cheap: a folder dataset of three 32x48 images with 150 classes, and two runs logged with
``RunWriter`` whose validation confusion matrix is written by hand and whose model predicts one class everywhere
(a zero classifier with a one-hot bias)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from core import explorer as A
from core.models import get_model
from core.train.writer import RunWriter
from tests.app.test_browser import ARGS, CHROMIUM, SHOTS, TIMEOUT, wait_images, wait_plots
from tests.app_server import running_app

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api")

K = 150
WORDS = ["wall", "chest of drawers", "sky", "swimming pool", "traffic light", "car", "kitchen island", "person"]
CLASSES = [f"{i:03d} {WORDS[i % len(WORDS)]}" for i in range(K)]
IMAGE_CLASSES = [(3, 77, 140), (5, 7), (0, 100, 149)]  # the classes in each image's ground truth, in stripes
PREDICTS = {"run-a": 42, "run-b": 140}  # the class each run predicts everywhere
# the recorded confusion matrix: 1000 + i pixels of class i right, and five mistakes
MISTAKES = {(5, 7): 900, (100, 3): 700, (149, 0): 400, (7, 5): 300, (60, 61): 200}


def confusion() -> np.ndarray:
    cm = np.diag(1000 + np.arange(K))  # (K, K)
    for (t, p), n in MISTAKES.items():
        cm[t, p] = n
    return cm


def write_dataset(root) -> None:
    """root/classes.json and three 32x48 images with their index masks in train/ and val/."""
    root.mkdir(parents=True)
    entries = [{"name": n, "index": i} for i, n in enumerate(CLASSES)]
    (root / "classes.json").write_text(json.dumps({"classes": entries, "ignore_index": 255}))
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for k, present in enumerate(IMAGE_CLASSES):
            mask = np.full((32, 48), 255, dtype=np.uint8)  # a void border
            for j, c in enumerate(present):
                mask[2:30, 2 + 15 * j : 2 + 15 * (j + 1)] = c
            Image.fromarray(mask).save(root / split / "masks" / f"im{k}.png")
            Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(root / split / "images" / f"im{k}.png")


def write_run(out, data_root, predicted: int) -> None:
    """Two epochs of a U-Net whose classifier is zero with a one-hot bias (it predicts ``predicted`` everywhere)."""
    torch.manual_seed(0)
    model = get_model("unet_simple", num_classes=K, base_width=4)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.bias[predicted] = 1.0
    palette = _palette()
    with RunWriter(
        out,
        model=model,
        arch="unet_simple",
        model_args={"base_width": 4},
        classes=CLASSES,
        palette=palette,
        ignore_index=255,
        input_size=(32, 48),
        dataset="folder",
        data_root=str(data_root),
    ) as w:
        for epoch in (1, 2):
            w.log_epoch(epoch, train_loss=1.0 / epoch, confusion=confusion())


def _palette() -> list[tuple[int, int, int]]:
    from core.data.base import default_palette

    return [tuple(int(v) for v in c) for c in default_palette(K)]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """One app and one browser for the module; the Compare tab open on image 0 of the 150-class split. About 17 s:
    two runs logged, the app built and started, Chromium launched, the page's first views drawn."""
    root = tmp_path_factory.mktemp("many")
    write_dataset(root / "data")
    for name, c in PREDICTS.items():
        write_run(root / "runs" / name, root / "data", c)
    A.clear_caches()
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_app(root / "runs", root / "cache") as (_, url):
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
    cm = confusion()
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
    scored = {c for present in IMAGE_CLASSES for c in present} | set(PREDICTS.values())  # in a ground truth or predicted
    assert {t["text"] for t in tick_boxes(page, "#metrics-quality")} == {CLASSES[c] for c in scored}
    shot(page, "metrics")
