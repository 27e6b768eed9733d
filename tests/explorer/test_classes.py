"""The views at many classes: which classes a confusion heatmap and a per-class chart show, the most confused
pairs, and legends of only the classes an image shows; all checked against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.explorer import tables
from core.explorer.classes import chart_classes, choose_classes, most_confused_pairs
from core.explorer.figures import confusion_heatmap
from core.explorer.legends import legend_html, present_classes

# rows: true class, columns: predicted. Pixels in the ground truth: 10, 6, 3, 29. Errors (missed + wrongly
# claimed): a 0 + 5, b 5 + 9, c 0 + 0, d 9 + 0.
CM = np.array([[10, 0, 0, 0], [5, 1, 0, 0], [0, 0, 3, 0], [0, 9, 0, 20]])
NAMES = ["a", "b", "c", "d"]


def test_choose_classes_by_frequency_and_by_error():
    assert choose_classes(CM, 2, "frequency") == [0, 3]  # 10 and 29 true pixels
    assert choose_classes(CM, 2, "error") == [1, 3]  # 14 and 9 errors
    assert choose_classes(CM, 1, "error") == [1]
    assert choose_classes(CM, 4, "error") == [0, 1, 2, 3]  # no more classes than k: all of them
    assert choose_classes(np.eye(4, dtype=int) * 5, 2) == [0, 1]  # ties go to the lower index


def test_choose_classes_says_what_is_wrong():
    with pytest.raises(ValueError, match="frequency or error"):
        choose_classes(CM, 2, "size")
    with pytest.raises(ValueError, match="square"):
        choose_classes(CM[:3], 2)
    with pytest.raises(ValueError, match="at least one class"):
        choose_classes(CM, 0)


def test_most_confused_pairs_cover_every_class_largest_first():
    pairs = most_confused_pairs(CM, NAMES, 5)
    assert pairs == [
        {"true": "d", "predicted": "b", "pixels": 9, "share": pytest.approx(9 / 29)},
        {"true": "b", "predicted": "a", "pixels": 5, "share": pytest.approx(5 / 6)},
    ]  # the diagonal and empty cells are never listed
    assert [p["pixels"] for p in most_confused_pairs(CM, NAMES, 1)] == [9]
    tied = np.array([[1, 0, 4], [0, 1, 0], [4, 0, 1]])
    assert [(p["true"], p["predicted"]) for p in most_confused_pairs(tied, ["x", "y", "z"], 2)] == [("x", "z"), ("z", "x")]
    with pytest.raises(ValueError, match="4 classes"):
        most_confused_pairs(CM[:3, :3], NAMES)


# two runs' scores of classes a..e; mean a .8, b .2, c .5, d none, e .4
SCORES = [[0.9, 0.1, 0.5, None, 0.3], [0.7, 0.3, math.nan, None, 0.5]]
FIVE = ["a", "b", "c", "d", "e"]


def test_chart_classes_top_and_bottom_all_or_chosen():
    assert chart_classes(FIVE, SCORES, top=1) == ([0, 1], "top and bottom 1 of 5 classes by score; 1 without a score left out")
    assert chart_classes(FIVE, SCORES, top=3) == ([0, 1, 2, 3, 4], "")  # up to 2 x top classes: all, in their order
    assert chart_classes(FIVE, SCORES, top=2)[0] == [0, 2, 4, 1]  # every scored class, best first
    assert chart_classes(FIVE, SCORES, top=1, chosen=["e", "a", "d"])[0] == [0, 4, 3]  # best first, unscored last
    with pytest.raises(ValueError, match="unknown classes 'zz'"):
        chart_classes(FIVE, SCORES, chosen=["zz"])
    with pytest.raises(ValueError, match="at least the top and bottom 1"):
        chart_classes(FIVE, SCORES, top=0)


def test_class_chart_keeps_each_series_aligned_with_its_classes():
    per_class = {"classes": FIVE, "labels": ["r1 @2", "r2 @3"], "runs": [{"scores": s} for s in SCORES]}
    shown, series, note = tables.class_chart(per_class, 1)
    assert shown == ["a", "b"] and series == [("r1 @2", [0.9, 0.1]), ("r2 @3", [0.7, 0.3])] and "top and bottom 1" in note


def test_confusion_heatmap_of_chosen_classes_normalises_by_the_whole_row():
    cm = np.array([[2, 2, 0], [0, 4, 0], [1, 1, 2]])
    hm = confusion_heatmap(cm, ["x", "y", "z"], shown=[0, 1]).data[0]
    assert list(hm.x) == ["x", "y"] and [list(r) for r in hm.z] == [[0.5, 0.5], [0.0, 1.0]]
    assert np.asarray(hm.customdata).tolist() == [[2, 2], [0, 4]] and list(hm.text[0]) == ["0.50", "0.50"]
    names = [f"class {i}" for i in range(40)]
    big = confusion_heatmap(np.eye(40, dtype=int), names, shown=list(range(30)))
    assert len(big.data[0].x) == 30 and big.data[0].text is None  # no cell text past 20 classes
    assert list(big.layout.xaxis.tickvals) == names[:30] and big.layout.xaxis.tickangle == -90  # every label, upright


def test_present_classes_and_their_legend():
    target = np.array([[0, 1], [255, 2]])
    preds = [np.array([[3, 3], [3, 9]]), np.array([[1, 1], [1, 1]])]  # 9 is not a class of the 5
    assert present_classes(target, preds, 5, 255) == [0, 1, 2, 3]
    assert present_classes(None, preds, 5, 255) == [1, 3]
    html = legend_html(["road", "<sky>", "car"], [(1, 2, 3), (4, 5, 6), (7, 8, 9)], [2, 1])
    assert html.count('class="legend-class"') == 2 and 'data-class="car"' in html and "&lt;sky&gt;" in html
    assert html.index("car") < html.index("&lt;sky&gt;") and "rgb(7,8,9)" in html


def test_measure_classes_cut_every_per_class_list_of_each_run():
    ok = {"run": "r", "epoch": 1, "classes": FIVE, "iou": SCORES[0], "boundary_iou": [0.1, 0.2, 0.3, 0.4, 0.5], "miou": 0.4}
    failed = {"run": "x", "epoch": 1, "classes": FIVE, "error": "boom"}
    table = {"view": {"kind": "per_class", "series": [["iou", "IoU"]]}, "runs": [ok, failed], "split": "val"}
    shown, note = tables.measure_classes(table, top=1)  # IoU .9, .1, .5, none, .3: the best a and the worst b
    assert shown["runs"][0] == {**ok, "classes": ["a", "b"], "iou": [0.9, 0.1], "boundary_iou": [0.1, 0.2]}
    assert shown["runs"][1] == failed and table["runs"][0] == ok and "top and bottom 1 of 5" in note
    binned = {**ok, "recall": [[1.0, None], [0.0, 0.2], [0.5, 0.5], [None, None], [0.3, 0.3]]}  # means 1, .1, .5, -, .3
    bins = {"view": {"kind": "per_class_bins", "series": [["recall", "recall"]]}, "runs": [binned]}
    assert tables.measure_classes(bins, top=1)[0]["runs"][0]["recall"] == [[1.0, None], [0.0, 0.2]]
    assert tables.measure_classes(bins, chosen=["e", "c"])[0]["runs"][0]["classes"] == ["c", "e"]
    reliability = {"view": {"kind": "reliability"}, "runs": [ok]}
    assert tables.measure_classes(reliability, top=1) == (reliability, "")
