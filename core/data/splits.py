"""Dividing one list into train and val the same way in every reader that has no split lists of its own."""

from __future__ import annotations

from typing import Sequence, TypeVar

T = TypeVar("T")


def every_kth_to_val(items: Sequence[T], split: str, val_fraction: float = 0.2) -> list[T]:
    """Every ``round(1 / val_fraction)``-th item (the 0th, 5th, ... at 0.2) is val, the rest train.

    Deterministic in the order given, so train and val never overlap and a rerun sees the same split.
    """
    if split not in ("train", "val"):
        raise ValueError(f"only 'train' and 'val' can be divided from one list, not {split!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    every = max(2, round(1 / val_fraction))
    return [item for i, item in enumerate(items) if (i % every == 0) == (split == "val")]
