"""core.visualize: every image builder on small hand-made arrays."""

import numpy as np
import pytest

from core import visualize as V

PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
IGNORE = 255


@pytest.fixture
def scene():
    image = np.full((4, 6, 3), 100, dtype=np.uint8)
    target = np.array([[0, 0, 1, 1, 2, 2]] * 3 + [[IGNORE] * 6])
    pred = np.array([[0, 1, 1, 1, 2, 0]] * 3 + [[0] * 6])
    return image, target, pred


def test_colorize_uses_the_palette_and_paints_unlabelled_pixels(scene):
    _, target, _ = scene
    rgb = V.colorize(target, PALETTE, ignore_index=IGNORE, ignore_color=(9, 9, 9))
    assert rgb.shape == (4, 6, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == PALETTE[0] and tuple(rgb[0, 2]) == PALETTE[1] and tuple(rgb[0, 5]) == PALETTE[2]
    assert (rgb[3] == 9).all()
    # a value outside [0, K) is unlabelled too, even without an ignore index
    assert tuple(V.colorize(np.array([[7]]), PALETTE)[0, 0]) == V.IGNORE_COLOR


@pytest.mark.parametrize("opacity", [0.0, 0.3, 1.0])
def test_overlay_blends_with_opacity_and_leaves_unlabelled_pixels_alone(scene, opacity):
    image, target, _ = scene
    out = V.overlay(image, target, PALETTE, opacity=opacity, ignore_index=IGNORE)
    expected = np.rint(100 * (1 - opacity) + np.array(PALETTE[0]) * opacity)
    np.testing.assert_array_equal(out[0, 0], expected)
    np.testing.assert_array_equal(out[3], image[3])  # ignored row untouched


def test_confusion_map_dims_right_pixels_and_colours_wrong_ones_by_prediction(scene):
    image, target, pred = scene
    out = V.confusion_map(image, target, pred, PALETTE, ignore_index=IGNORE)
    dimmed = V.dim(image)
    wrong = (pred != target) & (target != IGNORE)
    assert wrong.sum() == 6
    np.testing.assert_array_equal(out[wrong], np.array(PALETTE)[pred[wrong]])
    np.testing.assert_array_equal(out[~wrong], dimmed[~wrong])


def test_highlight_paints_exactly_the_mask(scene):
    image, target, pred = scene
    mask = (target == 0) & (pred == 1)
    out = V.highlight(image, mask)
    assert (out[mask] == V.HIGHLIGHT_COLOR).all()
    assert not (out[~mask] == V.HIGHLIGHT_COLOR).all(axis=-1).any()


def test_category_map_and_legend_with_counts():
    cats = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    rgb = V.category_map(cats)
    for k in range(4):
        assert tuple(rgb.reshape(-1, 3)[k]) == V.DISAGREEMENT_COLORS[k]
    leg = V.legend(list(V.DISAGREEMENT_NAMES), V.DISAGREEMENT_COLORS, counts=[1, 2, 3, 4], columns=1)
    assert leg.ndim == 3 and leg.shape[2] == 3 and leg.shape[0] > 4 * 14  # one row per entry


def test_class_legend_shows_every_swatch():
    classes = ["Road", "Sky", "Car"]
    leg = V.class_legend(classes, PALETTE)
    flat = leg.reshape(-1, 3)
    for c in PALETTE:
        assert (flat == c).all(1).any(), c
    only = V.class_legend(classes, PALETTE, only=[2])
    assert not (only.reshape(-1, 3) == PALETTE[0]).all(1).any()


def test_entropy_map_runs_from_dark_certain_to_bright_uniform():
    h = np.array([[0.0, np.log(3)]])
    rgb = V.entropy_map(h, 3)
    assert rgb.shape == (1, 2, 3)
    assert rgb[0, 0].sum() < 20 and rgb[0, 1].sum() > 600


def test_mark_pixel_draws_around_the_pixel_only():
    image = np.zeros((50, 60, 3), dtype=np.uint8)
    out = V.mark_pixel(image, (25, 30), radius=5)
    changed = np.argwhere(out.any(-1))
    assert len(changed) > 0 and out.shape == image.shape
    assert np.abs(changed - [25, 30]).max() <= 12
    assert not image.any()  # the input is not modified


def test_fit_within_and_enlarge():
    image = np.zeros((2000, 1000, 3), dtype=np.uint8)
    assert V.fit_within(image, 1024).shape == (1024, 512, 3)
    small = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    big = V.enlarge(small, 6)
    assert big.shape == (6, 9, 3) and (big[:3, :3] == small[0, 0]).all()
    assert V.enlarge(image, 240) is image


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        V.overlay(np.zeros((4, 4)), np.zeros((4, 4), int), PALETTE)
    with pytest.raises(ValueError, match="differ in size"):
        V.overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4), int), PALETTE)
    with pytest.raises(ValueError, match="names but"):
        V.legend(["a"], PALETTE)
