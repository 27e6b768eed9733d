"""Backbones built from torchvision's own pieces, with a width multiplier for CPU-sized variants.

At ``width_mult=1.0`` and ``in_channels=3`` the modules, parameter names and shapes are exactly
torchvision's, so ImageNet weights from its weights API load unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.models import (
    MobileNet_V3_Large_Weights,
    MobileNetV3,
    ResNet18_Weights,
    ResNet34_Weights,
    ResNet50_Weights,
    ResNet101_Weights,
    VGG16_Weights,
    WeightsEnum,
)
from torchvision.models.mobilenetv3 import mobilenet_v3_large
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.models.vgg import cfgs as vgg_cfgs
from torchvision.models.vgg import make_layers

from core.models.pretrained import check_pretrained_args, load_imagenet_weights, load_pretrained


def scale_channels(channels: int, width_mult: float) -> int:
    return max(1, int(round(channels * width_mult)))


# ---------------------------------------------------------------------------------------- ResNet

RESNETS: dict[str, tuple[type[BasicBlock | Bottleneck], list[int], WeightsEnum]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2], ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (BasicBlock, [3, 4, 6, 3], ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (Bottleneck, [3, 4, 6, 3], ResNet50_Weights.IMAGENET1K_V1),
    "resnet101": (Bottleneck, [3, 4, 23, 3], ResNet101_Weights.IMAGENET1K_V1),
}
RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")


class DilatedBasicBlock(BasicBlock):
    """torchvision's BasicBlock, which refuses dilation, with its first 3x3 dilated (as mmsegmentation does).

    Same parameters as BasicBlock, so ImageNet ResNet-18/34 weights still load.
    """

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: type[nn.Module] | None = None,
    ) -> None:
        super().__init__(inplanes, planes, stride, downsample, groups, base_width, 1, norm_layer)
        self.conv1.dilation = self.conv1.padding = (dilation, dilation)


class ResNetBackbone(ResNet):
    """torchvision's ResNet with stage widths ``width_mult * (64, 128, 256, 512)``.

    Without ``num_classes`` it is the trunk only (conv1 .. layer4, no avgpool/fc) and ``forward``
    returns the layer4 map. ``out_channels`` and ``strides`` describe each stage so heads can size
    themselves from them.
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: Sequence[int],
        *,
        width_mult: float = 1.0,
        in_channels: int = 3,
        replace_stride_with_dilation: Sequence[bool] = (False, False, False),
        num_classes: int | None = None,
    ) -> None:
        # ResNet.__init__ hard-codes 3 input channels and 64 base width, so this sets the same
        # attributes itself and reuses ResNet._make_layer, keeping torchvision's module layout.
        nn.Module.__init__(self)
        if block is BasicBlock and any(replace_stride_with_dilation):
            block = DilatedBasicBlock
        widths = [scale_channels(c, width_mult) for c in (64, 128, 256, 512)]
        self._norm_layer = nn.BatchNorm2d
        self.groups, self.base_width, self.dilation = 1, 64, 1
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        dilate = list(replace_stride_with_dilation)
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2, dilate=dilate[0])
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2, dilate=dilate[1])
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2, dilate=dilate[2])
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(widths[3] * block.expansion, num_classes)
        self.out_channels = {name: w * block.expansion for name, w in zip(RESNET_STAGES, widths)}
        stride, self.strides = 4, {}
        for name, dil in zip(RESNET_STAGES, [False, *dilate]):
            stride *= 1 if dil or name == "layer1" else 2
            self.strides[name] = stride
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def output_stride(self) -> int:
        return self.strides["layer4"]

    def forward_stages(self, x: Tensor) -> dict[str, Tensor]:
        """Every stage's output: ``layerN`` is (B, out_channels[layerN], H / strides[layerN], ...)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, C0, H/4, W/4)
        stages = {}
        for name in RESNET_STAGES:
            x = getattr(self, name)(x)
            stages[name] = x
        return stages

    def forward(self, x: Tensor) -> Tensor:
        x = self.forward_stages(x)["layer4"]  # (B, C4, H/32, W/32) without dilation
        if not hasattr(self, "fc"):
            return x
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (B, num_classes)

    def load_imagenet(self, state_dict: dict[str, Tensor]) -> None:
        """Load a torchvision ImageNet state dict; ``fc`` is skipped unless it fits."""
        own = self.state_dict()
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith("fc.") or (k in own and own[k].shape == v.shape)}
        missing, unexpected = load_pretrained(self, state_dict)
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            raise RuntimeError(f"ImageNet weights do not fit: missing {missing}, unexpected {unexpected}")


def resnet(
    arch: str,
    *,
    width_mult: float = 1.0,
    in_channels: int = 3,
    replace_stride_with_dilation: Sequence[bool] = (False, False, False),
    num_classes: int | None = None,
    pretrained: bool = False,
) -> ResNetBackbone:
    """``resnet("resnet50", replace_stride_with_dilation=(False, True, True))`` is an output-stride-8 trunk."""
    if arch not in RESNETS:
        raise ValueError(f"unknown ResNet {arch!r}; valid: {', '.join(RESNETS)}")
    check_pretrained_args(arch, pretrained=pretrained, width_mult=width_mult, in_channels=in_channels)
    block, layers, weights = RESNETS[arch]
    model = ResNetBackbone(
        block,
        layers,
        width_mult=width_mult,
        in_channels=in_channels,
        replace_stride_with_dilation=replace_stride_with_dilation,
        num_classes=num_classes,
    )
    if pretrained:
        model.load_imagenet(load_imagenet_weights(weights))
    return model


# ------------------------------------------------------------------------------------------- VGG

VGG16_WEIGHTS = VGG16_Weights.IMAGENET1K_V1
# Indices of the max-pool layers in torchvision's vgg16().features: pool3 is stride 8, pool5 stride 32.
VGG16_POOLS = {"pool1": 4, "pool2": 9, "pool3": 16, "pool4": 23, "pool5": 30}


def vgg16_features(*, width_mult: float = 1.0, in_channels: int = 3) -> nn.Sequential:
    """torchvision's ``vgg16().features`` (13 conv3x3+ReLU, 5 max-pools) with widths scaled."""
    cfg = [v if v == "M" else scale_channels(int(v), width_mult) for v in vgg_cfgs["D"]]
    features = make_layers(cfg, batch_norm=False)
    if in_channels != 3:
        first = features[0]
        features[0] = nn.Conv2d(in_channels, first.out_channels, kernel_size=3, padding=1)
    for m in features.modules():  # torchvision's VGG initialisation (make_layers leaves the default)
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return features


# ------------------------------------------------------------------------------------- MobileNet


def mobilenet_v3_large_backbone(
    *, width_mult: float = 1.0, in_channels: int = 3, dilated: bool = True, pretrained: bool = False
) -> MobileNetV3:
    """torchvision's MobileNetV3-Large (``width_mult`` goes to its ``_mobilenet_v3_conf``).

    ``dilated`` replaces the last stride with dilation (output stride 16), as its segmentation
    models do. The whole classifier network is returned; segmentation heads take ``.features``.
    """
    check_pretrained_args("mobilenet_v3_large", pretrained=pretrained, width_mult=width_mult, in_channels=in_channels)
    model = mobilenet_v3_large(weights=None, width_mult=width_mult, dilated=dilated)
    if pretrained:
        missing, unexpected = load_pretrained(model, load_imagenet_weights(MobileNet_V3_Large_Weights.IMAGENET1K_V1))
        if missing or unexpected:
            raise RuntimeError(f"ImageNet weights do not fit MobileNetV3: missing {missing}, unexpected {unexpected}")
    if in_channels != 3:
        first = model.features[0][0]
        model.features[0][0] = nn.Conv2d(
            in_channels, first.out_channels, first.kernel_size, stride=first.stride, padding=first.padding, bias=False
        )
        nn.init.kaiming_normal_(model.features[0][0].weight, mode="fan_out")
    return model
