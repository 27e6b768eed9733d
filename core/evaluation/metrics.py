"""Segmentation and classification metrics from one confusion matrix.

Dataset metrics come from a single K x K confusion matrix accumulated over every pixel of the
split (rows = true class, columns = predicted class), built with one ``bincount`` per batch.
Ratios are taken once, at the end, so large images weigh more than small ones and a class's
IoU is over all its pixels in the split: this is the standard (PASCAL / torchvision
reference) definition of mIoU.

A class that is absent from both the labels and the predictions has no IoU or accuracy:
it is NaN and is left out of every mean, never counted as 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """(K, K) int64 counts, rows = true class, columns = predicted class.

    ``pred`` and ``target`` are integer tensors of the same shape, e.g. (B, H, W). Target
    pixels equal to ``ignore_index``, or outside [0, K), are dropped. A prediction outside [0, K)
    is refused (it would otherwise be counted in another cell).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    k = num_classes
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= k):
        raise ValueError(f"predictions must be class indices in [0, {k}); got values from {int(pred.min())} to {int(pred.max())}")
    drop_ignored = ignore_index is not None and 0 <= ignore_index < k
    if pred.device.type == "cpu":
        # numpy's integer kernels are about 3x faster than torch's here (bench/metrics.py)
        t = target.reshape(-1).numpy().astype(np.int64, copy=False)
        p = pred.reshape(-1).numpy().astype(np.int64, copy=False)
        keep = t.view(np.uint64) < k  # negatives wrap to huge values: one test for both bounds
        if drop_ignored:
            keep &= t != ignore_index
        idx = np.where(keep, t * k + p, k * k)  # dropped pixels go to an extra bin, cut off below
        counts = np.bincount(idx, minlength=k * k + 1)[: k * k]
        return torch.from_numpy(counts.astype(np.int64)).reshape(k, k)
    t, p = target.reshape(-1).long(), pred.reshape(-1).long()
    keep = (t >= 0) & (t < k)
    if drop_ignored:
        keep &= t != ignore_index
    idx = torch.where(keep, t * k + p, k * k)
    return torch.bincount(idx, minlength=k * k + 1)[: k * k].reshape(k, k)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0, without numpy warnings."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, np.nan), where=den > 0)


def nanmean(x: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Mean over the non-NaN entries; NaN (no warning) where there are none."""
    x = np.asarray(x, dtype=np.float64)
    valid = ~np.isnan(x)
    total = np.where(valid, x, 0.0).sum(axis=axis)
    count = valid.sum(axis=axis)
    out = _ratio(total, count)
    return float(out) if out.ndim == 0 else out


def scores(cm: np.ndarray | Tensor) -> dict[str, Any]:
    """Pixel accuracy, per-class and mean accuracy, per-class IoU, mIoU and frequency-weighted IoU."""
    cm = np.asarray(cm.cpu() if isinstance(cm, Tensor) else cm, dtype=np.float64)
    tp = np.diag(cm)
    true = cm.sum(1)  # pixels of each true class
    predicted = cm.sum(0)
    total = cm.sum()
    class_acc = _ratio(tp, true)
    iou = _ratio(tp, true + predicted - tp)
    freq = _ratio(true, np.full_like(true, total))
    present = true > 0
    fwiou = float((freq[present] * iou[present]).sum()) if total > 0 else math.nan
    return {
        "pixel_acc": float(_ratio(tp.sum(), total)),
        "mean_acc": nanmean(class_acc),
        "miou": nanmean(iou),
        "fwiou": fwiou,
        "class_acc": class_acc.tolist(),
        "iou": iou.tolist(),
    }


def per_image_iou(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """(B, K) IoU of each class within each image; NaN where a class is in neither label nor prediction.

    Unlike the dataset mIoU (one confusion matrix over every pixel of the split), this divides
    per image: ``nanmean`` over a row gives that image's mIoU, used to sort images from hardest
    to easiest and in the per-image view. Averaged over images it weighs every image equally and
    skips classes absent from an image, so it differs from, and is usually above, dataset mIoU.
    """
    b, k = pred.shape[0], num_classes
    pred, target = pred.reshape(b, -1).long(), target.reshape(b, -1).long()
    keep = (target >= 0) & (target < k)
    if ignore_index is not None and 0 <= ignore_index < k:
        keep &= target != ignore_index
    offset = torch.arange(b, device=pred.device)[:, None] * k * k  # one K x K block per image
    idx = (offset + target * k + pred)[keep]
    cm = torch.bincount(idx, minlength=b * k * k).reshape(b, k, k).double()  # (B, K, K)
    tp = cm.diagonal(dim1=1, dim2=2)
    union = cm.sum(2) + cm.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, math.nan))


def per_image_scores(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = None) -> dict[str, Tensor]:
    """Per image: pixel accuracy (B,) and mIoU (B,), NaN for an image with no labelled pixel."""
    b = pred.shape[0]
    t = target.reshape(b, -1)
    valid = (t >= 0) & (t < num_classes)
    if ignore_index is not None and 0 <= ignore_index < num_classes:
        valid &= t != ignore_index
    correct = ((pred.reshape(b, -1) == t) & valid).sum(1).double()
    n = valid.sum(1).double()
    iou = per_image_iou(pred, target, num_classes, ignore_index)
    valid_iou = ~iou.isnan()
    miou = torch.where(valid_iou.any(1), iou.nan_to_num(0).sum(1) / valid_iou.sum(1).clamp(min=1), math.nan)
    return {"pixel_acc": torch.where(n > 0, correct / n.clamp(min=1), math.nan), "miou": miou}


class ConfusionMatrix:
    """Accumulates one confusion matrix over a split; all-reduced across DDP ranks on request."""

    def __init__(self, num_classes: int, ignore_index: int | None = None, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.mat = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    @torch.no_grad()
    def update(self, pred: Tensor, target: Tensor) -> None:
        self.mat += confusion_matrix(pred, target.to(pred.device), self.num_classes, self.ignore_index).to(self.mat.device)

    def all_reduce(self) -> None:
        """Sum the matrices of every rank (no-op outside torch.distributed)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.mat, op=torch.distributed.ReduceOp.SUM)

    def compute(self) -> dict[str, Any]:
        return scores(self.mat)


def topk_correct(logits: Tensor, target: Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    """Number of samples whose label is among the top-k logits, for each k (capped at K classes)."""
    maxk = min(max(ks), logits.shape[1])
    top = logits.topk(maxk, dim=1).indices  # (B, maxk)
    hit = top == target[:, None]
    return {k: int(hit[:, : min(k, maxk)].any(1).sum()) for k in ks}


def classification_scores(cm: np.ndarray | Tensor, topk_hits: dict[int, int] | None = None) -> dict[str, Any]:
    """Top-1 / top-5 accuracy, per-class accuracy and mean class accuracy from a confusion matrix."""
    base = scores(cm)
    cm = np.asarray(cm.cpu() if isinstance(cm, Tensor) else cm)
    total = int(cm.sum())
    out = {"top1": base["pixel_acc"], "mean_acc": base["mean_acc"], "class_acc": base["class_acc"]}
    if topk_hits is not None and topk_hits.get(5) is not None:  # unknown when only labels were given
        out["top5"] = topk_hits[5] / total if total else math.nan
    return out
