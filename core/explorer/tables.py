"""What the Metrics tab shows, as plain data from the runs' histories: the summary table, per-class
scores at a chosen epoch aligned across runs, training-curve series and the class x epoch matrix."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from core.explorer.workspace import Workspace
from core.runs.history import (
    SUMMARY_COLUMNS,
    align_class_scores,
    class_scores,
    class_scores_by_epoch,
    early_stop_epoch,
    history_series,
    scored_epoch,
    summary_row,
)


def summary(ws: Workspace, names: Sequence[str]) -> list[dict[str, Any]]:
    """One row per run (best epoch), only the columns some selected run has."""
    rows = [{c: summary_row(n, ws.run(n)).get(c) for c in SUMMARY_COLUMNS} for n in names]
    used = [c for c in SUMMARY_COLUMNS if any(r[c] is not None for r in rows)]
    return [{c: r[c] for c in used} for r in rows]


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
    """Per-class scores of each run at the chosen epoch, on the union of their classes.

    ``{"metric": "IoU", "classes": [...], "runs": [{"run", "epoch", "scores": [...]}, ...]}``.
    """
    choice = epoch_choice(epoch)
    series, runs, metrics = [], [], set()
    for n in names:
        run = ws.run(n)
        e = scored_epoch(run, choice)
        series.append((f"{n} @{e}", run.classes, class_scores(run, e)))
        runs.append({"run": n, "epoch": e})
        metrics.add(run.task.class_metric_label)
    classes, aligned = align_class_scores(series)
    for r, (_, values) in zip(runs, aligned):
        r["scores"] = values
    return {"metric": " / ".join(sorted(metrics)) or "IoU", "classes": classes, "runs": runs, "labels": [s[0] for s in aligned]}


def curves(ws: Workspace, names: Sequence[str]) -> list[dict[str, Any]]:
    """Per run: loss and monitored-metric series over epochs, the best epoch and an early stop."""
    out = []
    for n in names:
        run = ws.run(n)
        epochs, train_loss = history_series(run, "train_loss")
        out.append(
            dict(
                name=n,
                epochs=epochs,
                train_loss=train_loss,
                val_loss=history_series(run, "val_loss")[1],
                metric=history_series(run, run.monitor)[1],
                metric_name=run.task.monitor_label,
                best_epoch=run.best_epoch,
                stopped_epoch=early_stop_epoch(run),
            )
        )
    return out


def class_by_epoch(ws: Workspace, name: str) -> tuple[list[str], list[int], np.ndarray, str]:
    """(classes, evaluated epochs, (K, E) per-class scores, metric label) of one run."""
    run = ws.run(name)
    epochs, values = class_scores_by_epoch(run)
    return run.classes, epochs, values, run.task.class_metric_label


# How many decimals a reader needs, per column of a displayed table (the JSON keeps every digit).
DECIMALS = {"pixel acc": 3, "mean acc": 3, "mIoU": 3, "fwIoU": 3, "top-1": 3, "top-5": 3, "val loss": 3}


def display_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Summary rows as a table shows them: scores to 3 decimals, parameters in millions, training time in minutes."""
    out = []
    for row in rows:
        shown = {}
        for column, value in row.items():
            if column == "parameters" and value is not None:
                shown["parameters (M)"] = round(value / 1e6, 2)
            elif column == "train time (s)":
                shown["train time (min)"] = None if value is None else round(value / 60, 1)
            elif column in DECIMALS and value is not None:
                shown[column] = round(float(value), DECIMALS[column])
            else:
                shown[column] = value
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
