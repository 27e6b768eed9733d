"""Every image mode becomes sensible 8-bit RGB: 16-bit and float scaled, transparency composited, bombs named."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.data import get_dataset
from core.data.images import BACKGROUND, array_to_rgb, open_rgb
from core.evaluation.metrics import confusion_matrix
from core.explorer import read_image
from core.inference import to_rgb_array
from tests.data.test_datasets import camvid_layout

RAMP16 = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520


def test_16_bit_png_is_scaled_not_saturated(tmp_path):
    path = tmp_path / "depth.png"
    Image.fromarray(RAMP16).save(path)  # written as a 16-bit greyscale PNG
    assert Image.open(path).mode.startswith("I")
    rgb = open_rgb(path)
    expected = np.round(RAMP16 * (255 / 65535)).astype(np.uint8)
    np.testing.assert_array_equal(rgb[..., 0], expected)
    assert (rgb == 255).mean() < 0.01  # PIL's convert("RGB") makes 99.6% of it white
    assert (np.asarray(Image.open(path).convert("RGB")) == 255).mean() > 0.9, "the defect this guards against"
    np.testing.assert_array_equal(read_image(str(path), max_side=4096)[..., 0], expected)  # uploads too


def test_float_image_in_unit_range_is_scaled(tmp_path):
    values = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    path = tmp_path / "float.tiff"
    Image.fromarray(values, mode="F").save(path)
    rgb = open_rgb(path)
    np.testing.assert_array_equal(rgb[..., 1], np.round(values * 255).astype(np.uint8))
    np.testing.assert_array_equal(array_to_rgb(values)[..., 2], np.round(values * 255).astype(np.uint8))
    np.testing.assert_array_equal(to_rgb_array(RAMP16)[..., 0], np.round(RAMP16 * (255 / 65535)).astype(np.uint8))


def _half_transparent() -> Image.Image:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = 200
    rgba[:2, :, 3] = 255  # top half opaque
    rgba[2, :, 3] = 128  # one row half transparent, the last one fully transparent
    return Image.fromarray(rgba, "RGBA")


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_transparent_pixels_are_composited_onto_grey(tmp_path, mode):
    im = _half_transparent().convert(mode)
    rgb = to_rgb_array(im)
    assert rgb[0, 0].tolist() == [200, 200, 200]
    assert rgb[3, 0].tolist() == list(BACKGROUND)
    mid = round(200 * 128 / 255 + BACKGROUND[0] * (1 - 128 / 255))
    assert abs(int(rgb[2, 0, 0]) - mid) <= 1
    if mode != "PA":  # PNG cannot store PA; the file path of the other modes goes through the same decoder
        path = tmp_path / f"alpha_{mode}.png"
        im.save(path)
        np.testing.assert_array_equal(open_rgb(path), rgb)
        np.testing.assert_array_equal(read_image(str(path)), rgb)


def test_palette_image_with_a_transparent_colour(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([255, 0, 0, 0, 255, 0])
    im.putpixel((1, 0), 1)
    path = tmp_path / "p.png"
    im.save(path, transparency=1)  # colour 1 is transparent
    assert open_rgb(path).tolist() == [[[255, 0, 0], list(BACKGROUND)]]


def test_dataset_images_use_the_same_decoder(tmp_path):
    camvid_layout(tmp_path, n=1, h=64, w=64)
    Image.fromarray(RAMP16).save(tmp_path / "train" / "seq_000.png")
    image, _ = get_dataset("camvid", "train", root=str(tmp_path)).load(0)
    assert image.dtype == np.uint8 and image.shape == (64, 64, 3) and (image == 255).mean() < 0.01


def test_decompression_bomb_is_called_too_large_with_its_size(tmp_path):
    huge = tmp_path / "bomb.png"
    Image.new("1", (15000, 12000)).save(huge)  # 180 megapixels in a few kilobytes
    with pytest.raises(ValueError, match=r"too large \(180\.0 megapixels\); the limit is 64 megapixels"):
        read_image(str(huge))
    big = tmp_path / "big.png"
    Image.new("1", (9000, 8000)).save(big)  # 72 MP: over the upload limit, under PIL's bomb limit
    with pytest.raises(ValueError, match=r"too large \(9000x8000 = 72\.0 megapixels\); the limit is 64"):
        read_image(str(big))


def test_confusion_matrix_refuses_predictions_outside_the_classes():
    target = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match=r"in \[0, 3\); got values from 0 to 3"):
        confusion_matrix(torch.tensor([0, 1, 3]), target, 3)
    with pytest.raises(ValueError, match="from -1"):
        confusion_matrix(torch.tensor([-1, 1, 2]), target, 3)
    assert confusion_matrix(torch.tensor([0, 1, 2]), target, 3).trace() == 3
