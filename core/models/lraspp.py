"""Lite R-ASPP (Howard et al., 2019, "Searching for MobileNetV3") from torchvision's own modules.

The logits are ``low_classifier(low) + high_classifier(high)``, two 1x1 convolutions on the
stride-8 block and on the gated stride-16 branch. ``features`` returns both concatenated at
stride 8, so the logits are one 1x1 convolution (linear map) of the features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.segmentation.lraspp import _lraspp_mobilenetv3

from core.models._api import register_model
from core.models.backbones import mobilenet_v3_large_backbone
from core.models.base import SegmentationModel
from core.tasks import SegmentationTask


class LRASPP(SegmentationModel):
    """``backbone`` and ``classifier`` are torchvision's (same state dict as ``lraspp_mobilenet_v3_large``)."""

    size_divisor = 16

    def __init__(self, *, num_classes: int, in_channels: int, width_mult: float, pretrained_backbone: bool) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        net = mobilenet_v3_large_backbone(
            width_mult=width_mult, in_channels=in_channels, dilated=True, pretrained=pretrained_backbone
        )
        tv = _lraspp_mobilenetv3(net, num_classes)  # torchvision's own assembly
        self.backbone, self.classifier = tv.backbone, tv.classifier
        self.low_channels = self.classifier.low_classifier.in_channels
        self.feature_dim = self.low_channels + self.classifier.high_classifier.in_channels

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        f = self._features(x)
        low, high = f[:, : self.low_channels], f[:, self.low_channels :]
        return {
            "out": self.classifier.low_classifier(low) + self.classifier.high_classifier(high),
            "features": f,
        }  # (B, K, H/8, W/8)

    def _features(self, x: Tensor) -> Tensor:
        maps = self.backbone(x)
        low, high = maps["low"], maps["high"]  # (B, 40, H/8, W/8), (B, 960, H/16, W/16)
        head = self.classifier
        high = head.cbr(high) * head.scale(high)  # (B, 128, H/16, W/16), gated by global context
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([low, high], dim=1)  # (B, 40 + 128, H/8, W/8)


@register_model("lraspp", task=SegmentationTask)
def lraspp(*, num_classes: int, in_channels: int = 3, width_mult: float = 1.0, pretrained_backbone: bool = False) -> LRASPP:
    """LR-ASPP on MobileNetV3-Large (3.2M parameters at width 1, 21 classes)."""
    return LRASPP(
        num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, pretrained_backbone=pretrained_backbone
    )
