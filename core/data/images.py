"""Images of any mode as (H, W, 3) uint8 RGB: one decoder for dataset files and uploads.

PIL's ``convert("RGB")`` clips 16-bit and float modes (an I;16 PNG turns almost white) and drops
transparency onto black. Here 16-bit and float pixels are scaled to 8 bits, and images with an
alpha channel (RGBA, LA, PA, P with transparency) are composited onto a neutral grey.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

BACKGROUND = (128, 128, 128)  # behind transparent pixels: neutral, neither sky-bright nor shadow-dark
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def scale_to_uint8(a: np.ndarray) -> np.ndarray:
    """Integer or float pixels as uint8: 16-bit ranges scaled by 255/65535, floats in [0, 1] by 255."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    a = a.astype(np.float64)
    finite = a[np.isfinite(a)]
    hi = float(finite.max()) if finite.size else 0.0
    lo = float(finite.min()) if finite.size else 0.0
    if lo >= 0 and hi <= 1.0 and a.dtype.kind == "f" and not np.issubdtype(a.dtype, np.integer):
        a = a * 255.0  # a float image in [0, 1]
    elif lo >= 0 and hi <= 255:
        pass  # already 8-bit values
    elif lo >= 0 and hi <= 65535:
        a = a * (255.0 / 65535.0)  # a 16-bit image
    else:  # anything else (signed, HDR floats): stretch to the full range
        a = (a - lo) * (255.0 / max(hi - lo, 1e-12))
    return np.clip(np.nan_to_num(a, nan=0.0), 0, 255).round().astype(np.uint8)


def _composite(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 over the neutral background -> (H, W, 3) uint8."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    out = rgba[..., :3].astype(np.float32) * alpha + np.asarray(BACKGROUND, np.float32) * (1 - alpha)
    return out.round().astype(np.uint8)


def pil_to_rgb(im: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 from a PIL image of any mode, EXIF orientation applied (a new, writable array)."""
    im = ImageOps.exif_transpose(im)
    if im.mode in SIXTEEN_BIT or im.mode in ("I", "F"):
        grey = scale_to_uint8(np.asarray(im))
        return np.repeat(grey[:, :, None], 3, axis=2)
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _composite(np.asarray(im.convert("RGBA")))
    return np.array(im.convert("RGB"))


def array_to_rgb(a: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 from a greyscale, RGB or RGBA array of any dtype; anything else is a ValueError."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"expected a PIL image or a numpy array, got {type(a).__name__}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"expected an (H, W, 3) image array, got shape {a.shape}")
    a = scale_to_uint8(a)
    if a.shape[2] == 4:
        return _composite(a)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()  # torch.from_numpy wants memory it may write


def open_rgb(path: str | Path) -> np.ndarray:
    """A dataset image file as (H, W, 3) uint8; an unreadable file is a ValueError naming it."""
    try:
        with Image.open(path) as im:
            return pil_to_rgb(im)
    except Image.DecompressionBombError as e:
        raise ValueError(f"{path}: {too_large_message(e)}") from e
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"{path} is not a readable image ({e})") from e


def too_large_message(err: Exception | None = None, size: tuple[int, int] | None = None, limit_pixels: int | None = None) -> str:
    """ "too large" with the image's size (from PIL's bomb error if that is all we have) and the limit."""
    limit_pixels = limit_pixels or int(Image.MAX_IMAGE_PIXELS or 0)
    if size is not None:
        what = f"{size[0]}x{size[1]} = {size[0] * size[1] / 1e6:.1f} megapixels"
    else:
        m = re.search(r"\((\d+) pixels\)", str(err))
        what = f"{int(m.group(1)) / 1e6:.1f} megapixels" if m else "more pixels than allowed"
    return f"the image is too large ({what}); the limit is {limit_pixels / 1e6:.0f} megapixels. Downscale it and try again."


def open_label_map(path: str | Path, shape: tuple[int, ...]) -> np.ndarray:
    """A single-channel label map (H, W) of integer labels, as stored, checked against its image's (H, W, ...) shape.

    Label maps are read without any conversion: a colour or palette-less RGB file here is a wrong file,
    and a size that differs from the image's would silently misalign every pixel.
    """
    with Image.open(path) as im:
        labels = np.asarray(im)
    if labels.ndim != 2:
        raise ValueError(f"{path}: a label map must be single-channel class labels, got shape {labels.shape}")
    if labels.shape != tuple(shape[:2]):
        raise ValueError(f"{path}: label map is {labels.shape}, its image is {tuple(shape[:2])}")
    return labels
