"""Make finished runs small enough to ship or share: ``python -m core.runs.ship RUN_DIR [RUN_DIR ...]``.

Each run loses its resume state and its ``last`` weights when the final epoch has a snapshot
(``core.runs.strip_for_sharing``), its derived caches (embedding maps, evaluation measures), and its
snapshots are stored as float16 safetensors; the ``Predictor`` loads them back into the float32 model.
The run still loads at every saved epoch; it can no longer be resumed. ``--keep-epochs 1,8,best,last`` also
deletes every other snapshot (the best is always kept: it is what the run is ranked by). An ONNX run's graph
(``weights/model.onnx``) is kept as it is: its snapshots hold no tensors, and halving a graph is a conversion
of its own (onnxconverter-common), not done here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Sequence

import torch
from safetensors import safe_open

from core.runs.run import RunError, load_run, snapshot_path
from core.runs.store import finished_run, save_weights, strip_for_sharing

CACHES = ("embeddings", "evaluation")


def to_half(path: Path) -> None:
    """Rewrite one safetensors file with its floating-point tensors as float16 (metadata kept, atomically); one
    already in float16 is left as it is (byte for byte: a shipped run shipped again changes no file)."""
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if all(v.dtype == torch.float16 for v in tensors.values() if v.is_floating_point()):
        return
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in tensors.items()}
    save_weights(path, half, {k: json.loads(v) for k, v in meta.items()})


def keep_only(path: Path, epochs: Sequence[int | str]) -> list[int]:
    """Delete the snapshots of a finished run other than ``epochs`` (numbers, ``best``, ``last``) and its best, and
    its ``last`` weights unless kept; returns the epochs deleted. An epoch with no snapshot is an error, before
    anything is deleted."""
    run = finished_run(path)
    keep = {run.resolve_epoch(e) for e in epochs} | {run.resolve_epoch("best")}
    dropped = [e for e in run.epochs if e not in keep]
    for e in dropped:
        snapshot_path(path, e).unlink()
    last, last_epoch = path / "weights" / "last.safetensors", run.last_epoch
    if last.exists() and last_epoch not in keep:
        last.unlink()
        dropped += [] if last_epoch in dropped else [last_epoch]
    return dropped


def ship(path: str | Path, keep_epochs: Sequence[int | str] | None = None) -> tuple[int, int]:
    """Strip and halve one run in place (keeping only ``keep_epochs`` and the best when given); returns its size
    in bytes before and after."""
    path = Path(path)
    before = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    if keep_epochs is not None:
        keep_only(path, keep_epochs)
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
    ap.add_argument("--keep-epochs", type=_epochs, metavar="E1,E2,...", help="keep only these snapshots and the best")
    args = ap.parse_args(argv)
    failed = 0
    for p in args.runs:
        try:
            before, after = ship(p, args.keep_epochs)
        except RunError as e:  # not a run, or one that cannot be loaded: say so and go on with the others
            print(f"{p}: not shipped: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{p}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")
    return 1 if failed else 0


def _epochs(text: str) -> list[int | str]:
    out: list[int | str] = []
    for part in filter(None, (t.strip() for t in text.split(","))):
        if part in ("best", "last"):
            out.append(part)
        elif part.isdigit() and int(part) > 0:
            out.append(int(part))
        else:
            raise argparse.ArgumentTypeError(f"{part!r} is not an epoch: give numbers, best or last, e.g. 1,8,best,last")
    if not out:
        raise argparse.ArgumentTypeError("no epoch given: e.g. 1,8,best,last")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
