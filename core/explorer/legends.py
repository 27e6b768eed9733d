"""Class legends: the colour of each class, rendered once per class list and served as a PNG, or as HTML swatches
of only the classes an image shows (readable at any class count)."""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np

from core import visualize as V
from core.explorer.renders import Renders

LEGEND_WIDTH = 1100


def legend_path(renders: Renders, classes: Sequence[str], palette: Sequence[tuple[int, int, int]]) -> str:
    """The file of the legend of ``classes`` in their ``palette`` colours."""
    key = ("legend", tuple(classes), tuple(tuple(c) for c in palette))
    return renders.path(key, lambda: V.class_legend(list(classes), list(palette), width=LEGEND_WIDTH), photo=False)


def present_classes(
    target: np.ndarray | None, preds: Sequence[np.ndarray], num_classes: int, ignore_index: int | None
) -> list[int]:
    """Classes (ascending) an image shows: in its (H, W) ground truth, ignored pixels aside, and anywhere in its
    (H, W) predictions."""
    seen: set[int] = set()
    for labels in ([] if target is None else [np.asarray(target)]) + [np.asarray(p) for p in preds]:
        seen.update(int(c) for c in np.unique(labels) if 0 <= c < num_classes and c != ignore_index)
    return sorted(seen)


def legend_html(classes: Sequence[str], palette: Sequence[Sequence[int]], present: Sequence[int]) -> str:
    """HTML swatches (colour and name, wrapping) of the classes ``present``, in their order."""
    items = "".join(
        f'<span class="legend-class" data-class="{html.escape(classes[i])}" style="display:inline-flex;align-items:center;'
        f'margin:2px 12px 2px 0;white-space:nowrap"><span style="width:14px;height:14px;margin-right:5px;'
        f'border:1px solid #0004;background:rgb({int(palette[i][0])},{int(palette[i][1])},{int(palette[i][2])})"></span>'
        f"{html.escape(classes[i])}</span>"
        for i in present
    )
    return f'<div class="class-legend" style="display:flex;flex-wrap:wrap;font-size:13px">{items}</div>'
