"""What a measure is: a declared state, an update per image, and a finish, as torchmetrics' ``Metric``.

A measure declares each part of its state and how that part reduces across chunks of a split and across
processes (``torchrun``): ``"sum"`` (counts and sums, in int64 or float64, added), ``"gather"`` (one row per
image, concatenated in image order) or ``"ragged"`` (a variable-length array per image, concatenated in
image order with offsets). The same measure is then right on one process or N, in one pass or resumed.

``update(state, item)`` sees one image at a time: its prediction (label map or class, probabilities) and its
label. ``finish(state, classes)`` turns the reduced state into a JSON-able result. ``view`` says how the
Metrics tab shows the result (per-class bars, a reliability diagram, per-class bars per bin), so a new measure
is one file: its class, registered with ``register_measure``, and its test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np

from core.evaluation.per_image import image_confusion
from core.utils.registry import Registry

REDUCTIONS = ("sum", "gather", "ragged")


@dataclass(frozen=True)
class Part:
    """One part of a measure's state: its shape per split ("sum") or per image ("gather", "ragged": 1-D)."""

    shape: tuple[int, ...]
    dtype: str  # "int64" or "float64": sums of millions of pixels are never accumulated in float32
    reduce: str = "sum"

    def __post_init__(self) -> None:
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"a state part reduces by one of {REDUCTIONS}, not {self.reduce!r}")
        if self.dtype not in ("int64", "float64"):
            raise ValueError(f"a state part is int64 or float64 (exact sums), not {self.dtype}")


@dataclass
class Item:
    """One image of a split as a measure sees it. ``labels``: (H, W) predicted classes (segmentation) or the
    predicted class (classification); ``probs``: (K, H, W) or (K,) softmax, or None for a segmentation pass whose
    measures all say they do not need them (``Measure.needs_probs``); ``confidence``: (H, W) top probability, when
    the pass kept it instead; ``target``: the label map or class. What several measures need is computed once per
    image (``confusion``, ``top_probability``)."""

    index: int
    target: Any
    labels: Any
    probs: np.ndarray
    num_classes: int
    ignore_index: int | None
    confidence: np.ndarray | None = field(default=None, repr=False)
    _confusion: np.ndarray | None = field(default=None, repr=False)
    _compact: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def dense(self) -> bool:
        return np.ndim(self.target) > 0

    def confusion(self) -> np.ndarray:
        """(K, K) int64 counts of this image, rows = true class; unlabelled pixels (void, out of range) left out."""
        if self._confusion is None:
            self._confusion = image_confusion(*self.compact(), self.num_classes, self.ignore_index)
        return self._confusion

    def compact(self) -> tuple[np.ndarray, np.ndarray]:
        """(labels, target) as uint8 when every value is in 0..255 (a quarter of int64's memory traffic: the
        built-in measures' masks, filters and counts run ~20% quicker), else as they are. For code that only
        compares and counts labels: arithmetic on them could overflow."""
        if self._compact is None:
            pair = (np.asarray(self.labels), np.asarray(self.target))
            small = all(a.size and a.min() >= 0 and a.max() < 256 for a in pair)
            self._compact = tuple(a.astype(np.uint8) for a in pair) if small else pair
        return self._compact

    def top_probability(self) -> np.ndarray:
        """The largest probability of each pixel ((H, W)) or of the image (a 0-d array)."""
        if self.confidence is None:
            self.confidence = np.asarray(self.probs).max(0)
        return self.confidence


@dataclass(frozen=True)
class View:
    """How the Metrics tab renders a measure's result. ``kind``: "per_class" (bars per class of each ``series``
    key), "reliability" (accuracy against confidence per bin) or "per_class_bins" (bars per class, one panel per
    bin). ``summary``: (result key, label) of the one number per run shown in words and in the table."""

    kind: str
    series: tuple[tuple[str, str], ...] = ()
    summary: tuple[tuple[str, str], ...] = ()
    bins: tuple[str, ...] = ()


class Measure:
    """Base of every measure; see the module docstring."""

    name: ClassVar[str]
    title: ClassVar[str]  # how the Metrics tab names it
    dense_only: ClassVar[bool] = False  # segmentation only (a label per pixel)
    view: ClassVar[View | None] = None  # None: computed for other views (per-image scores), not shown on its own
    # Segmentation: whether ``update`` reads ``item.probs`` (K maps per image, the costliest part of a pass). A
    # measure that reads only labels, or ``item.top_probability()``, says False, and a pass of such measures keeps
    # no probability maps.
    needs_probs: ClassVar[bool] = True

    def applies(self, task: Any) -> bool:
        """Whether the measure means something for runs of ``task`` (``core.tasks``)."""
        return task.dense or not self.dense_only

    def parts(self, num_classes: int) -> dict[str, Part]:
        raise NotImplementedError

    def update(self, state: dict[str, Any], item: Item) -> None:
        """Add one image: add to "sum" parts in place; append one array to "gather" and "ragged" parts (lists)."""
        raise NotImplementedError

    def finish(self, state: dict[str, np.ndarray], classes: Sequence[str], task: Any) -> dict[str, Any]:
        """The result from the reduced state (JSON-able): what the views, tables and reports read."""
        raise NotImplementedError


MEASURES: Registry[Measure] = Registry("measure")


def register_measure(measure: type[Measure]) -> type[Measure]:
    """Class decorator: add a measure (an instance of it) to the registry under its ``name``."""
    MEASURES.register(measure.name)(measure())
    return measure


def measures_for(task: Any, names: Sequence[str] | None = None) -> list[Measure]:
    """The registered measures (or those named) that apply to ``task``; an unknown name lists the valid ones."""
    chosen = [MEASURES.get(n) for n in names] if names is not None else [MEASURES.get(n) for n in MEASURES.names()]
    return [m for m in chosen if m.applies(task)]


@dataclass
class States:
    """The state of several measures over some images of a split: "sum" arrays, and per-image rows in image
    order ("gather": (N, ...) arrays; "ragged": concatenated values with (N + 1,) offsets)."""

    indices: np.ndarray  # (N,) the images, ascending
    parts: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # measure -> part -> array
    offsets: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # ragged parts' (N + 1,) offsets
