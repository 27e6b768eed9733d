"""Evaluation results in a run directory: portable, resumable, one folder per (snapshot, dataset split).

    <run>/evaluation/<key>/meta.json             what was evaluated, how many images, when, where, by how many processes
    <run>/evaluation/<key>/measures/<name>.npz   each measure's reduced state (read without pickle)
    <run>/evaluation/<key>/labels.npz            the predicted label maps, PNG-compressed, in image order
    <run>/evaluation/<key>/sample.npz            a sample of features for the embedding map
    <run>/evaluation/<key>/chunks/               partial results while a pass runs (one file per chunk of images)

The key is a hash of the snapshot's content, the dataset's name, options and split, the split's
fingerprint (its files' names and sizes) and the prediction settings (test-time augmentation); never an
absolute path or a time. A run folder evaluated on a cluster and copied home is read as it is. Every file is
written atomically; a killed pass leaves whole chunk files, and a rerun continues from them. One job at a time
computes a result (``ResultStore.exclusive``: a lock file, ``<key>/.lock``); another process or thread asking for
the same result waits, then finds it done.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no lock; do not run two evaluations of one result at once there
    fcntl = None

from core.evaluation.measures import Measure, States
from core.utils.io import atomic_write, atomic_write_json

FORMAT = 2
FOLDER = "evaluation"
_HASHES: dict[tuple[str, int, int], str] = {}


def content_hash(path: Path) -> str:
    """sha256 of a file (of a snapshot), remembered per (path, size, mtime) in this process."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def result_key(snapshot: str, dataset: str, options: dict[str, Any], split: str, fingerprint: str, settings: dict) -> str:
    """The folder name of a result: what it was computed from, by content (see the module docstring)."""
    ident = {
        "format": FORMAT,
        "snapshot": snapshot,
        "dataset": dataset,
        "options": options,
        "split": split,
        "fingerprint": fingerprint,
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@dataclass
class Chunk:
    """What a pass computed for images ``start`` to ``stop`` (exclusive): measure states, label maps, samples."""

    start: int
    stop: int
    states: States
    labels: list[bytes] = field(default_factory=list)  # PNG of each label map (segmentation), in image order
    sample: dict[str, np.ndarray] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"indices": self.states.indices}
        for m, parts in self.states.parts.items():
            for name, value in parts.items():
                out[f"{m}/{name}"] = value
        for m, offs in self.states.offsets.items():
            for name, value in offs.items():
                out[f"{m}/{name}@offsets"] = value
        if self.labels:
            out["labels@bytes"] = np.frombuffer(b"".join(self.labels), dtype=np.uint8)
            out["labels@offsets"] = np.concatenate([[0], np.cumsum([len(b) for b in self.labels])]).astype(np.int64)
        out.update({f"sample/{k}": v for k, v in self.sample.items()})
        return out

    @classmethod
    def from_arrays(cls, start: int, stop: int, arrays: dict[str, np.ndarray]) -> "Chunk":
        states = States(indices=arrays["indices"])
        for key, value in arrays.items():
            if "/" not in key or key.startswith("sample/"):
                continue
            m, name = key.split("/", 1)
            if name.endswith("@offsets"):
                states.offsets.setdefault(m, {})[name.removesuffix("@offsets")] = value
            else:
                states.parts.setdefault(m, {})[name] = value
                states.offsets.setdefault(m, {})
        labels = []
        if "labels@bytes" in arrays:
            data, off = arrays["labels@bytes"].tobytes(), arrays["labels@offsets"]
            labels = [data[off[i] : off[i + 1]] for i in range(len(off) - 1)]
        sample = {k.removeprefix("sample/"): v for k, v in arrays.items() if k.startswith("sample/")}
        return cls(start, stop, states, labels, sample)


class ResultStore:
    """One evaluation result's folder (see the module docstring); nothing here runs a model."""

    def __init__(self, run_dir: Path, key: str) -> None:
        self.folder = Path(run_dir) / FOLDER / key
        self.key = key

    @contextlib.contextmanager
    def exclusive(self, waiting: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold this result's lock while computing it: two jobs on one result would each merge and drop chunk files
        the other still reads. ``waiting()`` is called first if another job holds it. An advisory lock (``flock``):
        it is released when its holder exits or is killed; where no lock can be made (a read-only folder), none."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = open(self.folder / ".lock", "a")
        except OSError:
            handle = None
        if handle is None:
            yield
            return
        with handle:
            if fcntl is not None:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if waiting is not None:
                        waiting()
                    fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    # --- chunks, while a pass runs ----------------------------------------------------------------------
    def chunk_path(self, start: int, stop: int) -> Path:
        return self.folder / "chunks" / f"{start:07d}-{stop:07d}.npz"

    def done_chunks(self) -> list[tuple[int, int]]:
        """(start, stop) of every chunk written whole (atomically) so far."""
        folder = self.folder / "chunks"
        if not folder.is_dir():
            return []
        spans = []
        for p in folder.glob("*.npz"):
            parts = p.stem.split("-")
            if len(parts) == 2 and all(x.isdigit() for x in parts):
                spans.append((int(parts[0]), int(parts[1])))
        return sorted(spans)

    def write_chunk(self, chunk: Chunk) -> None:
        save_npz(self.chunk_path(chunk.start, chunk.stop), chunk.arrays())

    def read_chunk(self, start: int, stop: int) -> Chunk:
        return Chunk.from_arrays(start, stop, load_npz(self.chunk_path(start, stop)))

    # --- the finished result --------------------------------------------------------------------------------
    def finish(self, merged: Chunk, measures: list[Measure], meta: dict[str, Any]) -> None:
        """Write the merged result (measures, label maps, sample, then meta.json last: the commit point) and
        drop the chunks."""
        for m in measures:
            arrays = {"indices": merged.states.indices, **merged.states.parts[m.name]}
            arrays.update({f"{k}@offsets": v for k, v in merged.states.offsets.get(m.name, {}).items()})
            save_npz(self.folder / "measures" / f"{m.name}.npz", arrays)
        if merged.labels:
            save_npz(self.folder / "labels.npz", Chunk(0, 0, States(merged.states.indices), merged.labels).arrays())
        if merged.sample:
            save_npz(self.folder / "sample.npz", {k: v for k, v in merged.sample.items()})
        old = self.meta() or {}
        names = sorted(set(old.get("measures", [])) | {m.name for m in measures})
        atomic_write_json(self.folder / "meta.json", {**old, **meta, "measures": names, "format": FORMAT})
        for p in (self.folder / "chunks").glob("*.npz") if (self.folder / "chunks").is_dir() else []:
            p.unlink(missing_ok=True)

    def meta(self) -> dict[str, Any] | None:
        path = self.folder / "meta.json"
        try:
            return json.loads(path.read_text()) if path.is_file() else None
        except (OSError, json.JSONDecodeError):
            return None  # damaged: computed again

    def has(self, measure: str) -> bool:
        meta = self.meta()
        return bool(meta) and measure in meta.get("measures", []) and (self.folder / "measures" / f"{measure}.npz").is_file()

    def measure_states(self, measure: str) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(indices, parts, ragged offsets) of a stored measure."""
        arrays = load_npz(self.folder / "measures" / f"{measure}.npz")
        indices = arrays.pop("indices")
        offsets = {k.removesuffix("@offsets"): arrays.pop(k) for k in list(arrays) if k.endswith("@offsets")}
        return indices, arrays, offsets

    def labels(self) -> tuple[np.ndarray, list[bytes]] | None:
        path = self.folder / "labels.npz"
        if not path.is_file():
            return None
        chunk = Chunk.from_arrays(0, 0, load_npz(path))
        return chunk.states.indices, chunk.labels

    def sample(self) -> dict[str, np.ndarray] | None:
        path = self.folder / "sample.npz"
        return load_npz(path) if path.is_file() else None


_GREYS = np.repeat(np.arange(256, dtype=np.uint8), 3).tobytes()  # palette entry i = grey level i


def encode_png(labels: np.ndarray) -> bytes:
    """A label map (H, W) as PNG bytes: 8-bit palette indices (a grey palette) for up to 256 classes, 16-bit grey
    beyond. A palette image is stored without PNG's per-row filters, which cost more than they save on label maps:
    at zlib level 3, 0.8 against 1.7 ms a CamVid map and 3% smaller than filtered grey at level 1."""
    from PIL import Image

    array = np.asarray(labels)
    if array.max(initial=0) < 256:
        image = _palette(array.astype(np.uint8, copy=False))  # no copy of a uint8 map (``Item.compact``'s)
    else:
        image = Image.fromarray(array.astype(np.uint16))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=3)
    return buffer.getvalue()


def _palette(array: np.ndarray) -> Any:  # a PIL image in palette mode
    from PIL import Image

    image = Image.frombytes("P", array.shape[::-1], np.ascontiguousarray(array).tobytes())
    image.putpalette(_GREYS)
    return image


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im).astype(np.int64)


def origin() -> dict[str, Any]:
    """Where and when a result was computed (shown by the app as "computed offline, <date>")."""
    return {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "host": socket.gethostname(), "pid": os.getpid()}
