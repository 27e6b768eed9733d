"""The measures every evaluation computes: the confusion matrix, per-image scores (for the hardest images,
browsing, cells and significance), boundary IoU, calibration and the recall of segments by size."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from core.evaluation.agreement import SIZE_NAMES, segment_recall, segment_recall_counts
from core.evaluation.boundary import boundary_counts, boundary_iou
from core.evaluation.calibration import BINS, confidence_sums, ece, per_class_ece, reliability
from core.evaluation.measures.base import Item, Measure, Part, View, register_measure
from core.evaluation.metrics import nanmean


def _none(v: float) -> float | None:
    return None if v is None or np.isnan(v) else float(v)


def _iou(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    inter, union = np.asarray(inter, np.float64), np.asarray(union, np.float64)
    return np.divide(inter, union, out=np.full_like(union, np.nan), where=union > 0)


@register_measure
class Confusion(Measure):
    """One confusion matrix over every labelled pixel (or image) of the split: dataset mIoU, accuracy, top-k."""

    name, title = "confusion", "Confusion matrix"
    needs_probs = False  # segmentation reads labels

    def parts(self, num_classes: int) -> dict[str, Part]:
        return {"matrix": Part((num_classes, num_classes), "int64"), "top5": Part((1,), "int64")}

    def update(self, state: dict[str, Any], item: Item) -> None:
        state["matrix"] += item.confusion()
        if not item.dense and 0 <= int(item.target) < item.num_classes:
            state["top5"][0] += int(int(item.target) in np.argsort(-item.probs)[:5])

    def finish(self, state: dict[str, np.ndarray], classes: Sequence[str], task: Any) -> dict[str, Any]:
        cm = state["matrix"]
        return {**task.scores(cm, {1: int(np.trace(cm)), 5: int(state["top5"][0])}), "confusion": cm.tolist()}


@register_measure
class PerImage(Measure):
    """Per image: intersections and unions per class (segmentation) or top-1, p(true) (classification), and its
    confusion cells in sparse form (which images have most pixels of true a predicted as b)."""

    name, title = "per_image", "Per-image scores"
    needs_probs = False  # segmentation reads labels

    def parts(self, num_classes: int) -> dict[str, Part]:
        return {
            "iu": Part((num_classes, 2), "int64", "gather"),  # intersection, union per class
            "scores": Part((3,), "float64", "gather"),  # pixel accuracy or top-1; mIoU or p(true); labelled count
            "cells": Part((), "int64", "ragged"),  # t * K + p of the image's non-zero confusion cells
            "counts": Part((), "int64", "ragged"),  # their counts
        }

    def update(self, state: dict[str, Any], item: Item) -> None:
        cm = item.confusion()
        inter = np.diag(cm)
        union = cm.sum(0) + cm.sum(1) - inter
        state["iu"].append(np.stack([inter, union], 1))
        labelled = int(cm.sum())
        if item.dense:
            acc = inter.sum() / labelled if labelled else np.nan
            score = nanmean(_iou(inter, union)) if labelled else np.nan
        else:
            ok = 0 <= int(item.target) < item.num_classes
            acc = float(int(item.labels) == int(item.target)) if ok else np.nan
            score = float(item.probs[int(item.target)]) if ok else np.nan
        state["scores"].append([acc, score, labelled])
        cells = np.flatnonzero(cm)
        state["cells"].append(cells)
        state["counts"].append(cm.reshape(-1)[cells])

    def finish(self, state: dict[str, np.ndarray], classes: Sequence[str], task: Any) -> dict[str, Any]:
        s = state["scores"]
        return {"accuracy": [_none(v) for v in s[:, 0]], "score": [_none(v) for v in s[:, 1]], "images": len(s)}


@register_measure
class BoundaryIoU(Measure):
    """Boundary IoU per class (Cheng et al. 2021) beside region IoU, and min(IoU, boundary IoU)."""

    name, title = "boundary", "Boundary IoU"
    needs_probs = False  # segmentation reads labels
    dense_only = True
    view = View(
        "per_class",
        series=(("iou", "region IoU"), ("boundary_iou", "boundary IoU")),
        summary=(("miou", "mIoU"), ("mean_boundary_iou", "boundary"), ("mean_min", "min")),
    )

    def parts(self, num_classes: int) -> dict[str, Part]:
        return {"counts": Part((3, num_classes), "int64"), "region": Part((2, num_classes), "int64")}

    def update(self, state: dict[str, Any], item: Item) -> None:
        state["counts"] += boundary_counts(*item.compact(), item.num_classes, item.ignore_index)
        cm = item.confusion()
        inter = np.diag(cm)
        state["region"] += np.stack([inter, cm.sum(0) + cm.sum(1) - inter])

    def finish(self, state: dict[str, np.ndarray], classes: Sequence[str], task: Any) -> dict[str, Any]:
        iou, biou = _iou(*state["region"]), boundary_iou(state["counts"])
        low = np.fmin(iou, biou)
        return {
            "iou": [_none(v) for v in iou],
            "boundary_iou": [_none(v) for v in biou],
            "min": [_none(v) for v in low],
            "miou": _none(nanmean(iou)),
            "mean_boundary_iou": _none(nanmean(biou)),
            "mean_min": _none(nanmean(low)),
        }


@register_measure
class Calibration(Measure):
    """Expected calibration error over 15 confidence bins, per-class ECE and the reliability diagram."""

    name, title = "calibration", "Calibration"
    needs_probs = False  # segmentation reads labels and the top probability
    view = View("reliability", series=(("class_ece", "ECE of its predictions"),), summary=(("ece", "ECE"),))

    def parts(self, num_classes: int) -> dict[str, Part]:
        return {"sums": Part((num_classes, BINS, 3), "float64")}

    def update(self, state: dict[str, Any], item: Item) -> None:
        conf = item.top_probability()
        state["sums"] += confidence_sums(conf, *item.compact(), item.num_classes, item.ignore_index)

    def finish(self, state: dict[str, np.ndarray], classes: Sequence[str], task: Any) -> dict[str, Any]:
        sums = state["sums"]
        return {"ece": _none(ece(sums)), "class_ece": [_none(v) for v in per_class_ece(sums)], "reliability": reliability(sums)}


@register_measure
class SegmentSizes(Measure):
    """Recall of ground-truth segments (8-connected) in small, medium and large area bins."""

    name, title = "segment_sizes", "Segments found by size"
    needs_probs = False  # segmentation reads labels
    dense_only = True
    view = View("per_class_bins", series=(("recall", "recall"),), bins=SIZE_NAMES)

    def parts(self, num_classes: int) -> dict[str, Part]:
        return {"counts": Part((num_classes, len(SIZE_NAMES), 2), "int64")}

    def update(self, state: dict[str, Any], item: Item) -> None:
        state["counts"] += segment_recall_counts(*item.compact(), item.num_classes, item.ignore_index)

    def finish(self, state: dict[str, np.ndarray], classes: Sequence[str], task: Any) -> dict[str, Any]:
        counts = state["counts"]
        return {"recall": [[_none(v) for v in row] for row in segment_recall(counts)], "segments": counts[..., 1].tolist()}
