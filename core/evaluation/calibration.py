"""Calibration: is a model as often right as it is confident? Expected calibration error (ECE) with
equal-width confidence bins (15, as Guo et al. 2017), a reliability diagram, and per-class ECE.

Confidence is the top softmax probability, over valid pixels (segmentation) or images (classification).
Per-class ECE groups the predictions by the class predicted: "when it says Pole with 0.9, is it a Pole
9 times in 10?". Everything is accumulated as sums per bin, so splits of any size stream through.
"""

from __future__ import annotations

import numpy as np

from core.evaluation.per_image import scored_pixels

BINS = 15


def calibration_sums(
    probs: np.ndarray,
    target: np.ndarray,
    num_classes: int,
    ignore_index: int | None,
    bins: int = BINS,
    pred: np.ndarray | None = None,
) -> np.ndarray:
    """(K, bins, 3) float64 sums per predicted class and confidence bin: count, confidence, correct.

    ``probs`` is (K, ...) (a pixel map's (K, H, W) or an image's (K,)), ``target`` the matching labels;
    ``pred``, the argmax of ``probs`` when the caller has it (numpy's argmax over the first axis is slow).
    """
    probs = np.asarray(probs).reshape(num_classes, -1)  # (K, N) as given (float32): no (K, N) float64 copy
    pred = probs.argmax(0) if pred is None else pred
    return confidence_sums(probs.max(0), pred, target, num_classes, ignore_index, bins)


def confidence_sums(
    confidence: np.ndarray, pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None, bins: int = BINS
) -> np.ndarray:
    """``calibration_sums`` from each pixel's (or image's) top probability and predicted class, without the K maps."""
    target, pred = np.asarray(target).reshape(-1), np.asarray(pred).reshape(-1)
    conf = np.asarray(confidence).reshape(-1)  # (N,) as given: the sums are float64 (``bincount``'s weights)
    width = num_classes * bins
    b = np.multiply(conf, bins, dtype=np.float64).astype(np.intp)  # (N,) bin i holds [i/bins, (i+1)/bins),
    np.minimum(b, bins - 1, out=b)  # and 1.0 goes to the last
    keep = scored_pixels(pred, target, num_classes, ignore_index)  # (N,)
    # (N,) each pixel's cell (width: not scored); no boolean selections of three maps: one pass each, ~30% quicker
    cell = np.where(keep, pred.astype(np.intp) * bins + b, width)
    right = np.bincount(cell * 2 + (pred == target), minlength=2 * width + 2)[: 2 * width].reshape(width, 2)  # all, right
    out = np.zeros((width, 3))
    out[:, 0] = right.sum(1)
    out[:, 1] = np.bincount(cell, weights=conf, minlength=width + 1)[:width]
    out[:, 2] = right[:, 1]  # the right ones: a count, not a weighted sum
    return out.reshape(num_classes, bins, 3)


def ece(sums: np.ndarray) -> float:
    """Expected calibration error: sum over bins of (items in bin / items) x |accuracy - confidence|."""
    s = np.asarray(sums, dtype=np.float64).reshape(-1, np.asarray(sums).shape[-2], 3).sum(0)  # (bins, 3)
    n = s[:, 0].sum()
    if n == 0:
        return float("nan")
    return float(np.abs(s[:, 2] - s[:, 1]).sum() / n)  # |sum correct - sum confidence| per bin = n_b |acc_b - conf_b|


def per_class_ece(sums: np.ndarray) -> list[float]:
    """ECE of the predictions of each class (NaN for a class never predicted)."""
    return [ece(sums[c]) for c in range(sums.shape[0])]


def reliability(sums: np.ndarray) -> dict[str, list]:
    """Per bin: its edges, the mean confidence, the accuracy and the count (NaN where the bin is empty)."""
    s = np.asarray(sums, dtype=np.float64).reshape(-1, np.asarray(sums).shape[-2], 3).sum(0)
    n = s[:, 0]
    bins = len(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(n > 0, s[:, 1] / np.maximum(n, 1), np.nan)
        acc = np.where(n > 0, s[:, 2] / np.maximum(n, 1), np.nan)
    return {
        "lower": [i / bins for i in range(bins)],
        "upper": [(i + 1) / bins for i in range(bins)],
        "confidence": conf.tolist(),
        "accuracy": acc.tolist(),
        "count": n.astype(int).tolist(),
    }


def confidence_error_map(probs: np.ndarray, target: np.ndarray, ignore_index: int | None, unsure: float = 0.5) -> np.ndarray:
    """(H, W) uint8 categories of each pixel: 0 right and sure, 1 right but unsure, 2 wrong and unsure,
    3 wrong and confident; 255 unlabelled. Unsure: normalised entropy (H / log K) above ``unsure``."""
    probs = np.asarray(probs, dtype=np.float64)
    k = probs.shape[0]
    p = np.clip(probs, 1e-12, 1.0)
    h = -(p * np.log(p)).sum(0) / np.log(max(k, 2))  # (H, W) in [0, 1]
    right = probs.argmax(0) == target
    sure = h <= unsure
    cat = np.where(right, np.where(sure, 0, 1), np.where(sure, 3, 2)).astype(np.uint8)
    invalid = (target < 0) | (target >= k)
    if ignore_index is not None:
        invalid |= target == ignore_index
    cat[invalid] = 255
    return cat
