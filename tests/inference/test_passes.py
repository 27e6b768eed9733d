"""Pieces of the evaluation pass (core.inference.passes) on hand-made cases."""

import numpy as np

from core.inference.passes import _pixels_by_class


def test_pixels_by_class_gives_each_class_its_pixels_in_raster_order():
    mask = np.array([[2, 0, 2], [255, 0, 2]], dtype=np.uint8)
    got = [(c, where.tolist()) for c, where in _pixels_by_class(mask)]
    assert got == [(0, [1, 4]), (2, [0, 2, 5]), (255, [3])]  # flat indices: row * 3 + column
    wide = np.array([[70000, -1], [-1, 70000]])  # beyond 16 bits, and negative: sorted as they are
    assert [(c, where.tolist()) for c, where in _pixels_by_class(wide)] == [(-1, [1, 2]), (70000, [0, 3])]
    noise = np.random.default_rng(0).integers(0, 5, (20, 30))
    assert [c for c, _ in _pixels_by_class(noise)] == [0, 1, 2, 3, 4]
    for c, where in _pixels_by_class(noise):
        np.testing.assert_array_equal(where, np.flatnonzero(noise == c))
