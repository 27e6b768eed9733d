"""The label map of bilinearly resized logits, resizing only the pixels whose label is in question.

A model that runs at 512x1024 on a 2048x1024 image gives logits that must be resized before the argmax. Resizing
all K maps and taking the argmax over K costs as much as the forward of a small model (one CPU thread, 19 classes
at 2048x1024: about 0.28 s, against 0.11-0.55 s for the zoo's forwards at 512x1024). Most of it is wasted: a bilinear
value is a convex combination of the logits of its 2x2 source pixels, so where those four pixels agree on their
class, the resized logits agree too (a class that beats every other at each of the four beats them in any
weighted mean). Only the pixels between source pixels of different classes (class boundaries, a few percent of
an image from a trained model) are resized, from their four neighbours, with PyTorch's weights
(``align_corners=False``). Where more than ``MIXED_LIMIT`` of the pixels are in question (a noisy, untrained
model) the whole map is resized as before.

The result is the argmax of ``F.interpolate(logits, size, mode="bilinear")``, except where two classes' resized
logits differ by a float32 rounding error (about 1e-6), where either class is a right answer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

MIXED_LIMIT = 0.25  # share of pixels in question above which every map is resized whole


def upsampled_labels(logits: Tensor, size: tuple[int, int]) -> Tensor:
    """(H, W) int64: the argmax over K of ``logits`` (K, h, w) resized to ``size`` (H, W) as
    ``F.interpolate(mode="bilinear", align_corners=False)`` resizes them (first maximum on ties)."""
    k, h, w = logits.shape
    height, width = size
    hwk = logits.permute(1, 2, 0).contiguous()  # (h, w, K); no copy when the logits are channels-last
    low = hwk.argmax(-1)  # (h, w): the argmax over K's last, contiguous axis is ~5x quicker than over the first
    if (h, w) == (height, width):
        return low
    agreed = agreed_labels(low, size)  # (H, W); -1: in question
    ys, xs = (agreed < 0).nonzero(as_tuple=True)  # (N,) each
    if len(ys) > MIXED_LIMIT * height * width:
        return _resized(hwk, size)
    y0, y1, wy = _source(height, h)  # (H,) each
    x0, x1, wx = _source(width, w)  # (W,) each
    flat = hwk.reshape(h * w, k)  # (h * w, K)
    top, bottom, left, right = y0[ys] * w, y1[ys] * w, x0[xs], x1[xs]
    b, r = wy[ys, None], wx[xs, None]  # (N, 1) weights of the lower row and the right column
    values = (flat[top + left] * (1 - r) + flat[top + right] * r) * (1 - b)
    values += (flat[bottom + left] * (1 - r) + flat[bottom + right] * r) * b  # (N, K)
    agreed[ys, xs] = values.argmax(1)
    return agreed


def labels_and_confidence(logits: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """(H, W) int64 labels and (H, W) float32 top softmax probability of ``logits`` (K, h, w) resized to ``size`` as
    ``F.interpolate(mode="bilinear", align_corners=False)`` resizes them: the argmax (first maximum on ties) and
    1 / sum_k exp(l_k - l_max). Channels-last logits at the image's size (a model that resizes its own output, as
    PSPNet does) are read as they lie, each pixel's K values side by side: the maximum with its index and the sum
    over the last axis (one CPU thread, PSPNet's 11 classes at 360x480: 4.0 against 5.9 ms through a (K, H, W)
    copy). Otherwise every map is resized, class by class, and the maxima, the labels and the sums are taken one
    (H, W) map at a time, with no (K, H, W) temporary: a third of what the maximum with indices over K and a
    (K, H, W) difference cost there (and the channels-last form is 1.5-3x slower on a resized 2048x1024 map)."""
    same = tuple(logits.shape[1:]) == tuple(size)
    if same and logits.permute(1, 2, 0).is_contiguous():
        hwk = logits.permute(1, 2, 0)  # (H, W, K)
        top, labels = hwk.max(-1)  # (H, W) each; the first maximum on ties
        return labels, (hwk - top[..., None]).exp_().sum(-1).reciprocal_()
    logits = logits.contiguous()  # (K, h, w)
    up = logits if same else F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]  # (K, H, W)
    top = up.amax(0)  # (H, W)
    labels = torch.empty_like(top, dtype=torch.int64)  # (H, W); every pixel is set: some class reaches the maximum
    total = torch.zeros_like(top)  # (H, W) sum_k exp(l_k - l_max), at least 1
    for c in range(up.shape[0] - 1, -1, -1):  # the last class first: on a tie the first class writes last
        labels.masked_fill_(up[c] == top, c)
        total += torch.sub(up[c], top).exp_()
    return labels, total.reciprocal_()


def agreed_labels(low: Tensor, size: tuple[int, int]) -> Tensor:
    """(H, W) int64: for each pixel of ``size`` resized from the label map ``low`` (h, w), the class its 2x2 source
    block agrees on, or -1 where the block holds more than one class (the label is in question)."""
    rows, cols = _source(size[0], low.shape[0])[0], _source(size[1], low.shape[1])[0]
    return torch.where(_uniform(low), low, -1).index_select(0, rows).index_select(1, cols)


def _source(out: int, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """For each of ``out`` output rows (or columns) resized from ``size``: its two source rows and the weight of
    the second, as PyTorch's bilinear resize with ``align_corners=False`` places them."""
    src = ((torch.arange(out, dtype=torch.float64) + 0.5) * (size / out) - 0.5).clamp_(min=0)  # (out,)
    first = src.floor().long().clamp_(max=size - 1)
    return first, (first + 1).clamp_(max=size - 1), (src - first).float()


def _uniform(labels: Tensor) -> Tensor:
    """(h, w) bool: whether the 2x2 block from each pixel to its lower right neighbours (the edge repeated) holds
    one class."""
    right = torch.cat([labels[:, 1:], labels[:, -1:]], 1)
    below = torch.cat([labels[1:], labels[-1:]], 0)
    diagonal = torch.cat([right[1:], right[-1:]], 0)
    return (labels == right) & (labels == below) & (labels == diagonal)


def _resized(hwk: Tensor, size: tuple[int, int]) -> Tensor:
    """Every map of ``hwk`` (h, w, K) resized, then the argmax; channels-last, where the resize and the argmax over K
    are both ~2x quicker (the batch of one is made from ``hwk`` itself: ``logits[None]``'s batch stride would send
    ``interpolate`` to its slow layout)."""
    cl = hwk[None].permute(0, 3, 1, 2)  # (1, K, h, w), channels-last strides
    return F.interpolate(cl, size=size, mode="bilinear", align_corners=False)[0].argmax(0)  # (H, W)
