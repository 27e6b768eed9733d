"""Scores and error maps of one image: pure functions of a prediction and its label map.

Beside ``core.evaluation.metrics`` (which scores a whole split from one confusion matrix): pixel accuracy and
mIoU of one image, the classes present, the pixels of a confusion cell, the most frequent mistakes,
and the agreement of two predictions. Label maps are (H, W) integer arrays; a value outside [0, K)
or equal to ``ignore_index`` is unlabelled and never counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def valid_pixels(target: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    """(H, W) bool: the labelled pixels."""
    keep = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        keep &= target != ignore_index
    return keep


def scored_pixels(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    """(H, W) bool: the labelled pixels whose prediction is a class (what a confusion matrix counts)."""
    pred = np.asarray(pred)
    keep = valid_pixels(target, num_classes, ignore_index) & (pred < num_classes)
    return keep & (pred >= 0) if pred.dtype.kind == "i" else keep  # unsigned labels skip the test


def image_confusion(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    """(K, K) int64 counts of one image, rows = true class, over ``scored_pixels`` (no int64 copies of the maps)."""
    pred, target = np.asarray(pred), np.asarray(target)
    keep = scored_pixels(pred, target, num_classes, ignore_index)
    cells = target[keep].astype(np.intp) * num_classes + pred[keep]  # (m,)
    return np.bincount(cells, minlength=num_classes * num_classes).reshape(num_classes, num_classes).astype(np.int64)


def image_scores(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None) -> dict[str, float]:
    """Pixel accuracy and mIoU of one image, as ``core.evaluation.metrics.per_image_scores`` computes them, from
    its confusion matrix (~4x quicker than the torch path at 2048x1024)."""
    cm = image_confusion(pred, target, num_classes, ignore_index)  # (K, K)
    n = int(cm.sum())
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp  # (K,)
    iou = tp[union > 0] / union[union > 0]
    return {"pixel_acc": tp.sum() / n if n else math.nan, "miou": float(iou.mean()) if iou.size else math.nan}


def wrong_pixels(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None) -> int:
    """Labelled pixels whose prediction differs from the label."""
    return int((valid_pixels(target, num_classes, ignore_index) & (np.asarray(pred) != target)).sum())


@dataclass
class ClassPresence:
    """Classes in the ground truth and in a prediction, and how they differ (sorted class indices)."""

    truth: list[int]
    predicted: list[int]

    @property
    def missing(self) -> list[int]:
        return [c for c in self.truth if c not in self.predicted]

    @property
    def extra(self) -> list[int]:
        return [c for c in self.predicted if c not in self.truth]


def class_presence(pred: np.ndarray, target: np.ndarray | None, num_classes: int, ignore_index: int | None) -> ClassPresence:
    """Which classes an image contains and which the model predicted (on labelled pixels, if labels exist)."""
    if target is None:
        return ClassPresence([], _present(np.asarray(pred).ravel(), num_classes))
    keep = valid_pixels(target, num_classes, ignore_index)
    truth = _present(np.asarray(target)[keep], num_classes)
    return ClassPresence(truth, _present(np.asarray(pred)[keep], num_classes))


def _present(labels: np.ndarray, num_classes: int) -> list[int]:
    """The classes 0..K-1 among ``labels``, sorted (a count per class: several times faster than np.unique on a
    large image); other values are left out."""
    labels = labels[(labels >= 0) & (labels < num_classes)] if labels.dtype.kind == "i" else labels[labels < num_classes]
    return [int(c) for c in np.flatnonzero(np.bincount(labels.astype(np.intp, copy=False), minlength=num_classes))]


def cell_mask(target: np.ndarray, pred: np.ndarray, true_class: int, pred_class: int) -> np.ndarray:
    """(H, W) bool: exactly the pixels of confusion-matrix cell (true = a, predicted = b)."""
    return (np.asarray(target) == true_class) & (np.asarray(pred) == pred_class)


def error_pairs(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None, limit: int = 5
) -> list[tuple[int, int, int]]:
    """The most frequent (true, predicted, pixels) mistakes in one image."""
    keep = valid_pixels(target, num_classes, ignore_index) & (pred != target)
    idx = target[keep].astype(np.int64) * num_classes + pred[keep].astype(np.int64)
    counts = np.bincount(idx, minlength=num_classes * num_classes)
    order = np.argsort(-counts, kind="stable")[:limit]
    return [(int(i) // num_classes, int(i) % num_classes, int(counts[i])) for i in order if counts[i] > 0]


def worst_cell(cm: np.ndarray) -> tuple[int, int]:
    """(true, predicted) of the largest off-diagonal cell of a confusion matrix: the first mistake worth a look."""
    off = np.asarray(cm, dtype=np.float64).copy()
    if off.shape[0] < 2:
        return 0, 0
    np.fill_diagonal(off, -1)
    a, b = np.unravel_index(int(off.argmax()), off.shape)
    return int(a), int(b)


def disagreement(
    target: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, num_classes: int, ignore_index: int | None
) -> tuple[np.ndarray, list[int]]:
    """Categories of each pixel for two predictions, and the pixel count of each category.

    0 = both right, 1 = A right and B wrong, 2 = B right and A wrong, 3 = both wrong;
    unlabelled pixels are 255 and not counted.
    """
    a_ok, b_ok = pred_a == target, pred_b == target
    cat = np.full(target.shape, 255, dtype=np.uint8)
    keep = valid_pixels(target, num_classes, ignore_index)
    cat[keep & a_ok & b_ok] = 0
    cat[keep & a_ok & ~b_ok] = 1
    cat[keep & ~a_ok & b_ok] = 2
    cat[keep & ~a_ok & ~b_ok] = 3
    counts = np.bincount(cat[keep], minlength=4)[:4]
    return cat, [int(c) for c in counts]
