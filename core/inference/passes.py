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

import contextlib
import math
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from core.evaluation.measures import Item, Measure, accumulate, freeze, start
from core.runs.results import Chunk, encode_png

Progress = Callable[[float, str], None]
MAX_STREAMS = 4  # concurrent batches of a CPU pass (see cpu_streams)
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
    indices = range(start_index, stop_index) if indices is None else indices
    out: list[Chunk] = []
    span = Span(start_index, stop_index, [int(i) for i in indices])
    options = {"labels": labels, "sample": sample, "batch_size": batch_size, "progress": progress}
    evaluate_chunks(predictor, dataset, [span], measures, out.append, **options)
    return out[0]


@dataclass(frozen=True)
class Span:
    """The images of one chunk: ``indices`` (ascending), recorded as the range ``start`` to ``stop``."""

    start: int
    stop: int
    indices: list[int]


def evaluate_chunks(
    predictor: Any,
    dataset: Any,
    spans: Sequence[Span],
    measures: Sequence[Measure],
    write: Callable[[Chunk], None],
    *,
    labels: bool = True,
    sample: SampleSpec | None = SampleSpec(),
    batch_size: int = 8,
    progress: Progress | None = None,
) -> None:
    """Each span's images through ``predictor``, in batches that never cross a span (so a chunk's result does not
    depend on which others run beside it); ``write(chunk)`` is called with each span's chunk once it is done.

    On the CPU the batches run in ``cpu_streams`` streams at once, each reading, predicting and accounting for its
    own batches on one core (torch's threads split between them): a forward on one thread each does more per core
    than one forward on all of them, whose threads wait for each other at every layer, and the accounting (measures,
    label maps, embedding points) and the reading never take a core from a forward's thread. On an accelerator the
    forward runs here while one thread reads the next batch and another accounts for the last. The threads are
    ordinary ones: at the lowest priority (``SCHED_IDLE``) they starved beside any other busy process (a training
    in the background), and the pass ran 2.5-4x slower."""
    task, classes, ignore = _label_set(predictor)
    n = len(dataset)
    if getattr(predictor, "embeddings_unavailable", None):
        sample = None  # a model that serves no features (an ONNX graph without one): no embedding points
    subset = set(sample.subset(n).tolist()) if sample is not None and task.dense else set()
    book = _Books(measures, task, len(classes), ignore, labels, sample, subset, n)
    for s in spans:
        if not s.indices:  # nothing to run: an empty chunk
            book.absorb(s, None, write)
    batches = [(s, s.indices[b : b + batch_size]) for s in spans for b in range(0, len(s.indices), batch_size)]
    total, count = sum(len(s.indices) for s in spans), 0

    def predict(items: list, batch: list[int]) -> list:
        return predictor.predict([im for im, _ in items], **_asks(task, measures, any(i in subset for i in batch)))

    def done(j: int, tally: _Tally) -> None:  # batch j accounted for (here, in batch order): into its span's books
        nonlocal count
        span, batch = batches[j]
        book.absorb(span, tally, write if j + 1 == len(batches) or batches[j + 1][0] is not span else None)
        count += len(batch)
        if progress is not None:
            progress(count / max(1, total), f"images {count}/{total}")

    run = _in_streams if _on_cpu(predictor) else _beside_accelerator
    run(dataset, [b for _, b in batches], predict, book.tally, done)


def cpu_streams(threads: int) -> int:
    """Streams of a CPU pass on ``threads`` torch threads: one per thread, at most ``MAX_STREAMS`` (each holds a
    batch's activations: memory, not cores, bounds them on a large CPU)."""
    return max(1, min(threads, MAX_STREAMS))


@contextlib.contextmanager
def cpu_stream_pool() -> Iterator[tuple[ThreadPoolExecutor, int]]:
    """(pool, streams): ``cpu_streams`` threads, each with its share of torch's threads. On leaving, the work not
    started is dropped (after a failure) and torch's thread count is restored: it is per thread (OpenMP), but
    setting it in a stream also sets the count a thread takes on its first parallel op, so one that starts
    meanwhile (another app request on more than one thread) takes it too."""
    threads = max(1, torch.get_num_threads())
    streams = cpu_streams(threads)
    pool = ThreadPoolExecutor(streams, initializer=torch.set_num_threads, initargs=(threads // streams,))
    try:
        yield pool, streams
    finally:
        pool.shutdown(cancel_futures=True)
        torch.set_num_threads(threads)


def _in_streams(dataset: Any, batches: list[list[int]], predict: Callable, tally: Callable, done: Callable) -> None:
    """CPU: each batch read, predicted and accounted for by one of the ``cpu_stream_pool``'s threads; ``done`` in
    batch order."""

    def work(batch: list[int]) -> _Tally:
        items = [dataset.load(i) for i in batch]
        return tally(batch, items, predict(items, batch))

    pending: deque[tuple[int, Future]] = deque()  # batches submitted, in order; at most streams + 1
    with cpu_stream_pool() as (pool, streams):
        for j, batch in enumerate(batches):
            pending.append((j, pool.submit(work, batch)))
            while pending and (len(pending) > streams or pending[0][1].done()):
                done(pending[0][0], pending.popleft()[1].result())
        while pending:
            done(pending[0][0], pending.popleft()[1].result())


def _beside_accelerator(dataset: Any, batches: list[list[int]], predict: Callable, tally: Callable, done: Callable) -> None:
    """Accelerator: the forward here, batch after batch, while one thread reads the next batch and one accounts for
    the last (at most three batches of predictions held)."""
    with ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as accountant:
        reading = reader.submit(_read, dataset, batches[0]) if batches else None
        accounting: deque[tuple[int, Future]] = deque()
        for j, batch in enumerate(batches):
            items = reading.result()
            if j + 1 < len(batches):
                reading = reader.submit(_read, dataset, batches[j + 1])
            accounting.append((j, accountant.submit(tally, batch, items, predict(items, batch))))
            if len(accounting) > 2:
                done(accounting[0][0], accounting.popleft()[1].result())
        for j, f in accounting:
            done(j, f.result())


def _on_cpu(predictor: Any) -> bool:
    device = getattr(predictor, "device", None)
    return device is None or torch.device(device).type == "cpu"


@dataclass
class _Tally:
    """What a batch's images add: measure states, label maps (PNG) and embedding points."""

    raw: dict[str, dict[str, Any]]
    pngs: list[bytes]
    points: _Points


class _Books:
    """The measure states, label maps and embedding points of the span in progress. ``tally`` (any thread) accounts
    for a batch's images on their own; ``absorb`` (the pass's own thread) adds them, in image order, to the span's."""

    def __init__(self, measures, task, k: int, ignore: int, labels: bool, sample, subset: set, n: int) -> None:
        self.measures, self.task, self.k, self.ignore, self.labels = measures, task, k, ignore, labels
        self.sample, self.subset = sample, subset
        self.ranks = sample.ranks(n) if sample is not None and not task.dense else None
        self.span: Span | None = None

    def tally(self, batch: list[int], items: list, preds: list) -> _Tally:
        out = _Tally(start(self.measures, self.k), [], _Points(self.task.dense))
        for i, (_, target), pred in zip(batch, items, preds):
            item = _item(i, target, pred, self.task, self.k, self.ignore)
            for m in self.measures:
                m.update(out.raw[m.name], item)
            if self.labels and self.task.dense:
                out.pngs.append(encode_png(item.compact()[0]))  # uint8 when it can be: ~0.5 ms less than int64
            if self.sample is not None:
                out.points.add(i, item, pred, self.sample, self.subset, self.ranks)
        return out

    def absorb(self, span: Span, tally: _Tally | None, write: Callable | None) -> None:
        if span is not self.span:
            self.span, self.raw, self.pngs, self.points = span, start(self.measures, self.k), [], _Points(self.task.dense)
        if tally is not None:
            accumulate(self.measures, self.raw, tally.raw)
            self.pngs += tally.pngs
            self.points.extend(tally.points)
        if write is not None:
            states = freeze(self.measures, self.raw, span.indices, self.k)
            sample = self.points.arrays(self.sample, self.task.dense) if self.sample is not None else {}
            write(Chunk(span.start, span.stop, states, self.pngs, sample))


def _read(dataset: Any, batch: list[int]) -> list:
    return [dataset.load(i) for i in batch]


def _asks(task: Any, measures: Sequence[Measure], sampled: bool) -> dict[str, bool]:
    """What to ask the predictor for: per-pixel features for an image of the embedding sample; no K probability
    maps per image unless a measure reads them (the label map and the top probability otherwise)."""
    if not task.dense:
        return {}
    asks = {"features": True} if sampled else {}
    return asks if any(m.needs_probs for m in measures) else {**asks, "probs": False, "confidence": True}


def _label_set(predictor: Any) -> tuple[Any, list[str], int]:
    source = predictor if hasattr(predictor, "classes") else predictor.run
    return predictor.task, list(source.classes), int(source.ignore_index)


def _item(i: int, target: Any, pred: Any, task: Any, k: int, ignore: int) -> Item:
    if task.dense:
        return Item(i, np.asarray(target), pred.labels, pred.probs, k, ignore, pred.confidence)
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

    def extend(self, other: _Points) -> None:
        for key, values in other.parts.items():
            self.parts[key] += values

    def _pixels(self, i: int, item: Item, pred: Any, spec: SampleSpec, images: int) -> None:
        mask, feats = np.asarray(item.target), pred.features  # (H, W), (C, h, w)
        quota = max(1, math.ceil(2 * spec.per_class / max(1, images)))  # per image and class; trimmed later
        rng = np.random.default_rng([spec.seed, i])  # the same pixels however the split is cut into chunks
        (height, width), (fh, fw) = mask.shape, feats.shape[1:]
        for c, where in _pixels_by_class(mask):  # each class's pixels in raster order
            if not 0 <= c < item.num_classes or c == item.ignore_index:
                continue
            pick = where[rng.choice(len(where), size=min(quota, len(where)), replace=False)]
            ys, xs = np.divmod(pick, width)
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


def _pixels_by_class(mask: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(class, its flat pixel indices in raster order) for each class of ``mask``, ascending: one stable sort
    (a radix sort on 16-bit labels), not a comparison and a scan of the whole image per class."""
    flat = mask.ravel()
    if flat.size and 0 <= flat.min() and flat.max() < 2**16:
        flat = flat.astype(np.uint16)
    order = np.argsort(flat, kind="stable")  # (H * W,) pixels grouped by class
    grouped = flat[order]
    cuts = np.flatnonzero(grouped[1:] != grouped[:-1]) + 1
    return [(int(grouped[a]), order[a:b]) for a, b in zip(np.r_[0, cuts], np.r_[cuts, flat.size]) if b > a]


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
