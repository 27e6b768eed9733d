"""The training and evaluation loops, shared by both tasks and by the benchmarks."""

from __future__ import annotations

import contextlib
import time
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from core.tasks import Task, predict_logits
from core.utils.device import all_reduce_sum


def autocast_dtype(device: torch.device, amp: str) -> torch.dtype | None:
    """The autocast precision of ``amp`` on ``device``: float16 on CUDA (``auto``), bfloat16 on request
    (also on a CPU), None (float32 throughout) otherwise."""
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    return torch.bfloat16 if amp == "bf16" else torch.float16


def autocast_context(device: torch.device, amp: str):
    dtype = autocast_dtype(device, amp)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device_type=device.type, dtype=dtype)


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    task: Task,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    *,
    amp: str = "auto",
    progress: bool = True,
    desc: str = "train",
    memory_format: torch.memory_format = torch.contiguous_format,
    ema: torch.optim.swa_utils.AveragedModel | None = None,
) -> dict[str, float]:
    """One pass over ``loader``; returns the mean training loss over every rank and the image count.

    ``ema`` (a weight average of the model) is updated after every optimiser step.
    """
    model.train()
    sums = torch.zeros(2, dtype=torch.float64)  # loss * n, n
    bar = tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch")
    for images, targets in bar:
        images = images.to(device, non_blocking=True, memory_format=memory_format)  # (B, 3, H, W)
        targets = targets.to(device, non_blocking=True)  # (B, H, W) or (B,)
        with autocast_context(device, amp):
            output = model(images)
        loss = task.loss(output, targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the training loss became {loss.item()}; lower --lr, or check the labels are in [0, K) or the ignore index"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(getattr(model, "module", model))  # the model itself, not its DDP wrapper
        n = images.shape[0]
        sums += torch.tensor([loss.item() * n, n], dtype=torch.float64)
        bar.set_postfix(loss=f"{sums[0] / sums[1]:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
    all_reduce_sum(sums)
    return {"train_loss": float(sums[0] / sums[1]) if sums[1] else float("nan"), "train_images": int(sums[1])}


def _score_batch(meter, task: Task, logits: Tensor, targets) -> None:
    """Update ``meter``; logits are upsampled to label maps of another size (native-size scoring)."""
    if isinstance(targets, (list, tuple)):  # label maps of different sizes: one at a time
        for lg, t in zip(logits, targets):
            _score_batch(meter, task, lg[None], t[None])
        return
    if logits.dim() == 4 and logits.shape[-2:] != targets.shape[-2:]:
        logits = F.interpolate(logits, size=targets.shape[-2:], mode="bilinear", align_corners=False)
    meter.update(logits, targets, task.loss(logits, targets))


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    task: Task,
    device: torch.device,
    *,
    amp: str = "auto",
    progress: bool = True,
    memory_format: torch.memory_format = torch.contiguous_format,
    tta_flip: bool = False,
    tta_scales: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Loss and metrics over ``loader`` (summed over every DDP rank); ``tta_flip`` also scores the mirror image,
    ``tta_scales`` the image resized by each factor (``core.tasks.merge_scales``)."""
    model.eval()
    meter = task.new_meter(device)
    for images, targets in tqdm(loader, desc="val", leave=False, disable=not progress, unit="batch"):
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        targets = [t.to(device) for t in targets] if isinstance(targets, list) else targets.to(device, non_blocking=True)
        with autocast_context(device, amp):
            logits = predict_logits(model, images, tta_flip=tta_flip, tta_scales=tta_scales)
        _score_batch(meter, task, logits.float(), targets)
    return meter.compute()


def collate_allow_ragged(batch: list[tuple[Tensor, Any]]):
    """Stack images; label maps of different sizes (native-size scoring) stay a list."""
    images = torch.stack([b[0] for b in batch])
    targets = [b[1] for b in batch]
    if isinstance(targets[0], Tensor) and any(t.shape != targets[0].shape for t in targets):
        return images, targets
    return images, torch.utils.data.default_collate(targets)


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.start
