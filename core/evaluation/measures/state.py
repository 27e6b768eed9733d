"""Measure states over chunks of a split: start one, freeze a chunk into arrays, merge chunks in image order.

Merging is how every part reduces as its measure declares, whether the chunks came from one process, from a
resumed run, or from N ``torchrun`` ranks: "sum" parts are added, "gather" rows and "ragged" values are
concatenated in image order. A chunk holds disjoint images; an image in two chunks is an error, not a double
count.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from core.evaluation.measures.base import Measure, States


def start(measures: Sequence[Measure], num_classes: int) -> dict[str, dict[str, Any]]:
    """Fresh state: zeros for "sum" parts, empty lists for per-image parts."""
    out: dict[str, dict[str, Any]] = {}
    for m in measures:
        out[m.name] = {
            name: np.zeros(part.shape, dtype=part.dtype) if part.reduce == "sum" else []
            for name, part in m.parts(num_classes).items()
        }
    return out


def accumulate(measures: Sequence[Measure], total: dict[str, dict[str, Any]], more: dict[str, dict[str, Any]]) -> None:
    """Add the fresh state ``more`` (later images) into ``total`` in place: "sum" parts added, per-image rows
    appended after ``total``'s. How the parts of a batch, accounted for by several threads, join the chunk's."""
    for m in measures:
        for name, value in more[m.name].items():
            if isinstance(value, list):
                total[m.name][name].extend(value)
            else:
                total[m.name][name] += value


def freeze(measures: Sequence[Measure], raw: dict[str, dict[str, Any]], indices: Sequence[int], num_classes: int) -> States:
    """A chunk's state as arrays: per-image lists stacked (gather) or concatenated with offsets (ragged)."""
    states = States(indices=np.asarray(indices, dtype=np.int64))
    for m in measures:
        states.parts[m.name], states.offsets[m.name] = {}, {}
        for name, part in m.parts(num_classes).items():
            value = raw[m.name][name]
            if part.reduce == "sum":
                states.parts[m.name][name] = np.asarray(value, dtype=part.dtype)
            elif part.reduce == "gather":
                rows = [np.asarray(v, dtype=part.dtype).reshape(part.shape) for v in value]
                states.parts[m.name][name] = np.stack(rows) if rows else np.zeros((0, *part.shape), dtype=part.dtype)
            else:
                rows = [np.asarray(v, dtype=part.dtype).reshape(-1) for v in value]
                lengths = [len(r) for r in rows]
                states.parts[m.name][name] = np.concatenate(rows) if rows else np.zeros(0, dtype=part.dtype)
                states.offsets[m.name][name] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            if part.reduce != "sum" and len(value) != len(indices):
                raise ValueError(f"measure {m.name}: part {name} has {len(value)} rows for {len(indices)} images")
    return states


def merge(chunks: Sequence[States], measures: Sequence[Measure], num_classes: int) -> States:
    """One state from chunks of disjoint images, in image order, each part reduced as declared."""
    chunks = sorted(chunks, key=lambda c: int(c.indices[0]) if len(c.indices) else -1)
    indices = np.concatenate([c.indices for c in chunks]) if chunks else np.zeros(0, np.int64)
    if len(np.unique(indices)) != len(indices):
        raise ValueError("two chunks hold the same image: a split was evaluated twice over")
    order = np.argsort(indices, kind="stable")
    out = States(indices=indices[order])
    for m in measures:
        out.parts[m.name], out.offsets[m.name] = {}, {}
        for name, part in m.parts(num_classes).items():
            if part.reduce == "sum":
                total = np.zeros(part.shape, dtype=part.dtype)
                for c in chunks:
                    total += c.parts[m.name][name]
                out.parts[m.name][name] = total
            elif part.reduce == "gather":
                rows = np.concatenate([c.parts[m.name][name] for c in chunks]) if chunks else np.zeros((0, *part.shape))
                out.parts[m.name][name] = rows[order]
            else:
                values, offsets = _ragged_in_order([(c.parts[m.name][name], c.offsets[m.name][name]) for c in chunks], order)
                out.parts[m.name][name], out.offsets[m.name][name] = values, offsets
    return out


def _ragged_in_order(pieces: list[tuple[np.ndarray, np.ndarray]], order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = [vals[off[i] : off[i + 1]] for vals, off in pieces for i in range(len(off) - 1)]
    rows = [rows[j] for j in order]
    dtype = pieces[0][0].dtype if pieces else np.int64
    values = np.concatenate(rows) if rows else np.zeros(0, dtype=dtype)
    return values, np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)


def ragged_row(states: States, measure: str, part: str, row: int) -> np.ndarray:
    """The values of image ``row`` (its position in ``states.indices``) of a "ragged" part."""
    off = states.offsets[measure][part]
    return states.parts[measure][part][off[row] : off[row + 1]]
