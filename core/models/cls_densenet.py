"""DenseNet-121/161/169 classifiers (Huang et al., 2017) on torchvision's ``DenseNet``.

``features(x)`` is ReLU(norm5) globally average-pooled, as in torchvision's forward; ``head`` the
linear classifier. ``width_mult`` scales the growth rate and the stem width (a CPU-sized
variant); ``small_input=True`` replaces the 7x7 stride-2 stem and its max-pool with a 3x3
stride-1 convolution, so a 32x32 input ends at 4x4 instead of 1x1.
"""

from __future__ import annotations

import re

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import DenseNet, DenseNet121_Weights, DenseNet161_Weights, DenseNet169_Weights, WeightsEnum

from core.models._api import register_model
from core.models.backbones import scale_channels
from core.models.base import ClassificationModel
from core.models.cls_resnet import small_input_stem
from core.models.pretrained import check_pretrained_args, load_imagenet_weights, load_pretrained
from core.tasks import ClassificationTask

# torchvision's published checkpoints name some keys "norm.1" where the modules say "norm1".
_OLD_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


class DenseNetClassifier(ClassificationModel):
    """``backbone`` is torchvision's ``DenseNet.features`` (conv0 .. norm5)."""

    def __init__(self, net: DenseNet, *, num_classes: int, in_channels: int, small_input: bool) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        self.backbone = net.features
        if small_input:
            self.backbone.conv0 = small_input_stem(in_channels, self.backbone.conv0.out_channels)
            self.backbone.pool0 = nn.Identity()
        self.feature_dim = self.backbone.norm5.num_features
        self.fc = nn.Linear(self.feature_dim, num_classes)
        nn.init.zeros_(self.fc.bias)

    def features(self, x: Tensor) -> Tensor:
        x = F.relu(self.backbone(x))  # (B, D, H/32, W/32), or H/8 with small_input
        return F.adaptive_avg_pool2d(x, 1).flatten(1)  # (B, D)

    def head(self, f: Tensor) -> Tensor:
        return self.fc(f)  # (B, K)


def _densenet(
    name: str,
    growth_rate: int,
    block_config: tuple[int, ...],
    init_features: int,
    weights: WeightsEnum,
    *,
    num_classes: int,
    in_channels: int,
    width_mult: float,
    small_input: bool,
    pretrained: bool,
) -> DenseNetClassifier:
    check_pretrained_args(name, pretrained=pretrained, width_mult=width_mult, in_channels=in_channels)
    net = DenseNet(scale_channels(growth_rate, width_mult), block_config, scale_channels(init_features, width_mult))
    if pretrained:
        state = {}
        for k, v in load_imagenet_weights(weights).items():
            m = _OLD_KEY.match(k)
            state[m.group(1) + m.group(2) if m else k] = v
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        missing, unexpected = load_pretrained(net, state)
        missing = [k for k in missing if not k.startswith("classifier.")]
        if missing or unexpected:
            raise RuntimeError(f"{weights} does not fit: missing {missing}, unexpected {unexpected}")
    if in_channels != 3 and not small_input:
        conv0 = net.features.conv0
        net.features.conv0 = nn.Conv2d(in_channels, conv0.out_channels, 7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.features.conv0.weight)
    return DenseNetClassifier(net, num_classes=num_classes, in_channels=in_channels, small_input=small_input)


@register_model("densenet121", task=ClassificationTask)
def densenet121(
    *, num_classes: int, in_channels: int = 3, width_mult: float = 1.0, small_input: bool = False, pretrained: bool = False
) -> DenseNetClassifier:
    """DenseNet-121: growth 32, blocks (6, 12, 24, 16), 1024-d embedding at width 1."""
    return _densenet(
        "densenet121",
        32,
        (6, 12, 24, 16),
        64,
        DenseNet121_Weights.IMAGENET1K_V1,
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        small_input=small_input,
        pretrained=pretrained,
    )


@register_model("densenet161", task=ClassificationTask)
def densenet161(
    *, num_classes: int, in_channels: int = 3, width_mult: float = 1.0, small_input: bool = False, pretrained: bool = False
) -> DenseNetClassifier:
    """DenseNet-161: growth 48, blocks (6, 12, 36, 24), 2208-d embedding at width 1."""
    return _densenet(
        "densenet161",
        48,
        (6, 12, 36, 24),
        96,
        DenseNet161_Weights.IMAGENET1K_V1,
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        small_input=small_input,
        pretrained=pretrained,
    )


@register_model("densenet169", task=ClassificationTask)
def densenet169(
    *, num_classes: int, in_channels: int = 3, width_mult: float = 1.0, small_input: bool = False, pretrained: bool = False
) -> DenseNetClassifier:
    """DenseNet-169: growth 32, blocks (6, 12, 32, 32), 1664-d embedding at width 1."""
    return _densenet(
        "densenet169",
        32,
        (6, 12, 32, 32),
        64,
        DenseNet169_Weights.IMAGENET1K_V1,
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        small_input=small_input,
        pretrained=pretrained,
    )
