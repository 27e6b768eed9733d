"""Make finished runs small enough to ship or share: ``python -m core.runs.ship RUN_DIR [RUN_DIR ...]``.

Each run loses its resume state and its ``last`` weights when the final epoch has a snapshot
(``core.runs.strip_for_sharing``), its derived caches (embedding maps, evaluation measures), and its
snapshots are stored as float16 safetensors; the ``Predictor`` loads them back into the float32 model.
The run still loads at every saved epoch; it can no longer be resumed. An ONNX run's graph
(``weights/model.onnx``) is kept as it is: its snapshots hold no tensors, and halving a graph is a conversion
of its own (onnxconverter-common), not done here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from safetensors import safe_open

from core.runs.run import RunError, load_run
from core.runs.store import save_weights, strip_for_sharing

CACHES = ("embeddings", "evaluation")


def to_half(path: Path) -> None:
    """Rewrite one safetensors file with its floating-point tensors as float16 (metadata kept, atomically)."""
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in tensors.items()}
    save_weights(path, half, {k: json.loads(v) for k, v in meta.items()})


def ship(path: str | Path) -> tuple[int, int]:
    """Strip and halve one run in place; returns its size in bytes before and after."""
    path = Path(path)
    before = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    strip_for_sharing(path)
    for name in CACHES:
        shutil.rmtree(path / name, ignore_errors=True)
    for weights in sorted((path / "weights").glob("*.safetensors")):
        to_half(weights)
    load_run(path).build_model("best")  # still loads
    return before, sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.runs.ship", description=__doc__.split("\n\n")[1].replace("\n", " "))
    ap.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="a finished run directory")
    args = ap.parse_args(argv)
    failed = 0
    for p in args.runs:
        try:
            before, after = ship(p)
        except RunError as e:  # not a run, or one that cannot be loaded: say so and go on with the others
            print(f"{p}: not shipped: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{p}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
