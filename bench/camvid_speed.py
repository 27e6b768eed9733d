"""Training speed of a CamVid recipe: turns the 60-minute budget into an epoch count.

Times ``--steps`` training steps (after ``--warmup`` untimed ones) of a recipe with any ``bench/camvid.py``
override, through the engine's own training loop: the recipe's transform (at ``--stage-factor`` times its size),
loss, weight EMA, autocast and memory format, at the recipe's batch size (8) on ``--threads`` (2) threads, with
the loader in the training process as ``bench/camvid.py`` runs it. The images are CamVid-sized synthstreets
scenes rendered at the recipe's ``--size`` and held in memory, as ``--cache`` holds CamVid: nothing to download.

The conversion. The 60-minute budget is the time of the reference, ``resunet60``'s 73 epochs of the 266-image
0006R0 fold on this machine. Both recipes are timed here, back to back, so::

    budget_s = 73 * 266 / reference_images_per_s
    epochs   = budget_s * candidate_images_per_s / fold_size

Only training steps are timed: validation (every 5 epochs in every recipe, at the same size) and caching take
the same few minutes of either run, and the cost of a test-time augmentation is measured when scoring
(``bench/camvid.py --run RUN --tta-scales ...``). Run it on an idle machine: a busy one slows both timings, but
not always equally. Examples::

    python bench/camvid_speed.py --recipe resunet60 --arch cgnet                  # another architecture
    python bench/camvid_speed.py --recipe resunet60 --stage-factor 0.5            # one stage of progressive resizing
    python bench/camvid_speed.py --recipe resunet60 --resize-stages 0.5x50,1x15   # a staged schedule against the budget
    python bench/camvid_speed.py --recipe resunet60 --loss ohem --fold-size 305   # the 0001TP fold (305 images)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils.data import DataLoader, RandomSampler  # noqa: E402

from bench.camvid import RECIPES, add_recipe_arguments, recipe_fields  # noqa: E402
from core.data import get_dataset  # noqa: E402
from core.data.cache import InMemory  # noqa: E402
from core.models import get_model, model_args  # noqa: E402
from core.tasks import SegmentationTask  # noqa: E402
from core.train.config import TrainConfig, parse_resize_stages  # noqa: E402
from core.train.engine import train_one_epoch  # noqa: E402
from core.train.optim import build_optimizer, ema_model  # noqa: E402
from core.train.setup import check_options, class_statistics, train_transform  # noqa: E402
from core.utils.device import channels_last_trains_safely  # noqa: E402

REFERENCE = "resunet60"  # the recipe whose 73 epochs of the 266-image 0006R0 fold define 60 minutes
REFERENCE_EPOCHS, REFERENCE_FOLD = 73, 266


def images_per_second(
    fields: dict, *, factor: float = 1.0, steps: int = 10, warmup: int = 2, images: int = 16, seed: int = 0
) -> float:
    """Training images per second of the recipe ``fields`` (TrainConfig fields) at ``factor`` times its size."""
    cfg = TrainConfig(**{**fields, "dataset": "synthstreets", "epochs": 1, "workers": 0, "progress": False})
    check_options(cfg, SegmentationTask)
    torch.manual_seed(seed)
    ds = InMemory(get_dataset("synthstreets", "train", num_images=images, size=cfg.size, seed=seed), None, progress=False)
    weights, rare = class_statistics(cfg, ds, progress=False)
    ds.transform = train_transform(cfg, SegmentationTask, ds, factor=factor, rare_classes=rare)
    model = get_model(cfg.arch, **model_args(cfg.arch, num_classes=ds.num_classes, **cfg.model_args))
    device = torch.device("cpu")
    memory_format = (
        torch.channels_last if cfg.channels_last and channels_last_trains_safely(model, device) else torch.contiguous_format
    )
    model.to(memory_format=memory_format)
    task = SegmentationTask(
        ds.num_classes,
        ds.ignore_index,
        None if weights is None else torch.tensor(weights, dtype=torch.float32),
        cfg.aux_weight,
        label_smoothing=cfg.label_smoothing,
        loss=cfg.loss,
        lovasz_per_image=cfg.lovasz_per_image,
        ohem_thresh=cfg.ohem_thresh,
        ohem_min_kept=cfg.ohem_min_kept,
    )
    optimizer = build_optimizer(
        model.parameters(), cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)  # the schedule does not change the speed
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    ema = ema_model(model, cfg.ema) if cfg.ema > 0 else None

    def run(n: int) -> float:
        loader = DataLoader(
            ds, batch_size=cfg.batch_size, sampler=RandomSampler(ds, num_samples=n * cfg.batch_size), drop_last=True
        )
        start = time.perf_counter()
        kw = dict(amp=cfg.amp, progress=False, memory_format=memory_format, ema=ema)
        train_one_epoch(model, loader, task, optimizer, scheduler, scaler, device, **kw)
        return time.perf_counter() - start

    if warmup > 0:
        run(warmup)
    return steps * cfg.batch_size / run(steps)


def equivalent_epochs(candidate_ips: float, reference_ips: float, fold_size: int) -> float:
    """Epochs of ``fold_size`` images the candidate trains in the reference's 73 epochs of 266 images."""
    budget_s = REFERENCE_EPOCHS * REFERENCE_FOLD / reference_ips
    return budget_s * candidate_ips / fold_size


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_recipe_arguments(p)
    s = p.add_argument_group("timing")
    s.add_argument("--steps", type=int, default=10, help="timed training steps of each measurement")
    s.add_argument("--warmup", type=int, default=2, help="untimed steps first (allocator, oneDNN kernels)")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--images", type=int, default=16, help="synthetic CamVid-sized images drawn from")
    s.add_argument("--stage-factor", type=float, default=1.0, help="time the candidate at this factor of its size")
    s.add_argument("--fold-size", type=int, default=REFERENCE_FOLD, help="training images of the fold to convert for")
    s.add_argument("--reference-ips", type=float, default=None, help=f"{REFERENCE}'s images/s, if known (else it is timed too)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    fields = recipe_fields(args)
    stages = parse_resize_stages(fields.pop("resize_stages")) if fields.get("resize_stages") else []
    if stages and args.stage_factor != 1.0:
        raise SystemExit("give --stage-factor or --resize-stages, not both: --resize-stages times each of its stages")
    timing = dict(steps=args.steps, warmup=args.warmup, images=args.images)
    reference = args.reference_ips or images_per_second(dict(RECIPES[REFERENCE]), **timing)
    budget_min = REFERENCE_EPOCHS * REFERENCE_FOLD / reference / 60
    print(f"reference {REFERENCE}: {reference:.2f} images/s; its {REFERENCE_EPOCHS} epochs of {REFERENCE_FOLD} images")
    print(f"  = the budget: {budget_min:.1f} min of training steps on this machine")
    factors = sorted({f for f, _ in stages}) if stages else [args.stage_factor]
    speed = {f: images_per_second(fields, factor=f, **timing) for f in factors}
    for f, ips in speed.items():
        epochs = equivalent_epochs(ips, reference, args.fold_size)
        print(f"candidate at {f:g}x its size: {ips:.2f} images/s ({ips / reference:.2f}x the reference)")
        print(f"  = {epochs:.1f} epochs of a {args.fold_size}-image fold in the budget (train --epochs {int(epochs)})")
    if stages:
        minutes = sum(n * args.fold_size / speed[f] for f, n in stages) / 60
        spec = ",".join(f"{f:g}x{n}" for f, n in stages)
        filled = ",".join(f"{f:g}x{max(1, round(n * budget_min / minutes))}" for f, n in stages)
        print(f"--resize-stages {spec}: {minutes:.1f} min of training steps, {minutes / budget_min:.0%} of the budget")
        print(f"  stretched to fill it: --resize-stages {filled}")


if __name__ == "__main__":
    main()
