"""Images for the explorer: colour masks, overlays, legends and error maps.

Pure numpy and Pillow: every function takes arrays and returns an (H, W, 3) uint8 image (or a
small tuple with one), so it can be tested without a model or a browser. Label maps are integer
arrays (H, W); a value outside [0, K) or equal to ``ignore_index`` is "unlabelled".
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Color = tuple[int, int, int]

IGNORE_COLOR: Color = (0, 0, 0)
HIGHLIGHT_COLOR: Color = (255, 0, 255)
# Disagreement categories (see core.analysis.disagreement): both right, only A right, only B right, both wrong.
DISAGREEMENT_COLORS: tuple[Color, ...] = ((200, 200, 200), (0, 114, 178), (230, 159, 0), (213, 94, 0))
DISAGREEMENT_NAMES: tuple[str, ...] = ("both right", "A right, B wrong", "B right, A wrong", "both wrong")

# Perceptually ordered colour map (matplotlib's "magma" at 9 anchors), interpolated linearly.
_MAGMA = np.array(
    [[0, 0, 4], [28, 16, 68], [79, 18, 123], [129, 37, 129], [181, 54, 122], [229, 80, 100], [251, 135, 97],
     [254, 194, 135], [252, 253, 191]], dtype=np.float64,
)  # fmt: skip


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    return image


def _check_same_hw(image: np.ndarray, *maps: np.ndarray) -> None:
    for m in maps:
        if m.shape[:2] != image.shape[:2]:
            raise ValueError(f"image {image.shape[:2]} and map {m.shape[:2]} differ in size")


def valid_mask(labels: np.ndarray, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """(H, W) bool: pixels with a class in [0, K) that is not ``ignore_index``."""
    labels = np.asarray(labels)
    keep = (labels >= 0) & (labels < num_classes)
    if ignore_index is not None:
        keep &= labels != ignore_index
    return keep


def colorize(
    labels: np.ndarray, palette: Sequence[Color], *, ignore_index: int | None = None, ignore_color: Color = IGNORE_COLOR
) -> np.ndarray:
    """(H, W, 3) uint8: each pixel in its class colour, unlabelled pixels in ``ignore_color``."""
    labels = np.asarray(labels)
    k = len(palette)
    lut = np.array(list(palette) + [ignore_color], dtype=np.uint8)  # (K + 1, 3); index K = unlabelled
    idx = np.where(valid_mask(labels, k, ignore_index), labels, k).astype(np.intp)
    return lut[idx]


def blend(image: np.ndarray, color: np.ndarray, opacity: float, where: np.ndarray | None = None) -> np.ndarray:
    """``image * (1 - opacity) + color * opacity`` (inside ``where`` only, if given), as uint8."""
    image = _check_image(image)
    a = float(np.clip(opacity, 0.0, 1.0))
    out = image.astype(np.float32) * (1 - a) + np.asarray(color, dtype=np.float32) * a
    out = np.rint(out).astype(np.uint8)
    if where is not None:
        out = np.where(where[:, :, None], out, image)
    return out


def overlay(
    image: np.ndarray, labels: np.ndarray, palette: Sequence[Color], *, opacity: float = 0.5, ignore_index: int | None = None
) -> np.ndarray:
    """The label map in class colours over the image; unlabelled pixels show the image alone."""
    image = _check_image(image)
    _check_same_hw(image, labels)
    keep = valid_mask(labels, len(palette), ignore_index)
    return blend(image, colorize(labels, palette, ignore_index=ignore_index), opacity, keep)


def dim(image: np.ndarray, amount: float = 0.6) -> np.ndarray:
    """A faded grey version of the image, the background that errors are drawn on."""
    image = _check_image(image)
    grey = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (H, W)
    out = grey[:, :, None] * (1 - amount) + 255.0 * amount * 0.5
    return np.rint(np.repeat(out, 3, axis=2)).astype(np.uint8)


def confusion_map(
    image: np.ndarray,
    target: np.ndarray,
    pred: np.ndarray,
    palette: Sequence[Color],
    *,
    ignore_index: int | None = None,
    amount: float = 0.6,
) -> np.ndarray:
    """Correct pixels dimmed; wrong pixels painted in the colour of the class the model predicted.

    Unlabelled pixels are dimmed too: there is no right answer there.
    """
    image = _check_image(image)
    _check_same_hw(image, target, pred)
    wrong = valid_mask(target, len(palette), ignore_index) & (pred != target)
    return np.where(wrong[:, :, None], colorize(pred, palette), dim(image, amount))


def highlight(image: np.ndarray, mask: np.ndarray, *, color: Color = HIGHLIGHT_COLOR, amount: float = 0.6) -> np.ndarray:
    """Pixels in ``mask`` in a bright colour on the dimmed image, with a dark outline around them."""
    image = _check_image(image)
    mask = np.asarray(mask, dtype=bool)
    _check_same_hw(image, mask)
    out = dim(image, amount)
    # outline: pixels next to the mask (4-neighbourhood) but not in it
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    out[grown & ~mask] = (0, 0, 0)
    out[mask] = color
    return out


def category_map(
    categories: np.ndarray, colors: Sequence[Color] = DISAGREEMENT_COLORS, ignore_color: Color = IGNORE_COLOR
) -> np.ndarray:
    """(H, W, 3) uint8 from a small-integer category map, e.g. the disagreement of two runs."""
    return colorize(categories, colors, ignore_color=ignore_color)


def colormap(values: np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> np.ndarray:
    """(H, W, 3) uint8 "magma" colours of a float map scaled from [vmin, vmax]; NaN is black."""
    v = np.asarray(values, dtype=np.float64)
    span = vmax - vmin if vmax > vmin else 1.0
    t = np.clip(np.nan_to_num((v - vmin) / span, nan=0.0), 0.0, 1.0) * (len(_MAGMA) - 1)
    lo = np.floor(t).astype(np.intp)
    hi = np.minimum(lo + 1, len(_MAGMA) - 1)
    frac = (t - lo)[..., None]
    out = _MAGMA[lo] * (1 - frac) + _MAGMA[hi] * frac
    return np.rint(out).astype(np.uint8)


def entropy_map(entropy: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-pixel entropy coloured on an absolute scale: 0 (certain) to log K (uniform guess)."""
    return colormap(entropy, 0.0, float(np.log(max(num_classes, 2))))


def mark_pixel(
    image: np.ndarray, yx: tuple[int, int], *, color: Color = HIGHLIGHT_COLOR, radius: int | None = None
) -> np.ndarray:
    """A copy of the image with a ring and cross-hair around pixel ``(y, x)``."""
    image = _check_image(image)
    h, w = image.shape[:2]
    y, x = int(yx[0]), int(yx[1])
    r = radius if radius is not None else max(4, min(h, w) // 20)
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    for c, width in (((0, 0, 0), 3), (color, 1)):  # dark halo under a bright line: visible on any image
        draw.ellipse((x - r, y - r, x + r, y + r), outline=c, width=width)
        draw.line((x - 2 * r, y, x - r // 2, y), fill=c, width=width)
        draw.line((x + r // 2, y, x + 2 * r, y), fill=c, width=width)
        draw.line((x, y - 2 * r, x, y - r // 2), fill=c, width=width)
        draw.line((x, y + r // 2, x, y + 2 * r), fill=c, width=width)
    return np.asarray(pil)


def fit_within(image: np.ndarray, max_side: int) -> np.ndarray:
    """The image downscaled (aspect kept) so its longest side is at most ``max_side``."""
    image = _check_image(image)
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def enlarge(image: np.ndarray, min_side: int = 240) -> np.ndarray:
    """Small images scaled up by a whole factor (nearest neighbour) so label edges stay crisp on screen."""
    image = _check_image(image)
    factor = max(1, -(-min_side // max(1, min(image.shape[:2]))))
    if factor == 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def zoom(image: np.ndarray, center: tuple[float, float], factor: float, out_hw: tuple[int, int] | None = None) -> np.ndarray:
    """The window of 1/``factor`` of the image around ``center`` (x, y in [0, 1]), scaled back to the
    image's size (or ``out_hw``) with nearest neighbour, so single pixels stay visible. factor 1 = whole image."""
    image = np.asarray(image)
    h, w = image.shape[:2]
    if factor <= 1:
        return image
    ch, cw = max(1, round(h / factor)), max(1, round(w / factor))
    cx, cy = float(np.clip(center[0], 0, 1)) * w, float(np.clip(center[1], 0, 1)) * h
    x0 = int(np.clip(round(cx - cw / 2), 0, w - cw))
    y0 = int(np.clip(round(cy - ch / 2), 0, h - ch))
    crop = image[y0 : y0 + ch, x0 : x0 + cw]
    oh, ow = out_hw or (h, w)
    ys = np.minimum((np.arange(oh) * ch) // oh, ch - 1)
    xs = np.minimum((np.arange(ow) * cw) // ow, cw - 1)
    return crop[ys][:, xs]


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def legend(
    names: Sequence[str],
    colors: Sequence[Color],
    *,
    counts: Sequence[int | str] | None = None,
    columns: int | None = None,
    font_size: int = 14,
    width: int | None = None,
) -> np.ndarray:
    """A legend image: a colour swatch and a name (and optional count) per entry, in columns."""
    if len(names) != len(colors):
        raise ValueError(f"{len(names)} names but {len(colors)} colours")
    font = _font(font_size)
    labels = [str(n) if counts is None else f"{n}  ({counts[i]})" for i, n in enumerate(names)]
    sw, pad = font_size + 2, 6
    cell_w = sw + pad + max((int(font.getlength(t)) for t in labels), default=0) + 2 * pad
    if columns is None:
        columns = max(1, min(len(labels), (width or 960) // max(cell_w, 1)))
    rows = max(1, -(-len(labels) // columns))
    row_h = sw + pad
    img_w = width or columns * cell_w
    pil = Image.new("RGB", (img_w, rows * row_h + pad), (255, 255, 255))
    draw = ImageDraw.Draw(pil)
    for i, (text, c) in enumerate(zip(labels, colors)):
        r, col = divmod(i, columns)
        x, y = col * cell_w + pad, r * row_h + pad
        draw.rectangle((x, y, x + sw, y + sw), fill=tuple(int(v) for v in c), outline=(60, 60, 60))
        draw.text((x + sw + pad, y + sw / 2), text, fill=(20, 20, 20), font=font, anchor="lm")
    return np.asarray(pil)


def class_legend(classes: Sequence[str], palette: Sequence[Color], *, only: Sequence[int] | None = None, **kwargs) -> np.ndarray:
    """Legend of a dataset's classes (or of the classes in ``only``), in palette colours."""
    idx = list(range(len(classes))) if only is None else [int(i) for i in only]
    return legend([classes[i] for i in idx], [palette[i] for i in idx], **kwargs)


def save_image(image: np.ndarray, path, *, quality: int = 90) -> None:
    """Write an image; JPEG for photos (.jpg), lossless PNG otherwise."""
    pil = Image.fromarray(_check_image(image))
    if str(path).lower().endswith((".jpg", ".jpeg")):
        pil.save(path, quality=quality)
    else:
        pil.save(path)
