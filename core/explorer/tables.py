"""What the Metrics tab shows, as plain data from the runs' histories (with or without weights): per-class
scores at a chosen epoch aligned across runs, training-curve series, the class x epoch matrix, and how the
runs table (``core.explorer.sweeps``) is displayed."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from core.explorer.classes import CHART_CLASSES, chart_classes
from core.explorer.workspace import Workspace
from core.runs import RunError
from core.runs.history import (
    align_class_scores,
    best_scored_epoch,
    class_scores,
    class_scores_by_epoch,
    early_stop_epoch,
    evaluated_epochs,
    history_series,
    scored_epoch,
)


def epoch_choice(choice: str | int | float | None) -> str | float:
    """ "best", "last" or a number: the epoch asked for, per run the nearest evaluated one."""
    if choice in (None, "", "best"):
        return "best"
    if choice == "last":
        return "last"
    try:
        return float(choice)
    except (TypeError, ValueError):
        raise ValueError(f"epoch must be 'best', 'last' or a number, got {choice!r}") from None


def class_table(ws: Workspace, names: Sequence[str], epoch: str | int | float | None = "best") -> dict[str, Any]:
    """Per-class scores of each run at the chosen epoch, on the union of their classes; runs with no evaluated
    epoch yet are named in ``"waiting"``.

    ``{"metric": "IoU", "classes": [...], "runs": [{"run", "epoch", "scores": [...]}, ...], "waiting": [...]}``.
    """
    choice = epoch_choice(epoch)
    series, runs, metrics, waiting = [], [], set(), []
    for n in names:
        run = ws.recorded(n)
        if not evaluated_epochs(run):
            waiting.append(n)
            continue
        e = scored_epoch(run, choice)
        series.append((f"{n} @{e}", run.classes, class_scores(run, e)))
        runs.append({"run": n, "epoch": e})
        metrics.add(run.task.class_metric_label)
    classes, aligned = align_class_scores(series)
    for r, (_, values) in zip(runs, aligned):
        r["scores"] = values
    return {
        "metric": " / ".join(sorted(metrics)) or "IoU",
        "classes": classes,
        "runs": runs,
        "labels": [s[0] for s in aligned],
        "waiting": waiting,
    }


def curves(ws: Workspace, names: Sequence[str]) -> list[dict[str, Any]]:
    """Per run: loss and monitored-metric series over epochs, the best epoch and an early stop."""
    out = []
    for n in names:
        run = ws.recorded(n)
        epochs, train_loss = history_series(run, "train_loss")
        out.append(
            dict(
                name=n,
                epochs=epochs,
                train_loss=train_loss,
                val_loss=history_series(run, "val_loss")[1],
                metric=history_series(run, run.monitor)[1],
                metric_name=run.task.monitor_label,
                best_epoch=best_scored_epoch(run),
                stopped_epoch=early_stop_epoch(run),
            )
        )
    return out


def class_by_epoch(
    ws: Workspace, name: str, top: int = CHART_CLASSES, chosen: Sequence[str] | None = None
) -> tuple[list[str], list[int], np.ndarray, str, str]:
    """(classes, evaluated epochs, (n, E) per-class scores, metric label, note) of one run, on the classes
    ``chart_classes`` picks from the scores of its last evaluated epoch (chosen classes the run lacks are named
    in the note)."""
    run = ws.recorded(name)
    if not evaluated_epochs(run):
        raise RunError(f"run {name} has no evaluated epoch yet")
    epochs, values = class_scores_by_epoch(run)  # (K, E)
    mine = [c for c in chosen or () if c in run.classes]
    lacking = [c for c in chosen or () if c not in run.classes]
    if chosen and not mine:
        raise ValueError(f"run {name} has none of the chosen classes ({', '.join(lacking)})")
    last = [None if np.isnan(v) else float(v) for v in values[:, -1]]
    idx, note = chart_classes(run.classes, [last], top=top, chosen=mine)
    if lacking:
        note += f"; not classes of this run: {', '.join(lacking)}"
    return [run.classes[i] for i in idx], epochs, values[idx], run.task.class_metric_label, note


def class_names(ws: Workspace, names: Sequence[str]) -> list[str]:
    """The classes of the runs ``names`` (recorded, weights or not), each once, in the order the runs list them."""
    out: dict[str, None] = {}
    for n in names:
        out.update(dict.fromkeys(ws.recorded(n).classes))
    return list(out)


def class_chart(
    per_class: dict[str, Any], top: int = CHART_CLASSES, chosen: Sequence[str] | None = None
) -> tuple[list[str], list[tuple[str, list[float | None]]], str]:
    """The classes and (label, scores) series of a per-class chart of ``class_table``'s result: the top and bottom
    ``top`` classes, or the ``chosen`` ones (``chart_classes``), and a note saying which."""
    series = list(zip(per_class["labels"], [r["scores"] for r in per_class["runs"]]))
    idx, note = chart_classes(per_class["classes"], [s for _, s in series], top=top, chosen=chosen)
    return [per_class["classes"][i] for i in idx], [(label, [s[i] for i in idx]) for label, s in series], note


# How many decimals a reader needs, per column of a displayed table (the JSON keeps every digit).
DECIMALS = {
    **{score: 3 for score in ("pixel acc", "mean acc", "mIoU", "fwIoU", "top-1", "top-5", "val loss")},
    "parameters (M)": 2,
    "train time (min)": 1,
    "time left (min)": 1,
    "best epoch": 1,  # a group's mean
}


def _shown(value: Any, digits: int | None) -> Any:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if digits is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    return round(float(value), digits) if isinstance(value, float) else value


def display_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of the runs table (``core.explorer.sweeps.table``) as a table shows them: scores to 3 decimals,
    parameters (M) to 2, minutes to 1, a group's mean and standard deviation as one "mean ± std" cell, lists
    (the seeds of a group) as text; configuration values such as learning rates as they are."""
    out = []
    for row in rows:
        shown: dict[str, Any] = {}
        for c in columns:
            if c.endswith(" std") and c[:-4] in columns:
                continue
            digits = DECIMALS.get(c)
            value = _shown(row.get(c), digits)
            std = row.get(f"{c} std")
            if f"{c} std" in columns and value is not None and std is not None:
                value = f"{value} ± {_shown(std, digits)}"
            shown[c] = value
        out.append(shown)
    return out


def measure_rows(table: dict[str, Any]) -> list[dict[str, Any]]:
    """A measure's per-class table (``assess.measure_table``): one row per run and class with each series'
    value (one column per bin for a per-bin view); failed runs are left out (``measure_summary`` names them)."""
    view = table.get("view") or {}
    series, bins = [tuple(s) for s in view.get("series", ())], list(view.get("bins", ()))
    rows = []
    for r in (r for r in table["runs"] if "error" not in r):
        for c, name in enumerate(r["classes"]):
            row: dict[str, Any] = {"run": f"{r['run']} @{r['epoch']}", "class": name}
            for key, label in series:
                value = r[key][c]
                if bins and isinstance(value, list):
                    row.update({f"{label} {b.split(' ')[0]}": v for b, v in zip(bins, value)})
                else:
                    row[label] = value
            rows.append(row)
    return rows


def measure_summary(table: dict[str, Any]) -> str:
    """One line per run: its summary numbers (or why it failed) and where the result was computed."""
    view = table.get("view") or {}
    lines = []
    for r in table["runs"]:
        if "error" in r:
            lines.append(f"⚠ **{r['run']}** failed: {r['error']}")
            continue
        numbers = ", ".join(f"{label} {_fmt(r.get(key))}" for key, label in view.get("summary", ()))
        lines.append(f"**{r['run']}** @{r['epoch']}" + (f": {numbers}" if numbers else "") + f" ({r.get('source', '')})")
    return "  \n".join(lines)


def _fmt(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and v != v) else f"{v:.3f}"


def _class_score(value: Any) -> float | None:
    """One number per class of a measure: the value, or the mean of its bins (``per_class_bins``)."""
    if isinstance(value, list):
        kept = [float(v) for v in value if v is not None and not np.isnan(v)]
        return float(np.mean(kept)) if kept else None
    return None if value is None or np.isnan(value) else float(value)


def measure_classes(table: dict[str, Any], top: int = CHART_CLASSES, chosen: Sequence[str] | None = None) -> tuple[dict, str]:
    """A per-class measure's result (``assess.measure_table``) cut to the classes its chart shows, and a note
    saying which: ``chart_classes`` on the view's first series (a bin view: the mean of the bins). Each run's
    lists with one entry per class are cut; other views, and runs of other classes, come back as they were."""
    view = table.get("view") or {}
    runs = [r for r in table["runs"] if "error" not in r]
    if view.get("kind") not in ("per_class", "per_class_bins") or not runs or not view.get("series"):
        return table, ""
    classes = list(runs[0]["classes"])
    if any(list(r["classes"]) != classes for r in runs):
        return table, ""
    key = view["series"][0][0]
    idx, note = chart_classes(classes, [[_class_score(v) for v in r[key]] for r in runs], top=top, chosen=chosen)

    def cut(r: dict[str, Any]) -> dict[str, Any]:
        if "error" in r:
            return r
        return {k: [v[i] for i in idx] if isinstance(v, list) and len(v) == len(classes) else v for k, v in r.items()}

    return {**table, "runs": [cut(r) for r in table["runs"]]}, note
