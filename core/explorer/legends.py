"""Class legends: the colour of each class, rendered once per class list and served as a PNG."""

from __future__ import annotations

from typing import Sequence

from core import visualize as V
from core.explorer.renders import Renders

LEGEND_WIDTH = 1100


def legend_path(renders: Renders, classes: Sequence[str], palette: Sequence[tuple[int, int, int]]) -> str:
    """The file of the legend of ``classes`` in their ``palette`` colours."""
    key = ("legend", tuple(classes), tuple(tuple(c) for c in palette))
    return renders.path(key, lambda: V.class_legend(list(classes), list(palette), width=LEGEND_WIDTH), photo=False)
