"""The comparison of several runs on one dataset image: rendered panels, per-run scores as plain data,
and the across-epochs strip of one run. Everything a client chooses arrives as names and numbers and is
checked against the workspace."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from core import visualize as V
from core.evaluation.per_image import class_presence, image_scores
from core.explorer.legends import present_classes
from core.explorer.predictions import Member, member_key, nearest_epoch, predict_items
from core.explorer.renders import DISPLAY_MIN_SIDE, Renders
from core.explorer.validation import run_failure
from core.explorer.workspace import DatasetRef, Workspace
from core.runs import Run
from core.runs.history import spread_epochs
from core.utils.device import side_by_side

MAX_STRIP = 12  # epochs in the across-epochs strip (evenly spaced, always the first and the last)
Zoom = tuple[float, float, float]  # centre x, centre y (fractions of the image), factor (1 = whole image)
NO_ZOOM: Zoom = (0.5, 0.5, 1.0)


@dataclass
class Panel:
    """One rendered image of a comparison and its caption."""

    path: str
    caption: str


@dataclass
class Comparison:
    panels: list[Panel]
    scores: dict[str, Any]  # JSON-able: the image, and per run its epoch and scores on this image
    status: str
    topk: list[tuple[str, list[tuple[str, float]]]] = field(default_factory=list)  # classification: per run
    present: list[int] = field(default_factory=list)  # segmentation: classes in the ground truth or a prediction


def epoch_tags(run: Run, epoch: int) -> list[str]:
    return [t for t, e in (("best", run.best_epoch), ("last", run.last_epoch)) if e == epoch]


def resolve_members(ws: Workspace, names: Sequence[str], epochs: Sequence[Any] | None) -> list[Member]:
    """(run, saved epoch) per name; ``epochs[k]`` is "best", "last", a number (the nearest saved epoch is
    taken) or missing (best)."""
    epochs = list(epochs or [])
    return [
        (ws.run(n), nearest_epoch(ws.run(n), epochs[k] if k < len(epochs) and epochs[k] not in (None, "") else "best"))
        for k, n in enumerate(names)
    ]


def display(image: np.ndarray, zoom: Zoom = NO_ZOOM) -> np.ndarray:
    """How an image is shown: small ones enlarged by a whole factor, then the zoom window if any."""
    return V.zoom(V.enlarge(image, DISPLAY_MIN_SIDE), zoom[:2], zoom[2])


def zoom_from_click(image: np.ndarray, xy: Sequence[float], zoom: float) -> Zoom:
    """The zoom after a click at display pixel ``xy`` on the shown ``image``: centred there (fractions of the width
    and height), at the current factor, or 3x if it was not zoomed yet."""
    h, w = display(image).shape[:2]
    x, y = xy[:2]
    return round(min(max(x / w, 0.0), 1.0), 4), round(min(max(y / h, 0.0), 1.0), 4), zoom if zoom > 1 else 3


def check_zoom(zoom: Sequence[float] | None) -> Zoom:
    if zoom is None:
        return NO_ZOOM
    x, y, f = (float(v) for v in zoom)
    if not (0 <= x <= 1 and 0 <= y <= 1 and 1 <= f <= 16):
        raise ValueError(f"zoom needs a centre in [0, 1] x [0, 1] and a factor from 1 to 16, got {tuple(zoom)}")
    return (round(x, 4), round(y, 4), round(f, 3))


def _seg_panel(
    renders: Renders,
    ref: DatasetRef,
    i: int,
    image,
    target,
    label: str,
    members: Sequence[Member],
    pred: np.ndarray,
    opacity: float,
    zoom: Zoom,
) -> tuple[Panel, dict]:
    """The overlay of one model (a run at an epoch, or an ensemble) on the image, and its scores there."""
    ds = ref.open()
    k = len(ds.classes)
    key = ("pred", member_key(members), ref, i, opacity, zoom)
    path = renders.path(
        key, lambda: display(V.overlay(image, pred, ds.palette, opacity=opacity, ignore_index=ds.ignore_index), zoom)
    )
    s = image_scores(pred, target, k, ds.ignore_index)
    p = class_presence(pred, target, k, ds.ignore_index)
    row = {
        "run": label,
        "pixel_acc": s["pixel_acc"],
        "miou": s["miou"],
        "missing": [ds.classes[c] for c in p.missing],
        "extra": [ds.classes[c] for c in p.extra],
    }
    if len(members) == 1:
        run, epoch = members[0]
        tags = epoch_tags(run, epoch)
        row.update(epoch=epoch, tags=tags)
        title = f"{label} @ {epoch}" + (f" ({', '.join(tags)})" if tags else "")
    else:
        row.update(epoch=None, members=[f"{r.name}@{e}" for r, e in members])
        title = f"{label} of {len(members)} runs"
    return Panel(path, f"{title} · mIoU {_fmt(s['miou'])} · acc {_fmt(s['pixel_acc'])}"), row


def failed_panel(
    renders: Renders, ref: DatasetRef, i: int, image: np.ndarray, label: str, reason: str, zoom: Zoom = NO_ZOOM
) -> Panel:
    """The column of a run that failed on this image: the image dimmed, and the reason as its caption."""
    path = renders.path(("failed", ref, i, zoom), lambda: display(V.dim(image, 0.75), zoom))
    return Panel(path, f"⚠ {label} failed: {reason}"[:300])


def _cls_entry(ref: DatasetRef, target: int, label: str, members: Sequence[Member], pred) -> tuple[dict, list[tuple[str, float]]]:
    """The top-5 classes of one model (a run at an epoch, or an ensemble) for the image."""
    classes = ref.open().classes
    top = [(classes[c], p) for c, p in pred.topk(5)]
    row = {"run": label, "top1": top[0][0], "correct": top[0][0] == classes[target], "top5": [[c, p] for c, p in top]}
    if len(members) == 1:
        row.update(epoch=members[0][1], tags=epoch_tags(*members[0]))
    else:
        row.update(epoch=None, members=[f"{r.name}@{e}" for r, e in members])
    return row, top


def compare(
    ws: Workspace,
    renders: Renders,
    ref: DatasetRef,
    index: Any,
    names: Sequence[str],
    epochs: Sequence[Any] | None,
    *,
    opacity: float = 0.55,
    ensemble: bool = False,
    zoom: Sequence[float] | None = None,
) -> Comparison:
    """Image, ground truth and each run's prediction (and the runs' ensemble) on item ``index`` of ``ref``."""
    names = ws.check_runs(names, ref)
    zoom = check_zoom(zoom)
    opacity = round(float(np.clip(opacity, 0.0, 1.0)), 3)
    ds = ref.open()
    i, image, target = ref.item(index)
    members = resolve_members(ws, names, epochs)
    seg = ds.task.dense
    panels = [Panel(renders.path(("image", ref, i, zoom), lambda: display(image, zoom)), f"image {i}: {ds.item_id(i)}")]
    if seg:
        gt = renders.path(
            ("gt", ref, i, opacity, zoom),
            lambda: display(V.overlay(image, target, ds.palette, opacity=opacity, ignore_index=ds.ignore_index), zoom),
        )
        panels.append(Panel(gt, "ground truth"))
    rows, topk, preds = [], [], []
    entries = [(n, [m]) for n, m in zip(names, members)]
    if ensemble and len(members) >= 2:
        entries.append(("ensemble", members))

    def column(entry: tuple[str, list[Member]]) -> tuple[dict, Panel | None, Any, Any]:
        """One model's (row, panel, label map, top classes); a faulty run fails in its own column."""
        name, group = entry
        try:
            pred = predict_items(group, ref, [i])[0]
        except Exception as e:  # noqa: BLE001  (one faulty run fails in its own column; the others render)
            reason = run_failure(name, e)
            return (
                {"run": name, "error": reason},
                failed_panel(renders, ref, i, image, name, reason, zoom) if seg else None,
                None,
                None,
            )
        if seg:
            panel, row = _seg_panel(renders, ref, i, image, target, name, group, pred, opacity, zoom)
            return row, panel, pred, None
        row, top = _cls_entry(ref, target, name, group, pred)
        return row, None, None, (name, top)

    for row, panel, pred, top in side_by_side(column, entries):  # the models run side by side on spare cores
        rows.append(row)
        panels += [panel] if panel is not None else []
        preds += [pred] if pred is not None else []
        topk += [top] if top is not None else []
    truth = "" if seg else f" · true class **{ds.classes[target]}**"
    scores = {"dataset": ref.source, "split": ref.split, "image": i, "item_id": ds.item_id(i), "runs": rows, "note": ds.note}
    if not seg:
        scores["true_class"] = ds.classes[target]
    status = f"{ref.source} · {ref.split} · image {i} of {ref.size()} (`{ds.item_id(i)}`){truth} · {len(names)} runs"
    if ds.note:
        status += f"  \n*{ds.note}*"
    present = present_classes(target, preds, len(ds.classes), ds.ignore_index) if seg else []
    return Comparison(panels, scores, status, topk, present)


def across_epochs(
    ws: Workspace, renders: Renders, ref: DatasetRef, index: Any, name: str, *, opacity: float = 0.55, limit: int = MAX_STRIP
) -> tuple[list[Panel], list[dict]]:
    """One run's predictions on item ``index`` at its saved epochs (at most ``limit``, evenly spaced)."""
    ws.check_runs([name], ref, 1)
    run = ws.run(name)
    ds = ref.open()
    i, image, target = ref.item(index)
    panels, rows = [], []
    for e in spread_epochs(run.epochs or [run.last_epoch], limit):
        try:
            pred = predict_items([(run, e)], ref, [i])[0]
        except Exception as err:  # noqa: BLE001  (an epoch whose weights fail is shown failed; the others render)
            reason = run_failure(f"{name} @ {e}", err)
            panels.append(failed_panel(renders, ref, i, image, f"epoch {e}", reason))
            rows.append({"run": name, "epoch": e, "error": reason})
            continue
        if ds.task.dense:
            panel, row = _seg_panel(renders, ref, i, image, target, name, [(run, e)], pred, opacity, NO_ZOOM)
            panel.caption = f"epoch {e}: mIoU {_fmt(row['miou'], 2)}"
        else:
            row, top = _cls_entry(ref, target, name, [(run, e)], pred)
            mark = "✓" if row["correct"] else "✗"
            panel = Panel(
                renders.path(("image", ref, i, NO_ZOOM), lambda: display(image)),
                f"epoch {e} · {top[0][0]} ({top[0][1]:.2f}) {mark}",
            )
        panels.append(panel)
        rows.append(row)
    return panels, rows


def _fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"
