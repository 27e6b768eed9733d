"""Measures as plugins: ``register_measure`` a ``Measure`` subclass (state parts with their reduction,
``update`` per image, ``finish``, and a ``View`` for the Metrics tab) and it is computed by every evaluation
pass, by ``python -m core.evaluate`` and by the app, and shown by the Metrics tab. See ``base`` for the
contract and ``builtin`` for the measures that ship."""

from core.evaluation.measures import builtin  # noqa: F401  (registers)
from core.evaluation.measures.base import MEASURES, Item, Measure, Part, View, measures_for, register_measure
from core.evaluation.measures.state import States, accumulate, freeze, merge, ragged_row, start

__all__ = [
    "MEASURES",
    "Item",
    "Measure",
    "Part",
    "States",
    "View",
    "accumulate",
    "freeze",
    "measures_for",
    "merge",
    "ragged_row",
    "register_measure",
    "start",
]
