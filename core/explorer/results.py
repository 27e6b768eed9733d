"""Evaluation results for the explorer's whole-split views: from memory, then the run's ``evaluation/`` folder
(written by ``python -m core.evaluate`` here or anywhere else), then one pass (the same code, with the
explorer's cached model) when the split is small.

A large cold split is never computed on a click: ``NotComputed`` says how to compute it offline (the exact
command and an estimate), and ``start_job`` computes it in a background process while other requests are
served; the result is picked up when its files appear.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.evaluate import CHUNK, Target, evaluate_target, missing_measures
from core.evaluation.measures import MEASURES, Measure, measures_for
from core.explorer.cache import RESULTS
from core.explorer.predictions import Member, Progress, get_predictor
from core.explorer.workspace import DatasetRef, Workspace

COLD_LIMIT = 300  # image-runs a click may compute; above it, offline or in the background
SECONDS_PER_IMAGE = 0.5  # a CPU's rough cost of one image of a CamVid-sized model, for estimates before any is timed


class NotComputed(ValueError):
    """A whole-split view whose results are not computed and too large to compute on a click."""

    def __init__(self, message: str, command: str, images: int) -> None:
        super().__init__(message)
        self.command, self.images = command, images


def target_of(member: Member, ref: DatasetRef) -> Target:
    """The evaluation target of a run at an epoch on a dataset split, with the explorer's opened dataset."""
    run, epoch = member
    t = Target(run, int(epoch), ref.split, ref.root)
    t._dataset = ref.open()
    return t


def ensure(
    ws: Workspace,
    pairs: Sequence[tuple[Member, DatasetRef]],
    measures: Sequence[Measure] | None = None,
    *,
    progress: Progress | None = None,
    limit: int | None = None,
) -> list[Target]:
    """The targets of ``pairs`` with ``measures`` (default: every applicable one) stored: computed now when the
    missing images are at most ``limit``, else ``NotComputed`` with the command that computes them. A pass, once
    needed, computes every applicable measure the result lacks, not only those asked for."""
    targets, todo = cold_check(ws, pairs, measures, limit=limit)
    for j, (t, member) in enumerate(todo):
        sub = None if progress is None else (lambda f, msg, j=j: progress((j + f) / len(todo), f"{t.run.name}: {msg}"))
        evaluate_target(t, measures=_applicable(t, None), predictor=get_predictor([member]), progress=sub)
    return targets


def cold_check(
    ws: Workspace,
    pairs: Sequence[tuple[Member, DatasetRef]],
    measures: Sequence[Measure] | None = None,
    *,
    limit: int | None = None,
) -> tuple[list[Target], list[tuple[Target, Member]]]:
    """The targets, and those still to compute with their member; ``NotComputed`` if those are over ``limit``
    images (default ``COLD_LIMIT``)."""
    limit = COLD_LIMIT if limit is None else limit
    targets = [target_of(m, r) for m, r in pairs]
    todo = [(t, m) for t, (m, _) in zip(targets, pairs) if missing_measures(t.store(), _applicable(t, measures))]
    images = sum(t.size for t, _ in todo)
    if images > limit:
        raise NotComputed(_advice(ws, [t for t, _ in todo], images), command(ws, [t for t, _ in todo]), images)
    return targets, todo


def _applicable(t: Target, measures: Sequence[Measure] | None) -> list[Measure]:
    return measures_for(t.run.task) if measures is None else [m for m in measures if m.applies(t.run.task)]


def command(ws: Workspace, targets: Sequence[Target]) -> str:
    """The ``core.evaluate`` command that computes ``targets`` (the same runs, epochs, split and data root)."""
    names = sorted({ws.name_of(t.run) for t in targets})
    epochs = ",".join(str(e) for e in sorted({t.epoch for t in targets}))
    root = f" --data-root {targets[0].data_root}" if targets and targets[0].data_root else ""
    runs = " ".join(f"--run-name {n}" for n in names)  # not --run: torchrun would take it for its --run-path
    plugins = "".join(f" --plugins {m}" for m in ws.plugins)
    return f"python -m core.evaluate --runs {ws.runs_dir} {runs} --split {targets[0].split} --epochs {epochs}{root}{plugins}"


def _advice(ws: Workspace, targets: Sequence[Target], images: int) -> str:
    minutes = images * SECONDS_PER_IMAGE / 60
    return (
        f"{images:,} images of {len(targets)} run(s) are not evaluated yet: about {minutes:.0f} minutes on a CPU, too long "
        f"for a click. Compute them offline (on a GPU or a cluster: torchrun --nproc_per_node=N -m core.evaluate ...):\n"
        f"    {command(ws, targets)}\nor start it here in the background; the view fills in when it is done."
    )


def measure_result(member: Member, ref: DatasetRef, name: str) -> dict[str, Any]:
    """A stored measure's result (``Measure.finish``), remembered in memory."""
    t = target_of(member, ref)
    store = t.store()

    def load() -> dict[str, Any]:
        _, parts, _ = store.measure_states(name)
        return MEASURES.get(name).finish(parts, t.run.classes, t.run.task)

    return RESULTS.get_or_create((store.key, name), load)


@dataclass
class PerImage:
    """Per-image results of a run on a split: (N, K, 2) intersections and unions, (N,) accuracy and score
    (mIoU, or the probability of the true class), and each image's confusion cells in sparse form."""

    iu: np.ndarray
    accuracy: np.ndarray
    score: np.ndarray
    cells: np.ndarray
    counts: np.ndarray
    offsets: np.ndarray

    def cell(self, true_class: int, pred_class: int, num_classes: int) -> np.ndarray:
        """(N,) pixels (or images) of true ``true_class`` predicted as ``pred_class`` in each image."""
        n = len(self.offsets) - 1
        rows = np.repeat(np.arange(n), np.diff(self.offsets))  # the image of each stored cell
        hit = self.cells == true_class * num_classes + pred_class
        return np.bincount(rows[hit], weights=self.counts[hit], minlength=n).astype(np.int64)


def per_image(member: Member, ref: DatasetRef) -> PerImage:
    store = target_of(member, ref).store()

    def load() -> PerImage:
        _, p, off = store.measure_states("per_image")
        s = p["scores"]
        return PerImage(p["iu"], s[:, 0], s[:, 1], p["cells"], p["counts"], off["cells"])

    return RESULTS.get_or_create((store.key, "per_image"), load)


def stored_labels(member: Member, ref: DatasetRef) -> dict[int, bytes] | None:
    """The label maps an evaluation stored for a run on a split (PNG by image index), or None; remembered."""
    store = target_of(member, ref).store()
    if store.meta() is None:
        return None

    def load() -> dict[int, bytes] | None:
        found = store.labels()
        return None if found is None else dict(zip(found[0].tolist(), found[1]))

    return RESULTS.get_or_create((store.key, "labels"), load)


def provenance(member: Member, ref: DatasetRef) -> str:
    """ "computed offline, <date>, <images> images" (or on which host), for a view's caption."""
    meta = target_of(member, ref).store().meta() or {}
    where = "offline" if meta.get("pid") is None or meta.get("processes", 1) > 1 else f"on {meta.get('host')}"
    return f"computed {where}, {meta.get('created', '?')}, {meta.get('images', '?')} images"


# --- background jobs ---------------------------------------------------------------------------------------
@dataclass
class Job:
    targets: list[Target]
    process: subprocess.Popen
    cmd: str

    def state(self) -> dict[str, Any]:
        """running, done or failed, and the fraction of images done (from the chunk files on disk)."""
        planned = done = 0
        for t in self.targets:
            chunks = -(-t.size // CHUNK)
            planned += chunks
            done += chunks if not missing_measures(t.store(), _applicable(t, None)) else len(t.store().done_chunks())
        code = self.process.poll()
        status = "running" if code is None else ("done" if code == 0 else f"failed (exit code {code})")
        return {"status": status, "fraction": min(1.0, done / max(1, planned)), "command": self.cmd}


JOBS: dict[tuple, Job] = {}
_JOBS_LOCK = threading.Lock()


def start_job(ws: Workspace, pairs: Sequence[tuple[Member, DatasetRef]]) -> dict[str, Any]:
    """Compute ``pairs`` in a background ``python -m core.evaluate`` process (one per selection at a time)."""
    targets = [target_of(m, r) for m, r in pairs]
    key = tuple(sorted((str(t.run.path), t.epoch, t.split) for t in targets))
    with _JOBS_LOCK:
        job = JOBS.get(key)
        if job is None or job.process.poll() is not None:
            cmd = command(ws, targets)
            argv = [sys.executable, "-m", "core.evaluate", "--runs", str(ws.runs_dir), "--split", targets[0].split]
            argv += [a for n in sorted({ws.name_of(t.run) for t in targets}) for a in ("--run-name", n)]
            argv += ["--epochs", ",".join(str(e) for e in sorted({t.epoch for t in targets}))]
            argv += ["--data-root", targets[0].data_root] if targets[0].data_root else []
            argv += [a for module in ws.plugins for a in ("--plugins", module)]  # the app's own models and measures
            root = Path(__file__).resolve().parents[2]
            process = subprocess.Popen(argv, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            job = JOBS[key] = Job(targets, process, cmd)
    return job.state()


def finished_jobs() -> int:
    """How many background evaluations have finished since the last call (they are then forgotten)."""
    with _JOBS_LOCK:
        done = [k for k, job in JOBS.items() if job.process.poll() is not None]
        for k in done:
            JOBS.pop(k)
    return len(done)
