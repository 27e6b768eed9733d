"""RGB colour masks to class indices, shared by every reader of colour-coded masks (``folder``, ``cvat``).

Exact palette colours map to their class. Masks that were resized or saved lossily stray from the
palette, so a pixel within ``tolerance`` (Euclidean RGB distance) of a colour snaps to the nearest one;
everything else is void (``ignore_index``), never a guessed class.
"""

from __future__ import annotations

import numpy as np


def colors_to_indices(rgb: np.ndarray, colors: np.ndarray, ignore_index: int, tolerance: float = 0.0) -> np.ndarray:
    """Class indices (H, W) int64 of an (H, W, 3+) colour mask, given the (K, 3) class colours."""
    rgb = rgb[..., :3].astype(np.int64)
    colors = np.asarray(colors, dtype=np.int64)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]  # (H, W)
    palette_codes = (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]  # (K,)
    order = np.argsort(palette_codes)
    pos = np.searchsorted(palette_codes[order], codes).clip(max=len(order) - 1)
    exact = palette_codes[order][pos] == codes
    mask = np.where(exact, order[pos], ignore_index)
    if not exact.all() and tolerance > 0:
        stray = rgb[~exact]  # (N, 3)
        dist = ((stray[:, None, :] - colors[None]) ** 2).sum(-1)  # (N, K)
        nearest = dist.argmin(1)
        ok = dist[np.arange(len(stray)), nearest] <= tolerance**2
        mask[~exact] = np.where(ok, nearest, ignore_index)
    return mask
