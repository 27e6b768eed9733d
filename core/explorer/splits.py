"""Whole-split statistics from evaluation results: per-image scores of a run over a split, the hardest images,
and the images with most pixels in a confusion cell (``core.explorer.results``: stored, or one pass)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from core.evaluation.measures import MEASURES
from core.evaluation.metrics import nanmean
from core.explorer.predictions import Member, Progress
from core.explorer.results import PerImage, cold_check, ensure, per_image
from core.explorer.validation import run_failure
from core.explorer.workspace import DatasetRef, Workspace


@dataclass
class SplitStats:
    """Per-image scores of one run over a split.

    Segmentation: ``accuracy`` is pixel accuracy and ``score`` the image's mIoU (NaN without labelled
    pixels). Classification: ``accuracy`` is 1 or 0 (top-1 right) and ``score`` the probability
    given to the true class. ``images.cell(a, b, K)`` counts each image's pixels of true a predicted as b.
    """

    accuracy: np.ndarray  # (N,)
    score: np.ndarray  # (N,)
    images: PerImage
    num_classes: int


def split_stats(ws: Workspace, member: Member, ref: DatasetRef, *, progress: Progress | None = None) -> SplitStats:
    """Per-image accuracy and score of a run at an epoch over a whole split (evaluated first if need be)."""
    ensure(ws, [(member, ref)], [MEASURES.get("per_image")], progress=progress)
    p = per_image(member, ref)
    return SplitStats(p.accuracy, p.score, p, member[0].num_classes)


def hardest_images(stats: Sequence[SplitStats]) -> list[tuple[int, float]]:
    """Images of a split sorted from hardest to easiest: per-image score (mIoU, or the probability of
    the true class) averaged over the runs. Images without a score for any run come last.
    """
    mean = np.atleast_1d(nanmean(np.stack([s.score for s in stats]), axis=0))  # (N,)
    order = sorted(range(len(mean)), key=lambda i: (math.isnan(mean[i]), mean[i], i))
    return [(i, float(mean[i])) for i in order]


PAGE_SIZE = 24  # thumbnails per page of a split (browse, hardest first)
MAX_PAGE_SIZE = 200


@dataclass
class Page:
    """Page ``number`` (from 1) of ``pages`` over ``total`` items: the positions ``start:stop`` of an ordering."""

    number: int
    pages: int
    total: int
    start: int
    stop: int

    @property
    def text(self) -> str:
        if not self.total:
            return "no images"
        return f"page {self.number} of {self.pages} (images {self.start + 1}-{self.stop} of {self.total:,})"


def page_of(total: int, page: Any = 1, page_size: Any = PAGE_SIZE) -> Page:
    """The page ``page`` (1 = first; past the last gives the last) of ``total`` items, ``page_size`` a page.

    A page number below 1, or a size outside 1..``MAX_PAGE_SIZE``, is a ``ValueError`` saying what to enter."""
    number, size = _whole(page, "page number"), _whole(page_size, "page size")
    if number < 1:
        raise ValueError(f"page numbers start at 1, got {number}")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"a page holds 1 to {MAX_PAGE_SIZE} images, got {size}")
    pages = max(1, math.ceil(total / size))
    number = min(number, pages)
    start = (number - 1) * size
    return Page(number, pages, total, start, min(total, start + size))


def _whole(value: Any, what: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"the {what} must be a whole number, got {value!r}") from None
    if not number.is_integer():
        raise ValueError(f"the {what} must be a whole number, got {value!r}")
    return int(number)


def top_images_for_cell(stats: SplitStats, true_class: int, pred_class: int, limit: int = 12) -> list[tuple[int, int]]:
    """(image index, pixel count) of the images with the most pixels in cell (a, b), most first."""
    counts = stats.images.cell(true_class, pred_class, stats.num_classes)
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
    members = resolve_members(ws, names, epochs)
    cold_check(ws, [(m, ref) for m in members], [MEASURES.get("per_image")])  # refused before any run is computed
    usable, failed = [], []
    for j, (name, member) in enumerate(zip(names, members)):
        sub = None if progress is None else (lambda f, m, j=j: progress((j + f) / len(members), m))
        try:  # a run whose model fails is left out of the ranking, with its reason
            usable.append(split_stats(ws, member, ref, progress=sub))
        except Exception as e:  # noqa: BLE001  (one faulty run never takes the others down)
            failed.append(run_failure(name, e))
    if not usable:
        raise ValueError("every selected run failed: " + "; ".join(failed))
    label = ws.run(names[0]).task.score_label + "".join(f"; left out: {f}" for f in failed)
    return hardest_images(usable), label
