"""Rendered images the explorer serves: written once per content key into a private folder, as JPEG
(photos with overlays: small and fast to encode) or PNG (flat-colour maps and legends)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from core.visualize import save_image

DISPLAY_MIN_SIDE = 240  # small images are enlarged by a whole factor to at least this (crisp label edges)


class Renders:
    """``renders.path(key, make)``: the file of ``make()``'s image for ``key``, rendered on the first request only.

    ``key`` must identify the content completely (run, epoch, dataset split, image, opacity, zoom ...).
    The folder must be private to this user (``app.common.private_dir``): files are trusted once written.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, key: Sequence[Any], make: Callable[[], np.ndarray], *, photo: bool = True) -> str:
        digest = hashlib.sha1(repr(tuple(key)).encode()).hexdigest()[:24]
        suffix = ".jpg" if photo else ".png"
        path = self.folder / "renders" / digest[:2] / f"{digest}{suffix}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}-{threading.get_ident()}.tmp{suffix}")
            save_image(make(), tmp, quality=90)
            os.replace(tmp, path)
        return str(path)
