"""The report's "simple segmentation net": a ResNet-18 trunk, a 1x1 classifier, bilinear upsampling."""

from __future__ import annotations

from torch import Tensor, nn

from core.models._api import register_model
from core.models.backbones import resnet
from core.models.base import SegmentationModel
from core.tasks import SegmentationTask


class SimpleSegNet(SegmentationModel):
    """Logits at output stride 32; the base class upsamples them bilinearly to the input size."""

    size_divisor = 32

    def __init__(self, *, num_classes: int, in_channels: int, width_mult: float, pretrained_backbone: bool) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        self.backbone = resnet("resnet18", width_mult=width_mult, in_channels=in_channels, pretrained=pretrained_backbone)
        self.feature_dim = self.backbone.out_channels["layer4"]
        self.classifier = nn.Conv2d(self.feature_dim, num_classes, 1)

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        f = self.backbone(x)  # (B, 512, H/32, W/32)
        return {"out": self.classifier(f), "features": f}  # (B, K, H/32, W/32), upsampled by forward()


@register_model("simple_segnet", task=SegmentationTask)
def simple_segnet(
    *, num_classes: int, in_channels: int = 3, width_mult: float = 1.0, pretrained_backbone: bool = False
) -> SimpleSegNet:
    """ResNet-18 trunk + 1x1 classifier + bilinear upsampling (11.2M parameters at width 1)."""
    return SimpleSegNet(
        num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, pretrained_backbone=pretrained_backbone
    )
