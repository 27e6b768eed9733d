"""ResNet and ResNeXt classifiers on torchvision's networks, with optional ImageNet weights.

``features(x)`` is the globally average-pooled layer4 output (512-d for ResNet-18, 2048-d for
the bottleneck nets), ``head`` the final linear layer. ``small_input=True`` swaps the 7x7
stride-2 stem and its max-pool for a 3x3 stride-1 convolution (the CIFAR ResNet stem), so a
32x32 input ends at 4x4 instead of 1x1; with ImageNet weights that one convolution starts fresh.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import (
    ResNet18_Weights,
    ResNet50_Weights,
    ResNet152_Weights,
    ResNeXt50_32X4D_Weights,
    ResNeXt101_32X8D_Weights,
    WeightsEnum,
)
from torchvision.models import (
    resnext50_32x4d as tv_resnext50_32x4d,
)
from torchvision.models import (
    resnext101_32x8d as tv_resnext101_32x8d,
)
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from core.models._api import register_model
from core.models.backbones import ResNetBackbone
from core.models.base import ClassificationModel
from core.models.pretrained import check_pretrained_args, load_imagenet_weights, load_pretrained
from core.tasks import ClassificationTask


def small_input_stem(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 3x3 stride-1 convolution that replaces a strided ImageNet stem for 32x32-sized inputs."""
    conv = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


class ResNetClassifier(ClassificationModel):
    """A torchvision ResNet trunk (``backbone``: conv1 .. layer4, torchvision's names) + pool + linear."""

    def __init__(self, backbone: ResNet, *, num_classes: int, in_channels: int, small_input: bool) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        for name in ("avgpool", "fc"):  # the trunk only; this class owns pooling and the head
            if hasattr(backbone, name):
                delattr(backbone, name)
        self.backbone = backbone
        if small_input:
            backbone.conv1 = small_input_stem(in_channels, backbone.conv1.out_channels)
            backbone.maxpool = nn.Identity()
        last = backbone.layer4[-1]
        self.feature_dim = (last.bn3 if isinstance(last, Bottleneck) else last.bn2).num_features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))  # (B, C0, H/4, W/4), or (B, C0, H, W) with small_input
        x = b.layer4(b.layer3(b.layer2(b.layer1(x))))  # (B, D, H/32, W/32)
        return self.pool(x).flatten(1)  # (B, D)

    def head(self, f: Tensor) -> Tensor:
        return self.fc(f)  # (B, K)


def _load_trunk_weights(trunk: nn.Module, weights: WeightsEnum) -> None:
    """ImageNet weights into a torchvision-named trunk; only the 1000-class ``fc`` is left out."""
    state = {k: v for k, v in load_imagenet_weights(weights).items() if not k.startswith("fc.")}
    missing, unexpected = load_pretrained(trunk, state)
    if missing or unexpected:
        raise RuntimeError(f"{weights} does not fit: missing {missing}, unexpected {unexpected}")


def _resnet(
    block: type[BasicBlock | Bottleneck],
    layers: list[int],
    weights: WeightsEnum,
    name: str,
    *,
    num_classes: int,
    in_channels: int,
    width_mult: float,
    small_input: bool,
    pretrained: bool,
) -> ResNetClassifier:
    check_pretrained_args(name, pretrained=pretrained, width_mult=width_mult, in_channels=in_channels)
    trunk = ResNetBackbone(block, layers, width_mult=width_mult, in_channels=in_channels)
    if pretrained:  # before the stem is swapped, so every ImageNet tensor has its place
        _load_trunk_weights(trunk, weights)
    return ResNetClassifier(trunk, num_classes=num_classes, in_channels=in_channels, small_input=small_input)


def _resnext(
    builder, weights: WeightsEnum, name: str, *, num_classes: int, in_channels: int, small_input: bool, pretrained: bool
) -> ResNetClassifier:
    check_pretrained_args(name, pretrained=pretrained, in_channels=in_channels)
    trunk = builder(weights=None)
    if pretrained:
        _load_trunk_weights(trunk, weights)
    if in_channels != 3 and not small_input:
        trunk.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(trunk.conv1.weight, mode="fan_out", nonlinearity="relu")
    return ResNetClassifier(trunk, num_classes=num_classes, in_channels=in_channels, small_input=small_input)


@register_model("resnet18", task=ClassificationTask)
def resnet18(
    *, num_classes: int, in_channels: int = 3, width_mult: float = 1.0, small_input: bool = False, pretrained: bool = False
) -> ResNetClassifier:
    """ResNet-18 (He et al., 2016); ``width_mult`` scales every stage for a CPU-sized variant."""
    return _resnet(
        BasicBlock,
        [2, 2, 2, 2],
        ResNet18_Weights.IMAGENET1K_V1,
        "resnet18",
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        small_input=small_input,
        pretrained=pretrained,
    )


@register_model("resnet50", task=ClassificationTask)
def resnet50(
    *, num_classes: int, in_channels: int = 3, width_mult: float = 1.0, small_input: bool = False, pretrained: bool = False
) -> ResNetClassifier:
    """ResNet-50, bottleneck blocks, 2048-d embedding at width 1."""
    return _resnet(
        Bottleneck,
        [3, 4, 6, 3],
        ResNet50_Weights.IMAGENET1K_V1,
        "resnet50",
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        small_input=small_input,
        pretrained=pretrained,
    )


@register_model("resnet152", task=ClassificationTask)
def resnet152(
    *, num_classes: int, in_channels: int = 3, width_mult: float = 1.0, small_input: bool = False, pretrained: bool = False
) -> ResNetClassifier:
    """ResNet-152, bottleneck blocks, 2048-d embedding at width 1."""
    return _resnet(
        Bottleneck,
        [3, 8, 36, 3],
        ResNet152_Weights.IMAGENET1K_V1,
        "resnet152",
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        small_input=small_input,
        pretrained=pretrained,
    )


@register_model("resnext50_32x4d", task=ClassificationTask)
def resnext50_32x4d(
    *, num_classes: int, in_channels: int = 3, small_input: bool = False, pretrained: bool = False
) -> ResNetClassifier:
    """ResNeXt-50 32x4d (Xie et al., 2017). Grouped widths do not scale, so there is no width option."""
    return _resnext(
        tv_resnext50_32x4d,
        ResNeXt50_32X4D_Weights.IMAGENET1K_V1,
        "resnext50_32x4d",
        num_classes=num_classes,
        in_channels=in_channels,
        small_input=small_input,
        pretrained=pretrained,
    )


@register_model("resnext101_32x8d", task=ClassificationTask)
def resnext101_32x8d(
    *, num_classes: int, in_channels: int = 3, small_input: bool = False, pretrained: bool = False
) -> ResNetClassifier:
    """ResNeXt-101 32x8d; 88M parameters, so mostly useful with ImageNet weights."""
    return _resnext(
        tv_resnext101_32x8d,
        ResNeXt101_32X8D_Weights.IMAGENET1K_V1,
        "resnext101_32x8d",
        num_classes=num_classes,
        in_channels=in_channels,
        small_input=small_input,
        pretrained=pretrained,
    )
