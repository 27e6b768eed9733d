"""A report's figures as SVG and PNG files at print resolution, for LaTeX or Word: Plotly's static export through
kaleido (an optional package), which drives a Chromium. Without either, the reason is returned, nothing raised."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import plotly.graph_objects as go

PNG_SCALE = 3  # a 700-pixel-wide figure becomes 2,100 pixels: 300 dpi over 7 inches
WIDTH = 1000  # pixels of the exported figures (the HTML's are responsive)
CHROMIUMS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def find_chromium() -> str | None:
    """The Chromium kaleido will use: $BROWSER_PATH, else a system Chromium or Chrome."""
    if os.environ.get("BROWSER_PATH"):
        return os.environ["BROWSER_PATH"]
    found = next((p for p in CHROMIUMS if os.path.exists(p)), None)
    return found or shutil.which("chromium") or shutil.which("google-chrome")


def unavailable() -> str | None:
    """Why static figures cannot be written here (no kaleido, no Chromium), or None."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return "the SVG and PNG figures need the kaleido package (pip install kaleido)"
    if find_chromium() is None:
        return "the SVG and PNG figures need a Chromium (apt-get install chromium, or set BROWSER_PATH)"
    return None


def write_figures(figures: dict[str, go.Figure], folder: Path) -> tuple[list[Path], str | None]:
    """Each figure as ``folder/<name>.svg`` and ``<name>.png``; (the files, why none were written or None)."""
    reason = unavailable()
    if reason is not None or not figures:
        return [], reason
    os.environ.setdefault("BROWSER_PATH", find_chromium())  # choreographer (kaleido's browser driver) reads it
    import plotly.io as pio

    folder.mkdir(parents=True, exist_ok=True)
    figs = list(figures.values())
    paths = [folder / f"{name}.{ext}" for name in figures for ext in ("svg", "png")]
    try:
        pio.write_images(
            [f for f in figs for _ in range(2)],
            paths,
            scale=[s for _ in figs for s in (1, PNG_SCALE)],
            width=WIDTH,
        )
    except Exception as e:  # noqa: BLE001  (a browser that fails to start: the HTML is still written)
        return [], f"the static export failed ({type(e).__name__}: {e}); the HTML holds every figure"
    return paths, None
