"""The project's own registry as a source: names without a prefix (``unet``, ``resunet``, ``small_cnn``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from core.models._api import MODELS, get_model, list_models, model_args, model_task, rebuild_model
from core.models.sources.base import ModelSource
from core.tasks import Task


class OwnSource(ModelSource):
    prefix = ""
    naming = "unet, resunet, ... (the names above); arguments with --model-arg, e.g. base_width=16"

    def available(self) -> bool:
        return True

    def names(self, task: type[Task] | None = None) -> list[str]:
        return list_models(task)

    def check_name(self, name: str) -> str:
        MODELS.get(name)  # an unknown name lists the registered ones
        return name

    def task(self, name: str) -> type[Task]:
        return model_task(name)

    def arguments(self, name: str, args: dict[str, Any], *, num_classes: int) -> dict[str, Any]:
        return model_args(name, num_classes=num_classes, **args)

    def build(self, name: str, args: dict[str, Any], *, pretrained: bool = False, folder: Path | None = None) -> nn.Module:
        return get_model(name, **args) if pretrained else rebuild_model(name, args)

    def describe(self, model: nn.Module) -> tuple[str, dict[str, Any]] | None:
        return None  # a registry model is named by the caller (its builder is not recorded on the object)
