"""What a training session is built from: the task, the datasets with their transforms, class
weights, the run description written to run.json, and the one-line epoch summary."""

from __future__ import annotations

import platform
from dataclasses import fields, replace
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
from core.models import arch_task, count_parameters, split_arch
from core.models.sources import check_trainable
from core.tasks import Task, check_loss, task_type
from core.train.config import TrainConfig, check_tags, parse_resize_stages
from core.train.optim import class_pixel_counts, class_weights, rare_classes
from core.utils.device import DistInfo


def resolve_task(cfg: TrainConfig) -> type[Task]:
    """The task of the architecture, which the dataset (and ``--task``, if given) must share. A model with no
    torch weights (an ONNX graph) is refused here, before any data is read."""
    check_trainable(cfg.arch)
    model_kind, data_task = arch_task(cfg.arch), dataset_task(cfg.dataset)
    if model_kind is not data_task:
        raise ValueError(
            f"architecture {cfg.arch!r} is a {model_kind.name} model but dataset {cfg.dataset!r} is for {data_task.name}"
        )
    if cfg.task is not None and task_type(cfg.task) is not model_kind:
        raise ValueError(f"--task {cfg.task} does not match architecture {cfg.arch!r} ({model_kind.name})")
    return model_kind


RARE_SHARE = 0.02  # --rare-crop without --rare-classes: classes under 2% of the training pixels (on CamVid: Pole,
# SignSymbol, Fence, Pedestrian and Bicyclist, the five weak classes, with 0.3-1.3% each; Car, the next, has 5-6%)


def check_options(cfg: TrainConfig, task: type[Task]) -> None:
    """Refuse, before any data is read, options that this task or these other options cannot honour."""
    if not task.dense and cfg.size is None:
        raise ValueError("classification needs --size")
    check_loss(
        task, cfg.loss, lovasz_per_image=cfg.lovasz_per_image, ohem_thresh=cfg.ohem_thresh, ohem_min_kept=cfg.ohem_min_kept
    )
    if cfg.tta_scales is not None:
        if not task.dense:
            raise ValueError(f"--tta-scales resizes images for per-pixel predictions; a {task.name} model cannot use it")
        if not cfg.tta_scales or any(not s > 0 for s in cfg.tta_scales):
            raise ValueError(f"--tta-scales takes positive factors such as 0.75,1,1.25, got {cfg.tta_scales}")
    _check_rare_crop(cfg, task)
    if cfg.resize_stages is not None:
        _check_resize_stages(cfg, task)


def _check_rare_crop(cfg: TrainConfig, task: type[Task]) -> None:
    if not 0 <= cfg.rare_crop <= 1:
        raise ValueError(f"--rare-crop is a probability in [0, 1], got {cfg.rare_crop}")
    if cfg.rare_classes is not None and cfg.rare_crop == 0:
        raise ValueError("--rare-classes names the classes of the rare-class crop; give --rare-crop P (e.g. 0.5) as well")
    if cfg.rare_crop > 0 and not task.dense:
        raise ValueError(f"--rare-crop centres crops on rare pixels of label maps; a {task.name} model has none")
    if cfg.rare_crop > 0 and cfg.crop is None and cfg.scale is None:
        raise ValueError("--rare-crop moves the random crop: give --crop H W (or a --scale range, cropped to the base size)")


def _check_resize_stages(cfg: TrainConfig, task: type[Task]) -> None:
    stages = parse_resize_stages(cfg.resize_stages)
    if not task.dense:
        raise ValueError(f"--resize-stages scales segmentation crops; a {task.name} model cannot use it")
    if cfg.size is None:
        raise ValueError("--resize-stages scales the base size: give --size H W (not --native-size)")
    if cfg.budget_min is not None:
        raise ValueError(
            "--resize-stages counts epochs, but under --budget-min the number of epochs is not known in advance; "
            "train a fixed --epochs instead (bench/camvid_speed.py converts a time budget into epochs)"
        )
    total = sum(n for _, n in stages)
    if total != cfg.epochs:
        raise ValueError(
            f"--resize-stages {cfg.resize_stages!r} covers {total} epochs but the run trains {cfg.epochs}; "
            "the stages' epochs must add up to --epochs"
        )


def scaled(hw: tuple[int, int] | None, factor: float) -> tuple[int, int] | None:
    """(H, W) times ``factor``, rounded, at least 1 (None stays None)."""
    if hw is None or factor == 1:
        return hw
    return (max(1, round(hw[0] * factor)), max(1, round(hw[1] * factor)))


def train_transform(
    cfg: TrainConfig, task: type[Task], ds: VisionDataset, *, factor: float = 1.0, rare_classes: list[int] | None = None
):
    """The training transform: base size, rescale range and crop at ``factor`` times the run's (a stage of
    ``--resize-stages``: the range follows the base size), and the rare-class crop on ``rare_classes``."""
    augment = AugmentConfig(**{f.name: getattr(cfg, f.name) for f in fields(AugmentConfig)})
    if task.dense:  # image and label map move together
        augment = replace(augment, crop=scaled(augment.crop, factor), rare_classes=rare_classes)
        size = scaled(cfg.size, factor)
        return train_transforms(size=size, augment=augment, mean=ds.mean, std=ds.std, ignore_index=ds.ignore_index)
    return classification_train_transforms(size=cfg.size, augment=augment, mean=ds.mean, std=ds.std)


def build_datasets(cfg: TrainConfig, task: type[Task]) -> tuple[VisionDataset, VisionDataset]:
    """Training and validation sets (cached in memory with ``cache``). The validation set has its transform;
    the session gives the training set each epoch's (``train_transform``: its stage, the rare classes)."""
    options = dict(cfg.data_options)
    train_base = get_dataset(cfg.dataset, cfg.train_split, cfg.data_root, **options)
    val_base = get_dataset(cfg.dataset, cfg.val_split, cfg.data_root, **options)
    mean, std = train_base.mean, train_base.std
    val_tf = eval_transforms(size=cfg.size, mean=mean, std=std, image_only=task.dense and cfg.eval_native)
    if cfg.train_limit:
        train_base = _Limited(train_base, cfg.train_limit)
    if cfg.val_limit:
        val_base = _Limited(val_base, cfg.val_limit)
    if cfg.cache:
        train_base = InMemory(train_base, cfg.size, progress=cfg.progress)
        val_base = InMemory(val_base, cfg.size, resize_masks=not cfg.eval_native, progress=cfg.progress)
    val_base.transform = val_tf
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


def label_counts(ds: VisionDataset, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """One pass over the training labels: per class, (pixels of the class, pixels of the images holding it);
    for classification every item is one "pixel" of an image that holds all the data."""
    from tqdm.auto import tqdm

    labels = (ds.load(i)[1] for i in tqdm(range(len(ds)), desc="class frequencies", leave=False, disable=not progress))
    if ds.task.dense:
        return class_pixel_counts(labels, ds.num_classes)
    counts = np.bincount([int(y) for y in labels if 0 <= int(y) < ds.num_classes], minlength=ds.num_classes).astype(np.float64)
    return counts, np.where(counts > 0, counts.sum(), 0.0)


def compute_class_weights(ds: VisionDataset, scheme: str, progress: bool, power: float = 1.0) -> list[float] | None:
    """Loss weights per class from the training labels: pixels for segmentation, items for classification."""
    if scheme == "none":
        return None
    return class_weights(*label_counts(ds, progress), scheme, power).tolist()


def class_statistics(cfg: TrainConfig, ds: VisionDataset, progress: bool) -> tuple[list[float] | None, list[int] | None]:
    """The loss's class weights and the rare-class crop's classes (``--rare-classes``, or those under
    ``RARE_SHARE`` of the training pixels), from one pass over the labels, and none when neither needs it."""
    rare = None if cfg.rare_crop == 0 or cfg.rare_classes is None else [int(c) for c in cfg.rare_classes]
    if rare is not None and any(not 0 <= c < ds.num_classes for c in rare):
        raise ValueError(f"--rare-classes takes class indices in [0, {ds.num_classes}), got {rare}")
    auto_rare = cfg.rare_crop > 0 and rare is None
    if cfg.class_weighting == "none" and not auto_rare:
        return None, rare
    counts, totals = label_counts(ds, progress)
    weights = None
    if cfg.class_weighting != "none":
        weights = class_weights(counts, totals, cfg.class_weighting, cfg.class_weight_power).tolist()
    return weights, (rare_classes(counts, RARE_SHARE) if auto_rare else rare)


def run_config(
    cfg: TrainConfig,
    task: type[Task],
    train_ds: VisionDataset,
    model: nn.Module,
    args: dict[str, Any],
    weights,
    runtime: dict[str, Any],
    rare_classes: list[int] | None = None,
) -> dict:
    """The run description of run.json: task, model and its arguments, dataset, hyper-parameters, tags, versions,
    and ``runtime``: what ran (device, processes, memory format, autocast precision), which can differ
    from what was asked. ``rare_classes``: those the rare-class crop used (recorded with ``--rare-crop``)."""
    source, name = split_arch(cfg.arch)
    hparams = cfg.to_dict()
    tags = hparams.pop("tags")  # labels, not hyper-parameters: their own section, added to on --resume
    return {
        "task": task.name,
        "model": {"source": source, "name": name, "args": args, "num_params": count_parameters(model)},
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
        "train": {**hparams, "class_weights": weights, **({"rare_crop_classes": rare_classes} if cfg.rare_crop else {})},
        "tags": check_tags(tags),
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
