"""A run's history as table rows, chart series and epoch choices: nothing is recomputed, everything
comes from history.jsonl (see ``core.runs``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from core.runs.run import Run, RunError, best_record


def _num(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def best_scored_epoch(run: Run) -> int | None:
    """The best epoch of a run: among its snapshots (the epoch "best" loads), or, for a run with no weights yet
    (a sweep's runs before their first snapshot, or history alone), among every scored epoch of its history."""
    if run.epochs:
        return run.best_epoch
    best = best_record([r for r in run.history if _num(r.get(run.monitor)) is not None], run.monitor)
    return None if best is None else int(best["epoch"])


def summary_row(name: str, run: Run) -> dict[str, Any]:
    """One row of the runs table, from run.json and the best epoch's history record."""
    best = best_scored_epoch(run)
    rec = run.record(best) if best is not None else None
    rec = rec or {}
    status = run.status
    row: dict[str, Any] = {
        "run": name,
        "task": run.task.name,
        "architecture": run.arch,
        "dataset": run.data["name"],
        "parameters": run.config["model"].get("num_params"),
        "best epoch": best,
        "epochs": len(run.history),
    }
    row.update({column: _num(rec.get(key)) for column, key in run.task.summary})
    train_time = status.get("train_time")
    if train_time is None:
        train_time = sum(float(r.get("epoch_time") or 0.0) for r in run.history) or None
    row.update(
        {"val loss": _num(rec.get("val_loss")), "train time (s)": _num(train_time), "status": status.get("state", "unknown")}
    )
    return row


SUMMARY_COLUMNS = [
    "run",
    "task",
    "architecture",
    "dataset",
    "parameters",
    "best epoch",
    "epochs",
    "pixel acc",
    "mean acc",
    "mIoU",
    "fwIoU",
    "top-1",
    "top-5",
    "val loss",
    "train time (s)",
    "status",
]


def summary_rows(runs: dict[str, Run]) -> list[dict[str, Any]]:
    """Summary rows for every run, with every column (``None`` where it does not apply)."""
    return [{c: summary_row(n, r).get(c) for c in SUMMARY_COLUMNS} for n, r in runs.items()]


def history_series(run: Run, key: str) -> tuple[list[int], list[float | None]]:
    """(epochs, values) of a history field, ``None`` where an epoch lacks it."""
    return [int(r["epoch"]) for r in run.history], [_num(r.get(key)) for r in run.history]


def evaluated_epochs(run: Run) -> list[int]:
    """Epochs whose history record has validation scores (all of them unless trained with --val-every)."""
    return [int(r["epoch"]) for r in run.history if r.get("val_loss") is not None or r.get(run.monitor) is not None]


def scored_epoch(run: Run, choice: int | float | str) -> int:
    """The evaluated epoch for ``"best"``, ``"last"`` or the one nearest to a number (the earlier on ties)."""
    epochs = evaluated_epochs(run)
    if not epochs:
        raise RunError(f"run {run.name} has no evaluated epoch yet")
    if choice == "best":
        best = best_scored_epoch(run)
        return best if best in epochs else epochs[-1]
    if choice == "last":
        return epochs[-1]
    return closest_epoch(epochs, choice)


def closest_epoch(epochs: list[int], value: int | float | str) -> int:
    """The epoch of ``epochs`` nearest to ``value`` (the earlier on ties)."""
    e = float(value)
    return min(epochs, key=lambda s: (abs(s - e), s))


def class_scores(run: Run, epoch: int) -> list[float | None]:
    """Per-class IoU (segmentation) or accuracy (classification) recorded for ``epoch``."""
    rec = run.record(epoch)
    if rec is None:
        raise RunError(f"run {run.name} has no history record for epoch {epoch}")
    values = rec.get(run.task.class_metric)
    if values is None:
        values = rec.get("class_acc", [None] * run.num_classes)
    return [_num(v) for v in values]


def align_class_scores(
    series: list[tuple[str, list[str], list[float | None]]],
) -> tuple[list[str], list[tuple[str, list[float | None]]]]:
    """Per-class scores of runs with different class lists on one axis: the union of the classes in
    first-seen order, ``None`` where a run has no such class. ``series`` is [(label, classes, scores)]."""
    classes: list[str] = []
    for _, names, _ in series:
        classes += [c for c in names if c not in classes]
    return classes, [(label, [dict(zip(names, values)).get(c) for c in classes]) for label, names, values in series]


def early_stop_epoch(run: Run) -> int | None:
    """The epoch after which patience stopped the run, or None if it did not stop early."""
    status = run.status
    return status.get("stopped_epoch") if status.get("state") == "early_stopped" else None


def spread_epochs(epochs: list[int], limit: int) -> list[int]:
    """At most ``limit`` of ``epochs``, evenly spaced, always the first and the last (an across-epochs strip)."""
    if len(epochs) <= limit:
        return list(epochs)
    picks = np.unique(np.linspace(0, len(epochs) - 1, limit).round().astype(int))
    return [epochs[j] for j in picks]


def class_scores_by_epoch(run: Run) -> tuple[list[int], np.ndarray]:
    """(epochs, (K, E) array) of per-class scores over the evaluated epochs; NaN where a class had none."""
    epochs = evaluated_epochs(run)
    m = np.full((run.num_classes, len(epochs)), np.nan)
    for j, e in enumerate(epochs):
        m[:, j] = [np.nan if v is None else v for v in class_scores(run, e)]
    return epochs, m


def confusion_at(run: Run, epoch: int) -> np.ndarray:
    """The validation confusion matrix recorded for ``epoch`` (K, K) int64, rows = true class."""
    rec = run.record(epoch)
    if rec is None or rec.get("confusion") is None:
        raise RunError(f"run {run.name} recorded no confusion matrix for epoch {epoch}")
    return np.asarray(rec["confusion"], dtype=np.int64)


def row_normalize(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (recall per true class); NaN for a class with no pixels."""
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum(1, keepdims=True)
    return np.divide(cm, total, out=np.full_like(cm, np.nan), where=total > 0)
