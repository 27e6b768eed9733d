"""Live state of runs: running (epoch k of N, latest metrics, time left), interrupted, finished, or
training with no weights yet; read from run.json and history.jsonl alone."""

from __future__ import annotations

import math
import os
import socket
import time
from typing import Any

from core.runs import HISTORY_FILE, RUN_FILE, Run

STALE_AFTER_S = 300.0  # a run on another machine is "interrupted" after this long (or 3 epochs) without a write
ENDED = ("finished", "early_stopped", "budget")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _last_write(run: Run) -> float:
    stamps = []
    for p in (run.path / HISTORY_FILE, run.path / RUN_FILE):
        try:
            stamps.append(p.stat().st_mtime)
        except OSError:
            pass
    return max(stamps, default=0.0)


def live_state(run: Run, *, now: float | None = None) -> str:
    """ "running", "interrupted" or how the run ended. A run whose recorded training process (same host)
    is gone, or, from another machine, that wrote nothing for 3 epochs or 5 minutes, was interrupted."""
    status = run.status
    state = status.get("state", "unknown")
    if state != "running":
        return state
    if status.get("host") == socket.gethostname() and isinstance(status.get("pid"), int):
        return "running" if _alive(status["pid"]) else "interrupted"
    now = time.time() if now is None else now
    times = [float(r.get("epoch_time") or 0.0) for r in run.history]
    patience = max(STALE_AFTER_S, 3 * (sum(times) / len(times) if times else 0.0))
    return "running" if now - _last_write(run) < patience else "interrupted"


def run_summary(name: str, run: Run, *, pending: bool = False, now: float | None = None) -> dict[str, Any]:
    """One row of the runs table: state, epoch k of N, latest monitored metric, estimated time left."""
    train = run.config.get("train", {})
    last = run.history[-1] if run.history else {}
    state = live_state(run, now=now)
    epochs = train.get("epochs")
    budget = train.get("budget_min")
    eta = None
    if state == "running" and last:
        done = float(last.get("train_time") or 0.0)
        per_epoch = done / max(1, len(run.history))
        left = [budget * 60 - done] if budget else []
        if epochs:
            left.append(per_epoch * (epochs - last["epoch"]))
        eta = max(0.0, min(left)) if left else None
    metric = last.get(run.monitor) if last else None
    if metric is None:  # --val-every: the last evaluated epoch
        metric = next((r.get(run.monitor) for r in reversed(run.history) if r.get(run.monitor) is not None), None)
    return {
        "run": name,
        "task": run.task.name,
        "architecture": run.arch,
        "dataset": run.data.get("name"),
        "state": "training, no weights yet" if pending and state == "running" else state,
        "epoch": last.get("epoch"),
        "of": epochs if not (budget and epochs and epochs >= 10_000) else None,
        "budget (min)": budget,
        run.task.monitor_label: None
        if metric is None or (isinstance(metric, float) and math.isnan(metric))
        else round(metric, 4),
        "snapshots": len(run.epochs),
        "time left (min)": None if eta is None else round(eta / 60, 1),
    }
