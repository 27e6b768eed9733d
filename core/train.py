"""Training engine: ``python -m core.train --help``.

Single process: ``python -m core.train --arch unet --model-arg base_width=16 --epochs 40``.
Several processes (DistributedDataParallel, gloo on CPU, nccl on GPU):
``torchrun --nproc_per_node=2 -m core.train ...``.
"""

from __future__ import annotations

import math
import platform
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

import core
from core import runs
from core.data import dataset_task, get_dataset, list_datasets
from core.data.base import VisionDataset
from core.data.cache import InMemory
from core.data.transforms import AugmentConfig, classification_train_transforms, eval_transforms, train_transforms
from core.device import (
    DistInfo, barrier, broadcast_object, channels_last_trains_safely, cleanup_distributed, init_distributed, pick_device,
    set_threads,
)
from core.engine import Timer, collate_allow_ragged, evaluate, train_one_epoch
from core.models import count_parameters, get_model, list_models, model_args, model_task
from core.optim import build_optimizer, class_pixel_counts, class_weights, init_weights, schedule_factor
from core.tasks import TASKS
from core.train_config import TrainConfig, build_parser, config_from_args, default_workers, snapshot_rule

EpochCallback = Callable[[int, nn.Module], None]


def resolve_task(cfg: TrainConfig) -> str:
    arch_task, data_task = model_task(cfg.arch), dataset_task(cfg.dataset)
    if arch_task != data_task:
        raise ValueError(f"architecture {cfg.arch!r} is a {arch_task} model but dataset {cfg.dataset!r} is for {data_task}")
    if cfg.task is not None and cfg.task != arch_task:
        raise ValueError(f"--task {cfg.task} does not match architecture {cfg.arch!r} ({arch_task})")
    return arch_task


def build_datasets(cfg: TrainConfig, task: str) -> tuple[VisionDataset, VisionDataset]:
    """Training and validation sets with their transforms (cached in memory with ``cache``)."""
    options = dict(cfg.data_options)
    train_base = get_dataset(cfg.dataset, cfg.train_split, cfg.data_root, **options)
    val_base = get_dataset(cfg.dataset, cfg.val_split, cfg.data_root, **options)
    mean, std = train_base.mean, train_base.std
    augment = AugmentConfig(hflip=cfg.hflip, scale=cfg.scale, crop=cfg.crop, rotation=cfg.rotation, color_jitter=cfg.color_jitter)
    if task == "segmentation":
        train_tf = train_transforms(size=cfg.size, augment=augment, mean=mean, std=std, ignore_index=train_base.ignore_index)
        val_tf = eval_transforms(size=cfg.size, mean=mean, std=std, image_only=cfg.eval_native)
    else:
        if cfg.size is None:
            raise ValueError("classification needs --size")
        train_tf = classification_train_transforms(size=cfg.size, augment=augment, mean=mean, std=std)
        val_tf = eval_transforms(size=cfg.size, mean=mean, std=std)
    if cfg.train_limit:
        train_base = _limit(train_base, cfg.train_limit)
    if cfg.val_limit:
        val_base = _limit(val_base, cfg.val_limit)
    if cfg.cache:
        train_base = InMemory(train_base, cfg.size, progress=cfg.progress)
        val_base = InMemory(val_base, cfg.size, resize_masks=not cfg.eval_native, progress=cfg.progress)
    train_base.transform, val_base.transform = train_tf, val_tf
    return train_base, val_base


class _Limited(VisionDataset):
    """The first ``n`` items of a dataset, keeping its description."""

    def __init__(self, base: VisionDataset, n: int) -> None:
        super().__init__(base.transform)
        self.base, self.n = base, min(n, len(base))
        for attr in ("task", "classes", "palette", "ignore_index", "mean", "std"):
            setattr(self, attr, getattr(base, attr))

    def __len__(self) -> int:
        return self.n

    def load(self, index: int):
        return self.base.load(index)

    def item_id(self, index: int) -> str:
        return self.base.item_id(index)


def _limit(ds: VisionDataset, n: int) -> VisionDataset:
    return _Limited(ds, n)


def compute_class_weights(ds: VisionDataset, scheme: str, progress: bool, power: float = 1.0) -> list[float] | None:
    if scheme == "none" or ds.task != "segmentation":
        return None
    from tqdm.auto import tqdm

    masks = (ds.load(i)[1] for i in tqdm(range(len(ds)), desc="class frequencies", leave=False, disable=not progress))
    counts, image_pixels = class_pixel_counts(masks, ds.num_classes)
    return class_weights(counts, image_pixels, scheme, power).tolist()


def run_config(cfg: TrainConfig, task: str, train_ds: VisionDataset, model: nn.Module, args: dict[str, Any], weights) -> dict:
    return {
        "task": task,
        "model": {"name": cfg.arch, "args": args, "num_params": count_parameters(model)},
        "data": {
            "name": cfg.dataset,
            "options": cfg.data_options,
            "root": cfg.data_root,
            "train_split": cfg.train_split,
            "val_split": cfg.val_split,
            **train_ds.info(),
            "input_size": list(cfg.size) if cfg.size else None,
            "eval_native": cfg.eval_native,
        },
        "train": {**cfg.to_dict(), "class_weights": weights},
        "versions": {
            "vision_explorer": core.__version__,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "python": platform.python_version(),
        },
        "created": datetime.now().isoformat(timespec="seconds"),
    }


def default_out(cfg: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.arch}-{cfg.dataset.replace(':', '_')}-{stamp}"


def summary_line(epoch: int, epochs: int, rec: dict[str, Any], task: str) -> str:
    """``epoch 3/50 loss 0.81 val_loss 0.77 pixel_acc 0.80 mIoU 0.41 fwIoU 0.68 12.3s``"""
    shown = {"segmentation": [("pixel_acc", "pixel_acc"), ("miou", "mIoU"), ("fwiou", "fwIoU")],
             "classification": [("top1", "top1"), ("top5", "top5")]}[task]  # fmt: skip
    parts = [("train_loss", "loss"), ("val_loss", "val_loss"), *shown] if "val_loss" in rec else [("train_loss", "loss")]
    text = " ".join(f"{label} {rec[key]:.2f}" if rec.get(key) is not None else f"{label} nan" for key, label in parts)
    return f"epoch {epoch}/{epochs} {text} {rec['epoch_time']:.1f}s"


def train(cfg: TrainConfig, *, resume: str | Path | None = None, on_epoch_end: EpochCallback | None = None) -> Path:
    """Train and write a run directory; returns its path. ``resume`` continues an interrupted run."""
    if resume is not None:
        stored = runs.load_run(resume).config["train"]
        stored.pop("class_weights", None)
        machine = {k: getattr(cfg, k) for k in ("device", "workers", "threads", "progress")}
        cfg = TrainConfig.from_dict({**stored, **machine, "out": str(resume)})
    dist = init_distributed(pick_device(cfg.device))
    device = pick_device(cfg.device, dist.local_rank)
    set_threads(cfg.threads, dist.world_size)
    try:
        return _train(cfg, dist, device, resume is not None, on_epoch_end)
    finally:
        cleanup_distributed()


def _train(cfg: TrainConfig, dist: DistInfo, device: torch.device, resuming: bool, on_epoch_end: EpochCallback | None) -> Path:
    clock = Timer()
    task_name = resolve_task(cfg)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    np.random.seed(cfg.seed)
    train_ds, val_ds = build_datasets(cfg, task_name)
    out = Path(cfg.out) if cfg.out else default_out(cfg)
    out = Path(broadcast_object(str(out)))

    args = model_args(cfg.arch, num_classes=train_ds.num_classes, **cfg.model_args)
    model = get_model(cfg.arch, **args)
    init_weights(model, cfg.init)
    if resuming:
        weights = runs.load_run(out).config["train"].get("class_weights")
    else:
        weights = compute_class_weights(train_ds, cfg.class_weighting, cfg.progress and dist.is_main, cfg.class_weight_power)
    task = TASKS[task_name](
        train_ds.num_classes,
        train_ds.ignore_index,
        torch.tensor(weights, dtype=torch.float32) if weights else None,
        cfg.aux_weight,
    )

    # data
    workers = default_workers() if cfg.workers is None else cfg.workers
    train_sampler = DistributedSampler(train_ds, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=cfg.seed)
    drop_last = len(train_ds) // dist.world_size > cfg.batch_size  # BatchNorm cannot train on a batch of 1
    loader_kw = dict(num_workers=workers, persistent_workers=workers > 0, pin_memory=device.type == "cuda")
    train_loader = DataLoader(train_ds, batch_size=cfg.batch_size, sampler=train_sampler, drop_last=drop_last, **loader_kw)
    # Validation: every rank scores a disjoint share, no padding, so the summed matrix counts each item once.
    val_share = Subset(val_ds, range(dist.rank, len(val_ds), dist.world_size))
    val_loader = DataLoader(val_share, batch_size=cfg.batch_size, shuffle=False, collate_fn=collate_allow_ragged, **loader_kw)

    # optimisation
    optimizer = build_optimizer(model.parameters(), cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)
    steps_per_epoch = max(1, len(train_loader))
    total_steps = cfg.epochs * steps_per_epoch
    budget_s = cfg.budget_min * 60 if cfg.budget_min else None
    elapsed_before = 0.0  # training time of earlier sessions of this run (resume)

    def progress_fraction(step: int) -> float:
        if budget_s is not None:  # run the schedule on the clock so it ends when the budget does
            return max(step / total_steps, (elapsed_before + clock()) / budget_s)
        return step / total_steps

    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: schedule_factor(cfg.schedule, progress_fraction(step), warmup=cfg.warmup, step_every=cfg.step_every, gamma=cfg.gamma),
    )
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda" and cfg.amp == "auto")

    # run directory
    start_epoch, best_value, bad_epochs = 1, -math.inf, 0
    if resuming:
        state = runs.load_state(out)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch = int(state["epoch"]) + 1
        best_value, bad_epochs = float(state["best_value"]), int(state["bad_epochs"])
        elapsed_before = float(state["train_time"])
        if dist.is_main:
            from core.io import remove_stray_temporaries

            remove_stray_temporaries(out)
            runs.prune_after(out, int(state["epoch"]))
            runs.save_weights(out / "weights" / "last.safetensors", state["model"], {"epoch": state["epoch"]})
            runs.update_status(out, state="running")
            print(f"resuming {out} from epoch {start_epoch}", flush=True)
    elif dist.is_main:
        runs.create_run(out, run_config(cfg, task_name, train_ds, model, args, weights))
    barrier()
    history = runs.read_history(out)

    # channels-last lets oneDNN (CPU) and cuDNN (GPU) skip layout reorders: ~20% faster conv nets on this CPU
    channels_last = cfg.channels_last and channels_last_trains_safely(model, device)
    if cfg.channels_last and not channels_last and dist.is_main:
        print("channels-last off: this model has a narrow 1x1 stride-2 convolution whose CPU backward crashes in channels-last", flush=True)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    net: nn.Module = model
    if dist.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    keep = snapshot_rule(cfg)
    status = "finished"
    if start_epoch > cfg.epochs:
        status = runs.load_run(out).status.get("state", "finished")

    eval_seconds = 0.0  # duration of the last evaluation, to foresee whether another epoch fits the budget
    for epoch in range(start_epoch, cfg.epochs + 1):
        epoch_clock = Timer()
        train_sampler.set_epoch(epoch)
        stats = train_one_epoch(
            net, train_loader, task, optimizer, scheduler, scaler, device, amp=cfg.amp,
            progress=cfg.progress and dist.is_main, desc=f"epoch {epoch}/{cfg.epochs}", memory_format=memory_format,
        )  # fmt: skip
        train_seconds = epoch_clock()
        # Under a time budget, stop when another epoch would not fit; that epoch is then the last.
        elapsed = elapsed_before + clock()
        out_of_time = budget_s is not None and epoch < cfg.epochs and elapsed + train_seconds + eval_seconds > budget_s
        evaluated = epoch % cfg.val_every == 0 or epoch == cfg.epochs or out_of_time
        metrics: dict[str, Any] = {}
        improved = False
        if evaluated:
            eval_clock = Timer()
            metrics = evaluate(model, val_loader, task, device, amp=cfg.amp, progress=cfg.progress and dist.is_main,
                               memory_format=memory_format)  # fmt: skip
            eval_seconds = eval_clock()
            value = metrics[task.monitor]
            improved = value is not None and not math.isnan(value) and value > best_value
            if improved:
                best_value, bad_epochs = value, 0
            else:
                bad_epochs += 1
        epoch_time = epoch_clock()
        elapsed = elapsed_before + clock()
        stop = "budget" if out_of_time else None
        if evaluated and cfg.patience is not None and bad_epochs >= cfg.patience:
            stop = "early_stopped"
        final = epoch == cfg.epochs or stop is not None
        record = {
            "epoch": epoch,
            **stats,
            **metrics,
            "lr": optimizer.param_groups[0]["lr"],
            "epoch_time": epoch_time,
            "train_time": elapsed,
            "images_per_s": stats["train_images"] / max(train_seconds, 1e-9),
        }
        if dist.is_main:
            _commit_epoch(out, model, record, history, keep(epoch, final) or improved, task.monitor,
                          {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                           "best_value": best_value, "bad_epochs": bad_epochs, "train_time": elapsed}, keep)  # fmt: skip
            print(summary_line(epoch, cfg.epochs, record, task_name), flush=True)
            if on_epoch_end is not None:
                on_epoch_end(epoch, model)
        elif dist.enabled:  # every rank reports what it computed, so a mismatch would show
            print(f"rank {dist.rank}: " + summary_line(epoch, cfg.epochs, record, task_name), flush=True)
        barrier()
        if stop:
            status = stop
            if dist.is_main:
                print(f"stopping after epoch {epoch}: " + ("no improvement" if stop == "early_stopped" else "time budget"), flush=True)
            break
    if dist.is_main:
        done = runs.load_run(out)
        runs.update_status(out, state=status, stopped_epoch=history[-1]["epoch"] if history else None,
                           best_epoch=done.best_epoch, train_time=history[-1]["train_time"] if history else 0.0)  # fmt: skip
    barrier()
    return out


def _commit_epoch(out: Path, model: nn.Module, record: dict, history: list, snapshot: bool, monitor: str, train_state: dict, keep) -> None:
    """Write one epoch: snapshot, history, then the resume state (the commit point), then ``last``."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    epoch = record["epoch"]
    previous_best = runs.best_record(history, monitor)
    if snapshot:
        runs.save_weights(runs.snapshot_path(out, epoch), state, {"epoch": epoch, monitor: record.get(monitor)})
    history.append(record)
    runs.write_history(out, history)
    runs.save_state(out, {"epoch": epoch, "model": state, **train_state})
    runs.save_weights(out / "weights" / "last.safetensors", state, {"epoch": epoch})
    # The best epoch's snapshot is always kept; drop the former best if no rule wanted it.
    best = runs.best_record(history, monitor)
    if previous_best and best["epoch"] != previous_best["epoch"] and not keep(previous_best["epoch"], False):
        runs.snapshot_path(out, previous_best["epoch"]).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.list:
        print("segmentation models:   ", ", ".join(list_models("segmentation")))
        print("classification models: ", ", ".join(list_models("classification")))
        print("datasets:              ", ", ".join(list_datasets()))
        return 0
    cfg = config_from_args(ns)
    try:
        out = train(cfg, resume=ns.resume)
    except KeyboardInterrupt:
        print("\ninterrupted; every finished epoch is saved. Continue with: python -m core.train --resume <run dir>", file=sys.stderr)
        return 130
    except (ValueError, TypeError, KeyError, FileNotFoundError, runs.RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"run directory: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
