"""PSPNet (Zhao et al., 2017): a dilated ResNet, a pyramid pooling module and an auxiliary head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.segmentation.fcn import FCNHead

from core.models._api import register_model
from core.models.backbones import RESNETS, resnet, scale_channels
from core.models.base import SegmentationModel
from core.tasks import SegmentationTask


class PyramidPooling(nn.Module):
    """Average-pool to ``bins`` x ``bins`` grids, reduce each to C / len(bins), upsample, concatenate."""

    def __init__(self, in_channels: int, bins: Sequence[int] = (1, 2, 3, 6)) -> None:
        super().__init__()
        inter = in_channels // len(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(b),
                nn.Conv2d(in_channels, inter, 1, bias=False),
                nn.BatchNorm2d(inter),  # needs more than one value per channel in training: B > 1 for bin 1
                nn.ReLU(inplace=True),
            )
            for b in bins
        )
        self.out_channels = in_channels + inter * len(bins)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=False) for stage in self.stages]
        return torch.cat([x, *pooled], dim=1)  # (B, 2C, h, w)


class PSPNet(SegmentationModel):
    """Output stride 8 (layer3 and layer4 dilated). ``"aux"`` (an FCN head on layer3) is returned in training only."""

    size_divisor = 8

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        backbone: str,
        width_mult: float,
        use_ppm: bool,
        aux_head: bool,
        pretrained_backbone: bool,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        self.backbone = resnet(
            backbone,
            width_mult=width_mult,
            in_channels=in_channels,
            replace_stride_with_dilation=(False, True, True),
            pretrained=pretrained_backbone,
        )
        c3, c4 = self.backbone.out_channels["layer3"], self.backbone.out_channels["layer4"]
        self.ppm = PyramidPooling(c4) if use_ppm else nn.Identity()
        cin, width = (self.ppm.out_channels if use_ppm else c4), scale_channels(512, width_mult)
        self.head = nn.Sequential(
            nn.Conv2d(cin, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Dropout(0.1),
        )
        self.classifier = nn.Conv2d(width, num_classes, 1)
        self.aux_classifier = FCNHead(c3, num_classes) if aux_head else None
        self.feature_dim = width

    def _head(self, stages: dict[str, Tensor]) -> Tensor:
        return self.head(self.ppm(stages["layer4"]))  # (B, 512, H/8, W/8)

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        stages = self.backbone.forward_stages(x)  # layer3, layer4: (B, C, H/8, W/8)
        f = self._head(stages)
        out = {"out": self.classifier(f), "features": f}  # (B, K, H/8, W/8)
        if self.aux_classifier is not None and self.training:
            out["aux"] = self.aux_classifier(stages["layer3"])  # (B, K, H/8, W/8)
        return out


@register_model("pspnet", task=SegmentationTask)
def pspnet(
    *,
    num_classes: int,
    in_channels: int = 3,
    backbone: str = "resnet50",
    width_mult: float = 1.0,
    use_ppm: bool = True,
    aux_head: bool = True,
    pretrained_backbone: bool = False,
) -> PSPNet:
    """PSPNet with bins (1, 2, 3, 6); ``use_ppm`` / ``aux_head`` switch the two parts off for ablations."""
    if backbone not in RESNETS:
        raise ValueError(f"pspnet: backbone must be one of {', '.join(RESNETS)}, got {backbone!r}")
    return PSPNet(
        num_classes=num_classes,
        in_channels=in_channels,
        backbone=backbone,
        width_mult=width_mult,
        use_ppm=use_ppm,
        aux_head=aux_head,
        pretrained_backbone=pretrained_backbone,
    )
