"""Whole-split statistics from cached predictions: per-image scores and confusion counts of a model
over a split, the hardest images, and the images with most pixels in a confusion cell."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from core.evaluation.metrics import nanmean
from core.explorer.cache import SPLIT_STATS
from core.explorer.predictions import Member, Progress, member_key, predict_items
from core.explorer.validation import run_failure
from core.explorer.workspace import DatasetRef, Workspace


# --- whole-split statistics ----------------------------------------------------------------------------
@dataclass
class SplitStats:
    """Per-image scores of one model over a split, from its cached predictions.

    Segmentation: ``accuracy`` is pixel accuracy and ``score`` the image's mIoU (NaN without labelled
    pixels). Classification: ``accuracy`` is 1 or 0 (top-1 right) and ``score`` the probability
    given to the true class. ``confusion`` holds each image's (K, K) counts, rows = true class.
    """

    accuracy: np.ndarray  # (N,)
    score: np.ndarray  # (N,)
    confusion: np.ndarray  # (N, K, K) int32


def split_stats(members: Sequence[Member], ref: DatasetRef, *, progress: Progress | None = None) -> SplitStats:
    """Per-image accuracy, score and confusion matrix of a model (or ensemble) over a whole split."""
    key = ("stats", member_key(members), ref)
    hit = SPLIT_STATS.get(key)
    if hit is not None:
        return hit
    run = members[0][0]
    k, ignore = run.num_classes, run.ignore_index
    n = ref.size()
    acc, score = np.full(n, np.nan), np.full(n, np.nan)
    conf = np.zeros((n, k, k), dtype=np.int32)
    step = 16
    for start in range(0, n, step):
        idx = list(range(start, min(n, start + step)))
        preds = predict_items(members, ref, idx)
        for i, p in zip(idx, preds):
            acc[i], score[i], conf[i] = run.task.image_result(p, ref.load(i)[1], k, ignore)
        if progress is not None:
            what = "the ensemble" if len(members) > 1 else run.name
            progress((idx[-1] + 1) / n, f"scoring {what} on {n} images")
    stats = SplitStats(acc, score, conf)
    SPLIT_STATS.put(key, stats)
    return stats


def hardest_images(
    models: Sequence[Sequence[Member]], ref: DatasetRef, *, progress: Progress | None = None
) -> list[tuple[int, float]]:
    """Images of a split sorted from hardest to easiest: per-image score (mIoU, or the probability of
    the true class) averaged over ``models``. Images without a score for any model come last.
    """
    per_model = []
    for j, members in enumerate(models):
        sub = None if progress is None else (lambda f, m, j=j: progress((j + f) / len(models), m))
        per_model.append(split_stats(members, ref, progress=sub).score)
    mean = nanmean(np.stack(per_model), axis=0)  # (N,)
    mean = np.atleast_1d(mean)
    order = sorted(range(len(mean)), key=lambda i: (math.isnan(mean[i]), mean[i], i))
    return [(i, float(mean[i])) for i in order]


def top_images_for_cell(stats: SplitStats, true_class: int, pred_class: int, limit: int = 12) -> list[tuple[int, int]]:
    """(image index, pixel count) of the images with the most pixels in cell (a, b), most first."""
    counts = stats.confusion[:, true_class, pred_class]
    order = np.argsort(-counts, kind="stable")[:limit]
    return [(int(i), int(counts[i])) for i in order if counts[i] > 0]


def hardest_for(
    ws: Workspace, ref: DatasetRef, names: Sequence[str], epochs: Sequence[Any] | None, *, progress: Progress | None = None
) -> tuple[list[tuple[int, float]], str]:
    """``hardest_images`` for the selected runs (each at its chosen epoch), and the label of the score they are ranked by."""
    from core.explorer.compare import resolve_members

    names = ws.check_runs(names, ref)
    if not names:
        raise ValueError("select at least one run first")
    usable, failed = [], []
    for name, member in zip(names, resolve_members(ws, names, epochs)):
        try:  # a run whose model fails is left out of the ranking, with its reason
            split_stats([member], ref, progress=progress)
            usable.append(member)
        except Exception as e:  # noqa: BLE001  (one faulty run never takes the others down)
            failed.append(run_failure(name, e))
    if not usable:
        raise ValueError("every selected run failed: " + "; ".join(failed))
    label = ws.run(names[0]).task.score_label + "".join(f"; left out: {f}" for f in failed)
    return hardest_images([[m] for m in usable], ref, progress=progress), label
