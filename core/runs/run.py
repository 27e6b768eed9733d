"""Self-describing run directories.

Layout::

    run.json                 task, model name and every constructor argument, dataset description
                             (classes, palette, ignore index, normalisation, input size), all
                             hyper-parameters, seed, library versions, status
    history.jsonl            one JSON line per finished epoch: losses, metrics, per-class IoU,
                             val confusion matrix, learning rate, epoch time
    weights/epoch_0003.safetensors   snapshots of the configured epochs (and always the best epoch)
    weights/last.safetensors         weights after the last finished epoch
    weights/model.onnx       an ONNX run's graph (``core.models.sources.onnx``): its snapshots hold no tensors
    state/last.pt            resume state: model, optimizer, scheduler and counters, one atomic file
                             (plain tensors and numbers, loaded with ``weights_only=True``)

"best" is the epoch with the best monitored metric in the history; its snapshot is always kept.
Every file is written atomically (see ``core.utils.io``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from core.models.sources import (
    OWN,
    SOURCES,
    SourceUnavailableError,
    build_arch,
    join_arch,
    load_stored_state,
    stored_state,
)
from core.models.sources.base import shapes_of, state_mismatch
from core.tasks import Task, task_type
from core.utils.registry import UnknownNameError

RUN_FORMAT = 1
RUN_FILE = "run.json"
HISTORY_FILE = "history.jsonl"
EPOCH_RE = re.compile(r"^epoch_(\d{4,})\.safetensors$")


class RunError(Exception):
    """A run directory that cannot be used; the message says what is wrong and what to do."""


def snapshot_path(run_dir: Path, epoch: int) -> Path:
    return run_dir / "weights" / f"epoch_{epoch:04d}.safetensors"


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / HISTORY_FILE
    if not path.exists():
        return []
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise RunError(f"{path}, line {n}: not valid JSON ({e}); the file was edited or damaged") from e
    return records


def _metric(record: dict[str, Any], key: str) -> float:
    v = record.get(key)
    return -math.inf if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def best_record(records: list[dict[str, Any]], monitor: str) -> dict[str, Any] | None:
    """The record with the highest ``monitor`` value (the earliest on ties)."""
    best = None
    for r in records:
        if best is None or _metric(r, monitor) > _metric(best, monitor):
            best = r
    return best


@dataclass
class Run:
    """A run directory, read. ``build_model(epoch)`` rebuilds its model from the directory alone."""

    path: Path
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)

    # --- description -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def task(self) -> type[Task]:
        """The run's task (``core.tasks``): its metrics, labels and scoring."""
        return task_type(self.config["task"])

    @property
    def source(self) -> str:
        """The model's source (``core.models.sources``): "registry" for this project's own models."""
        return self.config["model"].get("source") or OWN

    @property
    def arch(self) -> str:
        """The model as ``core.train`` names it: ``unet``, or ``smp:Unet`` for a model of another library."""
        return join_arch(self.source, self.config["model"]["name"])

    @property
    def model_args(self) -> dict[str, Any]:
        return dict(self.config["model"]["args"])

    @property
    def data(self) -> dict[str, Any]:
        return self.config["data"]

    @property
    def classes(self) -> list[str]:
        return list(self.data["classes"])

    @property
    def num_classes(self) -> int:
        return len(self.data["classes"])

    @property
    def palette(self) -> list[tuple[int, int, int]]:
        return [tuple(c) for c in self.data["palette"]]

    @property
    def ignore_index(self) -> int:
        return int(self.data["ignore_index"])

    @property
    def input_size(self) -> tuple[int, int] | None:
        size = self.data.get("input_size")
        return (int(size[0]), int(size[1])) if size else None

    @property
    def monitor(self) -> str:
        return self.task.monitor

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.config.get("status", {}))

    # --- epochs ----------------------------------------------------------------------------
    @property
    def epochs(self) -> list[int]:
        """Epochs with a weight snapshot on disk, ascending."""
        folder = self.path / "weights"
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := EPOCH_RE.match(p.name)))

    @property
    def best_epoch(self) -> int | None:
        """Best epoch by the monitored metric among those with a snapshot (with no scores recorded: the last saved one)."""
        saved = set(self.epochs)
        best = best_record([r for r in self.history if r["epoch"] in saved], self.monitor)
        if best is None:
            return self.epochs[-1] if self.epochs else None
        return best["epoch"]

    @property
    def last_epoch(self) -> int | None:
        path = self.path / "weights" / "last.safetensors"
        if path.exists():
            try:
                return int(_read_metadata(path).get("epoch", 0)) or None
            except (SafetensorError, OSError, ValueError):
                pass  # a damaged last file: fall back to the snapshots
        return self.epochs[-1] if self.epochs else None

    def record(self, epoch: int) -> dict[str, Any] | None:
        return next((r for r in self.history if r["epoch"] == epoch), None)

    def resolve_epoch(self, epoch: int | str) -> int:
        """An epoch number from ``"best"``, ``"last"`` or an int; an unsaved epoch is an error."""
        if epoch == "best":
            resolved = self.best_epoch
        elif epoch == "last":
            resolved = self.last_epoch
        else:
            resolved = int(epoch)
        if resolved is None:
            raise RunError(f"run {self.name} has no saved weights yet")
        if resolved not in self.epochs and resolved != self.last_epoch:
            raise RunError(f"run {self.name} has no weights for epoch {resolved}; saved epochs: {self.epochs}")
        return resolved

    def weights_path(self, epoch: int | str) -> Path:
        e = self.resolve_epoch(epoch)
        snap = snapshot_path(self.path, e)
        return snap if snap.exists() else self.path / "weights" / "last.safetensors"

    def open_dataset(self, split: str | None = None, data_root: str | None = None, **overrides: Any):
        """The run's dataset for ``split`` (default: its validation split), raw items, no transform.

        ``data_root`` overrides the root recorded at training time (another machine's path).
        """
        from core.data import get_dataset

        options = {**self.data.get("options", {}), **overrides}
        return get_dataset(self.data["name"], split or self.data["val_split"], data_root or self.data.get("root"), **options)

    def build_model(self, epoch: int | str = "best", device: torch.device | str = "cpu") -> nn.Module:
        """The model at ``epoch`` in eval mode, rebuilt from run.json and its safetensors snapshot."""
        path = self.weights_path(epoch)
        model = self._rebuild()
        try:
            with safe_open(path, "pt") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError) as e:
            raise RunError(f"{path} is damaged or unreadable ({e}); delete it or pick another epoch") from e
        wanted = self.resolve_epoch(epoch)
        if "epoch" in meta and int(json.loads(meta["epoch"])) != wanted:  # "last" moved on while a training runs
            raise RunError(
                f"run {self.name}: epoch {wanted} is no longer available (training has moved on); choose a saved epoch"
            )
        problem = state_mismatch(shapes_of(stored_state(model)), shapes_of(state))
        if problem:
            raise RunError(f"{path} does not fit model {self.arch} {self.model_args}: {problem}")
        load_stored_state(model, state)  # float16 snapshots are cast to the model's float32
        return model.to(device).eval()

    def _rebuild(self) -> nn.Module:
        """The model run.json describes, from its source, with no weights fetched; a clear RunError otherwise. A
        source whose models are files of the run (onnx) reads them from this directory and nowhere else."""
        try:
            return build_arch(self.arch, self.model_args, folder=self.path)
        except SourceUnavailableError as e:
            raise RunError(f"run {self.name}: {e}") from e
        except UnknownNameError as e:
            hint = " Was it trained with a plugin? Start the app with --plugins <module>." if self.source == OWN else ""
            raise RunError(f"run {self.name}: unknown architecture {self.arch!r}: {e}.{hint}") from e
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise RunError(f"run {self.name}: cannot rebuild model {self.arch!r} from run.json: {e}") from e


def _read_metadata(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    return {k: json.loads(v) for k, v in meta.items()}


def load_run(path: str | Path) -> Run:
    """Read a run directory; anything broken is a ``RunError`` saying what and why."""
    path = Path(path)
    cfg_path = path / RUN_FILE
    if not cfg_path.is_file():
        raise RunError(f"{path} is not a run directory: {RUN_FILE} is missing")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{cfg_path} is not valid JSON ({e})") from e
    if not isinstance(config, dict):
        raise RunError(f"{cfg_path} must hold a JSON object")
    if config.get("format") != RUN_FORMAT:
        raise RunError(f"{cfg_path}: run format {config.get('format')!r} is not supported (this version reads {RUN_FORMAT})")
    for key, sub in (
        ("task", None),
        ("model", "name"),
        ("model", "args"),
        ("data", "name"),
        ("data", "classes"),
        ("data", "palette"),
    ):
        node = config.get(key)
        if node is None or (sub is not None and (not isinstance(node, dict) or sub not in node)):
            raise RunError(f"{cfg_path} lacks {key + ('.' + sub if sub else '')}")
    try:
        task_type(config["task"])
    except (ValueError, TypeError) as e:
        raise RunError(f"{cfg_path}: {e}") from e
    source = config["model"].get("source") or OWN
    if not isinstance(source, str) or source not in SOURCES:  # never a module to import: only the allow-list
        raise RunError(
            f"{cfg_path} names the model source {source!r}, which is not one of {', '.join(SOURCES.names())}; "
            "a run directory can only name a known source, and nothing was imported"
        )
    config["data"].setdefault("train_split", "train")
    config["data"].setdefault("val_split", "val")
    return Run(path=path, config=config, history=read_history(path))


def weights_problem(run: Run) -> str | None:
    """Why the run's weight files cannot serve its model, or None.

    Each file's safetensors header is read (nothing is ever unpickled; a file that is not safetensors,
    such as a pickle planted under that name, is refused here) and its tensor names and shapes are
    compared with the model run.json describes, built on the meta device (no memory, no weights).
    """
    try:
        with torch.device("meta"):
            expected = shapes_of(stored_state(run._rebuild()))
    except RunError as e:
        return str(e).removeprefix(f"run {run.name}: ")
    files = [snapshot_path(run.path, e) for e in run.epochs] + [
        p for p in [run.path / "weights" / "last.safetensors"] if p.exists()
    ]
    for path in files:
        name = path.relative_to(run.path)
        try:
            with safe_open(path, "pt") as f:
                shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        except (SafetensorError, OSError) as e:
            return f"{name} is not a readable safetensors file ({e}); delete it, or the run"
        wrong = [k for k in expected if k in shapes and shapes[k] != expected[k]]
        if wrong:  # the usual case: a class count or width that differs from run.json's
            k = wrong[0]
            return (
                f"{name} does not fit the model run.json describes: tensor {k} is {list(shapes[k])} but model {run.arch} "
                f"with {run.num_classes} classes (run.json) needs {list(expected[k])}"
            )
        problem = state_mismatch(expected, shapes)
        if problem:
            return f"{name} does not fit the model run.json describes: {problem}"
    return None


NO_WEIGHTS_YET = "training, no weights yet"


def run_folders(root: str | Path, *, max_depth: int = 3) -> list[Path]:
    """Folders under ``root`` (itself included, down to ``max_depth`` levels) that hold a run.json, sorted."""
    root = Path(root)
    return sorted({p.parent for depth in range(max_depth + 1) for p in root.glob("/".join(["*"] * depth + [RUN_FILE]))})


def read_run(folder: Path) -> tuple[Run | None, str | None]:
    """``(run, None)`` for a usable run; ``(run, NO_WEIGHTS_YET)`` for a run still before its first
    snapshot; ``(None, reason)`` for a folder that cannot be used. Never raises: a broken folder is a reason."""
    try:
        run = load_run(folder)
    except RunError as e:
        return None, str(e)
    except Exception as e:  # noqa: BLE001  (a broken directory must never be fatal)
        return None, f"unreadable: {type(e).__name__}: {e}"
    if not run.epochs and run.last_epoch is None:
        return run, NO_WEIGHTS_YET
    problem = weights_problem(run)
    return (None, problem) if problem else (run, None)


def discover_runs(root: str | Path, *, max_depth: int = 3) -> tuple[list[Run], list[tuple[Path, str]]]:
    """Every usable run directory under ``root`` (sorted by path), and the others with their reason
    (broken, or training with no weights yet). A broken directory is reported and skipped, never fatal."""
    root = Path(root)
    if not root.is_dir():
        return [], [(root, "not a directory")]
    runs: list[Run] = []
    problems: list[tuple[Path, str]] = []
    for folder in run_folders(root, max_depth=max_depth):
        run, problem = read_run(folder)
        if problem:
            problems.append((folder, problem))
        else:
            runs.append(run)
    return runs, problems
