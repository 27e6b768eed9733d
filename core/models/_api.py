"""The model registry: ``register_model``, ``get_model``, ``list_models``, ``model_args``."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from core.tasks import Task, task_type
from core.utils.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
# Builder arguments that fetch ImageNet weights. A run directory records them, but a model
# rebuilt from a run gets its weights from the run, so they are switched off then.
PRETRAINED_ARGS = ("pretrained_backbone", "pretrained")


def register_model(name: str, *, task: type[Task]) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a keyword-only builder ``builder(*, num_classes, ...) -> nn.Module`` of a task (``core.tasks``)."""
    return MODELS.register(name, task=task_type(task))


def list_models(task: type[Task] | str | None = None) -> list[str]:
    """Registered model names, optionally only those of one task."""
    return MODELS.names(task=None if task is None else task_type(task))


def model_task(name: str) -> type[Task]:
    """The task of a registered model (``core.tasks.SegmentationTask`` or ``ClassificationTask``)."""
    return MODELS.meta(name)["task"]


def _builder_params(name: str) -> dict[str, inspect.Parameter]:
    params = inspect.signature(MODELS.get(name)).parameters
    return {k: p for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def model_args(name: str, **cfg: Any) -> dict[str, Any]:
    """Every constructor argument of ``name`` with ``cfg`` applied over the defaults.

    ``None`` values in ``cfg`` are dropped so unset command-line options never override a
    model's defaults. An unknown argument is an error that lists the valid ones.
    """
    params = _builder_params(name)
    cfg = {k: v for k, v in cfg.items() if v is not None}
    unknown = sorted(set(cfg) - set(params))
    if unknown:
        valid = ", ".join(sorted(params))
        raise TypeError(f"model {name!r} got unknown argument(s) {', '.join(unknown)}; valid arguments: {valid}")
    args = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    args.update(cfg)
    missing = sorted(k for k in params if k not in args)
    if missing:
        raise TypeError(f"model {name!r} needs argument(s) {', '.join(missing)}")
    return args


def get_model(name: str, **cfg: Any) -> nn.Module:
    """Build a registered model, e.g. ``get_model("unet", num_classes=11, base_width=16)``. The model remembers its
    name and arguments (``model.arch_spec``), so ``RunWriter`` needs no ``arch=`` for it."""
    args = model_args(name, **cfg)
    model = MODELS.get(name)(**args)
    model.arch_spec = (name, args)
    return model


def rebuild_model(name: str, args: dict[str, Any]) -> nn.Module:
    """Build a model from recorded constructor arguments without fetching pretrained weights."""
    params = _builder_params(name)
    args = {k: (False if k in PRETRAINED_ARGS else v) for k, v in args.items()}
    unknown = sorted(set(args) - set(params))
    if unknown:
        raise TypeError(
            f"model {name!r} no longer accepts recorded argument(s) {', '.join(unknown)}; "
            "the run was written by an incompatible version"
        )
    return MODELS.get(name)(**args)
