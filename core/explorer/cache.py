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
    """Memory held by an array, or by the arrays among an object's attributes (a prediction, split statistics)."""
    if isinstance(value, np.ndarray):
        return float(value.nbytes)
    arrays = [v for v in getattr(value, "__dict__", {}).values() if isinstance(v, np.ndarray)]
    return float(sum(a.nbytes for a in arrays)) if arrays else 1024.0


MODELS: LRU[Any] = LRU(max_items=int(os.environ.get("VISION_EXPLORER_MAX_MODELS", 8)))  # Predictor / Ensemble per (runs, epochs)
PREDICTIONS: LRU[Any] = LRU(
    max_items=50_000, max_weight=float(os.environ.get("VISION_EXPLORER_CACHE_MB", 768)) * 2**20, weigh=nbytes
)
DATASETS: LRU[Any] = LRU(max_items=32)  # opened datasets
UPLOADS: LRU[Any] = LRU(max_items=64)  # full predictions on uploaded images, by content
EMBEDDINGS: LRU[Any] = LRU(max_items=16)  # embedding maps read or computed
RESULTS: LRU[Any] = LRU(max_items=512, max_weight=256 * 2**20, weigh=nbytes)  # evaluation results read from disk


def clear_caches() -> None:
    """Forget every cached model, prediction, dataset and map (tests, or after runs changed on disk)."""
    for cache in (MODELS, PREDICTIONS, DATASETS, UPLOADS, EMBEDDINGS, RESULTS):
        cache.clear()
