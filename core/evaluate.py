"""Evaluate runs offline, on one machine or sharded with ``torchrun``: ``python -m core.evaluate --help``.

    python -m core.evaluate --runs checkpoints --run camvid/pspnet --split val --epochs best,last
    torchrun --nproc_per_node=4 -m core.evaluate --runs runs/ --run-name camvid/pspnet --split val --epochs all

One pass per (run, epoch, split) computes everything the app shows for that split (``core.inference.passes``):
every registered measure (the confusion matrix, per-image scores, boundary IoU, calibration, segments by size,
and any measure registered by a plugin), the predicted label maps, and a feature sample for the embedding map.
Results go to the run's ``evaluation/`` folder, keyed by content (``core.runs.results``): a folder evaluated on
a cluster and copied home is read as it is, and the app never computes them again.

Sharding: the split is cut into chunks of ``--chunk`` images and rank r evaluates chunks r, r + N, ...: no
image is evaluated twice (no sampler padding), each state is reduced as its measure declares when rank 0
merges the chunk files, and a CPU's threads are divided between the ranks. On CUDA the forward runs batched
in float16 autocast (``--amp``). A killed pass loses at most the chunks in progress: a rerun continues.
A run that fails is reported and the others go on.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from core.evaluation.measures import MEASURES, Measure, measures_for
from core.inference import Predictor
from core.inference.passes import SampleSpec, Span, evaluate_chunks, merge_chunks
from core.runs import Run, RunError, discover_runs
from core.runs.results import ResultStore, content_hash, origin, result_key
from core.utils.device import DistInfo, barrier, cleanup_distributed, init_distributed, pick_device, set_threads

CHUNK = 32  # images per chunk file: what a kill can lose, and the unit of sharding
Progress = Callable[[float, str], None]


@dataclass
class Target:
    """One (run, epoch, split) to evaluate, and where its result lives."""

    run: Run
    epoch: int
    split: str
    data_root: str | None = None
    max_images: int | None = None
    _dataset: Any = field(default=None, repr=False)

    @property
    def dataset(self):
        if self._dataset is None:
            self._dataset = self.run.open_dataset(self.split, self.data_root)
        return self._dataset

    @property
    def size(self) -> int:
        n = len(self.dataset)
        return n if self.max_images is None else min(n, self.max_images)

    def settings(self) -> dict[str, Any]:
        """What changes the predictions besides the weights: the run's test-time augmentation, the images used."""
        train = self.run.config.get("train", {})
        return {
            "tta_flip": bool(train.get("tta_flip", False)),
            "tta_scales": train.get("tta_scales") or None,
            "max_images": self.max_images,
            "sample": SampleSpec().key(),
        }

    def store(self) -> ResultStore:
        options = self.run.data.get("options", {})
        key = result_key(
            content_hash(self.run.weights_path(self.epoch)),
            self.run.data["name"],
            options,
            self.split,
            self.dataset.fingerprint(),
            self.settings(),
        )
        return ResultStore(self.run.path, key)


def chunks_of(n: int, chunk: int = CHUNK) -> list[tuple[int, int]]:
    return [(s, min(s + chunk, n)) for s in range(0, n, chunk)]


def missing_measures(store: ResultStore, measures: Sequence[Measure]) -> list[Measure]:
    return [m for m in measures if not store.has(m.name)]


def evaluate_target(
    target: Target,
    *,
    measures: Sequence[Measure] | None = None,
    chunk: int = CHUNK,
    dist: DistInfo = DistInfo(),
    predictor: Any = None,
    progress: Progress | None = None,
    amp: bool = True,
) -> ResultStore:
    """Compute what ``target``'s stored result lacks (every applicable measure by default), this rank's share of
    the chunks, then (rank 0) merge them into the result. A complete result is returned untouched."""
    measures = measures_for(target.run.task) if measures is None else [m for m in measures if m.applies(target.run.task)]
    store = target.store()
    if dist.world_size == 1 and not missing_measures(store, measures):  # (ranks decide together, under the lock)
        return store
    waiting = None if progress is None else (lambda: progress(0.0, "waiting for another evaluation of this result"))
    with store.exclusive(waiting) if dist.is_main else contextlib.nullcontext():  # one job at a time on a result
        barrier()  # the other ranks start once rank 0 holds the lock
        todo = missing_measures(store, measures)  # what the job that held it may have computed meanwhile
        if todo:
            _compute(target, store, todo, chunk, dist, predictor, progress, amp)
    return store


def _compute(
    target: Target,
    store: ResultStore,
    todo: list[Measure],
    chunk: int,
    dist: DistInfo,
    predictor: Any,
    progress: Progress | None,
    amp: bool,
) -> None:
    """This rank's chunks of ``target`` that are not written yet, then (rank 0) the merged result."""
    plan = chunks_of(target.size, chunk)
    done = set(store.done_chunks())
    mine = [
        Span(s, e, list(range(s, e))) for j, (s, e) in enumerate(plan) if j % dist.world_size == dist.rank and (s, e) not in done
    ]
    if mine:
        predictor = predictor or Predictor(target.run, target.epoch, device=pick_device())
        with _autocast(predictor, amp):  # one pipeline over this rank's chunks; each is written as soon as it is done
            evaluate_chunks(predictor, target.dataset, mine, todo, store.write_chunk, progress=progress)
    barrier()
    if dist.is_main:
        _finish(target, store, todo, plan, dist)
    barrier()


def _autocast(predictor: Any, amp: bool):
    device = getattr(predictor, "device", torch.device("cpu"))
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _finish(target: Target, store: ResultStore, measures: Sequence[Measure], plan: list[tuple[int, int]], dist: DistInfo) -> None:
    chunks = [store.read_chunk(s, e) for s, e in plan]
    merged = merge_chunks(chunks, measures, target.run.num_classes, target.run.task.dense, SampleSpec())
    meta = {
        "run": target.run.name,
        "epoch": target.epoch,
        "dataset": target.run.data["name"],
        "split": target.split,
        "images": target.size,
        "processes": dist.world_size,
        **origin(),
    }
    store.finish(merged, list(measures), meta)


def result(target: Target, measure: str) -> dict[str, Any]:
    """The finished result of one measure for ``target`` (computed before: see ``evaluate_target``)."""
    store = target.store()
    if not store.has(measure):
        raise RunError(f"run {target.run.name} @ {target.epoch} has no {measure} result on {target.split}; evaluate it first")
    _, parts, _ = store.measure_states(measure)
    return MEASURES.get(measure).finish(parts, target.run.classes, target.run.task)


# --- the command line ------------------------------------------------------------------------------------------
def epochs_of(run: Run, spec: str) -> list[int]:
    """``best,last``, ``all`` or numbers (``3,8``) -> the run's saved epochs they name."""
    if spec == "all":
        return list(run.epochs)
    out = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        e = run.resolve_epoch(part if part in ("best", "last") else int(part))
        if e not in out:
            out.append(e)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--runs", required=True, help="folder searched for run directories")
    p.add_argument(
        "--run",
        "--run-name",
        dest="run",
        action="append",
        default=None,
        help="a run's name under --runs (repeatable; default: all). Under torchrun write --run-name: torchrun takes --run "
        "for its own --run-path",
    )
    p.add_argument("--split", default=None, help="the split to evaluate (default: each run's validation split)")
    p.add_argument("--epochs", default="best", help="best, last, all, or numbers such as 3,8")
    p.add_argument("--measures", default=None, help=f"comma-separated (default: all): {', '.join(MEASURES.names())}")
    p.add_argument("--max-images", type=int, default=None, help="only the first N images of the split")
    p.add_argument("--data-root", default=None, help="dataset root overriding the one recorded in the runs")
    p.add_argument("--chunk", type=int, default=CHUNK, help="images per chunk (the unit of sharding and resuming)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per process (default: cores / processes); a CPU pass runs one stream of batches per thread, "
        "at most 4, each holding a batch in memory",
    )
    p.add_argument("--no-amp", action="store_true", help="no float16 autocast on CUDA")
    p.add_argument("--plugins", action="append", default=[], metavar="MODULE", help="import first (models, datasets, measures)")
    return p


def targets_of(args: argparse.Namespace) -> list[Target]:
    runs, problems = discover_runs(args.runs)
    by_name = {r.path.relative_to(Path(args.runs)).as_posix() or r.name: r for r in runs}
    names = args.run or list(by_name)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"no usable run {', '.join(unknown)} under {args.runs}; runs: {', '.join(by_name) or 'none'}")
    out = []
    for n in names:
        run = by_name[n]
        for e in epochs_of(run, args.epochs):
            out.append(Target(run, e, args.split or run.data["val_split"], args.data_root, args.max_images))
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from core.train.import_run import load_plugins

    dist = init_distributed(pick_device())
    set_threads(args.threads, dist.world_size)
    try:
        load_plugins(args.plugins)
        measures = None if args.measures is None else [MEASURES.get(m) for m in args.measures.split(",")]
        return _evaluate_all(targets_of(args), measures, args.chunk, dist, amp=not args.no_amp)
    except (ValueError, KeyError, RunError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        cleanup_distributed()


def _evaluate_all(targets: list[Target], measures, chunk: int, dist: DistInfo, *, amp: bool) -> int:
    failed = 0
    for t in targets:
        label = f"{t.run.name} @ {t.epoch} on {t.split}"
        bar = tqdm(total=100, desc=label, disable=not dist.is_main, unit="%", leave=True)
        step = lambda f, m: bar.update(round(100 * f) - bar.n)  # noqa: E731  (rank 0 shows its share's progress)
        start = time.perf_counter()
        try:
            store = evaluate_target(t, measures=measures, chunk=chunk, dist=dist, progress=step, amp=amp)
        except Exception as e:  # noqa: BLE001  (one failing run is reported; the others go on)
            bar.close()
            print(f"{label}: failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            failed += 1
            continue
        bar.close()
        if dist.is_main:
            meta = store.meta() or {}
            print(
                f"{label}: {meta.get('images')} images, {', '.join(meta.get('measures', []))} "
                f"in {time.perf_counter() - start:.1f} s -> {store.folder}",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
