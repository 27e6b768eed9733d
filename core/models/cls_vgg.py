"""VGG-16 and VGG-19-BN classifiers (Simonyan and Zisserman, 2015) on torchvision's layers.

Two heads:

* ``head="custom"`` (the report's): global average pool of the last conv stage (512-d), then
  Linear(512, 256)-ReLU-Linear(256, K). ``features(x)`` is the 256-d output of the first layer.
* ``head="mlp"``: torchvision's classifier (7x7 adaptive pool, 4096-4096 MLP with dropout) with
  a new last layer. ``features(x)`` is the 4096-d penultimate activation.

``small_input=True`` removes the first two max-pools (no parameters change, so ImageNet weights
still load): a 32x32 input ends at 4x4 instead of 1x1. ``width_mult`` scales every width.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import VGG16_Weights, VGG19_BN_Weights, WeightsEnum
from torchvision.models.vgg import cfgs as vgg_cfgs
from torchvision.models.vgg import make_layers

from core.models._api import register_model
from core.models.backbones import scale_channels
from core.models.base import ClassificationModel
from core.models.pretrained import check_pretrained_args, load_imagenet_weights, load_pretrained
from core.tasks import ClassificationTask

HEADS = ("custom", "mlp")
CUSTOM_HIDDEN = 256
MLP_HIDDEN = 4096


class VGGClassifier(ClassificationModel):
    """``backbone`` is torchvision's ``vgg.features``; ``pre_logits`` the head up to the embedding."""

    def __init__(
        self, *, cfg: str, batch_norm: bool, num_classes: int, in_channels: int, width_mult: float, head: str, small_input: bool
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        if head not in HEADS:
            raise ValueError(f"unknown VGG head {head!r}; valid: {', '.join(HEADS)}")
        layers = [v if v == "M" else scale_channels(int(v), width_mult) for v in vgg_cfgs[cfg]]
        self.backbone = make_layers(layers, batch_norm=batch_norm)
        first = self.backbone[0]
        if in_channels != 3:
            self.backbone[0] = nn.Conv2d(in_channels, first.out_channels, kernel_size=3, padding=1)
        for m in self.backbone.modules():  # torchvision's VGG initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        if small_input:
            pools = [i for i, m in enumerate(self.backbone) if isinstance(m, nn.MaxPool2d)]
            for i in pools[:2]:
                self.backbone[i] = nn.Identity()
        c5 = scale_channels(512, width_mult)
        if head == "custom":
            hidden = scale_channels(CUSTOM_HIDDEN, width_mult)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.pre_logits = nn.Sequential(nn.Linear(c5, hidden), nn.ReLU(inplace=True))
        else:
            hidden = scale_channels(MLP_HIDDEN, width_mult)
            self.pool = nn.AdaptiveAvgPool2d(7)
            self.pre_logits = nn.Sequential(  # torchvision's classifier[0:6]: same indices, same weights
                nn.Linear(c5 * 49, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(0.5),
                nn.Linear(hidden, hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(0.5),
            )
            for m in self.pre_logits.modules():
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.zeros_(m.bias)
        self.fc = nn.Linear(hidden, num_classes)
        self.feature_dim = hidden
        self.head_kind = head

    def features(self, x: Tensor) -> Tensor:
        x = self.backbone(x)  # (B, 512, H/32, W/32), or H/8 with small_input
        return self.pre_logits(self.pool(x).flatten(1))  # (B, 256) custom, (B, 4096) mlp

    def head(self, f: Tensor) -> Tensor:
        return self.fc(f)  # (B, K)

    def load_imagenet(self, weights: WeightsEnum) -> None:
        """torchvision's ``features.*`` (and for the MLP head ``classifier.0/3``); the 1000-class layer is left out."""
        state = {}
        for k, v in load_imagenet_weights(weights).items():
            if k.startswith("features."):
                state["backbone." + k.removeprefix("features.")] = v
            elif self.head_kind == "mlp" and k.split(".")[:2] in (["classifier", "0"], ["classifier", "3"]):
                state["pre_logits." + k.removeprefix("classifier.")] = v
        missing, unexpected = load_pretrained(self, state)
        missing = [
            k for k in missing if k.startswith(("backbone.", "pre_logits.") if self.head_kind == "mlp" else ("backbone.",))
        ]
        if missing or unexpected:
            raise RuntimeError(f"{weights} does not fit: missing {missing}, unexpected {unexpected}")


def _vgg(
    name: str,
    cfg: str,
    batch_norm: bool,
    weights: WeightsEnum,
    *,
    num_classes: int,
    in_channels: int,
    width_mult: float,
    head: str,
    small_input: bool,
    pretrained: bool,
) -> VGGClassifier:
    check_pretrained_args(name, pretrained=pretrained, width_mult=width_mult, in_channels=in_channels)
    model = VGGClassifier(
        cfg=cfg,
        batch_norm=batch_norm,
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        head=head,
        small_input=small_input,
    )
    if pretrained:
        model.load_imagenet(weights)
    return model


@register_model("vgg16", task=ClassificationTask)
def vgg16(
    *,
    num_classes: int,
    in_channels: int = 3,
    width_mult: float = 1.0,
    head: str = "custom",
    small_input: bool = False,
    pretrained: bool = False,
) -> VGGClassifier:
    """VGG-16 (13 conv layers, no BatchNorm). ``head``: "custom" (512-256-K) or "mlp" (4096-4096-K)."""
    return _vgg(
        "vgg16",
        "D",
        False,
        VGG16_Weights.IMAGENET1K_V1,
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        head=head,
        small_input=small_input,
        pretrained=pretrained,
    )


@register_model("vgg19_bn", task=ClassificationTask)
def vgg19_bn(
    *,
    num_classes: int,
    in_channels: int = 3,
    width_mult: float = 1.0,
    head: str = "custom",
    small_input: bool = False,
    pretrained: bool = False,
) -> VGGClassifier:
    """VGG-19 with BatchNorm after every convolution. ``head``: "custom" or "mlp"."""
    return _vgg(
        "vgg19_bn",
        "E",
        True,
        VGG19_BN_Weights.IMAGENET1K_V1,
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        head=head,
        small_input=small_input,
        pretrained=pretrained,
    )
