"""``tv:``: every torchvision segmentation builder (``tv:deeplabv3_mobilenet_v3_large``) and classifier
(``tv:resnet18``), through ``torchvision.models.get_model``; arguments are the builder's own
(``num_classes``, ``aux_loss``, ``width_mult`` for MobileNets, ...)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from core.models.base import ClassificationModel, SegmentationModel
from core.models.sources.base import ModelSource, Wrapped, json_args, refuse_keys
from core.tasks import ClassificationTask, SegmentationTask, Task

WEIGHT_ARGS = ("weights", "weights_backbone")  # fetched only when a training asks for them


def _segmentation_builders() -> list[str]:
    import torchvision

    return torchvision.models.list_models(module=torchvision.models.segmentation)


class TvSegmentation(Wrapped, SegmentationModel):
    """A torchvision segmentation model (``_SimpleSegmentationModel`` or ``LRASPP``) under the project's contract.

    The logits are exactly the library's; ``features`` is what its last 1x1 convolution reads: the head's
    penultimate map for FCN and DeepLabV3, and LR-ASPP's low and gated high branches at stride 8.
    """

    def __init__(self, net: nn.Module, *, num_classes: int, in_channels: int = 3) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        self.net = net
        self.size_divisor = 1  # torchvision's models take any size and upsample their logits themselves
        self.lraspp = hasattr(net.classifier, "low_classifier")
        if self.lraspp:
            self.feature_dim = net.classifier.low_classifier.in_channels + net.classifier.high_classifier.in_channels
        else:
            self.feature_dim = net.classifier[-1].in_channels

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        maps = self.net.backbone(x)
        if self.lraspp:
            out, features = self._lraspp(maps)
        else:
            *head, last = list(self.net.classifier)
            features = maps["out"]
            for layer in head:
                features = layer(features)  # (B, C, H/s, W/s)
            out = last(features)  # (B, K, H/s, W/s)
        result = {"out": out, "features": features}
        aux = getattr(self.net, "aux_classifier", None)
        if aux is not None and self.training:
            result["aux"] = aux(maps["aux"])
        return result

    def _lraspp(self, maps: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        head = self.net.classifier
        low, high = maps["low"], maps["high"]  # stride 8 and 16
        high = head.cbr(high) * head.scale(high)
        high = nn.functional.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        out = head.low_classifier(low) + head.high_classifier(high)  # torchvision's LRASPPHead, term by term
        return out, torch.cat([low, high], dim=1)


def _last_linear(net: nn.Module) -> str | None:
    """The dotted name of the final ``nn.Linear`` (the classifier layer), None if the network ends otherwise."""
    linears = [name for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


class TvClassifier(ClassificationModel):
    """A torchvision classifier under the project's contract: ``features`` is the input of its final linear
    layer, ``head`` that layer. The layer is moved out of the network (an identity takes its place), so one
    pass gives the embedding and the logits; ``stored_state`` puts it back under its own name."""

    def __init__(self, net: nn.Module, *, num_classes: int, in_channels: int = 3) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        path = _last_linear(net)
        if path is None:  # SqueezeNet: a 1x1 convolution ends it, so no embedding is defined
            raise ValueError(f"{type(net).__name__} has no final linear layer, so it has no embedding to serve")
        parent_name, _, attr = path.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        self.fc = getattr(parent, attr)
        setattr(parent, attr, nn.Identity())
        self.net, self.fc_path = net, path
        self.feature_dim = self.fc.in_features

    def features(self, x: Tensor) -> Tensor:
        out = self.net(x)
        return out.logits if hasattr(out, "logits") else out  # Inception and GoogLeNet add aux outputs in training

    def forward(self, x: Tensor) -> Tensor | dict[str, Tensor]:
        out = self.net(x)
        if not hasattr(out, "logits"):
            return self.fc(out)  # (B, K)
        aux = getattr(out, "aux_logits", None)
        if aux is None:
            aux = getattr(out, "aux_logits2", None)  # GoogLeNet's later auxiliary head
        logits = self.fc(out.logits)
        return logits if aux is None else {"out": logits, "aux": aux}

    def head(self, f: Tensor) -> Tensor:
        return self.fc(f)

    def stored_state(self) -> dict[str, Tensor]:
        state = dict(self.net.state_dict())
        state.update({f"{self.fc_path}.{k}": v for k, v in self.fc.state_dict().items()})
        return state

    def load_stored_state(self, state: dict[str, Tensor]) -> None:
        prefix = self.fc_path + "."
        self.fc.load_state_dict({k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}, strict=True)
        self.net.load_state_dict({k: v for k, v in state.items() if not k.startswith(prefix)}, strict=True)


class TorchvisionSource(ModelSource):
    prefix = "tv"
    package = "torchvision"
    pip = "torchvision"
    naming = "tv:<builder>, e.g. tv:deeplabv3_mobilenet_v3_large or tv:resnet18 (torchvision.models.list_models())"

    def names(self, task: type[Task] | None = None) -> list[str]:
        import torchvision

        seg = _segmentation_builders()
        every = sorted(set(torchvision.models.list_models(module=torchvision.models)) | set(seg))
        return [n for n in every if task is None or (n in seg) == task.dense]

    def task(self, name: str) -> type[Task]:
        self.check_name(name)
        return SegmentationTask if name in _segmentation_builders() else ClassificationTask

    def arguments(self, name: str, args: dict[str, Any], *, num_classes: int) -> dict[str, Any]:
        self.check_name(name)
        refuse_keys("tv", args, {"progress": "it only concerns downloads"})
        return json_args("tv", {**args, "num_classes": num_classes})

    def build(self, name: str, args: dict[str, Any], *, pretrained: bool = False, folder: Path | None = None) -> nn.Module:
        import torchvision

        self.check_name(name)
        kwargs = dict(args)
        for key in WEIGHT_ARGS:  # torchvision's builders default to ImageNet backbones: never implicitly
            kwargs[key] = kwargs.get(key) if pretrained else None
        if self.task(name).dense:
            kwargs.setdefault("weights_backbone", None)
        else:
            kwargs.pop("weights_backbone", None)
        net = torchvision.models.get_model(name, **kwargs)
        wrapper = TvSegmentation if self.task(name).dense else TvClassifier
        return wrapper(net, num_classes=args["num_classes"])

    def describe(self, model: nn.Module) -> tuple[str, dict[str, Any]] | None:
        """The builder whose model has exactly this module tree, tried on the meta device (no memory, no weights)."""
        import torchvision

        if isinstance(model, (TvSegmentation, TvClassifier)):
            model = model.net
        if not type(model).__module__.startswith("torchvision.models"):
            return None
        if hasattr(model, "classifier") and hasattr(model, "backbone"):  # segmentation
            last = model.classifier.low_classifier if hasattr(model.classifier, "low_classifier") else model.classifier[-1]
            args = {"num_classes": last.out_channels}
            if hasattr(model, "aux_classifier"):
                args["aux_loss"] = model.aux_classifier is not None
        else:
            fc = model.get_submodule(_last_linear(model) or "")
            args = {"num_classes": getattr(fc, "out_features", None)}
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        for name in self.names():
            returns = inspect.signature(torchvision.models.get_model_builder(name)).return_annotation
            if getattr(returns, "__name__", returns) != type(model).__name__:
                continue
            try:
                with torch.device("meta"):
                    candidate = torchvision.models.get_model(name, weights=None, **self._defaults(name), **args)
            except (TypeError, ValueError):
                continue
            if {k: tuple(v.shape) for k, v in candidate.state_dict().items()} == shapes:
                return name, {k: v for k, v in args.items() if k != "num_classes"}  # the dataset sets the class count
        return None

    def _defaults(self, name: str) -> dict[str, Any]:
        return {"weights_backbone": None} if name in _segmentation_builders() else {}
