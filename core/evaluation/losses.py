"""Segmentation losses beyond plain cross-entropy, as pure functions of logits and labels.

They sit beside the metrics because they optimise what the metrics measure: Lovász-softmax is a convex
surrogate of the Jaccard index (IoU) itself, and OHEM spends the gradient on the pixels that are still
wrong, which on CamVid are mostly the thin and rare classes. Living below ``core.tasks`` lets the task's
training criterion use them without reaching up into ``core.train``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

OHEM_THRESH = 0.7  # p(true class) under which a pixel is hard (PSPNet / mmsegmentation's OHEM sampler)
OHEM_MIN_KEPT = 100_000  # pixels kept per batch at least (mmsegmentation's default; 13% of 8 x 288 x 384)


def _flatten(logits: Tensor, target: Tensor, ignore_index: int) -> tuple[Tensor, Tensor, Tensor]:
    """(B, K, ...) logits and (B, ...) labels -> (B, N, K) float logits, (B, N) labels, (B, N) valid mask."""
    b, k = logits.shape[:2]
    flat = logits.float().reshape(b, k, -1).transpose(1, 2)  # (B, N, K)
    labels = target.reshape(b, -1)  # (B, N)
    valid = (labels != ignore_index) & (labels >= 0) & (labels < k)
    return flat, labels, valid


def lovasz_grad(gt_sorted: Tensor) -> Tensor:
    """Gradient of the Lovász extension of the Jaccard loss at sorted errors (Berman et al., Algorithm 1).

    ``gt_sorted`` (N, C): per class (column), 1 where the pixel belongs to the class, rows in order of
    decreasing error. Entry i is the Jaccard loss of the i + 1 largest errors minus that of the i largest.
    """
    gts = gt_sorted.sum(0)  # (C,)
    intersection = gts - gt_sorted.cumsum(0)  # (N, C)
    union = gts + (1 - gt_sorted).cumsum(0)  # (N, C), >= 1 from the first row on
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])  # (N, C)


def lovasz_softmax_flat(probs: Tensor, labels: Tensor) -> Tensor:
    """Lovász-softmax of ``probs`` (N, K) against ``labels`` (N,), all valid: the mean over the classes
    present in ``labels`` of the Lovász extension of 1 - IoU at the errors |1[y = c] - p_c|."""
    fg = F.one_hot(labels, probs.shape[1]).to(probs.dtype)  # (N, K)
    errors = (fg - probs).abs()  # (N, K)
    errors_sorted, order = errors.sort(0, descending=True)  # each class sorted on its own
    per_class = (errors_sorted * lovasz_grad(fg.gather(0, order))).sum(0)  # (K,)
    return per_class[fg.sum(0) > 0].mean()


def lovasz_softmax(logits: Tensor, target: Tensor, *, ignore_index: int, per_image: bool = False) -> Tensor:
    """Lovász-softmax loss (Berman, Triki, Blaschko, "The Lovász-Softmax loss", CVPR 2018).

    ``logits`` (B, K, H, W), ``target`` (B, H, W). Averaged over the classes present in the labels, as the
    paper's ``classes="present"``; pixels labelled ``ignore_index`` (or outside [0, K)) take no part. Over
    the whole batch's pixels at once (the paper's default for multi-class), or with ``per_image`` image by
    image and averaged over the images that have labelled pixels. A batch with none gives 0.
    """
    flat, labels, valid = _flatten(logits, target, ignore_index)
    probs = flat.softmax(-1)  # (B, N, K)
    if per_image:
        losses = [lovasz_softmax_flat(p[v], t[v]) for p, t, v in zip(probs, labels, valid) if v.any()]
        return torch.stack(losses).mean() if losses else probs.sum() * 0
    if not valid.any():
        return probs.sum() * 0
    return lovasz_softmax_flat(probs[valid], labels[valid])


def hard_pixels(logits: Tensor, target: Tensor, *, ignore_index: int, thresh: float, min_kept: int) -> Tensor:
    """(B, H, W) bool: the pixels online hard example mining trains on.

    Every labelled pixel whose softmax probability of its true class is below ``thresh``; when fewer than
    ``min_kept`` are, the ``min_kept`` least confident labelled pixels instead (all of them if fewer exist).
    """
    flat, labels, valid = _flatten(logits, target, ignore_index)
    with torch.no_grad():
        p_true = flat.softmax(-1).gather(-1, torch.where(valid, labels, 0)[..., None])[..., 0]  # (B, N)
        keep = valid & (p_true < thresh)
        need = min(int(min_kept), int(valid.sum()))
        if int(keep.sum()) < need:
            ranked = torch.where(valid, p_true, torch.inf).flatten()  # unlabelled pixels last
            keep = torch.zeros_like(ranked, dtype=torch.bool)
            keep[ranked.topk(need, largest=False).indices] = True
    return keep.reshape(target.shape)


def ohem_cross_entropy(
    logits: Tensor,
    target: Tensor,
    *,
    ignore_index: int,
    thresh: float = OHEM_THRESH,
    min_kept: int = OHEM_MIN_KEPT,
    weight: Tensor | None = None,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy over the hard pixels only (online hard example mining, Shrivastava et al. 2016, in
    its per-pixel form from PSPNet's training code): see ``hard_pixels``.

    Class weights and label smoothing act as in ``F.cross_entropy``, whose weighted mean this is when
    every pixel is kept. Easy pixels (mostly road and sky) stop dominating the gradient.
    """
    logits = logits.float()
    keep = hard_pixels(logits, target, ignore_index=ignore_index, thresh=thresh, min_kept=min_kept)  # (B, H, W)
    per_pixel = F.cross_entropy(
        logits, target, weight=weight, ignore_index=ignore_index, reduction="none", label_smoothing=label_smoothing
    )  # (B, H, W), already times the weight of the pixel's class
    if not keep.any():
        return per_pixel.sum() * 0
    kept = target[keep]
    denom = weight[kept].sum() if weight is not None else torch.tensor(float(kept.numel()), device=logits.device)
    return per_pixel[keep].sum() / denom
