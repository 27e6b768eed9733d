"""Which classes a view shows when a dataset has many (ADE20K: 150): the classes of a confusion matrix chosen by
frequency or by error, its most confused pairs over every class, and the classes of a per-class chart (the top and
bottom N by score, or the ones a user picked)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

MATRIX_CLASSES = 30  # at most this many classes in a confusion heatmap
CHART_CLASSES = 15  # a per-class chart past 2 x this many classes shows the top and bottom this many
CLASS_ORDERS = ("frequency", "error")


def choose_classes(confusion: np.ndarray, k: int = MATRIX_CLASSES, by: str = "frequency") -> list[int]:
    """Indices (ascending) of at most ``k`` classes of a (K, K) confusion matrix (rows true, columns predicted).

    All K when K <= k; else the ``k`` with the most pixels in the ground truth (``by="frequency"``: the row sum) or
    the most errors (``by="error"``: pixels of the class predicted as another, plus pixels of other classes
    predicted as it). Ties go to the lower index."""
    if by not in CLASS_ORDERS:
        raise ValueError(f"classes are chosen by {' or '.join(CLASS_ORDERS)}, not {by!r}")
    if int(k) < 1:
        raise ValueError(f"the matrix needs at least one class, got k={k}")
    cm = np.asarray(confusion, dtype=np.int64)  # (K, K)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"a confusion matrix is square, got shape {cm.shape}")
    if cm.shape[0] <= k:
        return list(range(cm.shape[0]))
    diag = np.diag(cm)  # (K,)
    score = cm.sum(1) if by == "frequency" else cm.sum(1) + cm.sum(0) - 2 * diag  # (K,)
    order = np.argsort(-score, kind="stable")[: int(k)]
    return sorted(int(i) for i in order)


def most_confused_pairs(confusion: np.ndarray, classes: Sequence[str], n: int = 20) -> list[dict[str, Any]]:
    """The ``n`` largest off-diagonal cells of the whole matrix, most pixels first (ties: lower true, then
    predicted index), empty cells never: ``{"true", "predicted", "pixels", "share"}``, where ``share`` is the
    fraction of the true class's pixels that were predicted as the other class."""
    cm = np.asarray(confusion, dtype=np.int64)  # (K, K)
    if cm.shape != (len(classes), len(classes)):
        raise ValueError(f"a {cm.shape} matrix for {len(classes)} classes")
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = off.ravel()  # (K*K,), row-major: (true, predicted) in index order
    order = np.argsort(-flat, kind="stable")[: max(0, int(n))]
    rows = cm.sum(1)  # (K,)
    out = []
    for f in order:
        if flat[f] <= 0:
            break
        t, p = divmod(int(f), len(classes))
        out.append({"true": classes[t], "predicted": classes[p], "pixels": int(flat[f]), "share": float(flat[f] / rows[t])})
    return out


def _mean_scores(scores: Sequence[Sequence[float | None]], k: int) -> np.ndarray:
    """(K,) mean over the series of each class's score, NaN where no series scores it."""
    table = np.array(
        [[np.nan if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in s] for s in scores]
        or [[np.nan] * k],
        dtype=np.float64,
    )  # (S, K)
    counts = np.isfinite(table).sum(0)  # (K,)
    sums = np.where(np.isfinite(table), table, 0.0).sum(0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def chart_classes(
    classes: Sequence[str],
    scores: Sequence[Sequence[float | None]],
    *,
    top: int = CHART_CLASSES,
    chosen: Sequence[str] | None = None,
) -> tuple[list[int], str]:
    """The classes a per-class chart shows, in their order, and a note saying which.

    ``scores`` holds one list per series (run), aligned with ``classes``. With ``chosen`` (class names): those,
    best mean score first (a name not in ``classes`` is an error). Else, with at most ``2 * top`` classes: all, in
    the dataset's order. Else the ``top`` best and ``top`` worst by their mean score over the series, best first;
    classes no series scores are left out and counted in the note."""
    k = len(classes)
    mean = _mean_scores(scores, k)
    ranked = sorted(range(k), key=lambda i: (math.isnan(mean[i]), -mean[i] if not math.isnan(mean[i]) else 0, i))
    if chosen:
        unknown = [c for c in chosen if c not in classes]
        if unknown:
            raise ValueError(f"unknown classes {', '.join(map(repr, unknown))}: choose among the menu's {k} classes")
        wanted = {classes.index(c) for c in chosen}
        return [i for i in ranked if i in wanted], f"{len(wanted)} chosen of {k} classes, best first"
    top = int(top)
    if top < 1:
        raise ValueError(f"show at least the top and bottom 1 class, got {top}")
    if k <= 2 * top:
        return list(range(k)), ""
    scored = [i for i in ranked if not math.isnan(mean[i])]
    unscored = k - len(scored)
    shown = scored if len(scored) <= 2 * top else scored[:top] + scored[-top:]
    note = f"top and bottom {top} of {k} classes by score" if len(shown) < len(scored) else f"{len(scored)} of {k} classes"
    return shown, note + (f"; {unscored} without a score left out" if unscored else "")
