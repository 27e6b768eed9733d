"""Training engine: ``python -m core.train --help``.

Single process: ``python -m core.train --arch unet --model-arg base_width=16 --epochs 40``.
Several processes (DistributedDataParallel, gloo on CPU, nccl on GPU):
``torchrun --nproc_per_node=2 -m core.train ...``.

One training session reads top to bottom: ``_setup`` builds data, model and optimiser;
``_resume_or_create`` restores a run's state or starts its directory; ``_run_epoch`` trains,
evaluates and commits one epoch; ``_finish`` records how the run ended.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, DistributedSampler

from core import runs
from core.data import list_datasets
from core.models import arch_arguments, build_arch, list_models, list_sources, stored_state
from core.models.sources import OWN, check_trainable
from core.tasks import Task, all_tasks
from core.train.config import (
    TrainConfig,
    build_parser,
    check_tags,
    config_from_args,
    default_workers,
    parse_resize_stages,
    snapshot_rule,
    stage_factor,
)
from core.train.engine import Timer, autocast_dtype, collate_allow_ragged, evaluate, train_one_epoch
from core.train.optim import build_optimizer, ema_model, init_weights, load_scaler_state, schedule_factor
from core.train.setup import (
    build_datasets,
    check_options,
    class_statistics,
    default_out,
    resolve_task,
    run_config,
    scaled,
    summary_line,
    train_transform,
    val_share,
)
from core.utils.device import (
    DistInfo,
    SharedClock,
    barrier,
    broadcast_object,
    channels_last_trains_safely,
    cleanup_distributed,
    init_distributed,
    pick_device,
    set_threads,
)

EpochCallback = Callable[[int, nn.Module], None]
TERMINAL = ("finished", "early_stopped", "budget")  # states a run ends in; resuming one is a no-op unless extended


@dataclass
class Session:
    """One training session: what ``_setup`` built, where the run stands, and the clock shared by all ranks."""

    cfg: TrainConfig
    dist: DistInfo
    device: torch.device
    out: Path
    task: Task
    model: nn.Module
    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    ema: AveragedModel | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    train_loader: DataLoader
    val_loader: DataLoader
    memory_format: torch.memory_format
    clock: SharedClock
    run_info: dict[str, Any]  # run.json contents for a new run
    keep: Callable[[int, bool], bool]  # which epochs get a snapshot (--snapshot-epochs / --snapshot-every)
    history: list[dict[str, Any]] = field(default_factory=list)
    start_epoch: int = 1
    best_value: float = -math.inf
    bad_epochs: int = 0
    eval_seconds: float = 0.0  # duration of the last evaluation, to foresee whether another epoch fits the budget
    rare_classes: list[int] | None = None  # the classes of the rare-class crop (--rare-crop), resolved
    stages: list[tuple[float, int]] = field(default_factory=list)  # (size factor, epochs) of --resize-stages
    train_factor: float | None = None  # the size factor the training transform is set for (None: not set yet)

    @property
    def evaluated(self) -> nn.Module:
        """The model that is validated and saved: the weight average when ``--ema`` is on."""
        return self.ema.module if self.ema is not None else self.model


def train(
    cfg: TrainConfig,
    *,
    resume: str | Path | None = None,
    epochs: int | None = None,
    budget_min: float | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> Path:
    """Train and write a run directory; returns its path.

    ``resume`` continues a run from its last finished epoch with its recorded configuration (only
    the machine settings of ``cfg`` apply). A run that already ended (finished, early-stopped or out
    of budget) is left as it is unless ``epochs`` or ``budget_min`` raise its limits.
    """
    restart = False
    if resume is not None:
        if cfg.tags:
            _add_tags(Path(resume), cfg.tags)
        cfg = _resumed_config(cfg, Path(resume), epochs, budget_min)
        if cfg is None:
            return Path(resume)
        restart = not runs.state_path(Path(resume)).exists()  # killed before its first epoch was committed
        if restart:
            print(f"{resume}: no epoch was finished before the interruption; starting again from epoch 1", flush=True)
    dist = init_distributed(pick_device(cfg.device))
    device = pick_device(cfg.device, dist.local_rank)
    set_threads(cfg.threads, dist.world_size)
    try:
        resuming = resume is not None and not restart
        s = _setup(cfg, dist, device, resuming=resuming)
        _resume_or_create(s, resuming=resuming, extended=epochs is not None or budget_min is not None, restart=restart)
        status = "finished"
        for epoch in range(s.start_epoch, cfg.epochs + 1):
            stop = _run_epoch(s, epoch, on_epoch_end)
            if stop:
                status = stop
                break
        _finish(s, status)
        return s.out
    finally:
        cleanup_distributed()


def _add_tags(out: Path, tags: dict[str, Any]) -> None:
    """``--tag`` with ``--resume``: the tags join the run's own (one of the same name is replaced), also when the
    run has nothing left to train. Written once, by the first process."""
    if int(os.environ.get("RANK", "0")) != 0:
        return
    runs.load_run(out)  # a clear error for a folder that holds no run
    runs.update_run(out, tags=check_tags(tags))
    print(f"{out}: tags {', '.join(f'{k}={v}' for k, v in tags.items())} recorded", flush=True)


def _resumed_config(cfg: TrainConfig, out: Path, epochs: int | None, budget_min: float | None) -> TrainConfig | None:
    """The run's recorded configuration with this machine's settings; None when there is nothing to do."""
    run = runs.load_run(out)
    check_trainable(run.arch)
    stored = dict(run.config["train"])
    stored.pop("class_weights", None)
    stored.pop("rare_crop_classes", None)
    machine = {k: getattr(cfg, k) for k in ("device", "workers", "threads", "progress")}
    new = TrainConfig.from_dict({**stored, **machine, "out": str(out)})
    state = run.status.get("state")
    raised = (epochs is not None and epochs > new.epochs) or (
        budget_min is not None and budget_min > (new.budget_min or math.inf)
    )
    if state in TERMINAL and not raised:
        done = run.history[-1]["epoch"] if run.history else 0
        print(
            f"{out}: the run already ended ({state} after epoch {done} of {new.epochs}); nothing to do. "
            "Pass a larger --epochs (or --budget-min) to train it further.",
            flush=True,
        )
        return None
    if epochs is not None:
        new.epochs = epochs
    if budget_min is not None:
        new.budget_min = budget_min
    return new


def _setup(cfg: TrainConfig, dist: DistInfo, device: torch.device, *, resuming: bool) -> Session:
    """Datasets, loaders, model, weight average, optimiser, schedule and the shared clock."""
    clock = SharedClock()  # started first: a --budget-min covers everything, data caching included
    task_kind = resolve_task(cfg)
    check_options(cfg, task_kind)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    np.random.seed(cfg.seed)
    train_ds, val_ds = build_datasets(cfg, task_kind)
    out = Path(broadcast_object(str(cfg.out or default_out(cfg))))
    # a resumed run rebuilds the model its run.json records (a config file named on the first command line may be gone)
    args = (
        runs.load_run(out).model_args if resuming else arch_arguments(cfg.arch, cfg.model_args, num_classes=train_ds.num_classes)
    )
    model = build_arch(cfg.arch, args, pretrained=True)  # pretrained weights only if the arguments ask for them
    init_weights(model, cfg.init)
    if resuming:
        recorded = runs.load_run(out).config["train"]
        weights, rare = recorded.get("class_weights"), recorded.get("rare_crop_classes")
    else:
        weights, rare = class_statistics(cfg, train_ds, cfg.progress and dist.is_main)
    if rare is not None and dist.is_main:
        print(
            f"rare-class crop (p {cfg.rare_crop:g}) on: {', '.join(train_ds.classes[c] for c in rare) or 'no class'}", flush=True
        )
    task = task_kind(
        train_ds.num_classes,
        train_ds.ignore_index,
        torch.tensor(weights, dtype=torch.float32) if weights else None,
        cfg.aux_weight,
        label_smoothing=cfg.label_smoothing,
        loss=cfg.loss,
        lovasz_per_image=cfg.lovasz_per_image,
        ohem_thresh=cfg.ohem_thresh,
        ohem_min_kept=cfg.ohem_min_kept,
    )

    workers = default_workers() if cfg.workers is None else cfg.workers
    sampler = DistributedSampler(train_ds, num_replicas=dist.world_size, rank=dist.rank, shuffle=True, seed=cfg.seed)
    drop_last = len(train_ds) // dist.world_size > cfg.batch_size  # BatchNorm cannot train on a batch of 1
    loader_kw = dict(num_workers=workers, persistent_workers=workers > 0, pin_memory=device.type == "cuda")
    train_loader = DataLoader(train_ds, batch_size=cfg.batch_size, sampler=sampler, drop_last=drop_last, **loader_kw)
    val_loader = DataLoader(
        val_share(val_ds, dist), batch_size=cfg.batch_size, shuffle=False, collate_fn=collate_allow_ragged, **loader_kw
    )

    memory_format = _memory_format(cfg, model, device, dist)
    model.to(device, memory_format=memory_format)
    net: nn.Module = model
    if dist.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = build_optimizer(
        model.parameters(), cfg.optimizer, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum
    )
    total_steps = cfg.epochs * max(1, len(train_loader))
    budget_s = cfg.budget_min * 60 if cfg.budget_min else None

    def lr_factor(step: int) -> float:
        progress = step / total_steps
        if budget_s is not None:  # run the schedule on the clock so it ends when the budget does; one clock for all ranks
            progress = max(progress, clock.shared()[0] / budget_s)
        return schedule_factor(cfg.schedule, progress, warmup=cfg.warmup, step_every=cfg.step_every, gamma=cfg.gamma)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda" and cfg.amp == "auto")
    ema = ema_model(model, cfg.ema) if cfg.ema > 0 else None
    fmt = "channels_last" if memory_format == torch.channels_last else "contiguous"  # off where it crashes
    precision = str(autocast_dtype(device, cfg.amp) or torch.float32).removeprefix("torch.")  # autocast's, or none
    runtime = {"device": device.type, "world_size": dist.world_size, "memory_format": fmt, "precision": precision}
    info = {} if resuming else run_config(cfg, task_kind, train_ds, model, args, weights, runtime, rare)
    stages = parse_resize_stages(cfg.resize_stages) if cfg.resize_stages else []
    return Session(
        cfg,
        dist,
        device,
        out,
        task,
        model,
        net,
        ema,
        optimizer,
        scheduler,
        scaler,
        train_loader,
        val_loader,
        memory_format,
        clock,
        info,
        snapshot_rule(cfg),
        rare_classes=rare,
        stages=stages,
    )


def _memory_format(cfg: TrainConfig, model: nn.Module, device: torch.device, dist: DistInfo) -> torch.memory_format:
    # channels-last lets oneDNN (CPU) and cuDNN (GPU) skip layout reorders: ~20% faster conv nets on this CPU
    safe = channels_last_trains_safely(model, device)
    if cfg.channels_last and not safe and dist.is_main:
        print(
            "channels-last off: this model has a narrow 1x1 stride-2 convolution whose CPU backward crashes in channels-last",
            flush=True,
        )
    return torch.channels_last if cfg.channels_last and safe else torch.contiguous_format


def _resume_or_create(s: Session, *, resuming: bool, extended: bool, restart: bool = False) -> None:
    """Restore model, optimiser, schedule, weight average and counters from the run's state, or start the
    run (``restart``: again, in the folder of a run killed before it committed an epoch)."""
    if not resuming:
        if s.dist.is_main:
            if restart:
                from core.utils.io import remove_stray_temporaries

                remove_stray_temporaries(s.out)
                runs.prune_after(s.out, 0)
            runs.create_run(s.out, s.run_info, replace=restart, advice="pass --resume to continue it or choose another --out")
        barrier()
        return
    state = runs.load_state(s.out)
    s.model.load_state_dict(state["model"])
    s.optimizer.load_state_dict(state["optimizer"])
    s.scheduler.load_state_dict(state["scheduler"])
    load_scaler_state(s.scaler, state["scaler"])
    if s.ema is not None:
        s.ema.load_state_dict(state["ema"])
    s.start_epoch = int(state["epoch"]) + 1
    s.best_value, s.bad_epochs = float(state["best_value"]), 0 if extended else int(state["bad_epochs"])
    s.clock.before = float(state["train_time"])
    if s.dist.is_main:
        from core.utils.io import remove_stray_temporaries

        remove_stray_temporaries(s.out)
        runs.prune_after(s.out, int(state["epoch"]))
        runs.save_weights(s.out / "weights" / "last.safetensors", stored_state(s.evaluated), {"epoch": state["epoch"]})
        runs.update_run(s.out, train={"epochs": s.cfg.epochs, "budget_min": s.cfg.budget_min}, status=runs.running_status())
        print(f"resuming {s.out} from epoch {s.start_epoch}", flush=True)
    barrier()
    s.history = runs.read_history(s.out)


def _run_epoch(s: Session, epoch: int, on_epoch_end: EpochCallback | None) -> str | None:
    """Train one epoch, evaluate it when due, commit it; returns why training stops after it, if it does."""
    cfg = s.cfg
    epoch_clock = Timer()
    _set_train_transform(s, epoch)
    s.train_loader.sampler.set_epoch(epoch)
    progress = cfg.progress and s.dist.is_main
    stats = train_one_epoch(
        s.net,
        s.train_loader,
        s.task,
        s.optimizer,
        s.scheduler,
        s.scaler,
        s.device,
        amp=cfg.amp,
        progress=progress,
        desc=f"epoch {epoch}/{cfg.epochs}",
        memory_format=s.memory_format,
        ema=s.ema,
    )
    train_seconds = epoch_clock()
    # Under a time budget, stop when another epoch would not fit. Every rank decides on the same
    # (all-reduced maximum) times, so no rank stops while another waits in a collective.
    elapsed, train_s, eval_s = s.clock.shared(train_seconds, s.eval_seconds)
    out_of_time = cfg.budget_min is not None and epoch < cfg.epochs and elapsed + train_s + eval_s > cfg.budget_min * 60
    metrics: dict[str, Any] = {}
    improved = False
    # Named snapshot epochs are scored too, so every saved epoch has its val metrics in the history.
    named_snapshot = bool(cfg.snapshot_epochs) and s.keep(epoch, False)
    if epoch % cfg.val_every == 0 or epoch == cfg.epochs or out_of_time or named_snapshot:
        eval_clock = Timer()
        metrics = evaluate(
            s.evaluated,
            s.val_loader,
            s.task,
            s.device,
            amp=cfg.amp,
            progress=progress,
            memory_format=s.memory_format,
            tta_flip=cfg.tta_flip,
            tta_scales=cfg.tta_scales,
        )
        s.eval_seconds = eval_clock()
        value = metrics[s.task.monitor]
        improved = value is not None and not math.isnan(value) and value > s.best_value
        s.best_value, s.bad_epochs = (value, 0) if improved else (s.best_value, s.bad_epochs + 1)
    stop = "budget" if out_of_time else None
    if metrics and cfg.patience is not None and s.bad_epochs >= cfg.patience:
        stop = "early_stopped"
    record = {
        "epoch": epoch,
        **stats,
        **metrics,
        "lr": s.optimizer.param_groups[0]["lr"],
        "epoch_time": epoch_clock(),
        "train_time": s.clock.local(),
        "images_per_s": stats["train_images"] / max(train_seconds, 1e-9),
    }
    if s.dist.is_main:
        _commit_epoch(s, record, s.keep(epoch, epoch == cfg.epochs or stop is not None))
        print(summary_line(epoch, cfg.epochs, record, type(s.task)), flush=True)
        if on_epoch_end is not None:
            on_epoch_end(epoch, s.evaluated)
    elif s.dist.enabled:  # every rank reports what it computed, so a mismatch would show
        print(f"rank {s.dist.rank}: " + summary_line(epoch, cfg.epochs, record, type(s.task)), flush=True)
    barrier()
    if stop and s.dist.is_main:
        print(f"stopping after epoch {epoch}: " + ("no improvement" if stop == "early_stopped" else "time budget"), flush=True)
    return stop


def _set_train_transform(s: Session, epoch: int) -> None:
    """Give the training set ``epoch``'s transform: the size of its --resize-stages stage (the stage follows
    from the epoch, so a resumed run picks up where it was), with the rare-class crop. When the size changes
    the loader is made anew, since persistent worker processes keep the dataset they were started with."""
    factor = stage_factor(s.stages, epoch)
    if factor == s.train_factor:
        return
    ds = s.train_loader.dataset
    ds.transform = train_transform(s.cfg, type(s.task), ds, factor=factor, rare_classes=s.rare_classes)
    if s.train_factor is not None and s.train_loader.persistent_workers:
        s.train_loader = _fresh_loader(s.train_loader)
    s.train_factor = factor
    if s.stages and s.dist.is_main:
        size, crop = scaled(s.cfg.size, factor), scaled(s.cfg.crop or s.cfg.size, factor)
        print(
            f"epoch {epoch}: training at {factor:g}x the size ({size[0]}x{size[1]} images, {crop[0]}x{crop[1]} crops)", flush=True
        )


def _fresh_loader(loader: DataLoader) -> DataLoader:
    """A loader like ``loader`` (same dataset, sampler and settings) whose workers have not started yet."""
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=loader.sampler,
        drop_last=loader.drop_last,
        num_workers=loader.num_workers,
        persistent_workers=loader.persistent_workers,
        pin_memory=loader.pin_memory,
        collate_fn=loader.collate_fn,
    )


def _commit_epoch(s: Session, record: dict, snapshot: bool) -> None:
    """Write one epoch (``core.runs.commit_epoch``): the evaluated weights, and the resume state."""
    state = {
        "epoch": record["epoch"],
        "model": {k: v.detach().cpu() for k, v in s.model.state_dict().items()},
        "optimizer": s.optimizer.state_dict(),
        "scheduler": s.scheduler.state_dict(),
        "scaler": s.scaler.state_dict(),
        "best_value": s.best_value,
        "bad_epochs": s.bad_epochs,
        "train_time": record["train_time"],
    }
    if s.ema is not None:
        state["ema"] = {k: v.detach().cpu() for k, v in s.ema.state_dict().items()}
    weights = {k: v.detach().cpu() for k, v in stored_state(s.evaluated).items()}
    runs.commit_epoch(s.out, s.history, record, weights, monitor=s.task.monitor, snapshot=snapshot, keep=s.keep, state=state)


def _finish(s: Session, status: str) -> None:
    if s.dist.is_main:
        runs.finish_run(s.out, status, s.history)
    barrier()


def list_text() -> str:
    """What ``--list`` prints: the registry's models per task, each source and how to name its models, the datasets."""
    lines = [f"{task.name + ' models:':<23} " + ", ".join(list_models(task)) for task in all_tasks()]
    lines.append("model sources (--arch SOURCE:NAME, arguments with --model-arg KEY=VALUE):")
    for name, source in list_sources():
        if name == OWN:
            continue
        state = "installed" if source.available() else f"not installed: pip install {source.pip}"
        lines.append(f"  {name + ':':<6} {source.naming} [{state}]")
    lines.append(f"{'datasets:':<23} " + ", ".join(list_datasets()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.list:
        print(list_text())
        return 0
    try:
        cfg = config_from_args(ns)
        extend = {"epochs": ns.epochs, "budget_min": ns.budget_min} if ns.resume else {}
        out = train(cfg, resume=ns.resume, **extend)
    except KeyboardInterrupt:
        print(
            "\ninterrupted; every finished epoch is saved. Continue with: python -m core.train --resume <run dir>",
            file=sys.stderr,
        )
        return 130
    except (ValueError, TypeError, KeyError, FileNotFoundError, runs.RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only or unwritable folder: atomic writes left every file whole
        print(
            f"error: cannot write the run directory: {e}. Every finished epoch is saved and no file was left half-written; "
            "free some space (or make the folder writable), then continue with: python -m core.train --resume <run dir>",
            file=sys.stderr,
        )
        return 2
    print(f"run directory: {out}")
    return 0
