"""Is model A really better than model B on this split? A paired bootstrap over images.

Both models are scored on the same images; each of ``resamples`` draws picks images with replacement
(the same draw for A and B), sums their per-image confusion matrices, and takes the dataset mIoU (and
each class's IoU) of A minus B. The 2.5th and 97.5th percentiles bound the 95% interval; a gap whose
interval contains 0 is not significant at that level.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from core.evaluation.metrics import nanmean


def iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    """(..., K) IoU from (..., K, K) matrices; NaN where a class is absent from labels and predictions."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    union = cm.sum(-1) + cm.sum(-2) - tp
    return np.divide(tp, union, out=np.full_like(tp, np.nan), where=union > 0)


def intersections_unions(cm: np.ndarray) -> np.ndarray:
    """(..., K, 2) per-class intersection and union from (..., K, K) confusion matrices."""
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    return np.stack([tp, cm.sum(-1) + cm.sum(-2) - tp], axis=-1)


def paired_bootstrap(
    conf_a: np.ndarray, conf_b: np.ndarray, *, resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> dict:
    """``paired_bootstrap_iu`` from (N, K, K) per-image confusion matrices of the two models on the same images."""
    return paired_bootstrap_iu(
        intersections_unions(conf_a), intersections_unions(conf_b), resamples=resamples, seed=seed, level=level
    )


def paired_bootstrap_iu(iu_a: np.ndarray, iu_b: np.ndarray, *, resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Difference A - B in dataset mIoU and per-class IoU, with bootstrap intervals over images.

    ``iu_a``, ``iu_b``: (N, K, 2) per-image intersections and unions of each class, of the two models on the
    same N images (dataset IoU is the ratio of their sums, so a resample is a weighted sum).
    """
    iu_a, iu_b = np.asarray(iu_a, np.float64), np.asarray(iu_b, np.float64)
    if iu_a.shape != iu_b.shape:
        raise ValueError(f"the two models were scored on different images: {iu_a.shape} vs {iu_b.shape}")
    n, k = iu_a.shape[0], iu_a.shape[1]
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)  # (R, N): each image's weight

    def iou(sums: np.ndarray) -> np.ndarray:  # (..., K, 2) -> (..., K)
        return np.divide(sums[..., 0], sums[..., 1], out=np.full(sums.shape[:-1], np.nan), where=sums[..., 1] > 0)

    iou_a, iou_b = iou(np.einsum("rn,nkc->rkc", counts, iu_a)), iou(np.einsum("rn,nkc->rkc", counts, iu_b))  # (R, K)
    diff_miou = nanmean(iou_a, axis=1) - nanmean(iou_b, axis=1)  # (R,)
    diff_class = iou_a - iou_b  # (R, K)
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    obs_a, obs_b = iou(iu_a.sum(0)), iou(iu_b.sum(0))  # (K,)

    def interval(x: np.ndarray) -> list[float]:
        x = x[~np.isnan(x)]
        return [float(np.percentile(x, lo)), float(np.percentile(x, hi))] if len(x) else [float("nan")] * 2

    miou_a, miou_b = nanmean(obs_a), nanmean(obs_b)
    return {
        "miou_a": miou_a,
        "miou_b": miou_b,
        "difference": miou_a - miou_b,
        "interval": interval(diff_miou),
        "level": level,
        "resamples": resamples,
        "images": n,
        "class_difference": (obs_a - obs_b).tolist(),
        "class_interval": [interval(diff_class[:, c]) for c in range(k)],
    }


def significant(interval: Sequence[float]) -> bool:
    """True when the interval excludes 0."""
    lo, hi = interval
    return bool(lo > 0 or hi < 0)


def verdict(result: dict, name_a: str, name_b: str, classes: Sequence[str]) -> str:
    """The result in words, e.g. "A beats B by 0.031 mIoU (95% CI 0.012 to 0.049); the gap on Pole is not significant."."""
    d, (lo, hi) = result["difference"], result["interval"]
    pct = int(round(result["level"] * 100))
    if significant((lo, hi)):
        winner, loser = (name_a, name_b) if d > 0 else (name_b, name_a)
        head = (
            f"{winner} beats {loser} by {abs(d):.3f} mIoU ({pct}% CI {min(abs(lo), abs(hi)):.3f} to {max(abs(lo), abs(hi)):.3f})"
        )
    else:
        head = f"{name_a} and {name_b} are not significantly different: {d:+.3f} mIoU ({pct}% CI {lo:+.3f} to {hi:+.3f})"
    unclear = [c for c, ci in zip(classes, result["class_interval"]) if not np.isnan(ci[0]) and not significant(ci)]
    clear = [c for c, ci in zip(classes, result["class_interval"]) if not np.isnan(ci[0]) and significant(ci)]
    if unclear and clear:
        tail = f"; the gap on {', '.join(unclear)} is not significant"
    elif unclear:
        tail = "; no class's gap is significant"
    else:
        tail = "; every class's gap is significant"
    return head + tail + "."
