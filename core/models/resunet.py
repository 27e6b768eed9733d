"""ResUNet-lite: a residual U-Net with a strided stem, sized for training from scratch on a CPU.

Most of a plain U-Net's cost is its full-resolution stage. Here a stride-2 stem sees the full
image, the residual encoder (torchvision BasicBlocks) works from 1/4 to 1/32, a pyramid pooling
module adds global context, and the decoder climbs back to 1/2 with concatenated skips; the
logits are upsampled bilinearly from there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from core.models._api import register_model
from core.models.base import SegmentationModel
from core.models.pspnet import PyramidPooling
from core.tasks import SegmentationTask


def conv_bn_relu(cin: int, cout: int, *, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def res_stage(cin: int, cout: int, blocks: int) -> nn.Sequential:
    """``blocks`` BasicBlocks, the first halving the resolution."""
    down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))
    layers = [BasicBlock(cin, cout, stride=2, downsample=down)]
    layers += [BasicBlock(cout, cout) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class UpBlock(nn.Module):
    """Bilinear x2, concatenate the skip, two 3x3 conv-BN-ReLU."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(conv_bn_relu(cin + cskip, cout), conv_bn_relu(cout, cout))

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], dim=1))


INPUT_NORMS = ("none", "image")


class ResUNet(SegmentationModel):
    size_divisor = 32

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        widths: Sequence[int],
        blocks: Sequence[int],
        context: bool,
        input_norm: str = "none",
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"resunet: input_norm must be one of {', '.join(INPUT_NORMS)}, got {input_norm!r}")
        self.input_norm = input_norm
        if len(widths) != 5 or len(blocks) != 4:
            raise ValueError(f"resunet needs 5 widths (stem, 1/4 .. 1/32) and 4 block counts, got {widths} and {blocks}")
        w = list(widths)
        self.stem = nn.Sequential(conv_bn_relu(in_channels, w[0], stride=2), conv_bn_relu(w[0], w[0]))  # 1/2
        self.stages = nn.ModuleList(res_stage(w[i], w[i + 1], blocks[i]) for i in range(4))  # 1/4 .. 1/32
        self.context = PyramidPooling(w[4]) if context else nn.Identity()
        bottom = self.context.out_channels if context else w[4]
        self.reduce = nn.Sequential(nn.Conv2d(bottom, w[4], 1, bias=False), nn.BatchNorm2d(w[4]), nn.ReLU(inplace=True))
        self.up = nn.ModuleList(UpBlock(w[i + 1], w[i], w[i]) for i in reversed(range(4)))  # 1/16 .. 1/2
        self.classifier = nn.Conv2d(w[0], num_classes, 1)
        self.feature_dim = w[0]

    def prepare(self, x: Tensor) -> Tensor:
        """With ``input_norm="image"``, each image's channels standardised by their own mean and deviation: a
        darker or flatter picture of the same street (dusk, winter light) reaches the network unchanged."""
        if self.input_norm == "none":
            return x
        mean = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        std = x.std(dim=(2, 3), keepdim=True).clamp(min=1e-3)
        return (x - mean) / std

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        f = self._decode(x)
        return {"out": self.classifier(f), "features": f}  # (B, K, H/2, W/2)

    def _decode(self, x: Tensor) -> Tensor:
        skips = [self.stem(x)]  # (B, w0, H/2, W/2)
        for stage in self.stages:
            skips.append(stage(skips[-1]))  # (B, w_i, H/2^(i+1), W/2^(i+1))
        x = self.reduce(self.context(skips.pop()))  # (B, w4, H/32, W/32)
        for up in self.up:
            x = up(x, skips.pop())
        return x  # (B, w0, H/2, W/2)


@register_model("resunet", task=SegmentationTask)
def resunet(
    *,
    num_classes: int,
    in_channels: int = 3,
    widths: Sequence[int] = (32, 48, 96, 192, 256),
    blocks: Sequence[int] = (2, 2, 2, 2),
    context: bool = True,
    input_norm: str = "none",
) -> ResUNet:
    """Residual U-Net: ``widths`` of the stem (1/2) and the four stages (1/4 .. 1/32), ``blocks`` per stage.

    ``input_norm="image"`` standardises each input image by its own per-channel mean and deviation (no
    parameters): the network then sees a dusk or winter scene as it sees a bright one.
    """
    return ResUNet(
        num_classes=num_classes,
        in_channels=in_channels,
        widths=tuple(widths),
        blocks=tuple(blocks),
        context=context,
        input_norm=input_norm,
    )
