"""Training configuration: one dataclass, and the command line that fills it."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from core.evaluation.losses import OHEM_MIN_KEPT, OHEM_THRESH
from core.tasks import SegmentationTask, task_names
from core.train.optim import CLASS_WEIGHTINGS, INITS, OPTIMIZERS, SCHEDULES


@dataclass
class TrainConfig:
    # what to train
    task: str | None = None  # a name of core.tasks.task_names(); None = the architecture's task
    arch: str = "unet"  # a name from core.models.list_models()
    model_args: dict[str, Any] = field(default_factory=dict)  # constructor arguments, e.g. {"base_width": 16}
    dataset: str = "synthstreets"  # a name from core.data.list_datasets()
    data_root: str | None = None  # where the dataset lives (None = its default / environment variable)
    data_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"num_images": 200} for synthstreets
    train_split: str = "train"
    val_split: str = "val"
    train_limit: int | None = None  # use only the first N training items (quick experiments)
    val_limit: int | None = None
    size: tuple[int, int] | None = (180, 240)  # (H, W) base resolution of every image; None = native
    # augmentation (see core.data.transforms.AugmentConfig)
    hflip: float = 0.5
    scale: tuple[float, float] | None = (0.75, 1.25)
    crop: tuple[int, int] | None = None
    rotation: float = 0.0
    color_jitter: float = 0.0
    gamma_jitter: float = 0.0  # random gamma in [1 - g, 1 + g]
    blur: float = 0.0  # probability of a Gaussian blur
    rare_crop: float = 0.0  # probability that a training crop is centred (jittered) on a rare-class pixel; 0 = plain crop
    rare_classes: list[int] | None = None  # its classes; None = those under 2% of the training pixels (run.json records them)
    resize_stages: str | None = None  # "0.5x50,1x15": 50 epochs with images and crops at half size, then 15 at full size
    eval_native: bool = False  # evaluate against the label maps at their native size (logits upsampled)
    cache: bool = False  # decode and resize the dataset once, keep it in memory as uint8
    # optimisation
    epochs: int = 10
    batch_size: int = 8
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9  # SGD only
    schedule: str = "cosine"
    warmup: float = 0.0  # fraction of training spent warming up linearly
    step_every: float = 0.3  # "step" schedule: multiply by gamma every this fraction of training
    gamma: float = 0.1
    class_weighting: str = "none"  # "inverse" (1/frequency, sum 1), "median" (median-frequency) or "none"
    class_weight_power: float = 1.0  # weights ** power; 0.5 softens them
    aux_weight: float = 0.4  # weight of the auxiliary loss for models that return "aux"
    label_smoothing: float = 0.0  # cross-entropy against (1 - e) one-hot + e uniform: softer on rare, noisy labels
    loss: str = "ce"  # "ce"; segmentation also "lovasz" (IoU surrogate), "ce+lovasz" (their sum) or "ohem" (CE on hard pixels)
    lovasz_per_image: bool = False  # Lovász-softmax image by image, averaged; default over the batch's pixels (the paper's)
    ohem_thresh: float = OHEM_THRESH  # "ohem": train on the pixels whose p(true class) is below this ...
    ohem_min_kept: int = OHEM_MIN_KEPT  # ... and on at least this many per batch (the least confident)
    ema: float = 0.0  # exponential moving average of the weights with this decay (e.g. 0.999; 0 = off); evaluated and saved
    tta_flip: bool = False  # evaluate (and predict, by default) on the image and its mirror, probabilities averaged
    tta_scales: list[float] | None = None  # also on the image resized by each factor, e.g. [0.75, 1, 1.25]; None = one scale
    init: str = "default"  # "xavier" or "kaiming" re-initialise layers that are not pretrained
    patience: int | None = None  # early stopping: evaluations without improvement of val mIoU / top-1
    val_every: int = 1  # evaluate every K epochs (and always the last one)
    budget_min: float | None = None  # wall-clock budget; the schedule then runs on time, not steps
    seed: int = 0
    tags: dict[str, Any] = field(default_factory=dict)  # free labels (--tag name=value): run.json's "tags" section, not "train"
    # output
    out: str | None = None  # run directory; default runs/<arch>-<dataset>-<time>
    snapshot_epochs: str | None = None  # e.g. "1,2,5,10,last"; default: every epoch
    snapshot_every: int | None = None  # alternatively every K epochs (and the last)
    # machine
    device: str = "auto"  # auto = CUDA, then MPS, then CPU
    channels_last: bool = True  # channels-last memory format (faster convolutions on CPU and GPU)
    amp: str = "auto"  # auto = float16 autocast on CUDA; "bf16" = bfloat16 autocast (also on CPU); "off"
    workers: int | None = None  # DataLoader worker processes; None = a count suited to the machine
    threads: int | None = None  # intra-op CPU threads per process; None = cores / processes
    progress: bool = True  # tqdm progress bars

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}")
        d = dict(d)
        for key in ("size", "scale", "crop"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)


def default_workers() -> int:
    """Loader processes: about half the cores (the other half computes), at least 1, at most 4."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def _key_values(items: list[str] | None, flag: str) -> dict[str, Any]:
    """``["base_width=16", "backbone=\"resnet18\""]`` -> dict; values are JSON, else plain strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"{flag} expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def parse_tag(text: str) -> tuple[str, str]:
    """``"group=baseline"`` -> ("group", "baseline"): a tag's name and its value, kept as text."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE such as group=baseline, got {text!r}")
    return name.strip(), value


def check_tags(tags: dict[str, Any] | None) -> dict[str, Any]:
    """Tags as run.json records them: names are non-empty text, values text, numbers or booleans (the runs
    table shows each tag as a column, so a nested value would have no cell to go in)."""
    out = dict(tags or {})
    for name, value in out.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a tag name must be non-empty text, got {name!r}")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise ValueError(f"tag {name!r}: a value is text, a number or a boolean, got {type(value).__name__}")
    return out


def tags_from_args(pairs: list[tuple[str, str]] | None) -> dict[str, str]:
    """Repeated ``--tag NAME=VALUE`` as a dict; a name given twice is an error rather than a silent overwrite."""
    tags: dict[str, str] = {}
    for name, value in pairs or []:
        if name in tags:
            raise ValueError(f"--tag {name} is given twice ({tags[name]!r} and {value!r}); give each tag once")
        tags[name] = value
    return tags


def parse_classes(text: str) -> list[int]:
    """``"2,6,7"`` -> [2, 6, 7]: class indices, each once."""
    try:
        classes = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated class indices such as 2,6,7, got {text!r}") from None
    if not classes or len(set(classes)) != len(classes) or min(classes) < 0:
        raise argparse.ArgumentTypeError(f"expected distinct class indices such as 2,6,7, got {text!r}")
    return classes


def parse_resize_stages(spec: str) -> list[tuple[float, int]]:
    """``"0.5x50,1x15"`` -> [(0.5, 50), (1.0, 15)]: (size factor, epochs) of each stage, in order."""
    stages = []
    for part in spec.split(","):
        factor, sep, epochs = part.strip().partition("x")
        try:
            stage = (float(factor), int(epochs))
        except ValueError:
            stage = None
        if not sep or stage is None or not 0 < stage[0] <= 4 or stage[1] < 1:
            raise ValueError(
                f'--resize-stages takes FACTORxEPOCHS stages separated by commas, e.g. "0.5x50,1x15" '
                f"(factor in (0, 4], at least one epoch each); got {spec!r}"
            )
        stages.append(stage)
    return stages


def stage_factor(stages: list[tuple[float, int]], epoch: int) -> float:
    """The size factor of ``epoch`` (1-based) under ``stages``; 1 without stages, the last stage's past them."""
    end = 0
    for factor, epochs in stages:
        end += epochs
        if epoch <= end:
            return factor
    return stages[-1][0] if stages else 1.0


def parse_scales(text: str) -> list[float]:
    """``"0.75,1,1.25"`` -> [0.75, 1.0, 1.25]: positive factors, each once."""
    try:
        scales = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated factors such as 0.75,1,1.25, got {text!r}") from None
    if not scales or any(not s > 0 for s in scales) or len(set(scales)) != len(scales):
        raise argparse.ArgumentTypeError(f"expected distinct positive factors such as 0.75,1,1.25, got {text!r}")
    return scales


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m core.train",
        description="Train a segmentation or classification model and write a run directory.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("model and data")
    g.add_argument("--task", choices=task_names(), default=None, help="default: the architecture's task")
    g.add_argument("--arch", default=d.arch, help="architecture (see --list)")
    g.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="constructor argument, repeatable")
    g.add_argument("--dataset", default=d.dataset)
    g.add_argument("--data-root", default=None)
    g.add_argument("--data-opt", action="append", metavar="KEY=VALUE", help="dataset option, repeatable")
    g.add_argument("--train-split", default=d.train_split)
    g.add_argument("--val-split", default=d.val_split)
    g.add_argument("--train-limit", type=int, default=None, help="use only the first N training items")
    g.add_argument("--val-limit", type=int, default=None)
    g.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=d.size, help="base input size")
    g.add_argument("--native-size", action="store_true", help="keep images at their own size (no base resize)")
    g.add_argument("--eval-native", action="store_true", help="score against full-size label maps")
    g.add_argument("--cache", action="store_true", help="decode and resize once, keep the dataset in memory")
    g.add_argument("--list", action="store_true", help="list architectures and datasets, then exit")
    a = p.add_argument_group("augmentation")
    a.add_argument("--hflip", type=float, default=d.hflip, help="flip probability")
    a.add_argument("--scale", type=float, nargs=2, metavar=("LO", "HI"), default=d.scale, help="random rescale range")
    a.add_argument("--no-scale", action="store_true", help="switch the random rescale off")
    a.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), default=None, help="random crop after rescaling")
    a.add_argument("--rotation", type=float, default=d.rotation, help="max degrees")
    a.add_argument("--color-jitter", type=float, default=d.color_jitter, help="brightness/contrast/saturation strength")
    a.add_argument("--gamma-jitter", type=float, default=d.gamma_jitter, help="random gamma in [1-g, 1+g]")
    a.add_argument("--blur", type=float, default=d.blur, help="probability of a Gaussian blur")
    a.add_argument("--rare-crop", type=float, default=d.rare_crop, metavar="P", help="probability of a crop on a rare class")
    a.add_argument(
        "--rare-classes",
        type=parse_classes,
        default=None,
        metavar="C1,C2,...",
        help="class indices of --rare-crop; unset: those under 2%% of the training pixels",
    )
    a.add_argument(
        "--resize-stages",
        default=None,
        metavar="FxN,...",
        help='progressive resizing, e.g. "0.5x50,1x15": 50 epochs at half size (images, rescale range, crop), then 15 '
        "at full size; the epochs must add up to --epochs (no --budget-min); validation stays at --size",
    )
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=None, help=f"default {d.epochs}; with --resume: train an ended run further")
    o.add_argument("--batch-size", type=int, default=d.batch_size)
    o.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    o.add_argument("--lr", type=float, default=d.lr)
    o.add_argument("--weight-decay", type=float, default=d.weight_decay)
    o.add_argument("--momentum", type=float, default=d.momentum)
    o.add_argument("--schedule", choices=SCHEDULES, default=d.schedule)
    o.add_argument("--warmup", type=float, default=d.warmup, help="fraction of training")
    o.add_argument("--step-every", type=float, default=d.step_every)
    o.add_argument("--gamma", type=float, default=d.gamma)
    o.add_argument("--class-weighting", choices=CLASS_WEIGHTINGS, default=d.class_weighting)
    o.add_argument("--class-weight-power", type=float, default=d.class_weight_power, help="weights ** power (0.5 softens)")
    o.add_argument("--aux-weight", type=float, default=d.aux_weight)
    o.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    o.add_argument(
        "--loss",
        choices=SegmentationTask.losses,
        default=d.loss,
        help="ce; segmentation also lovasz (Lovász-softmax), ce+lovasz (sum; class weights on the CE part), ohem",
    )
    o.add_argument("--lovasz-per-image", action="store_true", help="Lovász-softmax per image (default: over the batch)")
    o.add_argument("--ohem-thresh", type=float, default=d.ohem_thresh, help="--loss ohem: pixels with p(true) below this")
    o.add_argument("--ohem-min-kept", type=int, default=d.ohem_min_kept, help="--loss ohem: at least this many pixels a batch")
    o.add_argument("--ema", type=float, default=d.ema, help="weight EMA decay, e.g. 0.999 (0 = off)")
    o.add_argument("--tta-flip", action="store_true", help="validate and predict with horizontal-flip test-time augmentation")
    o.add_argument(
        "--tta-scales",
        type=parse_scales,
        default=None,
        metavar="S1,S2,...",
        help="validate and predict on the image resized by each factor, e.g. 0.75,1,1.25 (mirrored too with --tta-flip)",
    )
    o.add_argument("--init", choices=INITS, default=d.init)
    o.add_argument("--patience", type=int, default=None, help="early stopping: evaluations without improvement")
    o.add_argument("--val-every", type=int, default=d.val_every, help="evaluate every K epochs and the last")
    o.add_argument("--budget-min", type=float, default=None, help="wall-clock budget in minutes")
    o.add_argument("--seed", type=int, default=d.seed)
    r = p.add_argument_group("output")
    r.add_argument("--out", default=None, help="run directory")
    r.add_argument(
        "--tag",
        action="append",
        type=parse_tag,
        default=None,
        metavar="NAME=VALUE",
        help="a free label in run.json's tags, shown as a column of the explorer's runs table, e.g. --tag sweep=lr "
        "(repeatable); with --resume, added to the run's tags",
    )
    r.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue an interrupted run from its last epoch")
    r.add_argument("--snapshot-epochs", default=None, help='e.g. "1,2,5,10,last"')
    r.add_argument("--snapshot-every", type=int, default=None)
    m = p.add_argument_group("machine")
    m.add_argument("--device", default=d.device)
    m.add_argument("--amp", choices=["auto", "bf16", "off"], default=d.amp)
    m.add_argument("--no-channels-last", action="store_true", help="keep the default (contiguous) memory format")
    m.add_argument("--workers", type=int, default=None)
    m.add_argument("--threads", type=int, default=None)
    m.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def config_from_args(ns: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        task=ns.task,
        arch=ns.arch,
        model_args=_key_values(ns.model_arg, "--model-arg"),
        dataset=ns.dataset,
        data_root=ns.data_root,
        data_options=_key_values(ns.data_opt, "--data-opt"),
        train_split=ns.train_split,
        val_split=ns.val_split,
        train_limit=ns.train_limit,
        val_limit=ns.val_limit,
        size=None if ns.native_size else tuple(ns.size),
        hflip=ns.hflip,
        scale=None if ns.no_scale else tuple(ns.scale),
        crop=tuple(ns.crop) if ns.crop else None,
        rotation=ns.rotation,
        color_jitter=ns.color_jitter,
        gamma_jitter=ns.gamma_jitter,
        blur=ns.blur,
        rare_crop=ns.rare_crop,
        rare_classes=ns.rare_classes,
        resize_stages=ns.resize_stages,
        label_smoothing=ns.label_smoothing,
        loss=ns.loss,
        lovasz_per_image=ns.lovasz_per_image,
        ohem_thresh=ns.ohem_thresh,
        ohem_min_kept=ns.ohem_min_kept,
        ema=ns.ema,
        tta_flip=ns.tta_flip,
        tta_scales=ns.tta_scales,
        eval_native=ns.eval_native,
        cache=ns.cache,
        epochs=ns.epochs if ns.epochs is not None else TrainConfig.epochs,
        batch_size=ns.batch_size,
        optimizer=ns.optimizer,
        lr=ns.lr,
        weight_decay=ns.weight_decay,
        momentum=ns.momentum,
        schedule=ns.schedule,
        warmup=ns.warmup,
        step_every=ns.step_every,
        gamma=ns.gamma,
        class_weighting=ns.class_weighting,
        class_weight_power=ns.class_weight_power,
        aux_weight=ns.aux_weight,
        init=ns.init,
        patience=ns.patience,
        val_every=ns.val_every,
        budget_min=ns.budget_min,
        seed=ns.seed,
        tags=tags_from_args(ns.tag),
        out=ns.out,
        snapshot_epochs=ns.snapshot_epochs,
        snapshot_every=ns.snapshot_every,
        device=ns.device,
        amp=ns.amp,
        channels_last=not ns.no_channels_last,
        workers=ns.workers,
        threads=ns.threads,
        progress=not ns.no_progress,
    )


def snapshot_rule(cfg: TrainConfig):
    """A predicate ``(epoch, final) -> bool`` from --snapshot-epochs / --snapshot-every."""
    if cfg.snapshot_epochs:
        parts = [s.strip() for s in cfg.snapshot_epochs.split(",") if s.strip()]
        bad = [s for s in parts if s != "last" and not s.isdigit()]
        if bad:
            raise ValueError(f"--snapshot-epochs takes epoch numbers and 'last', got {bad}")
        wanted = {int(s) for s in parts if s != "last"}
        last = "last" in parts
        return lambda e, final: e in wanted or (last and final)
    if cfg.snapshot_every:
        k = cfg.snapshot_every
        return lambda e, final: e % k == 0 or final
    return lambda e, final: True
