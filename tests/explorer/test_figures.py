"""app/figures.py: each Plotly builder on small inputs (trace names, values, hover data)."""

import numpy as np
import plotly.graph_objects as go
import pytest

from core.explorer import figures as F

CLASSES = ["Road", "Sky", "Car"]
PALETTE = [(128, 64, 128), (128, 128, 128), (64, 0, 128)]


def test_topk_bars_groups_models_over_the_union_of_their_classes():
    fig = F.topk_bars([("a", [("Car", 0.7), ("Road", 0.2)]), ("b", [("Sky", 0.6), ("Car", 0.3)])], true_label="Car")
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[0].x) == ["Car", "Sky", "Road"]  # ordered by highest probability
    assert list(fig.data[0].y) == [0.7, None, 0.2] and list(fig.data[1].y) == [0.3, 0.6, None]
    assert "true class: Car" in fig.layout.title.text


def test_class_score_bars_keep_missing_values_empty():
    fig = F.class_score_bars(CLASSES, [("run1 @3", [0.5, None, float("nan")]), ("run2 @1", [0.1, 0.2, 0.3])])
    assert len(fig.data) == 2 and list(fig.data[0].x) == CLASSES
    assert list(fig.data[0].y) == [0.5, None, None]
    assert fig.layout.barmode == "group"


def test_class_epoch_heatmap_axes():
    values = np.array([[0.1, 0.2], [np.nan, 0.4], [0.5, 0.6]])
    fig = F.class_epoch_heatmap(CLASSES, [1, 2], values)
    hm = fig.data[0]
    assert list(hm.y) == CLASSES and list(hm.x) == ["1", "2"]
    assert hm.z[1][0] is None and hm.z[2][1] == pytest.approx(0.6)


def test_training_curves_mark_best_epoch_and_early_stop():
    run = dict(
        name="r",
        epochs=[1, 2, 3],
        train_loss=[3, 2, 1],
        val_loss=[3.5, 2.5, 2.6],
        metric=[0.1, 0.4, 0.3],
        metric_name="mIoU",
        best_epoch=2,
        stopped_epoch=3,
    )
    fig = F.training_curves([run])
    names = [t.name for t in fig.data]
    assert names == ["r train", "r", "r mIoU", "r best epoch"]
    # one legend entry per run (its val loss); a click hides or shows every trace of its group
    assert [t.showlegend for t in fig.data] == [False, None, False, False] and {t.legendgroup for t in fig.data} == {"r"}
    assert (fig.layout.legend.itemclick, fig.layout.legend.groupclick) == ("toggle", "togglegroup")
    star = fig.data[3]
    assert list(star.x) == [2] and list(star.y) == [0.4] and star.marker.symbol == "star"
    vlines = [s for s in fig.layout.shapes if s.x0 == 3 and s.x1 == 3]
    assert len(vlines) == 2  # on both panels
    assert any("early stop" in a.text for a in fig.layout.annotations)
    plain = F.training_curves([{**run, "stopped_epoch": None}])
    assert not plain.layout.shapes


def test_confusion_heatmap_is_row_normalised_with_counts_on_hover():
    cm = np.array([[8, 2, 0], [1, 3, 0], [0, 0, 0]])
    fig = F.confusion_heatmap(cm, CLASSES)
    hm = fig.data[0]
    assert list(hm.x) == CLASSES and list(hm.y) == CLASSES
    assert hm.z[0] == pytest.approx([0.8, 0.2, 0.0]) and hm.z[1] == pytest.approx([0.25, 0.75, 0.0])
    assert hm.z[2] == [None, None, None]  # a class without pixels has no recall
    np.testing.assert_array_equal(np.asarray(hm.customdata), cm)
    assert "pixels" in hm.hovertemplate


def test_embedding_scatter_one_webgl_trace_per_class_and_symbols_for_errors():
    coords = np.arange(12, dtype=float).reshape(6, 2)
    labels = np.array([0, 0, 1, 1, 1, 2])
    preds = np.array([0, 1, 1, 1, 0, 2])
    fig = F.embedding_scatter(coords, labels, preds, CLASSES, PALETTE, selected=4, extra={"xy": (1.0, 2.0), "neighbors": [0, 5]})
    per_class = [t for t in fig.data if t.legendgroup in CLASSES]
    assert [t.legendgroup for t in per_class] == CLASSES and all(isinstance(t, go.Scattergl) for t in per_class)
    road = per_class[0]
    assert list(road.marker.symbol) == ["circle", "x"]
    assert [row[0] for row in road.customdata] == [0, 1] and [row[1] for row in road.customdata] == ["Road", "Sky"]
    assert road.marker.color == "rgb(128,64,128)"
    names = [t.name for t in fig.data]
    assert "point 4" in names and "nearest training images" in names and "your image" in names


def test_empty_figure_shows_its_message():
    fig = F.empty_figure("Nothing here")
    assert fig.layout.annotations[0].text == "Nothing here" and not fig.data
    assert F.rgb((1, 2, 3)) == "rgb(1,2,3)"
    colors = [F.run_color(i) for i in range(len(F.RUN_COLORS) + 1)]
    assert len(set(colors[:-1])) == len(F.RUN_COLORS) > 8 and colors[-1] == colors[0]  # distinct, then cycling


def test_training_curves_of_many_runs_keep_a_scrolling_legend_column():
    runs = [
        dict(
            name=f"r{i}", epochs=[1, 2], train_loss=[2, 1], val_loss=[2, 1.5], metric=[0.1, 0.2], metric_name="mIoU", best_epoch=2
        )
        for i in range(120)
    ]
    fig = F.training_curves(runs)
    assert sum(1 for t in fig.data if t.showlegend is not False) == 120 and fig.layout.legend.orientation is None
    assert fig.layout.legend.itemdoubleclick == "toggleothers"
    assert {t.mode for t in fig.data} == {"lines", "markers"}  # no marker per epoch, only the best-epoch stars


def test_class_score_heatmap_has_a_row_per_run():
    fig = F.class_score_heatmap(CLASSES, [("a @3", [0.5, None, 0.2]), ("b @1", [0.1, 0.2, float("nan")])], metric="IoU")
    hm = fig.data[0]
    assert list(hm.x) == CLASSES and list(hm.y) == ["a @3", "b @1"] and hm.z[0][1] is None and hm.z[1][2] is None


def test_parallel_coordinates_from_sweep_data():
    data = {
        "score": "mIoU",
        "runs": ["a", "b"],
        "color": [0.4, 0.5],
        "dimensions": [
            {"label": "lr (log)", "values": [-3, -2], "tickvals": [-3, -2], "ticktext": ["0.001", "0.01"]},
            {"label": "mIoU", "values": [0.4, 0.5]},
        ],
        "unscored": ["c"],
    }
    fig = F.parallel_coordinates(data)
    pc = fig.data[0]
    assert pc.type == "parcoords" and [d.label for d in pc.dimensions] == ["lr (log)", "mIoU"]
    assert list(pc.dimensions[0].ticktext) == ["0.001", "0.01"] and list(pc.line.color) == [0.4, 0.5]
    assert "1 without a score left out" in fig.layout.title.text
    empty = F.parallel_coordinates({**data, "runs": [], "dimensions": []})
    assert "no run has a score yet" in empty.layout.annotations[0].text
