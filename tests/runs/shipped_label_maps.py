"""Label maps of every shipped run on the shipped images, as hashes: the record that a refactor changed
no behaviour. ``python -m tests.runs.shipped_label_maps`` writes ``tests/runs/shipped_label_maps.json``
(done once, before the house-by-concern move); the test compares what the code predicts now with it.

Per run (best epoch): the sha256 of its label maps (uint8, image after image) on the first images of the
shipped split (CamVid runs: the 24-image val sample; the synthstreets demo runs: 8 val scenes), and per
image the pixel count of each predicted class, so that a difference can be located and sized.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import numpy as np

from tests.conftest import ROOT

RECORD = Path(__file__).resolve().parent / "shipped_label_maps.json"
IMAGES = {"camvid": 24, "synthstreets": 8, "crops:camvid": 48, "crops:synthstreets": 48}


def _imports():
    try:  # the layout after the house-by-concern move
        from core.data.registry import sample_split
        from core.inference import Predictor
        from core.runs import discover_runs
    except ImportError:  # pragma: no cover  (the layout before it)
        from core.data.registry import sample_split
        from core.inference import Predictor
        from core.runs import discover_runs
    return Predictor, discover_runs, sample_split


def label_maps(workers: int = 1) -> dict[str, dict]:
    """{run name: {"epoch", "split", "images", "sha256", "counts"}} for every run under checkpoints/; the runs
    are shared among ``workers`` processes of one torch thread each (what each predicts does not change)."""
    _, discover_runs, _ = _imports()
    runs, problems = discover_runs(ROOT / "checkpoints")
    assert not problems, problems
    names = [run.path.relative_to(ROOT / "checkpoints").as_posix() for run in runs]
    if workers <= 1:
        return dict(zip(names, map(_one, names)))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(zip(names, pool.map(_one, names)))


def _one(name: str) -> dict:
    """One run's record (best epoch, the first images of its shipped split), on one torch thread."""
    import torch

    torch.set_num_threads(1)
    Predictor, _, sample_split = _imports()
    from core.runs import load_run

    run = load_run(ROOT / "checkpoints" / name)
    dataset = run.data["name"]
    split = sample_split(dataset) or run.data["val_split"]
    ds = run.open_dataset(split, str(ROOT / "no-such-root"))
    n = min(IMAGES[dataset], len(ds))
    predictor = Predictor(run, "best", device="cpu")
    preds = predictor.predict([ds.load(i)[0] for i in range(n)])
    labels = [np.asarray(p.labels if hasattr(p, "labels") else p.probs.argmax(), dtype=np.uint8) for p in preds]
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(m).tobytes() for m in labels)).hexdigest()
    counts = [np.bincount(m.ravel(), minlength=run.num_classes).tolist() for m in labels]
    return {"epoch": predictor.epoch, "split": split, "images": n, "sha256": digest, "counts": counts}


def machine() -> str:
    """The CPU model: float kernels (oneDNN, per instruction set) may break an argmax tie differently elsewhere."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        name = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags"))
        wide = sorted(f for f in flags if f.startswith(("avx512", "amx")))
        return f"{name} ({' '.join(wide) or 'no avx512'})"
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    record = {"machine": machine(), "runs": label_maps()}
    RECORD.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {RECORD}: {len(record['runs'])} runs")


if __name__ == "__main__":
    main()
