"""Analysis behind the explorer: runs by name, cached models and predictions, per-image scores.

Everything here is independent of any user interface (nothing imports gradio):

* ``Workspace`` maps run *names* (paths relative to the runs folder) to the ``Run`` objects it
  discovered; a name that was not discovered is an error, so no path from a client reaches the disk.
* ``DatasetRef`` names one split of one dataset (name, options, root). Runs trained on datasets with
  the same classes can be compared on the same images.
* Models are built lazily and kept in a bounded LRU cache; predictions are cached per
  (model, epoch, dataset split, image index), so changing an epoch back and forth, or the overlay
  opacity, does not run a model again.
* Per-image scores use ``core.metrics``; confusion-cell pixels, disagreement categories and
  hardest-image ordering are computed from cached predictions.
* History helpers turn ``run.history`` into table rows and series for the charts.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, Hashable, Sequence, TypeVar

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from core.data import DatasetNotFoundError
from core.inference import ClassificationPrediction, Predictor, SegmentationPrediction, to_rgb_array
from core.metrics import nanmean, per_image_scores
from core.runs import Run, RunError, discover_runs
from core.visualize import fit_within, save_image

Progress = Callable[[float, str], None]
V = TypeVar("V")

MAX_UPLOAD_SIDE = 1024  # uploads are downscaled to this longest side before inference
MAX_UPLOAD_PIXELS = 64_000_000  # larger files are refused before decoding (decompression bombs)


# --- caches ------------------------------------------------------------------------------------
class LRU(Generic[V]):
    """A thread-safe least-recently-used cache bounded by entry count and, optionally, total weight.

    ``weigh(value)`` gives an entry's weight (e.g. bytes). ``hits`` and ``misses`` count lookups.
    """

    def __init__(self, max_items: int, max_weight: float | None = None, weigh: Callable[[V], float] | None = None) -> None:
        self.max_items, self.max_weight, self.weigh = max_items, max_weight, weigh
        self._data: OrderedDict[Hashable, tuple[V, float]] = OrderedDict()
        self._weight = 0.0
        self._lock = threading.RLock()
        self._creating: dict[Hashable, threading.Lock] = {}
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key][0]
            self.misses += 1
            return None

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            if key in self._data:
                self._weight -= self._data.pop(key)[1]
            w = float(self.weigh(value)) if self.weigh else 0.0
            self._data[key] = (value, w)
            self._weight += w
            while len(self._data) > self.max_items or (self.max_weight is not None and self._weight > self.max_weight and len(self._data) > 1):
                self._weight -= self._data.popitem(last=False)[1][1]

    def get_or_create(self, key: Hashable, create: Callable[[], V]) -> V:
        """The cached value, or ``create()`` once: concurrent callers of one key wait for the first."""
        value = self.get(key)
        if value is not None:
            return value
        with self._lock:
            key_lock = self._creating.setdefault(key, threading.Lock())
        with key_lock:
            value = self.get(key)
            if value is None:
                value = create()
                self.put(key, value)
        with self._lock:
            self._creating.pop(key, None)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._weight = 0.0
            self.hits = self.misses = 0


def _nbytes(value: Any) -> float:
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (SegmentationPrediction, ClassificationPrediction)):
        return sum(v.nbytes for v in vars(value).values() if isinstance(v, np.ndarray))
    if isinstance(value, SplitStats):
        return value.confusion.nbytes + value.accuracy.nbytes * 2
    return 1024.0


# Module-level caches shared by every session of the app (never per-session state).
MODELS: LRU[Any] = LRU(max_items=int(os.environ.get("VISION_EXPLORER_MAX_MODELS", 8)))
PREDICTIONS: LRU[Any] = LRU(max_items=50_000, max_weight=float(os.environ.get("VISION_EXPLORER_CACHE_MB", 768)) * 2**20, weigh=_nbytes)
SPLIT_STATS: LRU["SplitStats"] = LRU(max_items=256, weigh=_nbytes)
DATASETS: LRU[Any] = LRU(max_items=32)


def clear_caches() -> None:
    """Forget every cached model, prediction and dataset (tests, or after runs changed on disk)."""
    for cache in (MODELS, PREDICTIONS, SPLIT_STATS, DATASETS, UPLOADS, EMBEDDINGS):
        cache.clear()


# --- datasets ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetRef:
    """One split of one dataset: registry name, options (JSON text, hashable), root and split."""

    name: str
    options: str
    root: str | None
    split: str

    @classmethod
    def of_run(cls, run: Run, split: str | None = None, data_root: str | None = None) -> "DatasetRef":
        options = json.dumps(run.data.get("options", {}), sort_keys=True)
        return cls(run.data["name"], options, data_root or run.data.get("root"), split or run.data["val_split"])

    def with_split(self, split: str) -> "DatasetRef":
        return DatasetRef(self.name, self.options, self.root, split)

    @property
    def source(self) -> str:
        """The dataset without its split, as a readable label, e.g. ``synthstreets (size=[60, 80])``."""
        opts = json.loads(self.options)
        text = ", ".join(f"{k}={v}" for k, v in sorted(opts.items()))
        return f"{self.name} ({text})" if text else self.name

    def open(self):
        """The dataset object (cached); a missing dataset raises ``DatasetNotFoundError`` with advice."""

        def build():
            from core.data import get_dataset

            try:
                return get_dataset(self.name, self.split, self.root, **json.loads(self.options))
            except DatasetNotFoundError as e:
                raise DatasetNotFoundError(
                    f"{e}\nThe images of dataset {self.name!r} are not available, so image views are off; "
                    f"start the app with --data-root pointing at the dataset (e.g. --data-root ../shared/data/{self.name})."
                ) from e

        return DATASETS.get_or_create(self, build)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | int]:
        ds = self.open()
        if not 0 <= index < len(ds):
            raise IndexError(f"image {index} is out of range: split {self.split!r} has {len(ds)} images")
        image, target = ds.load(index)
        image = to_rgb_array(np.asarray(image))
        if not image.flags.writeable:  # PIL-backed arrays are read-only; torch.from_numpy warns on them
            image = image.copy()
        return image, (np.asarray(target) if isinstance(target, np.ndarray) else int(target))

    def size(self) -> int:
        """Number of items in the split (opens the dataset)."""
        return len(self.open())

    def key(self) -> str:
        """A short stable hash (file names of thumbnails)."""
        return hashlib.sha1(repr((self.name, self.options, self.root, self.split)).encode()).hexdigest()[:16]


def thumbnails(ref: DatasetRef, indices: Sequence[int], folder: str | Path, *, max_side: int = 160) -> list[str]:
    """Paths of small JPEG thumbnails of ``indices``, written once to ``folder`` and reused."""
    out_dir = Path(folder) / ref.key()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in indices:
        path = out_dir / f"{int(i):06d}.jpg"
        if not path.exists():
            image, _ = ref.load(int(i))
            tmp = path.with_suffix(f".tmp{threading.get_ident()}.jpg")
            save_image(fit_within(image, max_side), tmp, quality=85)
            os.replace(tmp, path)
        paths.append(str(path))
    return paths


# --- runs by name ----------------------------------------------------------------------------------
@dataclass
class Workspace:
    """The runs found under ``runs_dir``, addressed by name; ``data_root`` overrides recorded roots."""

    runs_dir: Path
    data_root: str | None = None
    runs: dict[str, Run] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def discover(cls, runs_dir: str | Path, data_root: str | None = None) -> "Workspace":
        ws = cls(Path(runs_dir), data_root)
        ws.refresh()
        return ws

    def refresh(self) -> None:
        """Look for runs again (new runs, new epochs of running ones)."""
        found, problems = discover_runs(self.runs_dir)
        self.runs = {self._name(r.path): r for r in found}
        self.problems = [(self._name(p), why) for p, why in problems]

    def _name(self, path: Path) -> str:
        try:
            return Path(path).relative_to(self.runs_dir).as_posix() or Path(path).name
        except ValueError:
            return Path(path).name

    @property
    def names(self) -> list[str]:
        return list(self.runs)

    def run(self, name: str) -> Run:
        """The run called ``name``; anything else is a ``RunError`` (never a path lookup)."""
        if not isinstance(name, str) or name not in self.runs:
            raise RunError(f"unknown run {name!r}; available runs: {', '.join(self.runs) or 'none'}")
        return self.runs[name]

    def names_for(self, task: str | None = None, classes: Sequence[str] | None = None) -> list[str]:
        """Runs of a task, and with exactly these classes (so they can share images and colours)."""
        return [
            n for n, r in self.runs.items()
            if (task is None or r.task == task) and (classes is None or r.classes == list(classes))
        ]  # fmt: skip

    def peers(self, name: str) -> list[str]:
        """Runs comparable with run ``name`` (same task, same classes), itself included."""
        run = self.run(name)
        return self.names_for(run.task, run.classes)

    def runs_for_source(self, source: str) -> list[str]:
        """Runs that can predict on dataset ``source`` (a label of ``sources()``): same task and classes,
        those trained on ``source`` itself first."""
        first = next((n for n in self.runs if self.dataset(n).source == source), None)
        if first is None:
            raise ValueError(f"unknown dataset {source!r}; datasets: {', '.join(self.sources()) or 'none'}")
        return sorted(self.peers(first), key=lambda n: self.dataset(n).source != source)

    def dataset(self, name: str, split: str | None = None) -> DatasetRef:
        return DatasetRef.of_run(self.run(name), split, self.data_root)

    def sources(self) -> dict[str, DatasetRef]:
        """Distinct datasets of the runs, by readable label (validation split of each)."""
        out: dict[str, DatasetRef] = {}
        for name in self.runs:
            ref = self.dataset(name)
            out.setdefault(ref.source, ref)
        return out

    def splits(self, ref: DatasetRef) -> list[str]:
        """Splits of a dataset that its runs recorded (validation first, then training).

        Other splits (e.g. a test split) are not probed: opening a derived dataset such as
        ``crops:camvid`` scans its source, which is too slow to do just to fill a menu.
        """
        names: list[str] = []
        for run in self.runs.values():
            if DatasetRef.of_run(run, data_root=self.data_root).with_split("x") == ref.with_split("x"):
                for s in (run.data.get("val_split"), run.data.get("train_split")):
                    if s and s not in names:
                        names.append(s)
        return names or [ref.split]


# --- models and predictions ------------------------------------------------------------------------
Member = tuple[Run, int]  # a run at a resolved epoch


def nearest_epoch(run: Run, epoch: int | str | float | None) -> int:
    """A saved epoch of ``run``: "best", "last", or the saved epoch closest to a number."""
    if epoch is None or epoch in ("best", "last"):
        return run.resolve_epoch(epoch or "best")
    saved = run.epochs or ([run.last_epoch] if run.last_epoch else [])
    if not saved:
        raise RunError(f"run {run.name} has no saved weights yet")
    e = int(round(float(epoch)))
    return min(saved, key=lambda s: (abs(s - e), s))


def _member_key(members: Sequence[Member]) -> tuple:
    return tuple((str(r.path), int(e)) for r, e in members)


def get_predictor(members: Sequence[Member]):
    """A model for one run at an epoch (``Predictor``) or several (``core.ensemble.Ensemble``), cached."""
    members = [(r, int(e)) for r, e in members]
    key = ("model",) + _member_key(members)
    if len(members) == 1:
        run, epoch = members[0]
        return MODELS.get_or_create(key, lambda: Predictor(run, epoch))
    from core.ensemble import Ensemble  # built by the ensemble module; imported only when used

    return MODELS.get_or_create(key, lambda: Ensemble(list(members)))


def _compact(pred: SegmentationPrediction | ClassificationPrediction, num_classes: int) -> Any:
    """What is kept of a prediction over a dataset: the label map (small ints) or the class scores."""
    if isinstance(pred, SegmentationPrediction):
        dtype = np.uint8 if num_classes <= 255 else np.int16
        return pred.labels.astype(dtype)
    return pred


def predict_items(members: Sequence[Member], ref: DatasetRef, indices: Sequence[int], *, progress: Progress | None = None,
                  batch_size: int = 8) -> list[Any]:  # fmt: skip
    """Cached predictions of ``members`` (one run, or an ensemble) on items of a dataset split.

    Segmentation: an (H, W) label map per item; classification: a ``ClassificationPrediction``.
    Only items missing from the cache are run, in batches.
    """
    mkey = _member_key(members)
    num_classes = members[0][0].num_classes
    out: dict[int, Any] = {}
    missing = []
    for i in indices:
        hit = PREDICTIONS.get((mkey, ref, int(i)))
        if hit is None:
            missing.append(int(i))
        else:
            out[int(i)] = hit
    if missing:
        model = get_predictor(members)
        for start in range(0, len(missing), batch_size):
            chunk = missing[start : start + batch_size]
            images = [ref.load(i)[0] for i in chunk]
            try:
                preds = model.predict(images)
            except ValueError:  # images of different sizes for a native-size run: one at a time
                preds = [model.predict([im])[0] for im in images]
            for i, p in zip(chunk, preds):
                out[i] = _compact(p, num_classes)
                PREDICTIONS.put((mkey, ref, i), out[i])
            if progress is not None:
                progress(min(start + batch_size, len(missing)) / len(missing), f"predicting {len(missing)} images")
    return [out[int(i)] for i in indices]


# --- per-image analysis ------------------------------------------------------------------------------
def image_scores(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None) -> dict[str, float]:
    """Pixel accuracy and mIoU of one image (``core.metrics.per_image_scores``)."""
    s = per_image_scores(torch.from_numpy(np.asarray(pred, dtype=np.int64))[None],
                         torch.from_numpy(np.asarray(target, dtype=np.int64))[None], num_classes, ignore_index)  # fmt: skip
    return {"pixel_acc": float(s["pixel_acc"][0]), "miou": float(s["miou"][0])}


def valid_pixels(target: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    keep = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        keep &= target != ignore_index
    return keep


@dataclass
class ClassPresence:
    """Classes in the ground truth and in a prediction, and how they differ (sorted class indices)."""

    truth: list[int]
    predicted: list[int]

    @property
    def missing(self) -> list[int]:
        return [c for c in self.truth if c not in self.predicted]

    @property
    def extra(self) -> list[int]:
        return [c for c in self.predicted if c not in self.truth]


def class_presence(pred: np.ndarray, target: np.ndarray | None, num_classes: int, ignore_index: int | None) -> ClassPresence:
    """Which classes an image contains and which the model predicted (on labelled pixels, if labels exist)."""
    if target is None:
        p = np.asarray(pred)
        return ClassPresence([], sorted(int(c) for c in np.unique(p) if 0 <= c < num_classes))
    keep = valid_pixels(target, num_classes, ignore_index)
    truth = sorted(int(c) for c in np.unique(target[keep]))
    predicted = sorted(int(c) for c in np.unique(np.asarray(pred)[keep]) if 0 <= c < num_classes)
    return ClassPresence(truth, predicted)


def cell_mask(target: np.ndarray, pred: np.ndarray, true_class: int, pred_class: int) -> np.ndarray:
    """(H, W) bool: exactly the pixels of confusion-matrix cell (true = a, predicted = b)."""
    return (np.asarray(target) == true_class) & (np.asarray(pred) == pred_class)


def error_pairs(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None, limit: int = 5) -> list[tuple[int, int, int]]:
    """The most frequent (true, predicted, pixels) mistakes in one image."""
    keep = valid_pixels(target, num_classes, ignore_index) & (pred != target)
    idx = target[keep].astype(np.int64) * num_classes + pred[keep].astype(np.int64)
    counts = np.bincount(idx, minlength=num_classes * num_classes)
    order = np.argsort(-counts, kind="stable")[:limit]
    return [(int(i) // num_classes, int(i) % num_classes, int(counts[i])) for i in order if counts[i] > 0]


def disagreement(target: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, num_classes: int,
                 ignore_index: int | None) -> tuple[np.ndarray, list[int]]:  # fmt: skip
    """Categories of each pixel for two predictions, and the pixel count of each category.

    0 = both right, 1 = A right and B wrong, 2 = B right and A wrong, 3 = both wrong;
    unlabelled pixels are 255 and not counted.
    """
    a_ok, b_ok = pred_a == target, pred_b == target
    cat = np.full(target.shape, 255, dtype=np.uint8)
    keep = valid_pixels(target, num_classes, ignore_index)
    cat[keep & a_ok & b_ok] = 0
    cat[keep & a_ok & ~b_ok] = 1
    cat[keep & ~a_ok & b_ok] = 2
    cat[keep & ~a_ok & ~b_ok] = 3
    counts = np.bincount(cat[keep], minlength=4)[:4]
    return cat, [int(c) for c in counts]


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
    key = ("stats", _member_key(members), ref)
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
            target = ref.load(i)[1]
            if run.task == "segmentation":
                s = image_scores(p, target, k, ignore)
                acc[i], score[i] = s["pixel_acc"], s["miou"]
                keep = valid_pixels(target, k, ignore)
                conf[i] = np.bincount(target[keep].astype(np.int64) * k + p[keep], minlength=k * k).reshape(k, k)
            elif 0 <= target < k:
                top = int(np.argmax(p.probs))
                acc[i], score[i] = float(top == target), float(p.probs[target])
                conf[i, target, top] = 1
        if progress is not None:
            what = "the ensemble" if len(members) > 1 else run.name
            progress((idx[-1] + 1) / n, f"scoring {what} on {n} images")
    stats = SplitStats(acc, score, conf)
    SPLIT_STATS.put(key, stats)
    return stats


def hardest_images(models: Sequence[Sequence[Member]], ref: DatasetRef, *, progress: Progress | None = None) -> list[tuple[int, float]]:
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


# --- uploaded images -------------------------------------------------------------------------------------
def read_image(source: str | Path | bytes, *, max_side: int = MAX_UPLOAD_SIDE) -> np.ndarray:
    """An uploaded file as (H, W, 3) uint8 RGB: EXIF orientation applied, downscaled to ``max_side``.

    Anything that is not a readable image is a ``ValueError`` with a message for the user.
    """
    try:
        fh = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except OSError as e:
        raise ValueError(f"cannot read the uploaded file ({e.strerror})") from e
    with fh:
        try:
            with Image.open(fh) as im:
                if im.width * im.height > MAX_UPLOAD_PIXELS:
                    raise ValueError(f"the image is too large ({im.width}x{im.height} pixels); the limit is {MAX_UPLOAD_PIXELS // 10**6} megapixels")
                im.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale when much larger
                array = to_rgb_array(im)
        except (UnidentifiedImageError, Image.DecompressionBombError) as e:
            raise ValueError("this file is not an image that can be read (supported: JPEG, PNG, WebP, BMP, GIF, TIFF)") from e
        except (OSError, SyntaxError) as e:
            raise ValueError(f"the image file is damaged or truncated ({e})") from e
    return fit_within(array, max_side)


UPLOADS: LRU[Any] = LRU(max_items=64)


def predict_image(members: Sequence[Member], image: np.ndarray) -> SegmentationPrediction | ClassificationPrediction:
    """Prediction of a run (or ensemble) on one image, cached by the image's content."""
    digest = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest() + str(image.shape)
    key = (_member_key(members), digest)
    return UPLOADS.get_or_create(key, lambda: get_predictor(members).predict([image])[0])


# --- history -------------------------------------------------------------------------------------------------
def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def summary_row(name: str, run: Run) -> dict[str, Any]:
    """One row of the runs table, from run.json and the best epoch's history record."""
    best = run.best_epoch
    rec = run.record(best) if best is not None else None
    rec = rec or {}
    status = run.status
    row: dict[str, Any] = {
        "run": name,
        "task": run.task,
        "architecture": run.arch,
        "dataset": run.data["name"],
        "parameters": run.config["model"].get("num_params"),
        "best epoch": best,
        "epochs": len(run.history),
    }
    if run.task == "segmentation":
        row.update({k: _num(rec.get(m)) for k, m in (("pixel acc", "pixel_acc"), ("mean acc", "mean_acc"), ("mIoU", "miou"), ("fwIoU", "fwiou"))})
    else:
        row.update({k: _num(rec.get(m)) for k, m in (("top-1", "top1"), ("top-5", "top5"), ("mean acc", "mean_acc"))})
    train_time = status.get("train_time")
    if train_time is None:
        train_time = sum(float(r.get("epoch_time") or 0.0) for r in run.history) or None
    row.update({"val loss": _num(rec.get("val_loss")), "train time (s)": _num(train_time), "status": status.get("state", "unknown")})
    return row


SUMMARY_COLUMNS = ["run", "task", "architecture", "dataset", "parameters", "best epoch", "epochs", "pixel acc", "mean acc",
                   "mIoU", "fwIoU", "top-1", "top-5", "val loss", "train time (s)", "status"]  # fmt: skip


def summary_rows(runs: dict[str, Run]) -> list[dict[str, Any]]:
    """Summary rows for every run, with every column (``None`` where it does not apply)."""
    return [{c: summary_row(n, r).get(c) for c in SUMMARY_COLUMNS} for n, r in runs.items()]


def history_series(run: Run, key: str) -> tuple[list[int], list[float | None]]:
    """(epochs, values) of a history field, ``None`` where an epoch lacks it."""
    return [int(r["epoch"]) for r in run.history], [_num(r.get(key)) for r in run.history]


def class_scores(run: Run, epoch: int) -> list[float | None]:
    """Per-class IoU (segmentation) or accuracy (classification) recorded for ``epoch``."""
    rec = run.record(epoch)
    if rec is None:
        raise RunError(f"run {run.name} has no history record for epoch {epoch}")
    values = rec.get("iou") if run.task == "segmentation" else rec.get("class_acc")
    if values is None:
        values = rec.get("class_acc", [None] * run.num_classes)
    return [_num(v) for v in values]


def class_scores_by_epoch(run: Run) -> tuple[list[int], np.ndarray]:
    """(epochs, (K, E) array) of per-class scores over training; NaN where a class had none."""
    epochs = [int(r["epoch"]) for r in run.history]
    m = np.full((run.num_classes, len(epochs)), np.nan)
    for j, e in enumerate(epochs):
        m[:, j] = [np.nan if v is None else v for v in class_scores(run, e)]
    return epochs, m


def confusion_at(run: Run, epoch: int) -> np.ndarray:
    """The validation confusion matrix recorded for ``epoch`` (K, K) int64, rows = true class."""
    rec = run.record(epoch)
    if rec is None or rec.get("confusion") is None:
        raise RunError(f"run {run.name} recorded no confusion matrix for epoch {epoch}")
    return np.asarray(rec["confusion"], dtype=np.int64)


def row_normalize(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (recall per true class); NaN for a class with no pixels."""
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum(1, keepdims=True)
    return np.divide(cm, total, out=np.full_like(cm, np.nan), where=total > 0)


# --- embedding maps (core.embeddings, kept in memory once read or computed) ----------------------------------------
EMBEDDINGS: LRU[Any] = LRU(max_items=16)


def embedding_methods() -> list[str]:
    """Methods ``core.embeddings`` offers here (empty if the module is unavailable)."""
    try:
        from core.embeddings import available_methods
    except ImportError:
        return []
    return available_methods()


def embedding(run: Run, epoch: int, split: str, method: str, *, data_root: str | None = None,
              progress: Progress | None = None, cached_only: bool = False) -> Any:  # fmt: skip
    """The run's 2-D map at ``epoch`` on ``split``: from memory, then the run's disk cache, else computed.

    With ``cached_only`` nothing is computed and ``None`` is returned on a miss.
    """
    from core.embeddings import cached_embedding, compute_embedding

    key = ("embedding", str(run.path), int(epoch), split, method)
    hit = EMBEDDINGS.get(key)
    if hit is not None:
        return hit
    emb = cached_embedding(run, epoch=epoch, split=split, method=method, data_root=data_root)
    if emb is None and not cached_only:
        emb = compute_embedding(run, epoch=epoch, split=split, method=method, data_root=data_root, progress=progress)
    if emb is not None:
        EMBEDDINGS.put(key, emb)
    return emb


def place_on_embedding(run: Run, emb: Any, image: np.ndarray, *, data_root: str | None = None) -> dict[str, Any]:
    """Where a new image falls on a map, and its nearest map points (``core.embeddings.place_image``)."""
    from core.embeddings import place_image

    return place_image(run, emb, image, data_root=data_root)
