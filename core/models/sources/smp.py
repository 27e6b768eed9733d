"""``smp:``: every ``segmentation_models_pytorch.create_model`` architecture with any encoder, e.g. ``smp:Unet``
with ``--model-arg encoder_name=resnet34``; arguments are ``create_model``'s (``encoder_name``,
``encoder_depth``, ``decoder_channels``, ...). ``save_pretrained`` folders are read as checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from core.models.base import SegmentationModel
from core.models.sources.base import ModelSource, Wrapped, json_args, refuse_keys
from core.tasks import SegmentationTask, Task


class SmpSegmentation(Wrapped, SegmentationModel):
    """An smp model under the project's contract: ``features`` is its decoder's output, the map its
    segmentation head reads; inputs are padded to the encoder's output stride and the logits cropped back."""

    def __init__(self, net: nn.Module, *, num_classes: int, in_channels: int = 3) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        self.net = net
        self.size_divisor = net.encoder.output_stride if getattr(net, "requires_divisible_input_shape", True) else 1
        self.feature_dim = _first_conv(net.segmentation_head).in_channels

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        stages = self.net.encoder(x)
        decoded = self.net.decoder(stages)  # (B, C, h, w): what the segmentation head reads
        return {"out": self.net.segmentation_head(decoded), "features": decoded}


def _first_conv(head: nn.Module) -> nn.Conv2d:
    return next(m for m in head.modules() if isinstance(m, nn.Conv2d))


class SmpSource(ModelSource):
    prefix = "smp"
    package = "segmentation_models_pytorch"
    pip = "segmentation-models-pytorch"
    naming = "smp:<Arch> (Unet, UnetPlusPlus, FPN, DeepLabV3Plus, Segformer, ...), encoder with --model-arg encoder_name=resnet34"

    def names(self, task: type[Task] | None = None) -> list[str]:
        if task is not None and not task.dense:
            return []
        return sorted(cls.__name__ for cls in self.module().MODEL_ARCHITECTURES_MAPPING.values())

    def check_name(self, name: str) -> str:
        by_lower = {n.lower(): n for n in self.names()}
        if name.lower() not in by_lower:
            raise ValueError(f"smp: no architecture {name!r}; valid: {', '.join(self.names())}")
        return by_lower[name.lower()]

    def task(self, name: str) -> type[Task]:
        self.check_name(name)
        return SegmentationTask

    def arguments(self, name: str, args: dict[str, Any], *, num_classes: int) -> dict[str, Any]:
        self.check_name(name)
        refused = {
            "aux_params": "its classification head is not a segmentation output",
            "classes": "the dataset sets the classes",
        }
        refuse_keys("smp", args, refused)
        return json_args("smp", {"encoder_weights": None, **args, "classes": num_classes})

    def build(self, name: str, args: dict[str, Any], *, pretrained: bool = False, folder: Path | None = None) -> nn.Module:
        smp = self.module()
        kwargs = dict(args)
        if not pretrained:
            kwargs["encoder_weights"] = None  # the weights come from the run
        net = smp.create_model(self.check_name(name), **kwargs)
        return SmpSegmentation(net, num_classes=args["classes"], in_channels=args.get("in_channels", 3))

    def describe(self, model: nn.Module) -> tuple[str, dict[str, Any]] | None:
        if isinstance(model, SmpSegmentation):
            model = model.net
        config = getattr(model, "_hub_mixin_config", None)  # smp records its constructor arguments (save_pretrained)
        if config is None or not type(model).__module__.startswith("segmentation_models_pytorch"):
            return None
        args = {k: v for k, v in dict(config).items() if k not in ("aux_params", "classes")}  # the dataset sets classes
        return type(model).__name__, json_args("smp", args)

    def read_checkpoint(self, path: Path) -> tuple[str, dict[str, Any], dict[str, Tensor]] | None:
        """A ``save_pretrained`` folder: config.json (``_model_class`` and the arguments) and model.safetensors."""
        config_file, weights = path / "config.json", path / "model.safetensors"
        if not (path.is_dir() and config_file.is_file() and weights.is_file()):
            return None
        config = json.loads(config_file.read_text())
        if "_model_class" not in config:
            return None
        from safetensors.torch import load_file

        args = {k: v for k, v in config.items() if not k.startswith("_") and k not in ("aux_params", "classes")}
        return config["_model_class"], json_args("smp", args), load_file(weights)
