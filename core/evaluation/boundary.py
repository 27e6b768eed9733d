"""Boundary IoU (Cheng et al., "Boundary IoU: Improving Object-Centric Image Segmentation Evaluation", 2021).

For a class c, G_c and P_c are its pixels in the labels and in the prediction, and G_c^d, P_c^d their
inner boundary bands: the pixels of the region within distance d of its contour (chessboard distance;
the image border counts as contour, as in detectron2's ``_mask_to_boundary``). Boundary IoU is
|G_c^d ∩ P_c^d| / |G_c^d ∪ P_c^d|, summed over a split before dividing, like region IoU. d is 2% of the
image diagonal (detectron2's ``SemSegEvaluator`` default), at least 1 pixel. Unlabelled pixels of the
ground truth are not counted in either band.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

DILATION_RATIO = 0.02


def band_width(height: int, width: int, ratio: float = DILATION_RATIO) -> int:
    """d in pixels: ``ratio`` of the image diagonal, rounded, at least 1."""
    return max(1, int(round(ratio * math.hypot(height, width))))


def inner_band(labels: np.ndarray, d: int) -> np.ndarray:
    """(H, W) bool: pixels within chessboard distance ``d`` of a pixel of another label or of the border.

    One max and one min filter over a (2d+1) window decide it for every class at once: a pixel is
    interior exactly when the whole window (inside the image) holds its own label.
    """
    lab = np.asarray(labels, dtype=np.int64)
    size = 2 * d + 1
    hi = ndimage.maximum_filter(lab, size=size, mode="constant", cval=np.iinfo(np.int64).max)
    lo = ndimage.minimum_filter(lab, size=size, mode="constant", cval=np.iinfo(np.int64).min)
    return (hi != lab) | (lo != lab)


def boundary_counts(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None, d: int | None = None
) -> np.ndarray:
    """(3, K) int64 per class for one image: |G^d ∩ P^d|, |G^d|, |P^d| (sum them over a split)."""
    pred, target = np.asarray(pred), np.asarray(target)
    k = num_classes
    d = band_width(*target.shape) if d is None else d
    valid = (target >= 0) & (target < k)
    if ignore_index is not None:
        valid &= target != ignore_index
    g = inner_band(target, d) & valid
    p = inner_band(pred, d) & valid & (pred >= 0) & (pred < k)
    both = g & p & (pred == target)
    return np.stack(
        [
            np.bincount(target[both], minlength=k)[:k],
            np.bincount(target[g], minlength=k)[:k],
            np.bincount(pred[p], minlength=k)[:k],
        ]
    ).astype(np.int64)


def boundary_iou(counts: np.ndarray) -> np.ndarray:
    """(K,) boundary IoU from summed ``boundary_counts``; NaN for a class with no boundary pixels at all."""
    inter, g, p = (np.asarray(c, dtype=np.float64) for c in counts)
    union = g + p - inter
    return np.divide(inter, union, out=np.full_like(union, np.nan), where=union > 0)
