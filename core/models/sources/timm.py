"""``timm:``: every ``timm.create_model`` classifier, e.g. ``timm:convnext_atto``; arguments are
``create_model``'s (``drop_rate``, ``in_chans``, ...). The embedding is timm's own
``forward_head(forward_features(x), pre_logits=True)``, the head its ``get_classifier()``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from core.models.base import ClassificationModel
from core.models.sources.base import ModelSource, Wrapped, json_args, refuse_keys
from core.tasks import ClassificationTask, Task

REFUSED = {
    "checkpoint_path": "a run directory never names a file to load; weights come from the run",
    "pretrained_cfg": "a run directory never names where weights come from",
    "pretrained_cfg_overlay": "a run directory never names where weights come from",
    "num_classes": "the dataset sets the class count",
}


class TimmClassifier(Wrapped, ClassificationModel):
    """A timm model under the project's contract (``features``: pre-logits, ``head``: the classifier)."""

    def __init__(self, net: nn.Module, *, num_classes: int, in_channels: int = 3) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        self.net = net
        self.feature_dim = net.num_features

    def features(self, x: Tensor) -> Tensor:
        return self.net.forward_head(self.net.forward_features(x), pre_logits=True)  # (B, D)

    def head(self, f: Tensor) -> Tensor:
        return self.net.get_classifier()(f)  # (B, K)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TimmSource(ModelSource):
    prefix = "timm"
    package = "timm"
    pip = "timm"
    naming = "timm:<name>, e.g. timm:convnext_atto or timm:resnet18 (timm.list_models())"

    def names(self, task: type[Task] | None = None) -> list[str]:
        return [] if task is not None and task.dense else self.module().list_models()

    def check_name(self, name: str) -> str:
        if not self.module().is_model(name):
            raise ValueError(f"timm: no model {name!r}; see timm.list_models(), e.g. {', '.join(self.names()[:12])}, ...")
        return name

    def task(self, name: str) -> type[Task]:
        self.check_name(name)
        return ClassificationTask

    def arguments(self, name: str, args: dict[str, Any], *, num_classes: int) -> dict[str, Any]:
        self.check_name(name)
        refuse_keys("timm", args, REFUSED)
        return json_args("timm", {"pretrained": False, **args, "num_classes": num_classes})

    def build(self, name: str, args: dict[str, Any], *, pretrained: bool = False, folder: Path | None = None) -> nn.Module:
        refuse_keys("timm", {k: v for k, v in args.items() if k != "num_classes"}, REFUSED)
        kwargs = {**args, "pretrained": bool(args.get("pretrained")) and pretrained}
        net = self.module().create_model(self.check_name(name), **kwargs)
        return TimmClassifier(net, num_classes=args["num_classes"], in_channels=args.get("in_chans", 3))

    def describe(self, model: nn.Module) -> tuple[str, dict[str, Any]] | None:
        if isinstance(model, TimmClassifier):
            model = model.net
        cfg = getattr(model, "pretrained_cfg", None)
        if not isinstance(cfg, dict) or not type(model).__module__.startswith("timm.") or not cfg.get("architecture"):
            return None
        args: dict[str, Any] = {"pretrained": False}  # the class count comes from the dataset
        stem = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        if stem is not None and stem.in_channels != 3:
            args["in_chans"] = stem.in_channels
        return cfg["architecture"], args
