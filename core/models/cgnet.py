"""CGNet, a light-weight Context Guided Network, built from scratch.

Wu, Tang, Zhang, Cao, Zhang, "CGNet: A Light-weight Context Guided Network for Semantic Segmentation",
IEEE Transactions on Image Processing 30, 2021 (arXiv 1811.08201). Its Context Guided block learns the joint
feature of a pixel's local content (a 3x3 depthwise convolution), its surrounding context (a dilated 3x3
depthwise one) and the global context (a squeeze-and-excitation style reweighting of the channels), at every
stage rather than only at the end: context is what tells a pole from a tree trunk. Three stages: a
three-convolution stem at 1/2, M blocks at 1/4 (dilation 2), N blocks at 1/8 (dilation 4), with the input
image average-pooled and concatenated at 1/2 and 1/4 ("input injection"). A 1x1 classifier at 1/8, upsampled
bilinearly. M = 3, N = 21 is the published model: 0.5M parameters for Cityscapes' 19 classes. The layer
details (BatchNorm eps 1e-3, PReLU, convolutions without bias, Kaiming-normal init, reductions 8 and 16 in
the global context) follow the authors' code (github.com/wutianyiRosun/CGNet).
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


def conv_bn_prelu(cin: int, cout: int, kernel: int, *, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False), *bn_prelu(cout))


def depthwise(channels: int, *, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, groups=channels, bias=False)


class GlobalContext(nn.Module):
    """f_glo: channel weights in (0, 1) from the globally pooled feature, through a bottleneck of C / ``reduction``."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        weights = self.fc(x.mean((2, 3)))  # (B, C)
        return x * weights[:, :, None, None]


class ContextGuidedBlock(nn.Module):
    """f_glo([f_loc, f_sur]) of a reduced input, plus the input (residual).

    ``down``: the paper's down-sampling block instead: a 3x3 stride-2 convolution to ``cout`` feeds both
    branches at full width, whose joint feature (2 x ``cout``) a 1x1 convolution reduces; no residual.
    """

    def __init__(self, cin: int, cout: int, *, dilation: int, reduction: int, down: bool = False) -> None:
        super().__init__()
        branch = cout if down else cout // 2
        self.reduce = conv_bn_prelu(cin, cout, 3, stride=2) if down else conv_bn_prelu(cin, branch, 1)
        self.local = depthwise(branch)
        self.surround = depthwise(branch, dilation=dilation)
        self.joint = bn_prelu(2 * branch)
        self.project = nn.Conv2d(2 * cout, cout, 1, bias=False) if down else nn.Identity()
        self.glob = GlobalContext(cout, reduction)
        self.residual = not down

    def forward(self, x: Tensor) -> Tensor:
        y = self.reduce(x)  # (B, branch, h, w)
        y = self.joint(torch.cat([self.local(y), self.surround(y)], 1))  # (B, 2 branch, h, w)
        y = self.glob(self.project(y))  # (B, cout, h, w)
        return x + y if self.residual else y


class CGNet(SegmentationModel):
    """Output stride 8; ``features`` are the concatenated stage-3 maps (2 x widths[2] channels at 1/8)."""

    size_divisor = 8

    def __init__(
        self, *, num_classes: int, in_channels: int, widths: tuple[int, int, int], blocks: tuple[int, int], dropout: float
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        w1, w2, w3 = widths
        m, n = blocks
        c = in_channels
        self.pool = nn.AvgPool2d(3, stride=2, padding=1)  # input injection: the image at 1/2, then 1/4
        self.stem = nn.Sequential(conv_bn_prelu(c, w1, 3, stride=2), conv_bn_prelu(w1, w1, 3), conv_bn_prelu(w1, w1, 3))
        self.stem_out = bn_prelu(w1 + c)
        self.down2 = ContextGuidedBlock(w1 + c, w2, dilation=2, reduction=8, down=True)
        self.stage2 = nn.Sequential(*(ContextGuidedBlock(w2, w2, dilation=2, reduction=8) for _ in range(m - 1)))
        self.stage2_out = bn_prelu(2 * w2 + c)
        self.down3 = ContextGuidedBlock(2 * w2 + c, w3, dilation=4, reduction=16, down=True)
        self.stage3 = nn.Sequential(*(ContextGuidedBlock(w3, w3, dilation=4, reduction=16) for _ in range(n - 1)))
        self.stage3_out = bn_prelu(2 * w3)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(2 * w3, num_classes, 1, bias=False)
        self.feature_dim = 2 * w3
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        x2 = self.pool(x)  # (B, C, H/2, W/2)
        x4 = self.pool(x2)  # (B, C, H/4, W/4)
        f1 = self.stem_out(torch.cat([self.stem(x), x2], 1))  # (B, w1 + C, H/2, W/2)
        d2 = self.down2(f1)  # (B, w2, H/4, W/4)
        f2 = self.stage2_out(torch.cat([self.stage2(d2), d2, x4], 1))  # (B, 2 w2 + C, H/4, W/4)
        d3 = self.down3(f2)  # (B, w3, H/8, W/8)
        f3 = self.stage3_out(torch.cat([d3, self.stage3(d3)], 1))  # (B, 2 w3, H/8, W/8)
        return {"out": self.classifier(self.dropout(f3)), "features": f3}  # (B, K, H/8, W/8)


@register_model("cgnet", task=SegmentationTask)
def cgnet(
    *,
    num_classes: int,
    in_channels: int = 3,
    widths: Sequence[int] = (32, 64, 128),
    blocks: Sequence[int] = (3, 21),
    dropout: float = 0.0,
) -> CGNet:
    """CGNet-M3N21 (Wu et al., TIP 2021): ``blocks`` = (M, N), the Context Guided blocks of stages 2 and 3
    (down-sampling block included); ``widths`` of the three stages; ``dropout`` before the classifier (the
    authors' code has 0.1 as an option)."""
    widths, blocks = tuple(int(w) for w in widths), tuple(int(b) for b in blocks)
    if len(widths) != 3 or len(blocks) != 2 or min(blocks) < 1:
        raise ValueError(f"cgnet needs 3 widths and 2 block counts >= 1 (M, N), got {list(widths)} and {list(blocks)}")
    if widths[1] < 8 or widths[2] < 16 or widths[1] % 2 or widths[2] % 2:
        raise ValueError(
            f"cgnet's widths[1] and [2] must be even and at least 8 and 16 (global-context reductions), got {widths}"
        )
    return CGNet(num_classes=num_classes, in_channels=in_channels, widths=widths, blocks=blocks, dropout=dropout)
