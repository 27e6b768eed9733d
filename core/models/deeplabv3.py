"""DeepLabV3 (Chen et al., 2017) assembled from torchvision's own modules.

At ``width_mult=1`` every backbone gives torchvision's ``deeplabv3_*`` module tree (same state
dict keys and shapes, 42.0M parameters for ResNet-50 with the auxiliary head); a smaller
``width_mult`` scales the backbone (MobileNetV3 through torchvision's own ``width_mult``) and
the ASPP width together, for CPU training.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation.deeplabv3 import ASPP, _deeplabv3_mobilenetv3
from torchvision.models.segmentation.fcn import FCNHead

from core.models._api import register_model
from core.models.backbones import mobilenet_v3_large_backbone, resnet, scale_channels
from core.models.base import SegmentationModel
from core.tasks import SegmentationTask

BACKBONES = ("resnet50", "resnet101", "mobilenet_v3_large")


def deeplab_head(in_channels: int, num_classes: int, width: int = 256) -> nn.Sequential:
    """torchvision's ``DeepLabHead`` (same layout) with the ASPP width as a parameter."""
    return nn.Sequential(
        ASPP(in_channels, (12, 24, 36), width),
        nn.Conv2d(width, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, num_classes, 1),
    )


class DeepLabV3(SegmentationModel):
    """``backbone`` returns {"out": ..., "aux": ...} maps; ``"aux"`` logits are returned in training only."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        backbone: nn.Module,
        classifier: nn.Sequential,
        aux_classifier: nn.Module | None,
        size_divisor: int,
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        self.backbone, self.classifier, self.aux_classifier = backbone, classifier, aux_classifier
        self.size_divisor = size_divisor
        self.feature_dim = classifier[-1].in_channels

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        maps = self.backbone(x)  # "out": (B, C, H/s, W/s), s = 8 or 16
        *head, last = list(self.classifier)  # not classifier[:-1]: that rebuilds torchvision's DeepLabHead
        f = maps["out"]
        for layer in head:
            f = layer(f)  # ASPP, projection, BN, ReLU -> (B, 256, H/s, W/s)
        out = {"out": last(f), "features": f}  # (B, K, H/s, W/s)
        if self.aux_classifier is not None and self.training:
            out["aux"] = self.aux_classifier(maps["aux"])  # (B, K, H/s, W/s)
        return out


@register_model("deeplabv3", task=SegmentationTask)
def deeplabv3(
    *,
    num_classes: int,
    in_channels: int = 3,
    backbone: str = "resnet50",
    width_mult: float = 1.0,
    aux_head: bool = True,
    pretrained_backbone: bool = False,
) -> DeepLabV3:
    """DeepLabV3; ``backbone`` is "resnet50", "resnet101" (output stride 8) or "mobilenet_v3_large" (16).

    ``aux_head`` adds torchvision's FCN head on layer3 (or the stride-8 MobileNet block).
    """
    if backbone not in BACKBONES:
        raise ValueError(f"deeplabv3: backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
    if backbone == "mobilenet_v3_large":
        net = mobilenet_v3_large_backbone(
            width_mult=width_mult, in_channels=in_channels, dilated=True, pretrained=pretrained_backbone
        )
        tv = _deeplabv3_mobilenetv3(net, num_classes, aux_head)  # torchvision's own assembly ...
        cin = tv.classifier[0].convs[0][0].in_channels
        classifier = deeplab_head(cin, num_classes, scale_channels(256, width_mult))  # ... with the ASPP scaled too
        body, aux, divisor = tv.backbone, tv.aux_classifier, 16
    else:
        trunk = resnet(
            backbone,
            width_mult=width_mult,
            in_channels=in_channels,
            replace_stride_with_dilation=(False, True, True),
            pretrained=pretrained_backbone,
        )
        layers = {"layer4": "out", "layer3": "aux"} if aux_head else {"layer4": "out"}
        body = IntermediateLayerGetter(trunk, return_layers=layers)
        classifier = deeplab_head(trunk.out_channels["layer4"], num_classes, scale_channels(256, width_mult))
        aux = FCNHead(trunk.out_channels["layer3"], num_classes) if aux_head else None
        divisor = 8
    return DeepLabV3(
        num_classes=num_classes,
        in_channels=in_channels,
        backbone=body,
        classifier=classifier,
        aux_classifier=aux,
        size_divisor=divisor,
    )
