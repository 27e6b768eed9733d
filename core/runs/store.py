"""Writing run directories (rank 0 of the training engine, ``RunWriter`` and ``import_run``): start a run,
commit an epoch (snapshot, history line, resume state, ``last``), record how it ended, resume and strip it.
Every file is written atomically (``core.utils.io``)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from core.runs.run import HISTORY_FILE, RUN_FILE, RUN_FORMAT, Run, RunError, best_record, load_run, read_history, snapshot_path
from core.utils.io import atomic_write, atomic_write_bytes, atomic_write_json, json_safe


def save_weights(path: Path, model_state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    # safetensors refuses shared or non-contiguous storage; clone makes every tensor its own.
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model_state.items()}
    meta = {k: json.dumps(json_safe(v)) for k, v in metadata.items()}

    def write(tmp: str) -> None:
        try:
            save_file(tensors, tmp, metadata=meta)
        except SafetensorError as e:  # safetensors reports I/O errors (a full disk) as its own error type
            raise OSError(f"cannot write {path}: {e}") from e

    atomic_write(path, write)


def write_history(run_dir: Path, records: list[dict[str, Any]]) -> None:
    """Rewrite history.jsonl whole (atomically): it is small, and a crash never leaves half a line."""
    text = "".join(json.dumps(json_safe(r), allow_nan=False) + "\n" for r in records)
    atomic_write_bytes(run_dir / HISTORY_FILE, text.encode())


def create_run(path: Path, config: dict[str, Any], *, replace: bool = False, advice: str = "choose another folder") -> None:
    """Start a run directory; refuses to overwrite an existing run unless ``replace`` (a run restarted
    before it committed any epoch). ``advice`` is what the caller's user can do instead, in its own terms
    (a command-line flag for the engine, an argument for ``RunWriter``)."""
    if (path / RUN_FILE).exists() and not replace:
        raise RunError(f"{path} already holds a run; {advice}")
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path / RUN_FILE, {"format": RUN_FORMAT, **config, "status": running_status()})


def running_status() -> dict[str, Any]:
    """The status of a run being trained by this process: the explorer tells "running" from
    "interrupted" by whether this process is still alive."""
    return {"state": "running", "pid": os.getpid(), "host": socket.gethostname()}


def update_run(path: Path, **sections: dict[str, Any]) -> None:
    """Merge keys into sections of run.json, e.g. ``update_run(p, status={"state": "finished"})``."""
    config = json.loads((path / RUN_FILE).read_text())
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    atomic_write_json(path / RUN_FILE, config)


def update_status(path: Path, **status: Any) -> None:
    update_run(path, status=status)


def commit_epoch(
    path: Path,
    history: list[dict[str, Any]],
    record: dict[str, Any],
    weights: dict[str, torch.Tensor],
    *,
    monitor: str,
    snapshot: bool,
    keep: Callable[[int, bool], bool],
    state: dict[str, Any] | None = None,
) -> None:
    """Write one finished epoch: its snapshot (if wanted), the history line, the resume state (the commit
    point, if any), then ``last``. The best epoch's snapshot is always kept: a new best is saved even if
    no rule asked for it, and the former best is dropped when no rule wanted it. ``history`` grows in place."""
    epoch = record["epoch"]
    previous_best = best_record(history, monitor)
    history.append(record)
    best = best_record(history, monitor)
    if snapshot or best["epoch"] == epoch:
        save_weights(snapshot_path(path, epoch), weights, {"epoch": epoch, monitor: record.get(monitor)})
    write_history(path, history)
    if state is not None:
        save_state(path, state)
    save_weights(path / "weights" / "last.safetensors", weights, {"epoch": epoch})
    if previous_best and best["epoch"] != previous_best["epoch"] and not keep(previous_best["epoch"], False):
        snapshot_path(path, previous_best["epoch"]).unlink(missing_ok=True)


def finish_run(path: Path, state: str, history: list[dict[str, Any]]) -> None:
    """Record how a run ended: its state, last and best epochs and training time."""
    last = history[-1] if history else {}
    update_run(
        path,
        status={
            "state": state,
            "stopped_epoch": last.get("epoch"),
            "best_epoch": load_run(path).best_epoch,
            "train_time": last.get("train_time", 0.0),
        },
    )


def state_path(path: Path) -> Path:
    return path / "state" / "last.pt"


def save_state(path: Path, state: dict[str, Any]) -> None:
    """The resume state (model, optimizer, scheduler, counters) as one atomic file."""
    atomic_write(state_path(path), lambda tmp: torch.save(state, tmp))


def load_state(path: Path) -> dict[str, Any]:
    file = state_path(path)
    if not file.exists():
        raise RunError(f"{path} has no resume state ({file.relative_to(path)}); it never finished an epoch")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (any unpickling failure means the same thing to the user)
        raise RunError(f"{file} is damaged or was not written by this engine ({e}); cannot resume") from e


def prune_after(path: Path, epoch: int) -> None:
    """Roll a run back to ``epoch``: drop history lines and snapshots written after it.

    Called on resume. A crash after an epoch's history line or snapshot was written, but
    before its resume state, would otherwise leave that epoch twice once it is redone.
    """
    records = read_history(path)
    kept = [r for r in records if r["epoch"] <= epoch]
    if len(kept) != len(records):
        write_history(path, kept)
    for e in Run(path=path, config={}).epochs:
        if e > epoch:
            snapshot_path(path, e).unlink()


def finished_run(path: Path) -> Run:
    """The run at ``path``, refused while it trains (or was interrupted): what sharing it would change."""
    run = load_run(path)
    if run.status.get("state") == "running":
        raise RunError(f"{path} is still training (or was interrupted); finish or resume it first")
    return run


def strip_for_sharing(path: Path) -> list[Path]:
    """Make a finished run smaller to ship or archive: drop the resume state, and ``last`` when the
    final epoch also has a snapshot. The run still loads at every saved epoch; it can no longer be resumed.
    """
    run = finished_run(path)
    removed = []
    state = state_path(path)
    if state.exists():
        state.unlink()
        removed.append(state)
    last = path / "weights" / "last.safetensors"
    if last.exists() and run.last_epoch in run.epochs:
        last.unlink()
        removed.append(last)
    if state.parent.is_dir() and not any(state.parent.iterdir()):
        state.parent.rmdir()
    return removed
