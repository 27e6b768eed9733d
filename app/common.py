"""What every tab shares: the app context, error handling for handlers, small text formatters."""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import math
import os
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import gradio as gr
import numpy as np

from core.analysis import ClassPresence, Workspace
from core.visualize import save_image

log = logging.getLogger("vision_explorer")

MAX_SLOTS = 6  # run columns in the Compare and Upload tabs
# Follow-up steps of a chain keep an api_name but stay out of the API page (the main endpoints are documented).
HIDDEN = {"api_visibility": "undocumented"}


@dataclass
class AppContext:
    """Server-side state shared by every session: the discovered runs and a folder for rendered files."""

    ws: Workspace
    cache_dir: Path

    @property
    def thumbs_dir(self) -> Path:
        return self.cache_dir / "thumbs"

    def render_path(self, key: Sequence[Any], image: np.ndarray, suffix: str = ".png") -> str:
        """Write a rendered image once under a name derived from ``key``; return its path (for galleries)."""
        digest = hashlib.sha1(repr(tuple(key)).encode()).hexdigest()[:20]
        path = self.cache_dir / "renders" / f"{digest}{suffix}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
            save_image(image, tmp)
            os.replace(tmp, path)
        return str(path)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/vision-explorer`` (else ``~/.cache/vision-explorer``): thumbnails and renders.

    Per user, never a predictable shared folder such as ``/tmp/vision_explorer-UID``, where another
    local user could plant the renders the app serves (they are written only when missing).
    """
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return private_dir(base / "vision-explorer")


def private_dir(path: Path) -> Path:
    """``path`` created with mode 0700; an existing folder must belong to this user (it is made private)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if hasattr(os, "getuid"):
        st = path.stat()
        if st.st_uid != os.getuid():
            raise PermissionError(f"the cache folder {path} belongs to another user (uid {st.st_uid}); pass --cache-dir with a folder of yours")
        if st.st_mode & 0o077:
            path.chmod(0o700)
    return path


def error_text(e: BaseException) -> str:
    """A one-paragraph message for the user; unexpected exceptions also go to the server log."""
    from core.data import DatasetNotFoundError
    from core.runs import RunError

    if isinstance(e, (RunError, DatasetNotFoundError, ValueError, IndexError, KeyError, FileNotFoundError)):
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    else:
        log.error("handler failed:\n%s", traceback.format_exc())
        msg = f"{type(e).__name__}: {e}"
    return msg.strip() or type(e).__name__


def guard(n_outputs: int, status: int | None = None) -> Callable:
    """Turn any exception of a handler into a warning toast and a status message; other outputs stay as they were.

    ``status`` is the position of the status Markdown among the outputs. Works for plain functions
    and for generators; the handler's signature (``gr.Progress``, ``gr.SelectData``) is kept.
    """

    def failure(e: BaseException):
        msg = error_text(e)
        gr.Warning(msg.splitlines()[0][:300])
        out: list[Any] = [gr.skip()] * n_outputs
        if status is not None:
            out[status] = "**⚠ " + msg.replace("\n", "  \n") + "**"
        return out[0] if n_outputs == 1 else tuple(out)

    def deco(fn: Callable) -> Callable:
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen_wrapper(*args, **kwargs):
                try:
                    yield from fn(*args, **kwargs)
                except Exception as e:  # noqa: BLE001  (every error becomes a message; the app keeps serving)
                    yield failure(e)

            return gen_wrapper

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001
                return failure(e)

        return wrapper

    return deco


def fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def presence_md(p: ClassPresence, classes: Sequence[str]) -> str:
    """Ground-truth classes next to predicted ones: missed classes struck through, extra ones marked +."""
    if not p.truth:
        return "**Predicted:** " + (", ".join(classes[c] for c in p.predicted) or "nothing")
    truth = ", ".join(classes[c] for c in p.truth)
    parts = [classes[c] for c in p.predicted if c in p.truth]
    parts += [f"~~{classes[c]}~~" for c in p.missing]
    parts += [f"**+{classes[c]}**" for c in p.extra]
    return f"**Truth:** {truth}  \n**Predicted:** {', '.join(parts) or 'nothing'}"


def images_available(ctx: AppContext, name: str) -> bool:
    """Whether run ``name``'s dataset can be opened here (to pick sensible defaults)."""
    try:
        ctx.ws.dataset(name).open()
        return True
    except Exception:  # noqa: BLE001
        return False


def default_run(ctx: AppContext, task: str = "segmentation") -> str | None:
    """The run shown first: of ``task`` if any; for segmentation, one whose images are available.

    (Classification datasets derived from segmentation ones, like ``crops:camvid``, index their source
    when opened, too slow to do at start-up just to choose a default.)
    """
    names = ctx.ws.names_for(task) or ctx.ws.names
    if task == "segmentation":
        return next((n for n in names if images_available(ctx, n)), names[0] if names else None)
    return names[0] if names else None


def run_choices(ctx: AppContext, task: str | None = None, classes: Sequence[str] | None = None) -> list[str]:
    return ctx.ws.names_for(task, classes)


def epoch_slider_update(ctx: AppContext, name: str | None, value: int | str | None = "best", **kwargs: Any) -> dict:
    """Slider settings for a run: its saved epochs as the range, ``value`` snapped to a saved one."""
    from core.analysis import nearest_epoch

    if not name or name not in ctx.ws.runs:
        return gr.update(**kwargs)
    run = ctx.ws.run(name)
    epochs = run.epochs or [run.last_epoch]
    lo, hi = min(epochs), max(epochs)
    return gr.update(minimum=lo, maximum=max(hi, lo + 1) if lo == hi else hi, value=nearest_epoch(run, value),
                     step=1, interactive=lo != hi, **kwargs)  # fmt: skip


def slider_init(ctx: AppContext, run) -> dict[str, Any]:
    """Constructor arguments of an epoch slider, at ``run``'s best epoch.

    The range spans every run's saved epochs: Gradio checks a value against the constructor's range
    for API calls, so it must admit any run's epochs. A load event then narrows each slider to its
    own run's epochs (``epoch_slider_update``) for the page.
    """
    from core.analysis import nearest_epoch

    saved = [e for r in ctx.ws.runs.values() for e in (r.epochs or [r.last_epoch]) if e]
    lo, hi = (min(saved), max(saved)) if saved else (1, 2)
    value = nearest_epoch(run, "best") if run is not None else lo
    return {"value": value, "minimum": lo, "maximum": hi if hi > lo else lo + 1}
