"""Task knowledge, in one place: what differs between segmentation and classification.

A task is a class. Its class attributes say what it means to a reader and to the code: the monitored metric,
the per-class score, the unit a split is counted in, the columns of a summary, and ``dense`` (a label per
pixel, so overlays, boundaries and per-pixel maps apply). An instance is the training criterion (loss with
class weights, auxiliary head, label smoothing) and makes the evaluation meter.

Everything else asks the task object (``run.task.dense``, ``task.monitor``); nothing outside this module
compares or looks up task names. ``task_type(name)`` reads a name from a file (run.json, a command line).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from core.evaluation.losses import OHEM_MIN_KEPT, OHEM_THRESH, lovasz_softmax, ohem_cross_entropy
from core.evaluation.metrics import ConfusionMatrix, classification_scores, topk_correct
from core.evaluation.metrics import scores as segmentation_scores
from core.utils.device import all_reduce_sum


def main_logits(output: Tensor | dict[str, Tensor]) -> Tensor:
    """Segmentation models return ``{"out": ..., "aux": ...}``, classifiers plain logits."""
    return output["out"] if isinstance(output, dict) else output


def merge_flipped(logits: Tensor, mirrored: Tensor) -> Tensor:
    """Test-time flip: log of the mean softmax of ``logits`` and of the mirrored input's logits.

    ``mirrored`` is the output for the horizontally flipped input: (B, K, H, W) maps are flipped
    back first; (B, K) class logits need no flip.
    """
    if mirrored.dim() == 4:
        mirrored = mirrored.flip(-1)
    both = torch.stack([logits.float().log_softmax(1), mirrored.float().log_softmax(1)])  # (2, B, K, ...)
    return torch.logsumexp(both, 0) - math.log(2)


def single_scale(scales: Sequence[float] | None) -> bool:
    """True when ``scales`` asks for no multi-scale test-time augmentation: None, empty, or just 1."""
    return not scales or [float(s) for s in scales] == [1.0]


def merge_scales(
    model: torch.nn.Module, x: Tensor, scales: Sequence[float], *, flip: bool = False, at_one: Tensor | None = None
) -> Tensor:
    """Multi-scale test-time augmentation: log of the mean softmax over the passes.

    ``x`` (B, C, H, W) is resized by each factor of ``scales`` (bilinear; antialiased when shrinking), and
    with ``flip`` also mirrored; each pass's logits are resized back to H x W (mirrors flipped back) before
    the softmax. ``at_one`` reuses logits already computed for ``x`` itself. Returns (B, K, H, W).
    """
    h, w = x.shape[-2:]
    total: Tensor | None = None
    passes = 0
    for scale in scales:
        for mirrored in (False, True) if flip else (False,):
            if scale == 1 and not mirrored and at_one is not None:
                logits = at_one
            else:
                xs = x.flip(-1) if mirrored else x
                if scale != 1:
                    size = (max(1, round(h * scale)), max(1, round(w * scale)))
                    xs = F.interpolate(xs, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)
                logits = main_logits(model(xs))  # (B, K, h', w')
                logits = logits.flip(-1) if mirrored else logits
            if logits.dim() != 4:
                raise ValueError("multi-scale test-time augmentation needs per-pixel logits (B, K, H, W)")
            if logits.shape[-2:] != (h, w):
                logits = F.interpolate(logits.float(), size=(h, w), mode="bilinear", align_corners=False)
            log_probs = logits.float().log_softmax(1)  # (B, K, H, W)
            total = log_probs if total is None else torch.logaddexp(total, log_probs)
            passes += 1
    if total is None:
        raise ValueError("merge_scales needs at least one scale")
    return total - math.log(passes)


def predict_logits(
    model: torch.nn.Module, x: Tensor, *, tta_flip: bool = False, tta_scales: Sequence[float] | None = None
) -> Tensor:
    """The main output's logits for ``x`` (B, 3, H, W); with ``tta_flip``, log mean probabilities of x and its
    mirror; with ``tta_scales`` (other than [1]), those of every scale (and its mirror with ``tta_flip``)."""
    if not single_scale(tta_scales):
        return merge_scales(model, x, tta_scales, flip=tta_flip)
    logits = main_logits(model(x))
    if not tta_flip:
        return logits
    return merge_flipped(logits, main_logits(model(x.flip(-1))))


class Task:
    """Base of the tasks; see the module docstring. Subclasses set every class attribute below."""

    name: ClassVar[str]  # as written in run.json and on the command line
    monitor: ClassVar[str]  # history key of the score that picks the best epoch and early stopping
    monitor_label: ClassVar[str]
    dense: ClassVar[bool]  # a label per pixel (H, W) rather than one per image
    class_metric: ClassVar[str]  # history key of the per-class score
    class_metric_label: ClassVar[str]
    unit: ClassVar[str]  # what a split's counts are counted in
    score_label: ClassVar[str]  # the per-item score of whole-split statistics
    summary: ClassVar[tuple[tuple[str, str], ...]]  # (column, history key) of a runs table
    epoch_line: ClassVar[tuple[tuple[str, str], ...]]  # (history key, label) of the one-line epoch summary
    losses: ClassVar[tuple[str, ...]]  # the training losses (``--loss``) the task can train with

    def __init__(
        self,
        num_classes: int,
        ignore_index: int,
        weight: Tensor | None = None,
        aux_weight: float = 0.0,
        *,
        label_smoothing: float = 0.0,
        loss: str = "ce",
        lovasz_per_image: bool = False,
        ohem_thresh: float = OHEM_THRESH,
        ohem_min_kept: int = OHEM_MIN_KEPT,
    ) -> None:
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label smoothing must be in [0, 1), got {label_smoothing}")
        check_loss(type(self), loss, lovasz_per_image=lovasz_per_image, ohem_thresh=ohem_thresh, ohem_min_kept=ohem_min_kept)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.weight = weight
        self.aux_weight = aux_weight
        self.label_smoothing = label_smoothing
        self.terms = tuple(loss.split("+"))  # "ce+lovasz" -> ("ce", "lovasz")
        self.lovasz_per_image = lovasz_per_image
        self.ohem_thresh, self.ohem_min_kept = ohem_thresh, ohem_min_kept

    def loss(self, output: Tensor | dict[str, Tensor], target: Tensor) -> Tensor:
        """The training loss of the main output, plus ``aux_weight`` times that of the auxiliary head."""
        weight = None if self.weight is None else self.weight.to(main_logits(output).device)
        loss = self._criterion(main_logits(output), target, weight)
        if isinstance(output, dict) and "aux" in output and self.aux_weight > 0:
            loss = loss + self.aux_weight * self._criterion(output["aux"], target, weight)
        return loss

    def _criterion(self, logits: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
        """The sum of the loss terms: weighted cross-entropy ("ce"), Lovász-softmax (unweighted: it already
        gives every present class the same say) and OHEM cross-entropy ("ohem")."""
        logits = logits.float()
        total: Tensor | None = None
        for term in self.terms:
            if term == "ce":
                value = F.cross_entropy(
                    logits, target, weight=weight, ignore_index=self.ignore_index, label_smoothing=self.label_smoothing
                )
            elif term == "lovasz":
                value = lovasz_softmax(logits, target, ignore_index=self.ignore_index, per_image=self.lovasz_per_image)
            else:  # "ohem", the only other name check_loss lets through
                value = ohem_cross_entropy(
                    logits,
                    target,
                    ignore_index=self.ignore_index,
                    thresh=self.ohem_thresh,
                    min_kept=self.ohem_min_kept,
                    weight=weight,
                    label_smoothing=self.label_smoothing,
                )
            total = value if total is None else total + value
        assert total is not None
        return total

    def new_meter(self, device: torch.device) -> "Meter":
        return Meter(self, device)

    # --- what the task means to scores and to a reader (class attributes; no instance needed) ----------
    @staticmethod
    def scores(cm: Tensor, topk_hits: dict[int, int]) -> dict[str, Any]:
        """Dataset metrics from the confusion matrix (and top-k hits)."""
        raise NotImplementedError

    @staticmethod
    def image_result(pred: Any, target: Any, num_classes: int, ignore_index: int | None) -> tuple[float, float, np.ndarray]:
        """One item's (accuracy, score, (K, K) confusion counts): the unit of whole-split statistics."""
        raise NotImplementedError


class SegmentationTask(Task):
    """Per-pixel classes: scored by mIoU from one confusion matrix over every labelled pixel."""

    name, monitor = "segmentation", "miou"
    dense = True  # a label per pixel: overlays, boundaries, per-pixel maps
    monitor_label = "mIoU"
    class_metric, class_metric_label = "iou", "IoU"  # per-class score recorded in history
    unit = "pixels"
    score_label = "mIoU"  # the per-item score of whole-split statistics
    summary = (("pixel acc", "pixel_acc"), ("mean acc", "mean_acc"), ("mIoU", "miou"), ("fwIoU", "fwiou"))
    epoch_line = (("pixel_acc", "pixel_acc"), ("miou", "mIoU"), ("fwiou", "fwIoU"))
    losses = ("ce", "lovasz", "ce+lovasz", "ohem")

    @staticmethod
    def scores(cm: Tensor, topk_hits: dict[int, int]) -> dict[str, Any]:
        return segmentation_scores(cm)

    @staticmethod
    def image_result(
        pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None
    ) -> tuple[float, float, np.ndarray]:
        """Pixel accuracy, the image's mIoU and its confusion counts."""
        from core.evaluation.per_image import image_scores, valid_pixels

        s = image_scores(pred, target, num_classes, ignore_index)
        keep = valid_pixels(target, num_classes, ignore_index)
        idx = target[keep].astype(np.int64) * num_classes + np.asarray(pred)[keep].astype(np.int64)
        return s["pixel_acc"], s["miou"], np.bincount(idx, minlength=num_classes**2).reshape(num_classes, num_classes)


class ClassificationTask(Task):
    """One class per image: scored by top-1 / top-5 accuracy."""

    name, monitor = "classification", "top1"
    dense = False  # one label per image: top-k lists
    monitor_label = "top-1"
    class_metric, class_metric_label = "class_acc", "accuracy"
    unit = "images"
    score_label = "p(true)"
    summary = (("top-1", "top1"), ("top-5", "top5"), ("mean acc", "mean_acc"))
    epoch_line = (("top1", "top1"), ("top5", "top5"))
    losses = ("ce",)

    @staticmethod
    def scores(cm: Tensor, topk_hits: dict[int, int]) -> dict[str, Any]:
        return classification_scores(cm, topk_hits)

    @staticmethod
    def image_result(pred: Any, target: int, num_classes: int, ignore_index: int | None) -> tuple[float, float, np.ndarray]:
        """1 or 0 (top-1 right), the probability given to the true class, and a one-count matrix."""
        cm = np.zeros((num_classes, num_classes), dtype=np.int64)
        if not 0 <= target < num_classes:
            return math.nan, math.nan, cm
        top = int(np.argmax(pred.probs))
        cm[target, top] = 1
        return float(top == target), float(pred.probs[target]), cm


def check_loss(
    task: type[Task],
    loss: str,
    *,
    lovasz_per_image: bool = False,
    ohem_thresh: float = OHEM_THRESH,
    ohem_min_kept: int = OHEM_MIN_KEPT,
) -> None:
    """Refuse a loss the task cannot train with, and loss options that the chosen loss would ignore."""
    if loss not in task.losses:
        owners = " and ".join(t.name for t in TASKS.values() if loss in t.losses)
        valid = " or ".join(task.losses)
        if owners:
            raise ValueError(f"--loss {loss} is for {owners} models; a {task.name} model trains with --loss {valid}")
        raise ValueError(f"unknown --loss {loss!r}; valid: {', '.join(task.losses)}")
    if lovasz_per_image and "lovasz" not in loss.split("+"):
        raise ValueError(f"--lovasz-per-image applies to --loss lovasz or ce+lovasz, not {loss}")
    if loss != "ohem" and (ohem_thresh, ohem_min_kept) != (OHEM_THRESH, OHEM_MIN_KEPT):
        raise ValueError(f"--ohem-thresh and --ohem-min-kept apply to --loss ohem, not {loss}")
    if not 0 < ohem_thresh <= 1 or ohem_min_kept < 0:
        raise ValueError(f"--ohem-thresh must be in (0, 1] and --ohem-min-kept >= 0, got {ohem_thresh} and {ohem_min_kept}")


TASKS: dict[str, type[Task]] = {t.name: t for t in (SegmentationTask, ClassificationTask)}


def all_tasks() -> list[type[Task]]:
    """Every task, segmentation first."""
    return list(TASKS.values())


def task_names() -> list[str]:
    """The names a file or a command line may use (``run.json``'s "task", ``--task``)."""
    return list(TASKS)


def task_type(task: str | type[Task]) -> type[Task]:
    """The task class of a name read from a file or a command line (a task class is returned as it is)."""
    if isinstance(task, type) and issubclass(task, Task):
        return task
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    return TASKS[task]


class Meter:
    """Evaluation accumulator: summed loss, confusion matrix and (classification) top-k hits."""

    def __init__(self, task: Task, device: torch.device) -> None:
        self.task = task
        self.cm = ConfusionMatrix(task.num_classes, task.ignore_index, device=device)
        self.sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss*n, n, top1 hits, top5 hits

    @torch.no_grad()
    def update(self, logits: Tensor, target: Tensor, loss: Tensor) -> None:
        """``logits`` (B, K, H, W) or (B, K); ``loss`` is the batch's mean loss."""
        n = target.shape[0]
        pred = logits.argmax(1)
        self.cm.update(pred, target)
        self.sums[0] += float(loss) * n
        self.sums[1] += n
        if logits.dim() == 2:  # class scores per item: top-k hits as well
            hits = topk_correct(logits, target, (1, 5))
            self.sums[2] += hits[1]
            self.sums[3] += hits[5]

    def compute(self) -> dict[str, Any]:
        """Metrics over every rank's share (the matrix and sums are all-reduced first)."""
        self.cm.all_reduce()
        all_reduce_sum(self.sums)
        loss = float(self.sums[0] / self.sums[1]) if self.sums[1] > 0 else float("nan")
        mat = self.cm.mat.cpu()
        metrics = self.task.scores(mat, {1: int(self.sums[2]), 5: int(self.sums[3])})
        return {"val_loss": loss, **metrics, "confusion": mat.tolist()}
