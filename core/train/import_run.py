"""Bring a model trained elsewhere into the explorer: ``python -m core.train.import_run --help``.

    python -m core.train.import_run model.pt --arch unet --model-arg base_width=16 --dataset camvid \\
        --data-root ../shared/data/camvid --size 360 480 --out runs/imported-unet

The state dict is loaded with ``torch.load(weights_only=True)`` (a plain state dict, or one under a
"model" or "state_dict" key) into the registered architecture, scored on the dataset's validation split
through the ``Predictor`` (at each label's native size) and written as a one-epoch run directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from core.data import get_dataset
from core.inference import Predictor, evaluate_predictor
from core.models import get_model, model_task
from core.runs import RunError, load_run
from core.train.config import _key_values
from core.train.writer import RunWriter


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a file, never unpickling code (``weights_only=True``)."""
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


def import_run(
    weights: str | Path,
    *,
    arch: str,
    model_args: dict[str, Any],
    dataset: str,
    out: str | Path,
    data_root: str | None = None,
    data_options: dict[str, Any] | None = None,
    size: tuple[int, int] | None = None,
    split: str = "val",
) -> Path:
    """Write ``out`` as a one-epoch run of ``arch`` with ``weights``, scored on ``dataset``'s ``split``."""
    ds = get_dataset(dataset, split, data_root, **(data_options or {}))
    if model_task(arch) is not ds.task:
        raise ValueError(f"{arch} is a {model_task(arch).name} model but {dataset} is a {ds.task.name} dataset")
    model = get_model(arch, num_classes=ds.num_classes, **model_args)
    try:
        model.load_state_dict(load_state_dict(weights), strict=True)
    except RuntimeError as e:
        raise ValueError(
            f"{weights} does not fit {arch} {model_args} with {ds.num_classes} classes: {str(e).splitlines()[0]}"
        ) from e
    writer = RunWriter(
        out,
        model=model,
        arch=arch,
        model_args=model_args,
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
    writer.log_epoch(
        1, model=model, metrics={k: v for k, v in metrics.items() if k not in ("nll", "num_items")}, val_nll=metrics["nll"]
    )
    writer.close()
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.train.import_run", description=__doc__.splitlines()[0])
    p.add_argument("weights", help="a state dict saved with torch.save(model.state_dict(), path)")
    p.add_argument("--arch", required=True, help="registered architecture (python -m core.train --list)")
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="constructor argument, repeatable")
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-root", default=None)
    p.add_argument("--data-opt", action="append", metavar="KEY=VALUE", help="dataset option, repeatable")
    p.add_argument(
        "--size", type=int, nargs=2, metavar=("H", "W"), default=None, help="input size the model expects (default: native)"
    )
    p.add_argument("--split", default="val")
    p.add_argument("--out", required=True, help="the run directory to write")
    a = p.parse_args(argv)
    try:
        out = import_run(
            a.weights,
            arch=a.arch,
            model_args=_key_values(a.model_arg, "--model-arg"),
            dataset=a.dataset,
            out=a.out,
            data_root=a.data_root,
            data_options=_key_values(a.data_opt, "--data-opt"),
            size=tuple(a.size) if a.size else None,
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
