"""Bounded, thread-safe LRU caches shared by every session of the app (never per-session state)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, Callable, Generic, Hashable, TypeVar

import numpy as np

V = TypeVar("V")


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
            while len(self._data) > self.max_items or (
                self.max_weight is not None and self._weight > self.max_weight and len(self._data) > 1
            ):
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
                if value is not None:  # a miss that created nothing is not remembered
                    self.put(key, value)
        with self._lock:
            self._creating.pop(key, None)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._weight = 0.0
            self.hits = self.misses = 0


def cached(memory: LRU[V], key: Hashable, disk: Callable[[], V | None], compute: Callable[[], V | None]) -> V | None:
    """The one road to a cached result, for maps, evaluation results and predictions alike: memory, then disk
    (``disk()``: None on a miss), then ``compute()``. Concurrent callers of one key wait for the first."""
    hit = memory.get(key)
    if hit is not None:
        return hit
    found = disk()
    if found is not None:
        memory.put(key, found)
        return found
    value = memory.get_or_create(key, lambda: disk() or compute())
    return value


def nbytes(value: Any) -> float:
    """Memory held by an array, or by the arrays among an object's attributes (a prediction, split statistics,
    an embedding map), one level into lists, tuples and dicts; 1 KiB for an object that holds none."""
    if isinstance(value, np.ndarray):
        return float(value.nbytes)
    if isinstance(value, (list, tuple)):
        return float(sum(_array_bytes(v) for v in value)) or 1024.0
    if isinstance(value, dict):
        return float(sum(_array_bytes(v) for v in value.values())) or 1024.0
    return float(sum(_array_bytes(v) for v in getattr(value, "__dict__", {}).values())) or 1024.0


def _array_bytes(value: Any) -> int:
    """Bytes of an array, or of the arrays in a list, tuple or dict of them (one level)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return sum(v.nbytes for v in items if isinstance(v, np.ndarray))


def model_bytes(value: Any) -> float:
    """Memory held by a ``Predictor`` or an ``Ensemble``: its models' parameters and buffers (16 MiB for a model
    that exposes none, e.g. an ONNX graph)."""
    predictors = getattr(value, "predictors", None) or [value]
    total = 0.0
    for p in predictors:
        model = getattr(p, "model", None)
        tensors = list(model.parameters()) + list(model.buffers()) if hasattr(model, "parameters") else []
        total += sum(t.numel() * t.element_size() for t in tensors) or 16 * 2**20
    return total


def budget_mb(name: str, default: float) -> float:
    """Bytes allowed by the environment variable ``name`` (in MiB), or ``default`` MiB; a bad value is an error
    that names the variable."""
    raw = os.environ.get(name)
    try:
        mb = float(default if raw is None else raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected a number of MiB, e.g. {name}={default:g}") from None
    if not mb > 0:
        raise ValueError(f"{name}={raw!r}: the cache budget must be a positive number of MiB")
    return mb * 2**20


# Every cache is bounded by bytes (and by a generous count); each budget is an environment variable in MiB.
MODELS: LRU[Any] = LRU(  # Predictor / Ensemble per (runs, epochs)
    max_items=int(os.environ.get("VISION_EXPLORER_MAX_MODELS", 8)),
    max_weight=budget_mb("VISION_EXPLORER_MODELS_MB", 1024),
    weigh=model_bytes,
)
PREDICTIONS: LRU[Any] = LRU(max_items=50_000, max_weight=budget_mb("VISION_EXPLORER_CACHE_MB", 768), weigh=nbytes)
DATASETS: LRU[Any] = LRU(max_items=32, max_weight=budget_mb("VISION_EXPLORER_DATASETS_MB", 512), weigh=nbytes)  # opened
UPLOADS: LRU[Any] = LRU(  # label maps and uncertainty of runs on uploaded images, by content
    max_items=64, max_weight=budget_mb("VISION_EXPLORER_UPLOADS_MB", 256), weigh=nbytes
)
EMBEDDINGS: LRU[Any] = LRU(max_items=16, max_weight=budget_mb("VISION_EXPLORER_EMBEDDINGS_MB", 256), weigh=nbytes)
RESULTS: LRU[Any] = LRU(  # evaluation results read from disk
    max_items=512, max_weight=budget_mb("VISION_EXPLORER_RESULTS_MB", 256), weigh=nbytes
)


def clear_caches() -> None:
    """Forget every cached model, prediction, dataset and map (tests, or after runs changed on disk)."""
    for cache in (MODELS, PREDICTIONS, DATASETS, UPLOADS, EMBEDDINGS, RESULTS):
        cache.clear()
