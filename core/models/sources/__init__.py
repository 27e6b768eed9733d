"""Model sources: one registry of adapters, so that models from other libraries train, log, import and serve
like the project's own, with no glue code.

``arch`` strings name a model and its source: ``unet`` (this project's registry), ``tv:resnet18``,
``smp:Unet``, ``timm:convnext_atto``, ``hf:segformer``, ``onnx:segmentation``. A run directory records the
source by name, and only the sources registered here can be named (``SOURCES`` is the allow-list): a run never
names a module to import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from core.models.sources.base import ModelSource, Preprocessing, SourceUnavailableError, load_stored_state, stored_state
from core.models.sources.hf import HfSource
from core.models.sources.onnx import OnnxSource
from core.models.sources.own import OwnSource
from core.models.sources.smp import SmpSource
from core.models.sources.timm import TimmSource
from core.models.sources.tv import TorchvisionSource
from core.tasks import Task
from core.utils.registry import Registry

OWN = "registry"  # the source name run.json records for this project's own models
SOURCES: Registry[ModelSource] = Registry("model source")
for _source, _name in (
    (OwnSource(), OWN),
    (TorchvisionSource(), "tv"),
    (SmpSource(), "smp"),
    (TimmSource(), "timm"),
    (HfSource(), "hf"),
    (OnnxSource(), "onnx"),
):
    SOURCES.register(_name)(_source)


def register_source(name: str, source: ModelSource) -> None:
    """Add a source (``hf``, ``onnx``, ...) to the allow-list."""
    SOURCES.register(name)(source)


def source_named(name: str | None) -> ModelSource:
    """The source a run records (``None``: a run from before sources, of this project's registry)."""
    return SOURCES.get(name or OWN)


def split_arch(arch: str) -> tuple[str, str]:
    """``"smp:Unet"`` -> ``("smp", "Unet")``; ``"unet"`` -> ``("registry", "unet")``. The source must exist."""
    source, sep, name = arch.partition(":")
    if not sep:
        return OWN, arch
    if not name:
        raise ValueError(f"{arch!r} names no model; write {source}:<name>")
    SOURCES.get(source)  # an unknown source lists the valid ones
    return source, name


def join_arch(source: str | None, name: str) -> str:
    """The ``arch`` string of a source and a model name (a registry model has no prefix)."""
    return name if (source or OWN) == OWN else f"{source}:{name}"


def arch_task(arch: str) -> type[Task]:
    source, name = split_arch(arch)
    return source_named(source).task(name)


def arch_arguments(arch: str, args: dict[str, Any], *, num_classes: int) -> dict[str, Any]:
    """Every argument a run records to rebuild ``arch`` (the builder's defaults filled in where it has them)."""
    source, name = split_arch(arch)
    return source_named(source).arguments(name, args, num_classes=num_classes)


def arch_source(arch: str) -> ModelSource:
    """The source of ``arch`` (``hf:segformer`` -> the hf source), which says what its models can do."""
    return source_named(split_arch(arch)[0])


def check_trainable(arch: str) -> None:
    """Refuse, with the source's reason, to train or resume a model that has no torch weights (an ONNX graph)."""
    reason = arch_source(arch).untrainable
    if reason:
        raise ValueError(f"{arch} cannot be trained: {reason}")


def build_arch(arch: str, args: dict[str, Any], *, pretrained: bool = False, folder: Path | None = None) -> nn.Module:
    """The model ``arch`` with recorded ``args``, under the project's contract (see ``sources.base``). The model
    remembers both (``model.arch_spec``), so a RunWriter given it needs no ``arch=``. ``folder``: the run
    directory, for a source whose models are files of it (onnx)."""
    source, name = split_arch(arch)
    model = source_named(source).build(name, args, pretrained=pretrained, folder=folder)
    model.arch_spec = (join_arch(source, name), dict(args))
    return model


def describe_model(model: nn.Module) -> tuple[str, dict[str, Any]] | None:
    """``(arch, args)`` of a model object of a library with a source, or of a model ``build_arch`` made; else None."""
    spec = getattr(model, "arch_spec", None)
    if spec is not None:  # the class count is the dataset's, as for a described model
        return spec[0], {k: v for k, v in spec[1].items() if k not in ("num_classes", "classes")}
    for name in SOURCES.names():
        found = SOURCES.get(name).describe(model)
        if found is not None:
            return join_arch(name, found[0]), found[1]
    return None


def list_sources() -> list[tuple[str, ModelSource]]:
    return [(name, SOURCES.get(name)) for name in SOURCES.names()]


__all__ = [
    "OWN",
    "SOURCES",
    "ModelSource",
    "Preprocessing",
    "SourceUnavailableError",
    "arch_arguments",
    "arch_source",
    "arch_task",
    "build_arch",
    "check_trainable",
    "describe_model",
    "join_arch",
    "list_sources",
    "load_stored_state",
    "register_source",
    "source_named",
    "split_arch",
    "stored_state",
]
