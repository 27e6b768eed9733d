"""One pass of a run (at an epoch) over a split for everything the region-IoU anchors leave open: per-image
confusion matrices (for the bootstrap), boundary-IoU counts, calibration sums and segment recall by size.

Computed on demand from the snapshot, then kept in memory and on disk in the run's ``evaluation/`` folder
(keyed by the weights file, the dataset and the split, written atomically, read without pickle), so a
second request is a file read."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.evaluation.agreement import segment_recall_counts
from core.evaluation.boundary import boundary_counts
from core.evaluation.calibration import BINS, calibration_sums
from core.evaluation.metrics import nanmean
from core.explorer.cache import QUALITY
from core.explorer.predictions import Member, Progress, get_predictor, member_key
from core.explorer.workspace import DatasetRef
from core.utils.io import atomic_write

FORMAT = 1
FOLDER = "evaluation"


@dataclass
class Quality:
    """Per-split measures of one model. Arrays: ``confusion`` (N, K, K) per image; ``boundary`` (3, K);
    ``calibration`` (K, bins, 3); ``segments`` (K, 3, 2) (segmentation only, else zeros)."""

    confusion: np.ndarray
    boundary: np.ndarray
    calibration: np.ndarray
    segments: np.ndarray

    def per_image_miou(self) -> np.ndarray:
        """(N,) each image's mIoU from its own matrix (NaN without labelled pixels)."""
        from core.evaluation.significance import iou_from_confusion

        return nanmean(iou_from_confusion(self.confusion), axis=1)


def _path(member: Member, ref: DatasetRef) -> Path:
    run, epoch = member
    weights = run.weights_path(epoch)
    st = weights.stat()
    ident = {
        "format": FORMAT,
        "epoch": epoch,
        "weights": [weights.name, st.st_size, st.st_mtime_ns],
        "dataset": ref.name,
        "options": ref.options,
        "root": str(Path(ref.root).resolve()) if ref.root else None,
        "split": ref.split,
    }
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]
    return run.path / FOLDER / f"{epoch:04d}-{digest}.npz"


def _compute(member: Member, ref: DatasetRef, progress: Progress | None) -> Quality:
    run, _ = member
    k, ignore = run.num_classes, run.ignore_index
    predictor = get_predictor([member])
    n = ref.size()
    conf = np.zeros((n, k, k), dtype=np.int64)
    boundary = np.zeros((3, k), dtype=np.int64)
    calib = np.zeros((k, BINS, 3))
    segments = np.zeros((k, 3, 2), dtype=np.int64)
    seg = run.task.dense
    for start in range(0, n, 8):
        idx = list(range(start, min(n, start + 8)))
        items = [ref.load(i) for i in idx]
        for i, (_, target), pred in zip(idx, items, predictor.predict([im for im, _ in items])):
            conf[i] = run.task.image_result(pred.labels if seg else pred, target, k, ignore)[2]
            calib += calibration_sums(pred.probs, target, k, ignore)
            if seg:
                boundary += boundary_counts(pred.labels, target, k, ignore)
                segments += segment_recall_counts(pred.labels, target, k, ignore)
        if progress is not None:
            progress(idx[-1] / n, f"{run.name} @ {member[1]}: {idx[-1] + 1}/{n} images")
    return Quality(conf, boundary, calib, segments)


def split_quality(member: Member, ref: DatasetRef, *, progress: Progress | None = None) -> Quality:
    """The measures of ``member`` (a run at an epoch) on ``ref``: from memory, the run's disk cache, or one pass."""
    key = ("quality", member_key([member]), ref)

    def load_or_compute() -> Quality:
        path = _path(member, ref)
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    return Quality(z["confusion"], z["boundary"], z["calibration"], z["segments"])
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache file is recomputed
        q = _compute(member, ref, progress)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, confusion=q.confusion, boundary=q.boundary, calibration=q.calibration, segments=q.segments)

        try:
            atomic_write(path, write)
        except OSError:
            pass  # a read-only run folder: keep it in memory only
        return q

    return QUALITY.get_or_create(key, load_or_compute)
