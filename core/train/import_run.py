"""Bring a model trained elsewhere into the explorer: ``python -m core.train.import_run --help``.

    python -m core.train.import_run model.pt --arch unet --model-arg base_width=16 --dataset camvid \\
        --data-root ../shared/data/camvid --size 360 480 --out runs/imported-unet
    python -m core.train.import_run deeplab.pt --arch tv:deeplabv3_mobilenet_v3_large --dataset camvid ...
    python -m core.train.import_run my_smp_unet/ --dataset camvid ...      # an smp save_pretrained folder
    python -m core.train.import_run my_segformer/ --dataset camvid ...     # a transformers save_pretrained folder
    python -m core.train.import_run model.onnx --dataset camvid --size 360 480 --mean 0.4 0.4 0.4 --std 0.3 0.3 0.3 \
        --features-output features --out runs/imported-onnx                 # an ONNX graph, kept in the run

A state dict is loaded with ``torch.load(weights_only=True)`` (plain, or under a "model" or "state_dict"
key; a ``.safetensors`` file too), with or without a wrapper prefix such as ``model.``, ``net.`` or
``module.``; a source's own checkpoint (smp's or transformers' ``save_pretrained`` folder, an ``.onnx`` file)
names its model itself. The model is scored on the dataset's validation split through the ``Predictor`` (at
each label's native size) and written as a one-epoch run directory.

The run's input size and normalisation: what the command line gives (``--size``, ``--mean``/``--std``) wins;
then what the model fixes (a static ONNX input) or its checkpoint declares (transformers'
``preprocessor_config.json``); then the dataset's (its mean and std, each image at its native size). run.json
records where each came from, and the summary prints it.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from core.data import get_dataset
from core.data.base import VisionDataset
from core.inference import Predictor, evaluate_predictor
from core.models import arch_arguments, arch_task, build_arch, load_stored_state, stored_state
from core.models.sources import SOURCES, Preprocessing, SourceUnavailableError, arch_source, join_arch
from core.models.sources.base import shapes_of, state_mismatch
from core.runs import RUN_FILE, RunError, load_run
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
    """``(arch, args, state)``: from a source's own checkpoint (a save_pretrained folder, an ``.onnx`` file), which
    names its model (``arch``, if given, must agree), else from a state-dict file with ``arch`` given."""
    if not weights.exists():
        raise FileNotFoundError(f"{weights} does not exist")
    for name in SOURCES.names():
        found = SOURCES.get(name).read_checkpoint(weights)
        if found is not None:
            named = join_arch(name, found[0])
            if arch is not None and arch != named:
                raise ValueError(f"{weights} holds a {named} model, not {arch}; leave --arch out, the checkpoint names its model")
            return named, found[1], found[2]
    if weights.is_dir():
        raise ValueError(
            f"{weights} is a folder but not a checkpoint folder this project reads "
            "(an smp or transformers save_pretrained folder)"
        )
    if arch is None:
        raise ValueError(
            "--arch is needed for a state-dict file: a registry name (unet), or tv:<builder>, smp:<Arch>, timm:<name>, hf:<type>"
        )
    return arch, {}, load_state_dict(weights)


@dataclass
class Inputs:
    """The run's preprocessing, and where each part came from (recorded in run.json, printed in the summary)."""

    size: tuple[int, int] | None
    mean: list[float]
    std: list[float]
    origin: dict[str, str] = field(default_factory=dict)  # "input_size" / "normalisation" -> where from
    notes: list[str] = field(default_factory=list)


def choose_inputs(
    ds: VisionDataset,
    dataset: str,
    model: nn.Module,
    declared: Preprocessing | None,
    *,
    size: tuple[int, int] | None,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> Inputs:
    """The input size and normalisation of an imported run. The command line wins; then what the model fixes (a
    static ONNX input, ``input_hw``) or its checkpoint declares (``declared``); then the dataset's. Nothing is
    guessed silently: each choice says where it came from."""
    if (mean is None) != (std is None):
        raise ValueError("give --mean and --std together (three values each), or neither")
    fixed = getattr(model, "input_hw", None)  # a --size that differs is refused by the model's check_fits, naming both
    notes = list(declared.notes) if declared else []
    if size is not None:
        hw, size_from = tuple(size), "from --size"
    elif fixed is not None:
        hw, size_from = tuple(fixed), "from the model's static input"
    elif declared is not None and declared.size is not None:
        hw, size_from = declared.size, f"from {declared.origin}; --size would win"
    else:
        hw, size_from = None, f"not given with --size: each image at {dataset}'s own size"
    if mean is not None:
        m, s, norm_from = [float(v) for v in mean], [float(v) for v in std], "from --mean/--std"
    elif declared is not None and declared.mean is not None:
        m, s, norm_from = declared.mean, declared.std, f"from {declared.origin}; --mean/--std would win"
    else:
        m, s, norm_from = list(ds.mean), list(ds.std), f"the dataset {dataset}'s: not given with --mean/--std"
    return Inputs(hw, m, s, {"input_size": size_from, "normalisation": norm_from}, notes)


def keep_file(weights: Path, out: Path, kept: str) -> None:
    """Copy a model that is a file (an ONNX graph) into the run directory, at the place its arguments name."""
    target = out / kept
    if target.exists():
        raise ValueError(f"{target} already exists; choose another --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, target)


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
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    features_output: str | None = None,
) -> Path:
    """Write ``out`` as a one-epoch run of the model in ``weights``, scored on ``dataset``'s ``split``. A model that
    is a file (an ONNX graph) is copied into ``out``; ``features_output`` names its output that holds the features.
    A failed import leaves no run behind (a folder it created is removed)."""
    weights, out = Path(weights), Path(out)
    if (out / RUN_FILE).exists():
        raise RunError(f"{out} already holds a run; choose another --out")
    ds = get_dataset(dataset, split, data_root, **(data_options or {}))
    arch, recorded, state = read_weights(weights, arch)
    if arch_task(arch) is not ds.task:
        raise ValueError(f"{arch} is a {arch_task(arch).name} model but {dataset} is a {ds.task.name} dataset")
    source, extra = arch_source(arch), dict(model_args or {})
    if features_output is not None:
        if not source.features_from_output:
            raise ValueError(f"--features-output names an output of an ONNX graph; {arch} serves its own features")
        extra["features_output"] = features_output
    args = arch_arguments(arch, {**recorded, **extra}, num_classes=ds.num_classes)
    created = not out.exists()
    try:
        kept = source.kept_file(args)
        if kept is not None:
            keep_file(weights, out, kept)
        model = _loaded(arch, args, state, weights, folder=out, num_classes=ds.num_classes)
        inputs = choose_inputs(ds, dataset, model, source.preprocessing(weights), size=size, mean=mean, std=std)
        check = getattr(model, "check_fits", None)  # a graph's shapes are checked on a probe before anything is written
        if check is not None:
            check(inputs.size or ds.load(0)[0].shape[:2])
        origin = {"weights": weights, "dataset": dataset, "split": split, "data_root": data_root, "data_options": data_options}
        _score(model, ds, out, inputs, **origin)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    return out


def _loaded(
    arch: str, args: dict[str, Any], state: dict[str, torch.Tensor], weights: Path, *, folder: Path, num_classes: int
) -> nn.Module:
    """The model ``arch`` with ``state`` loaded (a wrapper prefix removed if that makes the names fit)."""
    model = build_arch(arch, args, folder=folder)
    expected = shapes_of(stored_state(model))
    state = fit_prefix(state, expected)
    problem = state_mismatch(expected, shapes_of(state))
    if problem:
        raise ValueError(f"{weights} does not fit {arch} {args} with {num_classes} classes: {problem}")
    load_stored_state(model, state)
    return model


def _score(
    model: nn.Module,
    ds: VisionDataset,
    out: Path,
    inputs: Inputs,
    *,
    weights: Path,
    dataset: str,
    split: str,
    data_root: str | None,
    data_options: dict[str, Any] | None,
) -> None:
    """Write the run directory and its one epoch: the model scored on the split through the ``Predictor``."""
    writer = RunWriter(  # the model remembers its arch and arguments (build_arch)
        out,
        model=model,
        classes=ds.classes,
        palette=ds.palette,
        ignore_index=ds.ignore_index,
        mean=inputs.mean,
        std=inputs.std,
        input_size=inputs.size,
        dataset=dataset,
        data_options=data_options,
        data_root=data_root,
        val_split=split,
        hparams={
            "imported_from": str(weights),
            "epochs": 1,
            "preprocessing": {**inputs.origin, "notes": inputs.notes},
        },
    )
    metrics = evaluate_predictor(Predictor(load_run(out), None, model=model, device="cpu"), ds)
    extra = {k: v for k, v in metrics.items() if k not in ("nll", "num_items")}
    writer.log_epoch(1, model=model, metrics=extra, val_nll=metrics["nll"])
    writer.close()


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
        "weights",
        help="a state dict (torch.save(model.state_dict(), path), or .safetensors), an smp or transformers save_pretrained "
        "folder, or an .onnx file",
    )
    p.add_argument(
        "--arch",
        default=None,
        help="unet (registry), tv:<builder>, smp:<Arch>, timm:<name> or hf:<type>; a checkpoint folder or .onnx file "
        "names its own",
    )
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="constructor argument, repeatable")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-root", default=None)
    p.add_argument("--data-opt", action="append", metavar="KEY=VALUE", help="dataset option, repeatable")
    p.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=None,
        help="input size the model expects (default: a static ONNX input, then preprocessor_config.json, then native)",
    )
    p.add_argument(
        "--mean",
        type=float,
        nargs=3,
        default=None,
        help="normalisation mean (default: preprocessor_config.json, then the dataset's)",
    )
    p.add_argument("--std", type=float, nargs=3, default=None, help="normalisation std, with --mean")
    p.add_argument(
        "--features-output", default=None, metavar="NAME", help="the ONNX graph's output that holds its features (embeddings)"
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
            mean=a.mean,
            std=a.std,
            features_output=a.features_output,
        )
    except (ValueError, TypeError, KeyError, FileNotFoundError, RunError, SourceUnavailableError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    run = load_run(out)
    rec = run.history[0]
    shown = {k: round(v, 4) for k, v in rec.items() if k in ("pixel_acc", "miou", "top1", "top5", "mean_acc") and v is not None}
    print(f"run directory: {out}  {shown}")
    print(summary(run))
    return 0


def summary(run: Any) -> str:
    """The preprocessing an imported run records, and where each part came from."""
    origin = run.config["train"].get("preprocessing", {})
    size = "x".join(map(str, run.input_size)) if run.input_size else "native"
    mean, std = (", ".join(f"{v:.4g}" for v in run.data[k]) for k in ("mean", "std"))
    lines = [
        f"input size: {size} ({origin.get('input_size', 'not recorded')})",
        f"normalisation: mean [{mean}], std [{std}] ({origin.get('normalisation', 'not recorded')})",
    ]
    return "\n".join(lines + [f"note: {n}" for n in origin.get("notes", [])])


if __name__ == "__main__":
    sys.exit(main())
