"""What every tab shares: the app context, handlers bound to it with error handling, concurrency
groups, the private cache folder, and small formatters and pickers."""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import random
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import gradio as gr

from core.explorer import MAX_UPLOAD_SIDE, Renders, SegmentationTask, Task, Workspace, nearest_epoch, user_message
from core.explorer.compare import Panel

log = logging.getLogger("vision_explorer")

# Follow-up steps of a chain and page wiring stay out of the API page; each user action has one documented endpoint.
PRIVATE = {"api_visibility": "private"}
# Concurrency (Gradio runs each event with a limit of 1 by default, so a cheap history read would wait
# behind a model run). Reads of stored history and cached renders are cheap, pure Python: many at once.
# Model runs use the CPU's cores: two at a time, each on the torch threads set at start-up; more would
# only slow each other down. Long jobs (whole-split statistics, embedding maps) get their own lane so
# they never block the interactive model runs.
READ = {"concurrency_id": "read", "concurrency_limit": 16}
INFER = {"concurrency_id": "infer", "concurrency_limit": 2}
LONG = {"concurrency_id": "long", "concurrency_limit": 1}


@dataclass
class AppContext:
    """Server-side state shared by every session: the runs, and the folder of rendered files."""

    ws: Workspace
    cache_dir: Path
    version: int = 0  # bumped whenever a refresh finds changed runs; the page's tabs follow it
    max_upload_side: int = MAX_UPLOAD_SIDE  # uploads are downscaled to this longest side (--max-upload-side)

    def refresh(self) -> set[str]:
        """Pick up new runs, epochs and snapshots (a stat per run file; nothing is re-read unless it changed)."""
        changed = self.ws.refresh()
        if changed:
            self.version += 1
        return changed

    @property
    def thumbs_dir(self) -> Path:
        return self.cache_dir / "thumbs"

    @property
    def renders(self) -> Renders:
        return Renders(self.cache_dir)


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
            raise PermissionError(
                f"the cache folder {path} belongs to another user (uid {st.st_uid}); pass --cache-dir with a folder of yours"
            )
        if st.st_mode & 0o077:
            path.chmod(0o700)
    return path


def error_text(e: BaseException) -> str:
    """A one-paragraph message for the user; unexpected exceptions also go to the server log."""
    msg, expected = user_message(e)
    if not expected:
        log.error("handler failed:\n%s", traceback.format_exc())
    return msg


def _failure(e: BaseException, n_outputs: int, status: int | None):
    msg = error_text(e)
    gr.Warning(msg.splitlines()[0][:300])
    out: list[Any] = [gr.skip()] * n_outputs
    if status is not None:
        out[status] = "**⚠ " + msg.replace("\n", "  \n") + "**"
    return out[0] if n_outputs == 1 else tuple(out)


def bind(ctx: AppContext, fn: Callable, n_outputs: int, status: int | None = None) -> Callable:
    """``fn(ctx, *inputs)`` as a Gradio handler: ``ctx`` bound, any exception turned into a warning toast
    and a status message (output ``status``) while the other outputs stay as they were.

    The signature without ``ctx`` is kept, so API parameters carry ``fn``'s names and ``gr.Progress`` /
    ``gr.SelectData`` parameters are still filled in; generators stream as before.
    """
    sig = inspect.signature(fn)
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def handler(*args, **kwargs):
            try:
                yield from fn(ctx, *args, **kwargs)
            except Exception as e:  # noqa: BLE001  (every error becomes a message; the app keeps serving)
                yield _failure(e, n_outputs, status)

    else:

        @functools.wraps(fn)
        def handler(*args, **kwargs):
            try:
                return fn(ctx, *args, **kwargs)
            except Exception as e:  # noqa: BLE001
                return _failure(e, n_outputs, status)

    handler.__signature__ = sig.replace(parameters=list(sig.parameters.values())[1:])
    return handler


def unless_opened(fn: Callable, outputs: Any) -> Callable:
    """``fn`` as a handler with a first input ``opened``: when it is true, every output is left as it is
    (``gr.skip()``) and ``fn`` is not called. The signature is kept after ``opened``, as ``bind`` keeps it."""
    n = len(outputs) if isinstance(outputs, (list, tuple)) else 0
    skipped = tuple(gr.skip() for _ in range(n)) if n else gr.skip()
    if inspect.isgeneratorfunction(fn):

        def handler(opened, *args, **kwargs):
            if opened:
                yield skipped
                return
            yield from fn(*args, **kwargs)

    else:

        def handler(opened, *args, **kwargs):
            return skipped if opened else fn(*args, **kwargs)

    sig = inspect.signature(fn)
    first = inspect.Parameter("opened", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    handler.__signature__ = sig.replace(parameters=[first, *sig.parameters.values()])
    return handler


def fill_on_first_open(tab: gr.Tab, events: Sequence[dict]) -> None:
    """Run a tab's filling ``events`` (``fn``, ``inputs``, ``outputs`` and a lane) the first time the tab is
    opened, not with the page: the page opens on its first tab, and the others' work (model runs, figures of
    150 classes) is done for the tabs a user looks at, without making the shown tab wait. Later visits keep
    what the tab shows (the user's choices)."""
    if not events:
        return
    opened = gr.State(False)
    for event in events:
        lane = {k: v for k, v in event.items() if k not in ("fn", "inputs", "outputs")}
        fill = unless_opened(event["fn"], event["outputs"])
        tab.select(fill, [opened, *event["inputs"]], event["outputs"], **{**READ, **lane}, **PRIVATE)
    tab.select(lambda: True, None, opened, **PRIVATE, queue=False)


def gallery(panels: Sequence[Panel]) -> list[tuple[str, str]]:
    """Panels as a Gradio gallery value: (file path, caption)."""
    return [(p.path, p.caption) for p in panels]


def fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def step_index(index: Any, n: int, move: str) -> int:
    """The image after a move: "next", "previous" (both wrap around) or "random"."""
    if n <= 0:
        raise IndexError("the split has no images")
    if move == "random":
        return random.randrange(n)
    return (int(index or 0) + (1 if move == "next" else -1)) % n


def picked(order: Sequence[int], evt: gr.SelectData) -> Any:
    """The dataset index behind a clicked gallery thumbnail, or no change."""
    pos = evt.index if isinstance(evt.index, int) else evt.index[0]
    return order[pos] if 0 <= pos < len(order) else gr.skip()


def epoch_slider(ctx: AppContext, name: str | None, value: int | str | None = "best", **kwargs: Any) -> dict:
    """Slider settings for a run: its saved epochs as the range, ``value`` snapped to a saved one."""
    if not name or name not in ctx.ws.runs:
        return gr.update(**kwargs)
    run = ctx.ws.run(name)
    epochs = run.epochs or [run.last_epoch]
    lo, hi = min(epochs), max(epochs)
    return gr.update(
        minimum=lo,
        maximum=max(hi, lo + 1) if lo == hi else hi,
        value=nearest_epoch(run, value),
        step=1,
        interactive=lo != hi,
        **kwargs,
    )


def slider_init(ctx: AppContext, name: str | None) -> dict[str, Any]:
    """Constructor arguments of an epoch slider at run ``name``'s best epoch.

    The range spans every run's saved epochs: Gradio checks a value against the constructor's range
    for API calls, so it must admit any run's epochs. A load event then narrows the slider to its run.
    """
    saved = [e for r in ctx.ws.runs.values() for e in (r.epochs or [r.last_epoch]) if e]
    lo, hi = (min(saved), max(saved)) if saved else (1, 2)
    value = nearest_epoch(ctx.ws.run(name), "best") if name else lo
    return {"value": value, "minimum": lo, "maximum": hi if hi > lo else lo + 1}


def images_available(ctx: AppContext, name: str) -> bool:
    """Whether run ``name``'s dataset can be opened here (to pick sensible defaults)."""
    try:
        ref = ctx.ws.dataset(name)
        ref.with_split(ctx.ws.splits(ref)[0]).open()  # the shipped sample counts
        return True
    except Exception:  # noqa: BLE001
        return False


def preferred_runs(ctx: AppContext, task: type[Task] = SegmentationTask) -> list[str]:
    """Runs of ``task`` in the order the app offers them: those on the dataset the app
    opens on (or derived from it, e.g. its crops) first, then those whose images are here, best first."""
    names = ctx.ws.ranked(ctx.ws.names_for(task))
    source = default_source(ctx)
    base = ctx.ws.sources()[source].name if source is not None else None
    available = {n: images_available(ctx, n) for n in names} if task.dense else {}
    return sorted(names, key=lambda n: (ctx.ws.dataset(n).name.split(":")[-1] != base, not available.get(n, True)))


def default_run(ctx: AppContext, task: type[Task] = SegmentationTask) -> str | None:
    """The run shown first (see ``preferred_runs``)."""
    return next(iter(preferred_runs(ctx, task) or ctx.ws.ranked(ctx.ws.names)), None)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as a Markdown table (numbers to 3 decimals, lists joined)."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return fmt(v)
        if isinstance(v, (list, tuple)):
            return ", ".join(str(x) for x in v) or "–"
        return "–" if v is None else str(v)

    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)
    return head + "".join("\n| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows)


def default_source(ctx: AppContext) -> str | None:
    """The dataset shown first: a segmentation dataset whose images are available, if there is one."""
    sources = ctx.ws.sources()
    seg = [s for s in sources if ctx.ws.run(ctx.ws.runs_for_source(s)[0]).task.dense]
    for label in seg:
        try:
            sources[label].open()
            return label
        except Exception:  # noqa: BLE001  (unavailable here; shown with a message if chosen)
            continue
    return (seg or list(sources) or [None])[0]
