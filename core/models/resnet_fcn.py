"""ResNet-FCN: a ResNet encoder (avgpool and fc removed) and a transposed-convolution decoder."""

from __future__ import annotations

from itertools import pairwise

from torch import Tensor, nn

from core.models._api import register_model
from core.models.backbones import resnet, scale_channels
from core.models.base import SegmentationModel
from core.tasks import SegmentationTask

DECODER_WIDTHS = (256, 128, 64, 32, 32)  # after each stride-2 transposed convolution, at width_mult=1


def _conv1x1_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _up_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=False),  # exactly 2x
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ResNetFCN(SegmentationModel):
    """layer4 (output stride 32) -> 1x1 reductions to 512 -> five 2x upsamplings -> 1x1 classifier.

    The reductions halve the channels down to 512 (2048-1024-512 for ResNet-50); ResNet-18/34
    already end at 512 and get one 512-512 projection. ``min_decoder_width`` floors the decoder's
    widths: a thin model (``width_mult=0.2``) otherwise ends in 6 channels at full resolution.
    ``freeze_encoder`` stops gradients into the ResNet and keeps its BatchNorm statistics fixed
    (the encoder stays in eval mode).
    """

    size_divisor = 32

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        backbone: str,
        width_mult: float,
        freeze_encoder: bool,
        pretrained_backbone: bool,
        min_decoder_width: int = 0,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        self.backbone = resnet(backbone, width_mult=width_mult, in_channels=in_channels, pretrained=pretrained_backbone)
        c, target = self.backbone.out_channels["layer4"], scale_channels(512, width_mult)
        reduce = [c]
        while reduce[-1] // 2 >= target:
            reduce.append(reduce[-1] // 2)
        if len(reduce) == 1:
            reduce.append(target)
        self.reduce = nn.Sequential(*(_conv1x1_bn_relu(a, b) for a, b in pairwise(reduce)))
        widths = [reduce[-1], *(max(scale_channels(w, width_mult), min_decoder_width) for w in DECODER_WIDTHS)]
        self.decoder = nn.Sequential(*(_up_bn_relu(a, b) for a, b in pairwise(widths)))
        self.classifier = nn.Conv2d(widths[-1], num_classes, 1)
        self.feature_dim = widths[-1]
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True) -> ResNetFCN:
        super().train(mode)
        if self.freeze_encoder:
            self.backbone.eval()  # frozen features: running statistics must not drift either
        return self

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        x = self.backbone(x)  # (B, C4, H/32, W/32)
        x = self.reduce(x)  # (B, 512, H/32, W/32)
        f = self.decoder(x)  # (B, 32, H, W)
        return {"out": self.classifier(f), "features": f}  # (B, K, H, W)


@register_model("resnet_fcn", task=SegmentationTask)
def resnet_fcn(
    *,
    num_classes: int,
    in_channels: int = 3,
    backbone: str = "resnet50",
    width_mult: float = 1.0,
    freeze_encoder: bool = False,
    pretrained_backbone: bool = False,
    min_decoder_width: int = 0,
) -> ResNetFCN:
    """ResNet-FCN; ``backbone`` is "resnet18", "resnet34" or "resnet50"; ``min_decoder_width`` floors the decoder widths."""
    if backbone not in ("resnet18", "resnet34", "resnet50"):
        raise ValueError(f"resnet_fcn: backbone must be resnet18, resnet34 or resnet50, got {backbone!r}")
    if min_decoder_width < 0:
        raise ValueError(f"resnet_fcn: min_decoder_width must be >= 0, got {min_decoder_width}")
    return ResNetFCN(
        num_classes=num_classes,
        in_channels=in_channels,
        backbone=backbone,
        width_mult=width_mult,
        freeze_encoder=freeze_encoder,
        pretrained_backbone=pretrained_backbone,
        min_decoder_width=min_decoder_width,
    )
