"""Evaluation beyond the anchors, each measure against a case computed by hand: boundary IoU, calibration,
the paired bootstrap, consensus, churn and segment recall by size."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from core.evaluation.agreement import churn, consensus, segment_recall, segment_recall_counts
from core.evaluation.boundary import band_width, boundary_counts, boundary_iou, inner_band
from core.evaluation.calibration import calibration_sums, confidence_error_map, confidence_sums, ece, per_class_ece, reliability
from core.evaluation.significance import paired_bootstrap, significant, verdict


def squares(shift: int) -> np.ndarray:
    m = np.zeros((20, 20), dtype=np.int64)
    m[5:15, 5 + shift : 15 + shift] = 1
    return m


def test_boundary_iou_of_two_shifted_squares():
    target, pred = squares(0), squares(2)  # a 10x10 square, and the same moved 2 px right
    assert band_width(20, 20) == 1  # 2% of the 28.3 px diagonal, at least 1
    counts = boundary_counts(pred, target, 2, None)
    # class 1: each square's ring is 36 px; they share the top and bottom rows over columns 7-14: 2 x 8 = 16
    assert counts[:, 1].tolist() == [16, 36, 36]
    assert boundary_iou(counts)[1] == pytest.approx(16 / 56)
    # region IoU for comparison: 80 / 120; the boundary sees the shift far more sharply
    assert 16 / 56 < 80 / 120


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("dtype", [np.int64, np.uint8])
def test_boundary_band_matches_a_per_class_erosion(d, dtype):
    rng = np.random.default_rng(d)
    labels = ndimage.zoom(rng.integers(0, 4, (6, 8)), 6, order=0).astype(dtype)  # blocky regions, 36 x 48
    labels[rng.random(labels.shape) < 0.01] = 3  # and single-pixel specks
    band = inner_band(labels, d)
    for c in range(4):  # the definition: pixels of the class that a d-fold 3x3 erosion (border = outside) removes
        mask = labels == c
        eroded = ndimage.binary_erosion(mask, structure=np.ones((3, 3)), iterations=d, border_value=0)
        np.testing.assert_array_equal(band & mask, mask & ~eroded)


def test_boundary_skips_unlabelled_pixels():
    target, pred = squares(0), squares(0)
    target[:, :3] = 255
    counts = boundary_counts(pred, target, 2, 255)
    assert boundary_iou(counts)[1] == 1.0
    # void pixels are in no band; like detectron2, the labels' band does run along the void columns (column 3)
    assert counts[1].sum() == (inner_band(target, 1) & (target != 255)).sum()


def test_ece_on_hand_made_confidences():
    probs = np.array([[0.95, 0.95, 0.45, 0.45], [0.05, 0.05, 0.55, 0.55]])  # (K=2, N=4)
    target = np.array([0, 1, 1, 1])  # right, wrong, right, right
    sums = calibration_sums(probs, target, 2, None)
    # bins (of 15): 0.95 -> 14, 0.55 -> 8. Bin 14: acc 0.5, conf 0.95; bin 8: acc 1, conf 0.55.
    assert ece(sums) == pytest.approx(0.5 * 0.45 + 0.5 * 0.45)
    assert per_class_ece(sums) == pytest.approx([0.45, 0.45])
    r = reliability(sums)
    assert (
        r["count"][14] == 2
        and r["accuracy"][14] == 0.5
        and r["confidence"][8] == pytest.approx(0.55)
        and np.isnan(r["accuracy"][0])
    )
    perfect = calibration_sums(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]), 2, None)
    assert ece(perfect) == 0.0
    # float32 maps with the predicted labels passed in (as the measure does): the same sums, ignored pixels out
    maps = np.random.default_rng(0).dirichlet(np.ones(3), size=(4, 5)).transpose(2, 0, 1).astype(np.float32)
    labels = np.random.default_rng(1).integers(0, 4, (4, 5))  # 3 = ignore
    given = calibration_sums(maps, labels, 3, 3, pred=maps.argmax(0))
    np.testing.assert_allclose(given, calibration_sums(maps.astype(np.float64), labels, 3, 3), rtol=1e-6)
    assert given[..., 0].sum() == (labels != 3).sum()


def test_confidence_sums_of_hand_made_pixels():
    # scored: pixels 0-2; pixel 3 predicts no class (5 of K=2), pixel 4 is unlabelled (255)
    pred, target = np.array([[0, 1, 1, 5, 0]]), np.array([[0, 1, 0, 1, 255]])
    conf = np.array([[1.0, 0.2, 0.5, 0.9, 0.7]], dtype=np.float32)
    sums = confidence_sums(conf, pred, target, 2, 255)
    want = np.zeros((2, 15, 3))
    want[0, 14] = [1, 1.0, 1]  # 1.0 goes to the last bin; right
    want[1, 3] = [1, float(np.float32(0.2)), 1]  # 0.2 x 15 = 3: bin 3; right; the float32 value summed in float64
    want[1, 7] = [1, 0.5, 0]  # 7.5: bin 7; wrong
    np.testing.assert_array_equal(sums, want)


def test_confidence_error_categories():
    probs = np.array([[[0.99, 0.5, 0.5, 0.99]], [[0.01, 0.5, 0.5, 0.01]]])  # (2, 1, 4)
    target = np.array([[0, 0, 1, 1]])
    # sure-right, unsure (ties: entropy 1) right by argmax, unsure wrong, sure wrong
    assert confidence_error_map(probs, target, None).tolist() == [[0, 1, 2, 3]]


def test_bootstrap_interval_contains_the_difference_and_excludes_zero_when_one_is_better():
    rng = np.random.default_rng(1)
    n, k = 60, 3

    def per_image(accuracy: float) -> np.ndarray:
        cm = np.zeros((n, k, k), dtype=np.int64)
        for i in range(n):
            for c in range(k):
                total = 100
                right = rng.binomial(total, accuracy)
                cm[i, c, c] = right
                cm[i, c, (c + 1) % k] = total - right
        return cm

    good, bad = per_image(0.9), per_image(0.6)
    r = paired_bootstrap(good, bad, resamples=1000, seed=0)
    assert r["interval"][0] <= r["difference"] <= r["interval"][1] and significant(r["interval"]) and r["difference"] > 0.3
    assert all(significant(ci) for ci in r["class_interval"])
    same = paired_bootstrap(per_image(0.8), per_image(0.8), resamples=1000, seed=0)  # two equally good models
    assert not significant(same["interval"]) and same["interval"][0] < 0 < same["interval"][1]
    text = verdict(r, "A", "B", ["x", "y", "z"])
    assert text.startswith("A beats B by") and "95% CI" in text
    assert paired_bootstrap(good, bad, seed=0)["interval"] == r["interval"]  # seeded: reproducible


def test_consensus_counts():
    target = np.array([[0, 1, 2], [2, 9, 1]])
    preds = [np.array([[0, 1, 0], [2, 0, 0]]), np.array([[0, 0, 0], [2, 1, 0]]), np.array([[0, 1, 1], [0, 2, 0]])]
    right, none = consensus(preds, target, 3, 9)
    assert right.tolist() == [[3, 2, 0], [2, 255, 0]]
    assert none.tolist() == [0, 1, 1]  # the 1 at (1, 2) and the 2 at (0, 2): nobody gets them


def test_churn_counts():
    before = np.array([[0, 1, 1], [2, 2, 0]])
    after = np.array([[0, 2, 1], [1, 2, 1]])
    target = np.array([[0, 2, 1], [1, 255, 0]])
    changed, counts, fraction = churn(before, after, target, 3, 255)
    assert changed.sum() == 3 and counts.tolist() == [1, 1, 1]  # by true class: 2 at (0,1), 1 at (1,0), 0 at (1,2)
    assert fraction == pytest.approx(3 / 5)
    _, by_new, _ = churn(before, after, None, 3, None)
    assert by_new.tolist() == [0, 2, 1]


def test_segment_recall_by_size_bins():
    target = np.zeros((100, 100), dtype=np.int64)  # 10,000 px: small < 10, medium 10-99, large >= 100
    target[0, 0:5] = 1  # small, 5 px
    target[20:25, 20:30] = 1  # medium, 50 px
    target[60:70, 60:80] = 1  # large, 200 px
    pred = np.zeros_like(target)
    pred[0, 0:2] = 1  # 2 of 5: missed
    pred[20:25, 20:30] = 1  # all of it
    pred[60:70, 60:70] = 1  # half of it: found
    counts = segment_recall_counts(pred, target, 2, None)
    assert counts[1].tolist() == [[0, 1], [1, 1], [1, 1]]
    assert segment_recall(counts)[1].tolist() == [0.0, 1.0, 1.0]
    assert counts[0, 2].tolist() == [1, 1]  # the background: one large segment, found


def test_segment_counts_are_the_same_on_compact_labels():
    rng = np.random.default_rng(3)
    target = ndimage.zoom(rng.integers(0, 5, (8, 10)), 5, order=0)  # (40, 50), classes 0-4
    target[rng.random(target.shape) < 0.05] = 255  # scattered void
    pred = np.where(rng.random(target.shape) < 0.2, rng.integers(0, 5, target.shape), target)
    wide = segment_recall_counts(pred, target, 5, 255)
    np.testing.assert_array_equal(segment_recall_counts(pred.astype(np.uint8), target.astype(np.uint8), 5, 255), wide)
    for c in range(5):  # each class's segments by hand: 8-connected components of its pixels
        comps, n = ndimage.label(target == c, structure=np.ones((3, 3)))
        assert wide[c].sum(0)[1] == n
    # beyond 255 classes (labelled in int32): classes 0-4 moved to 295-299 count the same segments
    many = segment_recall_counts(pred + 295, np.where(target == 255, 255, target + 295), 300, 255)
    np.testing.assert_array_equal(many[295:], wide)
    assert not many[:295].any()
    # classes 251-255 of 300 given as uint8 (class 255 is a class here, not void; void is class 0): the same segments
    top, top_pred = np.where(target == 255, 0, target + 251), pred + 251
    for dtype in (np.uint8, np.int64):
        edge = segment_recall_counts(top_pred.astype(dtype), top.astype(dtype), 300, None)
        np.testing.assert_array_equal(edge[251:256], wide)


def test_calibration_from_top_probabilities_equals_from_the_maps():
    rng = np.random.default_rng(4)
    probs = rng.dirichlet(np.ones(3), size=200).T.astype(np.float32)  # (K=3, N=200)
    target = rng.integers(0, 3, 200)
    target[:10] = 255
    np.testing.assert_array_equal(
        confidence_sums(probs.max(0), probs.argmax(0), target, 3, 255), calibration_sums(probs, target, 3, 255)
    )
