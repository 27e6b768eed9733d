"""Optimisers, learning-rate schedules, class weighting and weight initialisation."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import torch
from torch import nn

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "onecycle", "step", "none")
CLASS_WEIGHTINGS = ("none", "inverse", "median")
INITS = ("default", "xavier", "kaiming")


def build_optimizer(
    params: Iterable[nn.Parameter], name: str, *, lr: float, weight_decay: float, momentum: float = 0.9
) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=momentum > 0)
    raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")


def schedule_factor(name: str, progress: float, *, warmup: float = 0.0, step_every: float = 0.3, gamma: float = 0.1) -> float:
    """Learning-rate multiplier at ``progress`` in [0, 1] of training.

    Progress is measured in steps, or in wall-clock time when training under a time budget, so a
    schedule always completes exactly when training ends.
    """
    progress = min(max(progress, 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return max(progress / warmup, 1e-3)
    if name == "none":
        return 1.0
    if name == "cosine":
        t = (progress - warmup) / max(1e-8, 1 - warmup)
        return 0.5 * (1 + math.cos(math.pi * t))
    if name == "onecycle":
        # warm up over the first 30% (or the given warmup), then cosine to ~0, as torch's OneCycleLR
        w = warmup or 0.3
        if progress < w:
            return 0.04 + 0.96 * 0.5 * (1 - math.cos(math.pi * progress / w))
        return 0.5 * (1 + math.cos(math.pi * (progress - w) / max(1e-8, 1 - w)))
    if name == "step":
        return gamma ** int(progress / step_every)
    raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULES)}")


def class_pixel_counts(masks: Iterable[np.ndarray], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class: (pixels of the class, pixels of the images that contain the class)."""
    counts = np.zeros(num_classes, dtype=np.float64)
    image_pixels = np.zeros(num_classes, dtype=np.float64)
    for mask in masks:
        m = np.asarray(mask).ravel()
        c = np.bincount(m[(m >= 0) & (m < num_classes)], minlength=num_classes)[:num_classes]
        counts += c
        image_pixels += (c > 0) * m.size
    return counts, image_pixels


def class_weights(counts: np.ndarray, image_pixels: np.ndarray, scheme: str, power: float = 1.0) -> np.ndarray | None:
    """Cross-entropy class weights. Classes never seen in training get weight 0.

    ``inverse``: 1 / pixel frequency, normalised to sum to 1 (the seed reports' weighting).
    ``median``: median frequency balancing (Eigen & Fergus): median(f) / f_c with f_c the class's
    pixels over the pixels of the images where it appears.
    ``power`` < 1 softens either (0.5: square roots). Full median weights buy recall on rare classes
    with so many false positives that their IoU drops (see BENCHMARKS.md).
    """
    if scheme == "none":
        return None
    seen = counts > 0
    w = np.zeros_like(counts)
    if scheme == "inverse":
        w[seen] = (1.0 / (counts[seen] / counts.sum())) ** power
        return w / w.sum()
    if scheme == "median":
        freq = counts[seen] / image_pixels[seen]
        w[seen] = (np.median(freq) / freq) ** power
        return w
    raise ValueError(f"unknown class weighting {scheme!r}; valid: {', '.join(CLASS_WEIGHTINGS)}")


def rare_classes(counts: np.ndarray, share: float) -> list[int]:
    """The classes seen in training whose share of the labelled pixels is below ``share`` (a class never seen
    is absent, not rare: no crop can be centred on it)."""
    total = counts.sum()
    if total == 0:
        return []
    return [int(c) for c in np.flatnonzero((counts > 0) & (counts / total < share))]


def ema_model(model: nn.Module, decay: float) -> torch.optim.swa_utils.AveragedModel:
    """An exponential moving average of ``model``'s weights and buffers (BatchNorm statistics too).

    The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates, so a short CPU run is not
    dominated by its random initial weights; integer buffers are copied.
    """
    if not 0 < decay < 1:
        raise ValueError(f"--ema takes a decay in (0, 1), e.g. 0.999; got {decay}")

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        n = float(n_averaged)
        d = min(decay, (1 + n) / (10 + n))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1 - d)
        else:
            for a, c in zip(averaged, current):
                a.copy_(c)

    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=update, use_buffers=True)


def load_scaler_state(scaler: torch.amp.GradScaler, state: dict) -> None:
    """Restore a GradScaler; a run trained without one (CPU, ``state == {}``) leaves its defaults."""
    if state:
        scaler.load_state_dict(state)


def init_weights(model: nn.Module, scheme: str) -> int:
    """Re-initialise convolutions and linear layers that are not pretrained; returns how many.

    Modules that really received ImageNet weights (flagged ``pretrained_weights`` by
    ``core.models.pretrained.load_pretrained``) and modules flagged ``keep_init`` (e.g.
    bilinear-initialised upsampling) keep their weights; everything else is re-initialised.
    """
    if scheme == "default":
        return 0
    if scheme not in INITS:
        raise ValueError(f"unknown init {scheme!r}; valid: {', '.join(INITS)}")
    done = 0
    for m in model.modules():
        if getattr(m, "pretrained_weights", False) or getattr(m, "keep_init", False):
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
            done += 1
    return done
