"""Runs by name and dataset splits: what a client may choose, mapped to what is on disk."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.data import DatasetNotFoundError
from core.data.registry import sample_split
from core.explorer.cache import DATASETS
from core.explorer.validation import MAX_RUNS, check_count
from core.inference import to_rgb_array
from core.runs import HISTORY_FILE, NO_WEIGHTS_YET, RUN_FILE, Run, RunError, read_run, run_folders
from core.tasks import Task
from core.visualize import fit_within, save_image


@dataclass(frozen=True)
class DatasetRef:
    """One split of one dataset: registry name, options (JSON text, hashable), root and split."""

    name: str
    options: str
    root: str | None
    split: str

    @classmethod
    def of_run(cls, run: Run, split: str | None = None, data_root: str | None = None) -> "DatasetRef":
        options = json.dumps(run.data.get("options", {}), sort_keys=True)
        return cls(run.data["name"], options, data_root or run.data.get("root"), split or run.data["val_split"])

    def with_split(self, split: str) -> "DatasetRef":
        return DatasetRef(self.name, self.options, self.root, split)

    @property
    def source(self) -> str:
        """The dataset without its split, as a readable label, e.g. ``synthstreets (size=[60, 80])``."""
        opts = json.loads(self.options)
        text = ", ".join(f"{k}={v}" for k, v in sorted(opts.items()))
        return f"{self.name} ({text})" if text else self.name

    def open(self):
        """The dataset object (cached); a missing dataset raises ``DatasetNotFoundError`` with advice."""

        def build():
            from core.data import get_dataset

            try:
                return get_dataset(self.name, self.split, self.root, **json.loads(self.options))
            except DatasetNotFoundError as e:
                raise DatasetNotFoundError(
                    f"{e}\nThe images of dataset {self.name!r} are not available, so image views are off; "
                    f"start the app with --data-root pointing at the dataset (e.g. --data-root ../shared/data/{self.name})."
                ) from e

        return DATASETS.get_or_create(self, build)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | int]:
        ds = self.open()
        if not 0 <= index < len(ds):
            raise IndexError(f"image {index} is out of range: split {self.split!r} has {len(ds)} images")
        image, target = ds.load(index)
        image = to_rgb_array(np.asarray(image))
        if not image.flags.writeable:  # PIL-backed arrays are read-only; torch.from_numpy warns on them
            image = image.copy()
        return image, (np.asarray(target) if isinstance(target, np.ndarray) else int(target))

    def size(self) -> int:
        """Number of items in the split (opens the dataset)."""
        return len(self.open())

    def item(self, index: Any) -> tuple[int, np.ndarray, np.ndarray | int]:
        """(index, image, target) of item ``index`` (None = 0); out of range is an IndexError saying the range."""
        i = 0 if index is None else int(index)
        n = self.size()
        if not 0 <= i < n:
            raise IndexError(f"image {i} does not exist: split {self.split!r} has images 0 to {n - 1}")
        image, target = self.load(i)
        return i, image, target

    def key(self) -> str:
        """A short stable hash (file names of thumbnails)."""
        return hashlib.sha1(repr((self.name, self.options, self.root, self.split)).encode()).hexdigest()[:16]


def thumbnails(ref: DatasetRef, indices: Sequence[int], folder: str | Path, *, max_side: int = 160) -> list[str]:
    """Paths of small JPEG thumbnails of ``indices``, written once to ``folder`` and reused."""
    out_dir = Path(folder) / ref.key()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in indices:
        path = out_dir / f"{int(i):06d}.jpg"
        if not path.exists():
            image, _ = ref.load(int(i))
            tmp = path.with_suffix(f".tmp{threading.get_ident()}.jpg")
            save_image(fit_within(image, max_side), tmp, quality=85)
            os.replace(tmp, path)
        paths.append(str(path))
    return paths


# --- runs by name ----------------------------------------------------------------------------------
def _signature(folder: Path) -> tuple:
    """What changes when a run changes: run.json and history.jsonl (size, mtime) and the weights folder's
    listing (its mtime moves when a snapshot or ``last`` is written). A stat per file, nothing read."""
    out = []
    for p in (folder / RUN_FILE, folder / HISTORY_FILE, folder / "weights"):
        try:
            st = p.stat()
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


@dataclass
class Workspace:
    """The runs found under ``runs_dir``, addressed by name; ``data_root`` overrides recorded roots.

    ``runs`` are usable (at least one snapshot), ``pending`` are training with no weights yet, and
    ``problems`` are folders that cannot be used, with the reason. ``refresh()`` looks again, cheaply.
    """

    runs_dir: Path
    data_root: str | None = None
    plugins: list[str] = field(default_factory=list)  # modules the app imported (--plugins), for the processes it starts
    runs: dict[str, Run] = field(default_factory=dict)
    pending: dict[str, Run] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    _seen: dict[Path, tuple] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def discover(cls, runs_dir: str | Path, data_root: str | None = None) -> "Workspace":
        ws = cls(Path(runs_dir), data_root)
        ws.refresh()
        return ws

    def refresh(self) -> set[str]:
        """Look for runs again: new folders, new epochs and snapshots, runs gone. Only folders whose
        run.json, history or weights changed (by a stat) are read again. Returns the changed names."""
        with self._lock:
            folders = run_folders(self.runs_dir) if self.runs_dir.is_dir() else []
            changed = {self._name(f) for f in set(self._seen) - set(folders)}  # removed
            runs, pending = dict(self.runs), dict(self.pending)
            problems = dict(self.problems)
            for name in changed:
                runs.pop(name, None), pending.pop(name, None), problems.pop(name, None)
            seen = {}
            for folder in folders:
                name, sig = self._name(folder), _signature(folder)
                seen[folder] = sig
                if self._seen.get(folder) == sig:
                    continue
                changed.add(name)
                runs.pop(name, None), pending.pop(name, None), problems.pop(name, None)
                run, problem = read_run(folder)
                if problem == NO_WEIGHTS_YET:
                    pending[name] = run
                elif problem:
                    problems[name] = problem
                else:
                    runs[name] = run
            if not self.runs_dir.is_dir():
                problems[str(self.runs_dir)] = "not a directory"
            self._seen = seen
            self.runs = dict(sorted(runs.items()))
            self.pending = dict(sorted(pending.items()))
            self.problems = sorted(problems.items())
            return changed

    def _name(self, path: Path) -> str:
        try:
            return Path(path).relative_to(self.runs_dir).as_posix() or Path(path).name
        except ValueError:
            return Path(path).name

    def name_of(self, run: Run) -> str:
        """The name of a discovered run (its folder relative to the runs folder)."""
        return self._name(run.path)

    @property
    def names(self) -> list[str]:
        """Usable runs: those with weights, which every view can open."""
        return list(self.runs)

    @property
    def listed(self) -> dict[str, Run]:
        """Every run with a run.json, usable or with no weights yet, by name: what views of the recorded
        configuration and history (the runs table, the Metrics tab) show, since they need no model."""
        return dict(sorted({**self.runs, **self.pending}.items()))

    def run(self, name: str) -> Run:
        """The usable run called ``name``; anything else is a ``RunError`` (never a path lookup)."""
        if isinstance(name, str) and name in self.pending:
            raise RunError(f"run {name} has no saved weights yet, so views that run its model cannot use it; its history can")
        if not isinstance(name, str) or name not in self.runs:
            raise RunError(f"unknown run {name!r}; available runs: {', '.join(self.runs) or 'none'}")
        return self.runs[name]

    def recorded(self, name: str) -> Run:
        """The run called ``name`` for a view of its run.json and history, with or without weights."""
        if isinstance(name, str) and name in self.pending:
            return self.pending[name]
        return self.run(name)

    def names_for(self, task: type[Task] | None = None, classes: Sequence[str] | None = None) -> list[str]:
        """Runs of a task, and with exactly these classes (so they can share images and colours)."""
        return [
            n
            for n, r in self.runs.items()
            if (task is None or r.task is task) and (classes is None or r.classes == list(classes))
        ]

    def peers(self, name: str) -> list[str]:
        """Runs comparable with run ``name`` (same task, same classes), itself included."""
        run = self.run(name)
        return self.names_for(run.task, run.classes)

    def ranked(self, names: Sequence[str]) -> list[str]:
        """``names`` from the best to the worst recorded score (each run's best epoch); unscored runs last."""

        def score(n: str) -> float:
            run = self.run(n)
            rec = run.record(run.best_epoch) if run.best_epoch is not None else None
            v = (rec or {}).get(run.monitor)
            return -1.0 if v is None or v != v else float(v)

        return sorted(names, key=lambda n: -score(n))

    def runs_for_source(self, source: str) -> list[str]:
        """Runs that can predict on dataset ``source`` (a label of ``sources()``): same task and classes,
        those trained on ``source`` itself first, each group best first."""
        first = next((n for n in self.runs if self.dataset(n).source == source), None)
        if first is None:
            raise ValueError(f"unknown dataset {source!r}; datasets: {', '.join(self.sources()) or 'none'}")
        return sorted(self.ranked(self.peers(first)), key=lambda n: self.dataset(n).source != source)

    def dataset(self, name: str, split: str | None = None) -> DatasetRef:
        return DatasetRef.of_run(self.run(name), split, self.data_root)

    def sources(self) -> dict[str, DatasetRef]:
        """Distinct datasets of the runs, by readable label, each at the split shown first (the runs'
        validation split, or the shipped sample when the dataset is not on this machine)."""
        out: dict[str, DatasetRef] = {}
        for name in self.runs:
            ref = self.dataset(name)
            if ref.source not in out:
                out[ref.source] = ref.with_split(self.splits(ref)[0])
        return out

    def dataset_split(self, source: str, split: str) -> DatasetRef:
        """The dataset labelled ``source`` (see ``sources()``) at ``split``; only datasets of discovered runs
        and the splits they recorded, so a client's strings never name anything else."""
        sources = self.sources()
        if source not in sources:
            raise ValueError(f"unknown dataset {source!r}; choose one of: {', '.join(sources) or 'none (no runs found)'}")
        ref = sources[source]
        if split not in self.splits(ref):
            raise ValueError(f"dataset {ref.name} has no split {split!r} here; splits: {', '.join(self.splits(ref))}")
        return ref.with_split(split)

    def run_split(self, name: str, split: str) -> DatasetRef:
        """Run ``name``'s dataset at ``split``, one of the splits its runs recorded."""
        ref = self.dataset(name)
        if split not in self.splits(ref):
            raise ValueError(f"run {name}'s dataset has no split {split!r}; splits: {', '.join(self.splits(ref))}")
        return ref.with_split(split)

    def check_runs(self, names: Sequence[str] | None, ref: DatasetRef, limit: int = MAX_RUNS) -> list[str]:
        """The selected runs, each discovered and predicting ``ref``'s classes; at most ``limit`` of them."""
        names = check_count(names, limit)
        ds = ref.open()
        for name in names:
            run = self.run(name)
            if run.classes != list(ds.classes) or run.task is not ds.task:
                raise ValueError(
                    f"run {name} ({run.task.name}) does not predict the classes of {ref.source}; "
                    "pick runs of the same kind of dataset"
                )
        return names

    def splits(self, ref: DatasetRef) -> list[str]:
        """Splits of a dataset that its runs recorded (validation first, then training).

        Other splits (e.g. a test split) are not probed: opening a derived dataset such as
        ``crops:camvid`` scans its source, which is too slow to do just to fill a menu.
        """
        names: list[str] = []
        for run in self.runs.values():
            if DatasetRef.of_run(run, data_root=self.data_root).with_split("x") == ref.with_split("x"):
                for s in (run.data.get("val_split"), run.data.get("train_split")):
                    if s and s not in names:
                        names.append(s)
        names = names or [ref.split]
        sample = sample_split(ref.name)
        if sample is not None:  # shipped with the project: first when the dataset itself is not here
            names = names + [sample] if self._available(ref.with_split(names[0])) else [sample]
        return names

    @staticmethod
    def _available(ref: DatasetRef) -> bool:
        try:
            ref.open()
            return True
        except (DatasetNotFoundError, FileNotFoundError, ValueError):
            return False
