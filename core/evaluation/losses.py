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
OHEM_MIN_KEPT = 100_000  # pixels kept per batch at least (mmsegmentation's default; 11% of 8 x 288 x 384)
LOVASZ_LEVELS = 1 << 14  # Lovász-softmax orders the errors on this many levels (see lovasz_weights)


def lovasz_weights(errors: Tensor, fg: Tensor, valid: Tensor, *, per_image: bool) -> Tensor:
    """The Lovász gradient of every error (Berman et al., Algorithm 1), from counts instead of sorts.

    ``errors`` (B, C, N) in [0, 1] of N pixels of B images and C classes, ``fg`` (B, C, N) bool (the pixel is
    labelled with the class), ``valid`` (B, 1, N) bool (labelled at all); the pixels of each image form a
    group (``per_image``), or all of them one. Algorithm 1 sorts a class's errors in decreasing order and
    weighs the i-th by the Jaccard loss of the i largest minus that of the i - 1 largest: 1 / (|fg| + other
    pixels before it) for a pixel of the class, and the matching difference for another. Both depend only on
    how many pixels of either kind come earlier, so histograms over error levels give them: errors ordered on
    ``LOVASZ_LEVELS`` levels, within a level the class's pixels first and the others sharing their level's
    total (the gradient averaged over the orders of tied errors, still an exact subgradient there). That is a
    few passes over the pixels instead of C sorts of them: on one core of the development machine, forward
    and backward of a CamVid batch (8 x 288 x 384, 11 classes) take about 0.7 s instead of 3.4 s with sorts
    (cross-entropy: 0.15 s). The weights of a present class sum to 1 per group;
    those of absent classes and unlabelled pixels are 0. Returns (B, C, N).
    """
    b, c, _ = errors.shape
    levels = LOVASZ_LEVELS
    groups = b if per_image else 1
    # slot of each error in a (groups, C, levels + 1, [other, class]) histogram; level 0 = the largest errors,
    # level ``levels`` = the unlabelled pixels, after every other
    slot = errors.detach().mul(-(levels - 1)).add_(levels - 0.5).long()  # round((1 - e) (levels - 1))
    slot.masked_fill_(~valid, levels)
    group = torch.arange(b, device=errors.device).view(b, 1, 1) if per_image else torch.zeros(1, 1, 1, dtype=torch.long)
    base = (group.to(errors.device) * c + torch.arange(c, device=errors.device).view(1, c, 1)) * (levels + 1)
    slot.add_(base).mul_(2).add_(fg)
    hist = torch.bincount(slot.flatten(), minlength=groups * c * (levels + 1) * 2).view(groups, c, levels + 1, 2).double()
    hist[:, :, levels] = 0  # unlabelled pixels count for nothing
    bg, fg_count = hist[..., 0], hist[..., 1]  # (G, C, levels + 1)
    gts = fg_count.sum(-1, keepdim=True)  # (G, C, 1)
    fn_before = fg_count.cumsum(-1) - fg_count  # pixels of the class at larger errors
    fp_before = bg.cumsum(-1) - bg  # other pixels at larger errors

    def jaccard_loss(fn: Tensor, fp: Tensor) -> Tensor:  # 1 - |fg - S| / |fg + S| for the fn + fp pixels S
        return (fn + fp) / (gts + fp)

    w_fg = 1 / (gts + fp_before)  # each of the class's pixels adds one false negative
    fn_after = fn_before + fg_count
    w_bg = (jaccard_loss(fn_after, fp_before + bg) - jaccard_loss(fn_after, fp_before)) / bg.clamp_min(1)
    table = torch.stack([w_bg, w_fg], -1)  # (G, C, levels + 1, 2)
    table[:, :, levels] = 0
    table = torch.where(gts[..., None] > 0, table, 0.0).to(errors.dtype)  # absent classes: 0 rather than 0 / 0
    return table.flatten().take(slot)  # (B, C, N)


def lovasz_softmax(logits: Tensor, target: Tensor, *, ignore_index: int, per_image: bool = False) -> Tensor:
    """Lovász-softmax loss (Berman, Triki, Blaschko, "The Lovász-Softmax loss", CVPR 2018).

    ``logits`` (B, K, H, W), ``target`` (B, H, W). The mean over the classes present in the labels (the
    paper's ``classes="present"``) of the Lovász extension of the Jaccard loss 1 - IoU at the errors
    |1[y = c] - p_c|; pixels labelled ``ignore_index`` (or outside [0, K)) take no part. Over the whole
    batch's pixels at once (the paper's default for multi-class), or with ``per_image`` image by image and
    averaged over the images that have labelled pixels. A batch with none gives 0. The errors are ordered on
    ``LOVASZ_LEVELS`` levels (``lovasz_weights``): the value is within 1 / LOVASZ_LEVELS of the exact one.
    """
    b, k = logits.shape[:2]
    probs = logits.float().softmax(1).reshape(b, k, -1)  # (B, K, N)
    labels = target.reshape(b, 1, -1)  # (B, 1, N)
    valid = (labels != ignore_index) & (labels >= 0) & (labels < k)  # (B, 1, N)
    fg = (labels == torch.arange(k, device=labels.device).view(1, k, 1)) & valid  # (B, K, N)
    errors = (fg.to(probs.dtype) - probs).abs()  # (B, K, N); unlabelled pixels get weight 0
    with torch.no_grad():  # piecewise constant in the errors: the gradient flows through the errors
        weights = lovasz_weights(errors, fg, valid, per_image=per_image)
    per_class = (errors * weights).sum(-1)  # (B, K)
    present = fg.any(-1)  # (B, K)
    if not per_image:
        per_class, present = per_class.sum(0, keepdim=True), present.any(0, keepdim=True)  # (1, K)
    per_group = (per_class * present).sum(-1) / present.sum(-1).clamp_min(1)  # (G,)
    labelled = present.any(-1)  # (G,)
    return per_group[labelled].mean() if labelled.any() else probs.sum() * 0


def hard_pixels(logits: Tensor, target: Tensor, *, ignore_index: int, thresh: float, min_kept: int) -> Tensor:
    """(B, H, W) bool: the pixels online hard example mining trains on.

    Every labelled pixel whose softmax probability of its true class is below ``thresh``; when fewer than
    ``min_kept`` are, the ``min_kept`` least confident labelled pixels instead (all of them if fewer exist).
    """
    k = logits.shape[1]
    valid = (target != ignore_index) & (target >= 0) & (target < k)  # (B, H, W)
    with torch.no_grad():
        p_true = logits.float().softmax(1).gather(1, torch.where(valid, target, 0)[:, None])[:, 0]  # (B, H, W)
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
