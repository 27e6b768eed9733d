"""Bring a model trained elsewhere into the explorer: ``python -m core.train.import_run --help``.

    python -m core.train.import_run model.pt --arch unet --model-arg base_width=16 --dataset camvid \\
        --data-root ../shared/data/camvid --size 360 480 --out runs/imported-unet
    python -m core.train.import_run deeplab.pt --arch tv:deeplabv3_mobilenet_v3_large --dataset camvid ...
    python -m core.train.import_run my_smp_unet/ --dataset camvid ...      # an smp save_pretrained folder

A state dict is loaded with ``torch.load(weights_only=True)`` (plain, or under a "model" or "state_dict"
key; a ``.safetensors`` file too), with or without a wrapper prefix such as ``model.``, ``net.`` or
``module.``; a source's own checkpoint folder (smp's ``save_pretrained``) names its model itself. The model
is scored on the dataset's validation split through the ``Predictor`` (at each label's native size) and
written as a one-epoch run directory.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import torch

from core.data import get_dataset
from core.inference import Predictor, evaluate_predictor
from core.models import arch_arguments, arch_task, build_arch, load_stored_state, stored_state
from core.models.sources import SOURCES, join_arch
from core.models.sources.base import shapes_of, state_mismatch
from core.runs import RunError, load_run
from core.train.config import _key_values
from core.train.writer import RunWriter

PREFIXES = ("module.", "model.", "net.", "_orig_mod.")  # DDP, Lightning and wrapper modules, torch.compile


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a file, never unpickling code (``weights_only=True``; safetensors as such)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001  (any unpickling failure means the same to the user)
        raise ValueError(f"{path} is not a state dict that can be loaded safely ({type(e).__name__}: {e})") from e
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} holds no state dict (a mapping of tensor names to tensors)")
    return obj


def fit_prefix(state: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """``state`` with a wrapper prefix removed from every key (``model.``, ``net.``, ...) when that makes its names
    the model's; otherwise unchanged (the mismatch is reported by the caller)."""
    candidates = [state]
    for prefix in PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            candidates.append({k.removeprefix(prefix): v for k, v in state.items()})
    for candidate in candidates + [_strip_twice(c) for c in candidates[1:]]:
        if set(candidate) == set(expected):
            return candidate
    return candidates[-1]


def _strip_twice(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in PREFIXES:  # e.g. "module.model." from DDP around a Lightning module
        if state and all(k.startswith(prefix) for k in state):
            return {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def read_weights(weights: Path, arch: str | None) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """``(arch, args, state)``: from a source's checkpoint folder (which names its model), else a state-dict
    file with ``arch`` given."""
    if weights.is_dir():
        for name in SOURCES.names():
            found = SOURCES.get(name).read_checkpoint(weights)
            if found is not None:
                return join_arch(name, found[0]), found[1], found[2]
        raise ValueError(f"{weights} is a folder but not a checkpoint folder this project reads (an smp save_pretrained folder)")
    if arch is None:
        raise ValueError(
            "--arch is needed for a state-dict file: a registry name (unet), or tv:<builder>, smp:<Arch>, timm:<name>"
        )
    return arch, {}, load_state_dict(weights)


def import_run(
    weights: str | Path,
    *,
    arch: str | None = None,
    model_args: dict[str, Any] | None = None,
    dataset: str,
    out: str | Path,
    data_root: str | None = None,
    data_options: dict[str, Any] | None = None,
    size: tuple[int, int] | None = None,
    split: str = "val",
) -> Path:
    """Write ``out`` as a one-epoch run of the model in ``weights``, scored on ``dataset``'s ``split``."""
    ds = get_dataset(dataset, split, data_root, **(data_options or {}))
    arch, recorded, state = read_weights(Path(weights), arch)
    if arch_task(arch) is not ds.task:
        raise ValueError(f"{arch} is a {arch_task(arch).name} model but {dataset} is a {ds.task.name} dataset")
    args = arch_arguments(arch, {**recorded, **(model_args or {})}, num_classes=ds.num_classes)
    model = build_arch(arch, args)
    expected = shapes_of(stored_state(model))
    state = fit_prefix(state, expected)
    problem = state_mismatch(expected, shapes_of(state))
    if problem:
        raise ValueError(f"{weights} does not fit {arch} {args} with {ds.num_classes} classes: {problem}")
    load_stored_state(model, state)
    writer = RunWriter(  # the model remembers its arch and arguments (build_arch)
        out,
        model=model,
        classes=ds.classes,
        palette=ds.palette,
        ignore_index=ds.ignore_index,
        mean=ds.mean,
        std=ds.std,
        input_size=size,
        dataset=dataset,
        data_options=data_options,
        data_root=data_root,
        val_split=split,
        hparams={"imported_from": str(weights), "epochs": 1},
    )
    metrics = evaluate_predictor(Predictor(load_run(out), None, model=model, device="cpu"), ds)
    extra = {k: v for k, v in metrics.items() if k not in ("nll", "num_items")}
    writer.log_epoch(1, model=model, metrics=extra, val_nll=metrics["nll"])
    writer.close()
    return Path(out)


def load_plugins(modules: list[str]) -> None:
    """Import the modules named with ``--plugins`` (they register models or datasets); nothing else is imported."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ValueError(f"--plugins {name}: cannot import it ({e}); is its package on PYTHONPATH?") from e


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.train.import_run", description=__doc__.splitlines()[0])
    p.add_argument(
        "weights", help="a state dict (torch.save(model.state_dict(), path), or .safetensors), or an smp save_pretrained folder"
    )
    p.add_argument(
        "--arch", default=None, help="unet (registry), tv:<builder>, smp:<Arch> or timm:<name>; a checkpoint folder names its own"
    )
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="constructor argument, repeatable")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-root", default=None)
    p.add_argument("--data-opt", action="append", metavar="KEY=VALUE", help="dataset option, repeatable")
    p.add_argument(
        "--size", type=int, nargs=2, metavar=("H", "W"), default=None, help="input size the model expects (default: native)"
    )
    p.add_argument("--split", default="val")
    p.add_argument("--out", required=True, help="the run directory to write")
    p.add_argument("--plugins", action="append", default=[], metavar="MODULE", help="import this module first (registers models)")
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        load_plugins(a.plugins)
        options = _key_values(a.data_opt, "--data-opt")
        size = tuple(a.size) if a.size else None
        model_args = _key_values(a.model_arg, "--model-arg")
        out = import_run(
            a.weights,
            arch=a.arch,
            model_args=model_args,
            dataset=a.dataset,
            out=a.out,
            data_root=a.data_root,
            data_options=options,
            size=size,
            split=a.split,
        )
    except (ValueError, TypeError, KeyError, FileNotFoundError, RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rec = load_run(out).history[0]
    shown = {k: round(v, 4) for k, v in rec.items() if k in ("pixel_acc", "miou", "top1", "top5", "mean_acc") and v is not None}
    print(f"run directory: {out}  {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
