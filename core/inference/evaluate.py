"""Score a ``Predictor`` or an ``Ensemble`` on a dataset split, at each label's native size.

The result has the keys of a history record (``core.runs``): for segmentation ``pixel_acc``,
``mean_acc``, ``miou``, ``fwiou``, ``iou``, ``class_acc`` and ``confusion``; for classification
``top1``, ``top5``, ``mean_acc``, ``class_acc`` and ``confusion``. Both add ``nll`` (mean negative
log-likelihood of the true label, no class weights) and ``num_items``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from core.data.base import VisionDataset
from core.evaluation.metrics import ConfusionMatrix


def label_set(predictor: Any) -> tuple[str, list[str], int]:
    """(task, classes, ignore_index) of a Predictor (from its run) or an Ensemble."""
    source = predictor if hasattr(predictor, "classes") else predictor.run
    return predictor.task, list(source.classes), int(source.ignore_index)


def evaluate_predictor(
    predictor: Any,
    dataset: VisionDataset,
    *,
    indices: Sequence[int] | None = None,
    batch_size: int = 8,
    progress: bool | Callable[[float, str], None] = True,
) -> dict[str, Any]:
    """Metrics of ``predictor`` (``Predictor`` or ``Ensemble``) over ``dataset`` (raw items, ``load(i)``).

    ``dataset`` is typically ``run.open_dataset(split, data_root)``; ``indices`` restricts it.
    ``progress`` is a tqdm bar (True/False) or a callable ``(fraction, message)``.
    """
    task, classes, ignore_index = label_set(predictor)
    if list(dataset.classes) != classes:
        raise ValueError(f"the dataset's classes {list(dataset.classes)} differ from the model's {classes}")
    if dataset.task is not task:
        raise ValueError(f"a {task.name} model cannot be scored on a {dataset.task.name} dataset")
    order = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    k = len(classes)
    cm = ConfusionMatrix(k, ignore_index)
    nll_sum, nll_count, top5_hits = 0.0, 0, 0
    bar = tqdm(total=len(order), desc="evaluate", unit="img", leave=False, disable=progress is not True)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        items = [dataset.load(i) for i in chunk]
        preds = predictor.predict([image for image, _ in items])
        for (_, target), pred in zip(items, preds):
            # the same for both tasks: a segmentation item is H x W labelled points, a classification item one
            probs = pred.probs.reshape(k, -1)  # (K, N)
            labels = np.asarray(target, dtype=np.int64).reshape(-1)  # (N,) at the label's native size
            cm.update(torch.from_numpy(probs.argmax(0)), torch.from_numpy(labels))
            valid = (labels >= 0) & (labels < k) & (labels != ignore_index)
            if valid.any():
                p = np.take_along_axis(probs, np.where(valid, labels, 0)[None], 0)[0][valid]  # (N,) probability of the truth
                nll_sum += float(-np.log(np.clip(p, 1e-12, None)).sum())
                nll_count += int(valid.sum())
            if probs.shape[1] == 1 and valid[0]:  # one label per item: top-5 hits too
                top5_hits += int(labels[0] in np.argsort(-probs[:, 0])[: min(5, k)])
        bar.update(len(chunk))
        if callable(progress):
            progress(min(1.0, (start + len(chunk)) / max(1, len(order))), f"evaluated {start + len(chunk)}/{len(order)}")
    bar.close()
    metrics = task.scores(cm.mat, {1: int(cm.mat.diag().sum()), 5: top5_hits})
    return {
        **metrics,
        "confusion": cm.mat.tolist(),
        "nll": nll_sum / nll_count if nll_count else math.nan,
        "num_items": len(order),
    }
