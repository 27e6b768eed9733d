"""What a training session is built from: the task, the datasets with their transforms, class
weights, the run description written to run.json, and the one-line epoch summary."""

from __future__ import annotations

import platform
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn
from torch.utils.data import Subset

import core
from core.data import dataset_task, get_dataset
from core.data.base import VisionDataset
from core.data.cache import InMemory
from core.data.transforms import AugmentConfig, classification_train_transforms, eval_transforms, train_transforms
from core.models import count_parameters, model_task
from core.tasks import Task, check_loss, task_type
from core.train.config import TrainConfig
from core.train.optim import class_pixel_counts, class_weights
from core.utils.device import DistInfo


def resolve_task(cfg: TrainConfig) -> type[Task]:
    """The task of the architecture, which the dataset (and ``--task``, if given) must share."""
    arch_task, data_task = model_task(cfg.arch), dataset_task(cfg.dataset)
    if arch_task is not data_task:
        raise ValueError(
            f"architecture {cfg.arch!r} is a {arch_task.name} model but dataset {cfg.dataset!r} is for {data_task.name}"
        )
    if cfg.task is not None and task_type(cfg.task) is not arch_task:
        raise ValueError(f"--task {cfg.task} does not match architecture {cfg.arch!r} ({arch_task.name})")
    return arch_task


def check_options(cfg: TrainConfig, task: type[Task]) -> None:
    """Refuse, before any data is read, options that this task or these other options cannot honour."""
    check_loss(
        task, cfg.loss, lovasz_per_image=cfg.lovasz_per_image, ohem_thresh=cfg.ohem_thresh, ohem_min_kept=cfg.ohem_min_kept
    )
    if cfg.tta_scales is not None:
        if not task.dense:
            raise ValueError(f"--tta-scales resizes images for per-pixel predictions; a {task.name} model cannot use it")
        if not cfg.tta_scales or any(not s > 0 for s in cfg.tta_scales):
            raise ValueError(f"--tta-scales takes positive factors such as 0.75,1,1.25, got {cfg.tta_scales}")


def build_datasets(cfg: TrainConfig, task: type[Task]) -> tuple[VisionDataset, VisionDataset]:
    """Training and validation sets with their transforms (cached in memory with ``cache``)."""
    options = dict(cfg.data_options)
    train_base = get_dataset(cfg.dataset, cfg.train_split, cfg.data_root, **options)
    val_base = get_dataset(cfg.dataset, cfg.val_split, cfg.data_root, **options)
    mean, std = train_base.mean, train_base.std
    augment = AugmentConfig(**{f.name: getattr(cfg, f.name) for f in fields(AugmentConfig)})
    if task.dense:  # image and label map move together
        train_tf = train_transforms(size=cfg.size, augment=augment, mean=mean, std=std, ignore_index=train_base.ignore_index)
        val_tf = eval_transforms(size=cfg.size, mean=mean, std=std, image_only=cfg.eval_native)
    else:
        if cfg.size is None:
            raise ValueError("classification needs --size")
        train_tf = classification_train_transforms(size=cfg.size, augment=augment, mean=mean, std=std)
        val_tf = eval_transforms(size=cfg.size, mean=mean, std=std)
    if cfg.train_limit:
        train_base = _Limited(train_base, cfg.train_limit)
    if cfg.val_limit:
        val_base = _Limited(val_base, cfg.val_limit)
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


def val_share(val_ds: VisionDataset, dist: DistInfo) -> Subset:
    """This rank's disjoint share of the validation set, unpadded, so the summed matrix counts each item once."""
    return Subset(val_ds, range(dist.rank, len(val_ds), dist.world_size))


def compute_class_weights(ds: VisionDataset, scheme: str, progress: bool, power: float = 1.0) -> list[float] | None:
    """Loss weights per class from the training labels: pixels for segmentation, items for classification."""
    if scheme == "none":
        return None
    from tqdm.auto import tqdm

    labels = (ds.load(i)[1] for i in tqdm(range(len(ds)), desc="class frequencies", leave=False, disable=not progress))
    if ds.task.dense:
        counts, totals = class_pixel_counts(labels, ds.num_classes)
    else:  # every item is one "pixel" of an image that holds all the data: frequency = items of the class / items
        counts = np.bincount([int(y) for y in labels if 0 <= int(y) < ds.num_classes], minlength=ds.num_classes).astype(
            np.float64
        )
        totals = np.where(counts > 0, counts.sum(), 0.0)
    return class_weights(counts, totals, scheme, power).tolist()


def run_config(
    cfg: TrainConfig,
    task: type[Task],
    train_ds: VisionDataset,
    model: nn.Module,
    args: dict[str, Any],
    weights,
    runtime: dict[str, Any],
) -> dict:
    """The run description of run.json: task, model and its arguments, dataset, hyper-parameters, versions,
    and ``runtime``: what ran (device, processes, memory format, autocast precision), which can differ
    from what was asked."""
    return {
        "task": task.name,
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
        "runtime": runtime,
        "created": datetime.now().isoformat(timespec="seconds"),
    }


def default_out(cfg: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.arch}-{cfg.dataset.replace(':', '_')}-{stamp}"


def summary_line(epoch: int, epochs: int, rec: dict[str, Any], task: type[Task]) -> str:
    """``epoch 3/50 loss 0.81 val_loss 0.77 pixel_acc 0.80 mIoU 0.41 fwIoU 0.68 12.3s``"""
    parts = (
        [("train_loss", "loss"), ("val_loss", "val_loss"), *task.epoch_line] if "val_loss" in rec else [("train_loss", "loss")]
    )
    text = " ".join(f"{label} {rec[key]:.2f}" if rec.get(key) is not None else f"{label} nan" for key, label in parts)
    return f"epoch {epoch}/{epochs} {text} {rec['epoch_time']:.1f}s"
