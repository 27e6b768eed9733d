"""CamVid from scratch on a CPU, under a wall-clock budget, scored at the labels' native 360x480.

Train a recipe (writes a normal run directory) and print the final val mIoU, pixel accuracy,
per-class IoU, epochs done, seconds per epoch and images/s::

    python bench/camvid.py --arch resunet --budget-min 60 [--seed 0] [--data-root ../shared/data/camvid]

Protocols (``--holdout``):

* standard (default): train on train (367 images), validate on val (101 images of sequence 0016E5,
  the same drive as 204 training images: it rewards memorising that street);
* leave one sequence out, ``--holdout 0006R0``: train on train minus every frame of that driving
  sequence (read from the file-name prefix), validate on the left-out frames. This is the proxy for
  unseen streets on which recipes are chosen. The final model is also scored on the standard val.

Evaluate a finished run on a test split (never used for any choice)::

    python bench/camvid.py --split test --data-root <CamVid copy with test/> --run <run dir>

Score it with multi-scale test-time augmentation (and the run's flip setting), printing its cost per image::

    python bench/camvid.py --run <run dir> --split holdout --holdout 0006R0 --tta-scales 0.75,1,1.25

Recipes (architecture, resolution, augmentation, loss weighting, schedule) live in RECIPES;
any field can be overridden from the command line (``--size``, ``--crop``, ``--lr``, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

# Imported here, not lazily: a run takes an hour, and the code it ends with must be the code it started with.
from core.data import get_dataset  # noqa: E402
from core.data.camvid import CLASSES  # noqa: E402
from core.inference import Predictor, evaluate_predictor  # noqa: E402
from core.runs import load_run  # noqa: E402
from core.train import train  # noqa: E402
from core.train.config import parse_classes, parse_resize_stages, parse_scales  # noqa: E402

DEFAULT_ROOT = ROOT.parent / "shared" / "data" / "camvid"

# Each recipe is a set of TrainConfig fields. "resunet" and "unet" were chosen on the val split (issue 6);
# "resunet60" and "zoo15" on the held-out-sequence proxy (--holdout 0006R0; see BENCHMARKS.md).
MID_RESUNET = {
    "widths": [32, 48, 96, 112, 112],
    "blocks": [2, 2, 2, 2],
}  # 2.05M parameters: 5 float16 snapshots fit the zoo's 80 MB
RECIPES: dict[str, dict] = {
    "resunet": dict(
        arch="resunet", model_args={}, size=(360, 480), crop=(288, 384), scale=(0.75, 1.25), hflip=0.5,
        color_jitter=0.0, batch_size=8, optimizer="adamw", lr=2e-3, weight_decay=1e-4, schedule="onecycle",
        class_weighting="median", class_weight_power=0.5, val_every=5, snapshot_every=5,
    ),
    "resunet60": dict(
        arch="resunet", model_args=MID_RESUNET, size=(360, 480), crop=(288, 384), scale=(0.75, 1.25), hflip=0.5,
        color_jitter=0.0, batch_size=8, optimizer="adamw", lr=2e-3, weight_decay=1e-4, schedule="onecycle",
        class_weighting="median", class_weight_power=0.5, ema=0.995, tta_flip=True, val_every=5, snapshot_every=5,
    ),
    "zoo15": dict(  # one recipe for every architecture of the CamVid zoo: the same data, loss and schedule
        arch="resunet", model_args=MID_RESUNET, size=(360, 480), crop=(288, 384), scale=(0.75, 1.25), hflip=0.5,
        color_jitter=0.0, batch_size=8, optimizer="adamw", lr=2e-3, weight_decay=1e-4, schedule="onecycle",
        class_weighting="median", class_weight_power=0.5, ema=0.995, val_every=4, snapshot_every=4,
    ),
    "unet": dict(
        arch="unet", model_args={"base_width": 16}, size=(180, 240), crop=(176, 224), scale=(0.75, 1.25), hflip=0.5,
        batch_size=8, optimizer="adamw", lr=2e-3, weight_decay=1e-4, schedule="onecycle", class_weighting="median",
        val_every=5, snapshot_every=5,
    ),
}  # fmt: skip


def add_recipe_arguments(p: argparse.ArgumentParser) -> None:
    """--recipe, --arch and every recipe override: shared with bench/camvid_speed.py, which times what this trains."""
    p.add_argument("--recipe", default=None, choices=sorted(RECIPES), help="recipe to train (default: the one named by --arch)")
    p.add_argument(
        "--arch",
        default=None,
        help="without --recipe: the recipe of that name (default resunet); with it: the architecture to train with the recipe",
    )
    g = p.add_argument_group("recipe overrides")
    g.add_argument("--size", type=int, nargs=2, default=None)
    g.add_argument("--crop", type=int, nargs=2, default=None)
    g.add_argument("--scale", type=float, nargs=2, default=None)
    g.add_argument("--batch-size", type=int, default=None)
    g.add_argument("--lr", type=float, default=None)
    g.add_argument("--weight-decay", type=float, default=None)
    g.add_argument("--schedule", default=None)
    g.add_argument("--class-weighting", default=None)
    g.add_argument("--class-weight-power", type=float, default=None)
    g.add_argument("--color-jitter", type=float, default=None)
    g.add_argument("--rotation", type=float, default=None)
    g.add_argument("--val-every", type=int, default=None)
    g.add_argument("--hflip", type=float, default=None)
    g.add_argument("--gamma-jitter", type=float, default=None, help="random gamma in [1-g, 1+g]")
    g.add_argument("--blur", type=float, default=None, help="probability of a Gaussian blur")
    g.add_argument("--label-smoothing", type=float, default=None)
    g.add_argument("--rare-crop", type=float, default=None, metavar="P", help="probability of a crop centred on a rare class")
    g.add_argument(
        "--rare-classes",
        type=parse_classes,
        default=None,
        metavar="C1,C2,...",
        help="classes of --rare-crop; unset: those under 2%% of the training pixels (CamVid: Pole, SignSymbol, Fence, "
        "Pedestrian, Bicyclist)",
    )
    g.add_argument(
        "--resize-stages",
        default=None,
        metavar="FxN,...",
        help='progressive resizing, e.g. "0.5x50,1x15"; trains their epoch sum (or --epochs, which must equal it), '
        "never under --budget-min",
    )
    g.add_argument("--loss", default=None, choices=["ce", "lovasz", "ce+lovasz", "ohem"], help="training loss (recipes: ce)")
    g.add_argument("--lovasz-per-image", action="store_true", default=None, help="Lovász-softmax per image, not per batch")
    g.add_argument("--ohem-thresh", type=float, default=None, help="--loss ohem: pixels with p(true) below this (0.7)")
    g.add_argument("--ohem-min-kept", type=int, default=None, help="--loss ohem: at least this many pixels a batch (100000)")
    g.add_argument("--ema", type=float, default=None, help="weight EMA decay (0 = off)")
    g.add_argument("--tta-flip", action="store_true", default=None, help="flip test-time augmentation (recorded in the run)")
    g.add_argument(
        "--tta-scales",
        type=parse_scales,
        default=None,
        metavar="S1,S2,...",
        help="multi-scale test-time augmentation, e.g. 0.75,1,1.25 (recorded in the run; with --run: score with it)",
    )
    g.add_argument("--train-split", default=None, choices=["train", "trainval"], help="trainval: train + val (468 images)")
    g.add_argument("--model-arg", action="append", metavar="KEY=VALUE", default=None)
    g.add_argument("--snapshot-epochs", default=None, help='e.g. "1,3,8,16,last"')
    g.add_argument(
        "--amp",
        default=None,
        choices=["auto", "bf16", "off"],
        help="autocast: auto = float16 on CUDA only; bf16 also on a CPU (fast with AVX512-BF16 or AMX)",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_recipe_arguments(p)
    p.add_argument("--data-root", default=str(DEFAULT_ROOT))
    p.add_argument("--budget-min", type=float, default=60.0, help="wall-clock budget of the whole run")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="train exactly this many epochs instead (schedule on steps): comparisons that a busy machine cannot skew",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run directory (default runs/camvid-<arch>-s<seed>-<time>)")
    p.add_argument(
        "--holdout",
        default=None,
        metavar="SEQUENCE",
        help="leave-one-sequence-out protocol: train without this sequence (e.g. 0006R0), validate on it",
    )
    p.add_argument(
        "--split",
        default="val",
        choices=["val", "test", "holdout"],
        help="with --run: evaluate that run on this split (holdout needs --holdout)",
    )
    p.add_argument("--run", default=None, help="with --split test: the finished run to evaluate")
    p.add_argument("--epoch", default="last", help="with --split test: the epoch to evaluate (last, best or a number)")
    p.add_argument("--progress", action="store_true", help="tqdm bars")
    return p.parse_args(argv)


def recipe_fields(args: argparse.Namespace) -> dict:
    """The TrainConfig fields of the recipe that ``--recipe`` / ``--arch`` name, with the command line's overrides."""
    from core.train.config import _key_values

    name = args.recipe or args.arch or "resunet"
    if name not in RECIPES:
        raise SystemExit(
            f"no recipe {name!r}; recipes: {', '.join(sorted(RECIPES))} (use --recipe R --arch A for another architecture)"
        )
    recipe = dict(RECIPES[name])
    if args.recipe and args.arch:  # the recipe applied to another architecture
        recipe.update(arch=args.arch, model_args={})
    overrides = {
        "size": args.size,
        "crop": args.crop,
        "scale": args.scale,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "schedule": args.schedule,
        "class_weighting": args.class_weighting,
        "class_weight_power": args.class_weight_power,
        "color_jitter": args.color_jitter,
        "rotation": args.rotation,
        "val_every": args.val_every,
        "hflip": args.hflip,
        "gamma_jitter": args.gamma_jitter,
        "blur": args.blur,
        "label_smoothing": args.label_smoothing,
        "rare_crop": args.rare_crop,
        "rare_classes": args.rare_classes,
        "resize_stages": args.resize_stages,
        "loss": args.loss,
        "lovasz_per_image": args.lovasz_per_image,
        "ohem_thresh": args.ohem_thresh,
        "ohem_min_kept": args.ohem_min_kept,
        "ema": args.ema,
        "tta_flip": args.tta_flip,
        "tta_scales": args.tta_scales,
        "train_split": args.train_split,
        "snapshot_epochs": args.snapshot_epochs,
        "amp": args.amp,
    }
    if args.snapshot_epochs:
        recipe.pop("snapshot_every", None)
    recipe.update({k: (tuple(v) if k in ("size", "crop", "scale") else v) for k, v in overrides.items() if v is not None})
    if args.model_arg:
        recipe["model_args"] = {**recipe["model_args"], **_key_values(args.model_arg, "--model-arg")}
    return recipe


def recipe_config(args: argparse.Namespace):
    from core.train.config import TrainConfig

    recipe = recipe_fields(args)
    out = args.out or str(ROOT / "runs" / f"camvid-{recipe['arch']}-s{args.seed}-{time.strftime('%Y%m%d-%H%M%S')}")
    if args.holdout:
        recipe.update(data_options={"holdout": args.holdout}, val_split="holdout")  # trainval also leaves it out
    # A staged run counts epochs (its stages' sum unless --epochs is given); it never runs on the clock.
    epochs = args.epochs or (sum(n for _, n in parse_resize_stages(args.resize_stages)) if args.resize_stages else None)
    return TrainConfig(
        **recipe,
        dataset="camvid",
        data_root=args.data_root,
        epochs=epochs or 10_000,
        budget_min=None if epochs else args.budget_min,
        eval_native=True,
        cache=True,
        seed=args.seed,
        out=out,
        threads=args.threads,
        workers=args.workers if args.workers is not None else 0,
        progress=args.progress,
    )


def report(metrics: dict, title: str) -> None:
    print(f"\n{title}")
    print(f"  mIoU {metrics['miou']:.4f}   pixel acc {metrics['pixel_acc']:.4f}   mean acc {metrics['mean_acc']:.4f}")
    print("  per-class IoU:")
    for name, iou in zip(CLASSES, metrics["iou"]):
        print(f"    {name:<11} {'nan' if iou is None else f'{iou:.3f}'}")


def train_and_report(args: argparse.Namespace) -> None:
    cfg = recipe_config(args)
    print(
        f"recipe {args.recipe or args.arch or 'resunet'}: "
        + json.dumps({k: v for k, v in cfg.to_dict().items() if k not in ("progress",)}, default=str)
    )
    wall = time.perf_counter()
    out = train(cfg)
    wall = time.perf_counter() - wall
    run = load_run(out)
    last = run.history[-1]
    epochs = len(run.history)
    train_seconds = [r["train_images"] / r["images_per_s"] for r in run.history]
    what = f"held-out sequence {args.holdout}" if args.holdout else "val"
    report(last, f"final {what} (epoch {last['epoch']}, scored at 360x480 against the original label maps)")
    result = {
        "run": str(out),
        "seed": args.seed,
        "budget_min": cfg.budget_min,
        "epochs": epochs,
        "train": cfg.train_split,
        "protocol": f"holdout {args.holdout}" if args.holdout else "standard",
        ("holdout_miou" if args.holdout else "val_miou"): last["miou"],
    }
    if args.holdout and cfg.train_split == "train":  # val (0016E5) was not trained on: score it too
        val = score_split(run, "val", args.data_root)
        report(val, "the same final model on the standard val split")
        result["val_miou"] = val["miou"]
    print(
        f"\n  epochs done {epochs}; {sum(r['epoch_time'] for r in run.history) / epochs:.1f} s per epoch "
        f"({sum(train_seconds) / epochs:.1f} s training); {sum(r['train_images'] for r in run.history) / sum(train_seconds):.2f} "
        f"images/s; wall clock {wall / 60:.1f} min (budget {args.budget_min} min); seed {args.seed}"
    )
    print(f"  run directory: {out}")
    print("RESULT " + json.dumps(result))


def score_split(
    run,
    split: str,
    data_root: str,
    epoch: str | int = "last",
    *,
    holdout: str | None = None,
    tta_flip: bool | None = None,
    tta_scales: list[float] | None = None,
) -> dict:
    """A run's model scored on a CamVid split at native size, through the Predictor (flip and multi-scale TTA:
    the run's settings unless ``tta_flip`` / ``tta_scales`` say otherwise). Adds ``seconds_per_image``: the
    prediction time per image (preprocessing, every TTA pass, softmax at native size; not the data loading)."""
    predictor = Predictor(run, epoch, device="cpu", tta_flip=tta_flip, tta_scales=tta_scales)
    ds = get_dataset("camvid", split, data_root, holdout=holdout)
    timed = _TimedPredictor(predictor)
    metrics = evaluate_predictor(timed, ds, batch_size=4, progress=False)
    tta = {"tta_flip": predictor.tta_flip, "tta_scales": list(predictor.tta_scales) or None}
    return {**metrics, **tta, "seconds_per_image": timed.seconds / max(1, timed.images)}


class _TimedPredictor:
    """A Predictor that adds up the time spent in ``predict``, so scoring also reports what TTA costs."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor, self.seconds, self.images = predictor, 0.0, 0

    def __getattr__(self, name: str):
        return getattr(self.predictor, name)

    def predict(self, images):
        start = time.perf_counter()
        out = self.predictor.predict(images)
        self.seconds += time.perf_counter() - start
        self.images += len(images)
        return out


def evaluate_split(args: argparse.Namespace) -> None:
    """Score a finished run through the Predictor (the run's own preprocessing) at native size."""
    if not args.run:
        raise SystemExit("--split test needs --run <run directory>")
    run = load_run(args.run)
    epoch = args.epoch if args.epoch in ("best", "last") else int(args.epoch)
    metrics = score_split(
        run, args.split, args.data_root, epoch, holdout=args.holdout, tta_flip=args.tta_flip, tta_scales=args.tta_scales
    )
    scales = metrics["tta_scales"]
    tta = ", ".join(
        ([f"scales {','.join(f'{s:g}' for s in scales)}"] if scales else []) + (["flip"] if metrics["tta_flip"] else [])
    )
    report(
        metrics,
        f"{args.split} split ({metrics['num_items']} images), run {run.name} at epoch {run.resolve_epoch(epoch)}, "
        f"scored at native size" + (f" with TTA ({tta})" if tta else " without TTA"),
    )
    print(f"  inference {metrics['seconds_per_image'] * 1000:.0f} ms per image ({args.threads} threads, batch 4)")
    result = {
        "run": str(run.path),
        "split": args.split,
        "tta_flip": metrics["tta_flip"],
        "tta_scales": scales,
        "miou": metrics["miou"],
        "seconds_per_image": metrics["seconds_per_image"],
    }
    print("RESULT " + json.dumps(result))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    if args.run:
        evaluate_split(args)
    else:
        train_and_report(args)


if __name__ == "__main__":
    main()
