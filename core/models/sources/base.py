"""What a model source is: an adapter between a library's models and this project's model contract.

A source knows, for the models of its library, how to

* name them (``smp:Unet``, ``tv:lraspp_mobilenet_v3_large``, ``timm:convnext_atto``) and which task each is;
* build one from what a run records (name and keyword arguments), never fetching pretrained weights, and
  wrap it so that it honours the contract every consumer relies on: a segmentation model returns
  ``{"out": logits at the input's H x W}`` for any H x W (and ``"features"``, the per-pixel embedding its
  classifier reads, with ``features=True``); a classifier exposes ``features(x)`` and ``head(f)``;
* tell, from a model object, which of its models it is and with which arguments (``describe``);
* read its own checkpoint format (``read_checkpoint``), and the preprocessing a checkpoint declares
  (``preprocessing``: Hugging Face's ``preprocessor_config.json``).

The weights a run stores are the library's own state dict (``stored_state``): they load into the library's
model with no prefix to add or strip. A source whose models are files rather than torch weights (``onnx``)
names that file in the model's arguments (``kept_file``, relative to the run directory, which ``build`` is
given as ``folder``); its models store no tensors and cannot be trained (``untrainable`` says why).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.tasks import Task


class SourceUnavailableError(ImportError):
    """The library a source needs is not installed; the message says what to ``pip install``."""


@dataclass
class Preprocessing:
    """What a checkpoint says its inputs need (each None where it says nothing), and where that was read."""

    mean: list[float] | None = None
    std: list[float] | None = None
    size: tuple[int, int] | None = None  # (H, W) every image is resized to
    origin: str = ""  # e.g. "preprocessor_config.json"
    notes: list[str] = field(default_factory=list)  # what could not be honoured, said to the user


class ModelSource:
    """Base of every source; see the module docstring. Subclasses set the class attributes."""

    prefix: str  # "smp" for names like "smp:Unet"; "" for this project's registry
    package: str | None = None  # the module to import, e.g. "segmentation_models_pytorch"
    pip: str | None = None  # what to pip install for it
    naming: str = ""  # how to name its models, shown by ``python -m core.train --list``
    untrainable: str | None = None  # why its models cannot be trained or resumed (None: they can)
    features_from_output: bool = False  # its features are an output named at import (``--features-output``)

    # --- the library -------------------------------------------------------------------------------------
    def module(self) -> Any:
        """The library's module; a clear error if it is not installed."""
        try:
            return importlib.import_module(self.package)
        except ImportError as e:
            raise SourceUnavailableError(
                f"models of source {self.prefix!r} need the package {self.pip!r}: pip install {self.pip}"
            ) from e

    def available(self) -> bool:
        try:
            self.module()
            return True
        except SourceUnavailableError:
            return False

    # --- names ---------------------------------------------------------------------------------------------
    def names(self, task: type[Task] | None = None) -> list[str]:
        """The model names of this source (of one task), for ``--list`` and for error messages."""
        raise NotImplementedError

    def check_name(self, name: str) -> str:
        """``name`` if the library has such a model, else a ValueError listing some valid ones."""
        valid = self.names()
        if name not in valid:
            shown = ", ".join(valid[:30]) + (f", ... ({len(valid)} in all)" if len(valid) > 30 else "")
            raise ValueError(f"{self.prefix}: no model {name!r}; valid names: {shown}")
        return name

    def task(self, name: str) -> type[Task]:
        raise NotImplementedError

    # --- models --------------------------------------------------------------------------------------------
    def arguments(self, name: str, args: dict[str, Any], *, num_classes: int) -> dict[str, Any]:
        """The keyword arguments a run records for ``name``: ``args`` with the class count, refused if unsafe."""
        raise NotImplementedError

    def build(self, name: str, args: dict[str, Any], *, pretrained: bool = False, folder: Path | None = None) -> nn.Module:
        """The wrapped model for recorded ``args`` (``arguments``'s result). Pretrained weights named in ``args``
        are fetched only with ``pretrained`` (a training that asked for them); a model rebuilt from a run
        directory gets its weights from the run and never fetches anything. ``folder`` is the run directory:
        only a source whose models are files (``kept_file``) reads from it, and only inside it."""
        raise NotImplementedError

    def kept_file(self, args: dict[str, Any]) -> str | None:
        """The file of the run directory (relative path) that is the model, for a source whose models are files
        (an ``.onnx`` graph); None for the others, whose weights are the run's safetensors snapshots."""
        return None

    def describe(self, model: nn.Module) -> tuple[str, dict[str, Any]] | None:
        """``(name, args)`` of a model object of this library (or of its wrapper), None if it is not one."""
        return None

    def read_checkpoint(self, path: Path) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]] | None:
        """``(name, args, state)`` from a checkpoint in this library's own format (a folder, or a file such as an
        ``.onnx`` graph), None if it is not one."""
        return None

    def preprocessing(self, path: Path) -> Preprocessing | None:
        """The input size and normalisation a checkpoint declares, None if it declares none."""
        return None


def refuse_keys(source: str, args: dict[str, Any], refused: dict[str, str]) -> None:
    """Arguments that would fetch weights or read files named by a run directory are refused, with the reason."""
    bad = sorted(set(args) & set(refused))
    if bad:
        raise ValueError(f"{source}: argument(s) {', '.join(bad)} are not accepted: {'; '.join(refused[k] for k in bad)}")


def json_args(source: str, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` as JSON values (lists for tuples): what run.json can hold and give back unchanged."""
    try:
        return json.loads(json.dumps(args))
    except TypeError as e:
        raise ValueError(f"{source}: model arguments must be JSON values (numbers, strings, lists, dicts): {e}") from e


def stored_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights a run stores for ``model``: the library's own state dict for a wrapped model."""
    get = getattr(model, "stored_state", None)
    return get() if callable(get) else model.state_dict()


def load_stored_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load weights saved by ``stored_state`` (strictly: every tensor must fit)."""
    load = getattr(model, "load_stored_state", None)
    if callable(load):
        load(state)
    else:
        model.load_state_dict(state, strict=True)


class Wrapped:
    """Mixin for adapters that hold the library's model as ``self.net``: its state dict is what a run stores."""

    net: nn.Module

    def stored_state(self) -> dict[str, torch.Tensor]:
        return self.net.state_dict()

    def load_stored_state(self, state: dict[str, torch.Tensor]) -> None:
        self.net.load_state_dict(state, strict=True)


def state_mismatch(expected: dict[str, tuple[int, ...]], given: dict[str, tuple[int, ...]], limit: int = 10) -> str | None:
    """How a state dict's tensor shapes (``given``) differ from a model's (``expected``), or None if they fit:
    the first ``limit`` missing and unexpected names, and every tensor of the wrong shape."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    wrong = [f"{k}: {list(given[k])} instead of {list(expected[k])}" for k in expected if k in given and given[k] != expected[k]]
    if not (missing or unexpected or wrong):
        return None
    parts = []
    for label, names in (("missing", missing), ("unexpected", unexpected)):
        if names:
            more = f" and {len(names) - limit} more" if len(names) > limit else ""
            parts.append(f"{len(names)} {label} ({', '.join(names[:limit])}{more})")
    if wrong:
        parts.append(f"{len(wrong)} of another shape ({'; '.join(wrong)})")
    return "tensors " + "; ".join(parts)


def shapes_of(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}
