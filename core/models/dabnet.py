"""DABNet, the Depth-wise Asymmetric Bottleneck network, built from scratch.

Li, Zhao, Zhang, Yang, "DABNet: Depth-wise Asymmetric Bottleneck for Real-time Semantic Segmentation",
BMVC 2019 (arXiv 1907.11357). Its DAB module reduces the channels by half with a 3x3 convolution, then runs
two depth-wise branches of factorised 3x1 and 1x3 convolutions, one plain (local detail) and one dilated
(context), sums them and expands back with a 1x1 convolution, with a residual: a large receptive field and
dense features for very few parameters. A three-convolution stem at 1/2, a down-sampling block (a strided
3x3 convolution, beside a 2x2 max-pool when it widens) and DAB block 1 (3 modules, dilation 2) at 1/4, a
down-sampling block and DAB block 2 (6 modules, dilations 4, 4, 8, 8, 16, 16) at 1/8; the input image,
average-pooled, is concatenated at each stage. A 1x1 classifier at 1/8, upsampled bilinearly: 0.76M
parameters for Cityscapes' 19 classes. The layer details (BatchNorm eps 1e-3, PReLU, convolutions without
bias) follow the authors' code (github.com/Reagan1311/DABNet).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from core.models._api import register_model
from core.models.base import SegmentationModel
from core.tasks import SegmentationTask


def bn_prelu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels, eps=1e-3), nn.PReLU(channels))


def conv_bn_prelu(
    cin: int,
    cout: int,
    kernel: int | tuple[int, int],
    *,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups, bias=False)
    return nn.Sequential(conv, *bn_prelu(cout))


def asymmetric_depthwise(channels: int, dilation: int) -> nn.Sequential:
    """A depth-wise 3x1 then 1x3 convolution (each with BN-PReLU), dilated by ``dilation``: a 3x3 field for 6 weights
    a channel."""
    d = dilation
    return nn.Sequential(
        conv_bn_prelu(channels, channels, (3, 1), padding=(d, 0), dilation=(d, 1), groups=channels),
        conv_bn_prelu(channels, channels, (1, 3), padding=(0, d), dilation=(1, d), groups=channels),
    )


class DABModule(nn.Module):
    """BN-PReLU, 3x3 to C/2, plain and dilated asymmetric depth-wise branches summed, BN-PReLU, 1x1 to C, + input."""

    def __init__(self, channels: int, *, dilation: int) -> None:
        super().__init__()
        half = channels // 2
        self.pre = bn_prelu(channels)
        self.reduce = conv_bn_prelu(channels, half, 3, padding=1)
        self.local = asymmetric_depthwise(half, 1)
        self.context = asymmetric_depthwise(half, dilation)
        self.post = bn_prelu(half)
        self.expand = nn.Conv2d(half, channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        y = self.reduce(self.pre(x))  # (B, C/2, h, w)
        y = self.post(self.local(y) + self.context(y))
        return x + self.expand(y)  # (B, C, h, w)


class Downsample(nn.Module):
    """A 3x3 stride-2 convolution; when it widens (cin < cout), only to cout - cin channels, beside a 2x2 max-pool
    of the input (ENet's initial block). Then BN-PReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.widen = cin < cout
        self.conv = nn.Conv2d(cin, cout - cin if self.widen else cout, 3, stride=2, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.out = bn_prelu(cout)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        if self.widen:
            y = torch.cat([y, self.pool(x)], 1)
        return self.out(y)  # (B, cout, h/2, w/2)


class DABNet(SegmentationModel):
    """Output stride 8; ``features`` are the concatenated stage-3 maps (2 x widths[2] + input channels at 1/8)."""

    size_divisor = 8

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int,
        widths: tuple[int, int, int],
        block1_modules: int,
        block1_dilation: int,
        block2_dilations: tuple[int, ...],
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        w1, w2, w3 = widths
        c = in_channels
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)  # input injection: the image at 1/2, 1/4, 1/8
        self.stem = nn.Sequential(
            conv_bn_prelu(c, w1, 3, stride=2, padding=1), conv_bn_prelu(w1, w1, 3, padding=1), conv_bn_prelu(w1, w1, 3, padding=1)
        )
        self.stem_out = bn_prelu(w1 + c)
        self.down1 = Downsample(w1 + c, w2)
        self.block1 = nn.Sequential(*(DABModule(w2, dilation=block1_dilation) for _ in range(block1_modules)))
        self.block1_out = bn_prelu(2 * w2 + c)
        self.down2 = Downsample(2 * w2 + c, w3)
        self.block2 = nn.Sequential(*(DABModule(w3, dilation=d) for d in block2_dilations))
        self.block2_out = bn_prelu(2 * w3 + c)
        self.classifier = nn.Conv2d(2 * w3 + c, num_classes, 1, bias=False)
        self.feature_dim = 2 * w3 + c

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        x2 = self.pool(x)  # (B, C, H/2, W/2)
        x4 = self.pool(x2)  # (B, C, H/4, W/4)
        x8 = self.pool(x4)  # (B, C, H/8, W/8)
        f1 = self.stem_out(torch.cat([self.stem(x), x2], 1))  # (B, w1 + C, H/2, W/2)
        d1 = self.down1(f1)  # (B, w2, H/4, W/4)
        f2 = self.block1_out(torch.cat([self.block1(d1), d1, x4], 1))  # (B, 2 w2 + C, H/4, W/4)
        d2 = self.down2(f2)  # (B, w3, H/8, W/8)
        f3 = self.block2_out(torch.cat([self.block2(d2), d2, x8], 1))  # (B, 2 w3 + C, H/8, W/8)
        return {"out": self.classifier(f3), "features": f3}  # (B, K, H/8, W/8)


@register_model("dabnet", task=SegmentationTask)
def dabnet(
    *,
    num_classes: int,
    in_channels: int = 3,
    widths: Sequence[int] = (32, 64, 128),
    block1_modules: int = 3,
    block1_dilation: int = 2,
    block2_dilations: Sequence[int] = (4, 4, 8, 8, 16, 16),
) -> DABNet:
    """DABNet (Li et al., BMVC 2019): ``widths`` of the stem, DAB block 1 and DAB block 2; block 1 has
    ``block1_modules`` DAB modules of dilation ``block1_dilation``, block 2 one module per ``block2_dilations``."""
    widths, dilations = tuple(int(w) for w in widths), tuple(int(d) for d in block2_dilations)
    if len(widths) != 3 or min(widths) < 2 or widths[1] % 2 or widths[2] % 2:
        raise ValueError(f"dabnet needs 3 widths, the last two even (DAB modules halve them), got {list(widths)}")
    if block1_modules < 1 or not dilations or min(dilations + (block1_dilation,)) < 1:
        raise ValueError("dabnet needs at least one DAB module in each block, with dilations >= 1")
    return DABNet(
        num_classes=num_classes,
        in_channels=in_channels,
        widths=widths,
        block1_modules=block1_modules,
        block1_dilation=block1_dilation,
        block2_dilations=dilations,
    )
