"""One evaluation pass of a model over images of a split: every measure, the label maps and a feature sample.

``evaluate_chunk`` runs a ``Predictor`` (or an ``Ensemble``) over images ``start`` to ``stop`` of a dataset and
returns a ``core.runs.results.Chunk``: each measure's state (``core.evaluation.measures``), the predicted
label maps as PNG, and the points of the embedding map that fall in those images. The app's on-demand
evaluation and ``python -m core.evaluate`` (one process or ``torchrun``) both run it, chunk by chunk, and
merge the chunks; what a chunk holds does not depend on how the split was cut, so one process and N give
the same result.

The feature sample follows ``core.inference.embeddings``' rules: for segmentation, pixels of each class in a
seeded subset of images (each image's pixels drawn by a generator seeded by the image's index); for
classification, each class's items first in a seeded order, ``per_class`` of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from core.evaluation.measures import Item, Measure, freeze, start
from core.runs.results import Chunk, encode_png

Progress = Callable[[float, str], None]
SEGMENTATION_IMAGES = 60  # images whose pixels are sampled for the embedding map (when max_items is not given)


@dataclass(frozen=True)
class SampleSpec:
    """Which points an embedding map is made of: ``per_class`` of each class, from ``max_items`` images at most."""

    per_class: int = 300
    max_items: int | None = None
    seed: int = 0

    def key(self) -> dict[str, Any]:
        return {"per_class": self.per_class, "max_items": self.max_items, "seed": self.seed}

    def subset(self, n: int) -> np.ndarray:
        """Segmentation: the images whose pixels are sampled (a seeded choice among the split's ``n``)."""
        return np.random.default_rng(self.seed).permutation(n)[: (self.max_items or SEGMENTATION_IMAGES)]

    def ranks(self, n: int) -> np.ndarray:
        """Classification: each item's place in a seeded order (the first ``per_class`` of each class are kept)."""
        order = np.random.default_rng(self.seed).permutation(n)
        if self.max_items is not None:
            order = order[: self.max_items]
        rank = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        rank[order] = np.arange(len(order))
        return rank


def evaluate_chunk(
    predictor: Any,
    dataset: Any,
    start_index: int,
    stop_index: int,
    measures: Sequence[Measure],
    *,
    labels: bool = True,
    sample: SampleSpec | None = SampleSpec(),
    batch_size: int = 8,
    progress: Progress | None = None,
    indices: Sequence[int] | None = None,
) -> Chunk:
    """Images ``start_index`` to ``stop_index`` of ``dataset`` (raw items, ``load(i)``) through ``predictor``;
    ``indices``, ascending, instead of the range (an embedding map's images only)."""
    task, classes, ignore = _label_set(predictor)
    k, n = len(classes), len(dataset)
    if getattr(predictor, "embeddings_unavailable", None):
        sample = None  # a model that serves no features (an ONNX graph without one): no embedding points
    raw = start(measures, k)
    chunk = Chunk(start_index, stop_index, freeze(measures, raw, [], k))  # replaced below
    pngs, points = [], _Points(task.dense)
    subset = set(sample.subset(n).tolist()) if sample is not None and task.dense else set()
    ranks = sample.ranks(n) if sample is not None and not task.dense else None
    indices = list(range(start_index, stop_index)) if indices is None else [int(i) for i in indices]
    for b in range(0, len(indices), batch_size):
        batch = indices[b : b + batch_size]
        items = [dataset.load(i) for i in batch]
        want = task.dense and any(i in subset for i in batch)
        preds = predictor.predict([im for im, _ in items], **({"features": True} if want else {}))
        for i, (_, target), pred in zip(batch, items, preds):
            item = _item(i, target, pred, task, k, ignore)
            for m in measures:
                m.update(raw[m.name], item)
            if labels and task.dense:
                pngs.append(encode_png(item.labels))
            if sample is not None:
                points.add(i, item, pred, sample, subset, ranks)
        if progress is not None:
            done = min(b + batch_size, len(indices))
            progress(done / max(1, len(indices)), f"images {start_index + done}/{n}")
    chunk.states = freeze(measures, raw, indices, k)
    chunk.labels = pngs
    chunk.sample = points.arrays(sample, task.dense) if sample is not None else {}
    return chunk


def _label_set(predictor: Any) -> tuple[Any, list[str], int]:
    source = predictor if hasattr(predictor, "classes") else predictor.run
    return predictor.task, list(source.classes), int(source.ignore_index)


def _item(i: int, target: Any, pred: Any, task: Any, k: int, ignore: int) -> Item:
    if task.dense:
        return Item(i, np.asarray(target), pred.labels, pred.probs, k, ignore)
    return Item(i, int(target), int(np.argmax(pred.probs)), pred.probs, k, ignore)


class _Points:
    """The embedding points found so far: pixels of the sampled images, or the best-ranked items of each class."""

    def __init__(self, dense: bool) -> None:
        self.dense = dense
        self.parts: dict[str, list] = {"features": [], "labels": [], "preds": [], "image_index": [], "yx": [], "rank": []}

    def add(self, i: int, item: Item, pred: Any, spec: SampleSpec, subset: set, ranks: np.ndarray | None) -> None:
        if self.dense:
            if i in subset:
                self._pixels(i, item, pred, spec, len(subset))
        elif ranks[i] < np.iinfo(np.int64).max and 0 <= item.target < item.num_classes:
            row = {"features": pred.features[None], "labels": [item.target], "preds": [item.labels], "image_index": [i]}
            for key, value in {**row, "rank": [ranks[i]]}.items():
                self.parts[key].append(np.asarray(value))

    def _pixels(self, i: int, item: Item, pred: Any, spec: SampleSpec, images: int) -> None:
        mask, feats = np.asarray(item.target), pred.features  # (H, W), (C, h, w)
        quota = max(1, math.ceil(2 * spec.per_class / max(1, images)))  # per image and class; trimmed later
        rng = np.random.default_rng([spec.seed, i])  # the same pixels however the split is cut into chunks
        (height, width), (fh, fw) = mask.shape, feats.shape[1:]
        for c in np.unique(mask):
            if not 0 <= c < item.num_classes or c == item.ignore_index:
                continue
            ys, xs = np.nonzero(mask == c)
            pick = rng.choice(len(ys), size=min(quota, len(ys)), replace=False)
            ys, xs = ys[pick], xs[pick]
            self.parts["features"].append(feats[:, ys * fh // height, xs * fw // width].T)  # (q, C)
            self.parts["labels"].append(np.full(len(ys), c))
            self.parts["preds"].append(np.asarray(item.labels)[ys, xs])
            self.parts["image_index"].append(np.full(len(ys), i))
            self.parts["yx"].append(np.stack([ys, xs], 1))

    def arrays(self, spec: SampleSpec, dense: bool) -> dict[str, np.ndarray]:
        keys = ("features", "labels", "preds", "image_index") + (("yx",) if dense else ("rank",))
        if not self.parts["labels"]:
            return {}
        out = {key: np.concatenate(self.parts[key]) for key in keys}
        out["features"] = out["features"].astype(np.float32)
        return out if dense else best_ranked(out, spec.per_class)


def best_ranked(points: dict[str, np.ndarray], per_class: int) -> dict[str, np.ndarray]:
    """Of classification points, the ``per_class`` lowest-ranked of each class (order-independent: any cut of
    the split into chunks keeps the same points)."""
    keep = np.zeros(len(points["labels"]), dtype=bool)
    for c in np.unique(points["labels"]):
        rows = np.flatnonzero(points["labels"] == c)
        keep[rows[np.argsort(points["rank"][rows], kind="stable")[:per_class]]] = True
    return {k: v[keep] for k, v in points.items()}


def trim_pixels(points: dict[str, np.ndarray], spec: SampleSpec) -> dict[str, np.ndarray]:
    """Of segmentation points, at most ``per_class`` of each class (a seeded draw, after every chunk is in)."""
    rng = np.random.default_rng(spec.seed)
    keep = np.zeros(len(points["labels"]), dtype=bool)
    for c in np.unique(points["labels"]):
        rows = np.flatnonzero(points["labels"] == c)
        keep[rows if len(rows) <= spec.per_class else rng.choice(rows, spec.per_class, replace=False)] = True
    return {k: v[keep] for k, v in points.items()}


def merge_chunks(
    chunks: Sequence[Chunk], measures: Sequence[Measure], num_classes: int, dense: bool, spec: SampleSpec | None
) -> Chunk:
    """One chunk from chunks of disjoint images (from one process, N ranks or a resumed pass), in image order:
    the measures reduced as they declare, label maps and sample points concatenated, the sample trimmed."""
    from core.evaluation.measures import merge

    chunks = sorted(chunks, key=lambda c: c.start)
    states = merge([c.states for c in chunks], measures, num_classes)
    labels = [png for c in chunks for png in c.labels]
    sample: dict[str, np.ndarray] = {}
    pieces = [c.sample for c in chunks if c.sample]
    if pieces and spec is not None:
        sample = {key: np.concatenate([p[key] for p in pieces]) for key in pieces[0]}
        sample = trim_pixels(sample, spec) if dense else best_ranked(sample, spec.per_class)
    first, last = (chunks[0].start, chunks[-1].stop) if chunks else (0, 0)
    return Chunk(first, last, states, labels, sample)


def sample_indices(dataset: Any, spec: SampleSpec, dense: bool) -> list[int]:
    """The images an embedding map's points can come from: the seeded subset (segmentation), or each class's
    first ``per_class`` items in the seeded order where the dataset knows its labels (classification), else all."""
    n = len(dataset)
    if dense:
        return sorted(spec.subset(n).tolist())
    rank = spec.ranks(n)
    labels = getattr(dataset, "labels", None)
    if labels is None:
        return [i for i in range(n) if rank[i] < np.iinfo(np.int64).max]
    taken: dict[int, int] = {}
    chosen = []
    for i in np.argsort(rank, kind="stable"):
        if rank[i] == np.iinfo(np.int64).max:
            break
        y = int(labels[i])
        if taken.get(y, 0) < spec.per_class:
            taken[y] = taken.get(y, 0) + 1
            chosen.append(int(i))
    return sorted(chosen)


def sample_points(predictor: Any, dataset: Any, spec: SampleSpec, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """An embedding map's points on their own (no measures): the pass over the images they come from only."""
    task, classes, _ = _label_set(predictor)
    indices = sample_indices(dataset, spec, task.dense)
    if not indices:
        raise ValueError("the split has no image to take embedding points from")
    chunk = evaluate_chunk(
        predictor, dataset, indices[0], indices[-1] + 1, [], labels=False, sample=spec, progress=progress, indices=indices
    )
    points = merge_chunks([chunk], [], len(classes), task.dense, spec).sample
    if not points:
        raise ValueError("no labelled pixel or item in the images scanned for embedding points")
    return points
