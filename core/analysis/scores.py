"""Per-image scores and error analysis from cached predictions: pixel accuracy and mIoU (core.metrics),
classes present, confusion-cell pixels, disagreement of two runs, whole-split statistics, hardest images."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from core.analysis.cache import SPLIT_STATS
from core.analysis.predictions import Member, Progress, _member_key, predict_items
from core.analysis.workspace import DatasetRef
from core.metrics import nanmean, per_image_scores


def image_scores(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None) -> dict[str, float]:
    """Pixel accuracy and mIoU of one image (``core.metrics.per_image_scores``)."""
    s = per_image_scores(torch.from_numpy(np.asarray(pred, dtype=np.int64))[None],
                         torch.from_numpy(np.asarray(target, dtype=np.int64))[None], num_classes, ignore_index)  # fmt: skip
    return {"pixel_acc": float(s["pixel_acc"][0]), "miou": float(s["miou"][0])}


def valid_pixels(target: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    keep = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        keep &= target != ignore_index
    return keep


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
        p = np.asarray(pred)
        return ClassPresence([], sorted(int(c) for c in np.unique(p) if 0 <= c < num_classes))
    keep = valid_pixels(target, num_classes, ignore_index)
    truth = sorted(int(c) for c in np.unique(target[keep]))
    predicted = sorted(int(c) for c in np.unique(np.asarray(pred)[keep]) if 0 <= c < num_classes)
    return ClassPresence(truth, predicted)


def cell_mask(target: np.ndarray, pred: np.ndarray, true_class: int, pred_class: int) -> np.ndarray:
    """(H, W) bool: exactly the pixels of confusion-matrix cell (true = a, predicted = b)."""
    return (np.asarray(target) == true_class) & (np.asarray(pred) == pred_class)


def error_pairs(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None, limit: int = 5) -> list[tuple[int, int, int]]:
    """The most frequent (true, predicted, pixels) mistakes in one image."""
    keep = valid_pixels(target, num_classes, ignore_index) & (pred != target)
    idx = target[keep].astype(np.int64) * num_classes + pred[keep].astype(np.int64)
    counts = np.bincount(idx, minlength=num_classes * num_classes)
    order = np.argsort(-counts, kind="stable")[:limit]
    return [(int(i) // num_classes, int(i) % num_classes, int(counts[i])) for i in order if counts[i] > 0]


def disagreement(target: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, num_classes: int,
                 ignore_index: int | None) -> tuple[np.ndarray, list[int]]:  # fmt: skip
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


# --- whole-split statistics ----------------------------------------------------------------------------
@dataclass
class SplitStats:
    """Per-image scores of one model over a split, from its cached predictions.

    Segmentation: ``accuracy`` is pixel accuracy and ``score`` the image's mIoU (NaN without labelled
    pixels). Classification: ``accuracy`` is 1 or 0 (top-1 right) and ``score`` the probability
    given to the true class. ``confusion`` holds each image's (K, K) counts, rows = true class.
    """

    accuracy: np.ndarray  # (N,)
    score: np.ndarray  # (N,)
    confusion: np.ndarray  # (N, K, K) int32


def split_stats(members: Sequence[Member], ref: DatasetRef, *, progress: Progress | None = None) -> SplitStats:
    """Per-image accuracy, score and confusion matrix of a model (or ensemble) over a whole split."""
    key = ("stats", _member_key(members), ref)
    hit = SPLIT_STATS.get(key)
    if hit is not None:
        return hit
    run = members[0][0]
    k, ignore = run.num_classes, run.ignore_index
    n = ref.size()
    acc, score = np.full(n, np.nan), np.full(n, np.nan)
    conf = np.zeros((n, k, k), dtype=np.int32)
    step = 16
    for start in range(0, n, step):
        idx = list(range(start, min(n, start + step)))
        preds = predict_items(members, ref, idx)
        for i, p in zip(idx, preds):
            target = ref.load(i)[1]
            if run.task == "segmentation":
                s = image_scores(p, target, k, ignore)
                acc[i], score[i] = s["pixel_acc"], s["miou"]
                keep = valid_pixels(target, k, ignore)
                conf[i] = np.bincount(target[keep].astype(np.int64) * k + p[keep], minlength=k * k).reshape(k, k)
            elif 0 <= target < k:
                top = int(np.argmax(p.probs))
                acc[i], score[i] = float(top == target), float(p.probs[target])
                conf[i, target, top] = 1
        if progress is not None:
            what = "the ensemble" if len(members) > 1 else run.name
            progress((idx[-1] + 1) / n, f"scoring {what} on {n} images")
    stats = SplitStats(acc, score, conf)
    SPLIT_STATS.put(key, stats)
    return stats


def hardest_images(models: Sequence[Sequence[Member]], ref: DatasetRef, *, progress: Progress | None = None) -> list[tuple[int, float]]:
    """Images of a split sorted from hardest to easiest: per-image score (mIoU, or the probability of
    the true class) averaged over ``models``. Images without a score for any model come last.
    """
    per_model = []
    for j, members in enumerate(models):
        sub = None if progress is None else (lambda f, m, j=j: progress((j + f) / len(models), m))
        per_model.append(split_stats(members, ref, progress=sub).score)
    mean = nanmean(np.stack(per_model), axis=0)  # (N,)
    mean = np.atleast_1d(mean)
    order = sorted(range(len(mean)), key=lambda i: (math.isnan(mean[i]), mean[i], i))
    return [(i, float(mean[i])) for i in order]


def top_images_for_cell(stats: SplitStats, true_class: int, pred_class: int, limit: int = 12) -> list[tuple[int, int]]:
    """(image index, pixel count) of the images with the most pixels in cell (a, b), most first."""
    counts = stats.confusion[:, true_class, pred_class]
    order = np.argsort(-counts, kind="stable")[:limit]
    return [(int(i), int(counts[i])) for i in order if counts[i] > 0]
