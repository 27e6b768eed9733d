"""Models and their predictions on dataset items: built lazily, cached per (model, epoch, dataset
split, image). ``get_predictor`` is the one road from a run (or an ensemble) to outputs."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from core.explorer.cache import MODELS, PREDICTIONS
from core.explorer.workspace import DatasetRef
from core.inference import ClassificationPrediction, Predictor, SegmentationPrediction
from core.runs import Run, RunError
from core.runs.history import closest_epoch
from core.runs.results import decode_png

Progress = Callable[[float, str], None]
Member = tuple[Run, int]  # a run at a resolved epoch


# --- models and dataset predictions --------------------------------------------------------------------------
def nearest_epoch(run: Run, epoch: int | str | float | None) -> int:
    """A saved epoch of ``run``: "best", "last", or the saved epoch closest to a number."""
    if epoch is None or epoch in ("best", "last"):
        return run.resolve_epoch(epoch or "best")
    saved = run.epochs or ([run.last_epoch] if run.last_epoch else [])
    if not saved:
        raise RunError(f"run {run.name} has no saved weights yet")
    return closest_epoch(saved, round(float(epoch)))


def member_key(members: Sequence[Member]) -> tuple:
    return tuple((str(r.path), int(e)) for r, e in members)


def get_predictor(members: Sequence[Member]):
    """A model for one run at an epoch (``Predictor``) or several (``core.inference.ensemble.Ensemble``), cached."""
    members = [(r, int(e)) for r, e in members]
    key = ("model",) + member_key(members)
    if len(members) == 1:
        run, epoch = members[0]
        return MODELS.get_or_create(key, lambda: Predictor(run, epoch))
    from core.inference.ensemble import Ensemble  # built by the ensemble module; imported only when used

    return MODELS.get_or_create(key, lambda: Ensemble(list(members)))


def _stored(members: Sequence[Member], ref: DatasetRef) -> dict[int, bytes] | None:
    """One segmentation run's stored label maps on ``ref`` (``core.explorer.results``), if an evaluation left them."""
    if len(members) != 1 or not members[0][0].task.dense:
        return None
    from core.explorer.results import stored_labels  # results builds on this module

    try:
        return stored_labels(members[0], ref)
    except (OSError, ValueError, KeyError):
        return None  # no readable result: the model is run


def _compact_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return labels.astype(np.uint8 if num_classes <= 255 else np.int16)


def _compact(pred: SegmentationPrediction | ClassificationPrediction, num_classes: int) -> Any:
    """What is kept of a prediction over a dataset: the label map (small ints) or the class scores."""
    if isinstance(pred, SegmentationPrediction):
        return _compact_labels(pred.labels, num_classes)
    return pred


def predict_items(
    members: Sequence[Member], ref: DatasetRef, indices: Sequence[int], *, progress: Progress | None = None, batch_size: int = 8
) -> list[Any]:
    """Cached predictions of ``members`` (one run, or an ensemble) on items of a dataset split.

    Segmentation: an (H, W) label map per item; classification: a ``ClassificationPrediction``.
    Only items missing from the cache are run, in batches.
    """
    mkey = member_key(members)
    num_classes = members[0][0].num_classes
    out: dict[int, Any] = {}
    missing = []
    stored = _stored(members, ref)  # label maps an evaluation left on disk: read, not recomputed
    for i in indices:
        hit = PREDICTIONS.get((mkey, ref, int(i)))
        if hit is None and stored is not None and int(i) in stored:
            hit = _compact_labels(decode_png(stored[int(i)]), num_classes)
            PREDICTIONS.put((mkey, ref, int(i)), hit)
        if hit is None:
            missing.append(int(i))
        else:
            out[int(i)] = hit
    if missing:
        _predict_missing(get_predictor(members), ref, missing, out, mkey, num_classes, progress, batch_size)
    return [out[int(i)] for i in indices]


BATCH_PIXELS = 8 * 512 * 512  # images per batch: at most this many pixels (one 2048x1024 image at a time)


def _predict_missing(
    model, ref: DatasetRef, missing: list[int], out: dict, mkey: tuple, num_classes: int, progress, batch_size: int
) -> None:
    """Runs ``model`` on the items ``missing``, keeping (and caching) only label maps of segmentation: K float32
    probability maps per image are never held beyond one batch. Big images go in smaller batches."""
    start = 0
    while start < len(missing):
        first = ref.load(missing[start])[0]
        size = max(1, min(batch_size, BATCH_PIXELS // max(1, first.shape[0] * first.shape[1])))
        chunk = missing[start : start + size]
        images = [first] + [ref.load(i)[0] for i in chunk[1:]]
        try:
            preds = model.predict(images, probs=False)
        except ValueError:  # images of different sizes for a native-size run: one at a time
            preds = [model.predict([im], probs=False)[0] for im in images]
        for i, p in zip(chunk, preds):
            out[i] = _compact(p, num_classes)
            PREDICTIONS.put((mkey, ref, i), out[i])
        start += len(chunk)
        if progress is not None:
            progress(start / len(missing), f"predicting {len(missing)} images")
