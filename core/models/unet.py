"""U-Net (Ronneberger et al., 2015) with BatchNorm after every convolution."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from core.models._api import register_model
from core.models.base import SegmentationModel
from core.tasks import SegmentationTask


def conv_bn_relu(cin: int, cout: int, *, padding: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=padding, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, *, padding: int = 1) -> None:
        super().__init__(*conv_bn_relu(cin, cout, padding=padding), *conv_bn_relu(cout, cout, padding=padding))


def center_crop(x: Tensor, hw: tuple[int, int]) -> Tensor:
    """Crop (B, C, H, W) to the centre ``hw``: the paper's crop-and-copy of the skip connections."""
    h, w = x.shape[-2:]
    top, left = (h - hw[0]) // 2, (w - hw[1]) // 2
    return x[..., top : top + hw[0], left : left + hw[1]]


class UNet(SegmentationModel):
    """Encoder widths ``base_width * (1, 2, 4, 8, 16)``; 2x2 transposed-convolution upsampling.

    ``min_decoder_width`` floors the decoder's widths: a thin U-Net (``base_width=8``) otherwise
    classifies 11 classes from 8 channels at full resolution.

    ``valid_padding=True`` gives the original unpadded convolutions with crop-and-copy skips.
    The input is then mirror-padded as in the paper's overlap-tile strategy (92 pixels per
    side at depth 4), so the output still covers the input's H x W.
    """

    def __init__(
        self, *, num_classes: int, in_channels: int, base_width: int, depth: int, valid_padding: bool, min_decoder_width: int = 0
    ) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        self.valid_padding = valid_padding
        pad = 0 if valid_padding else 1
        widths = [base_width * 2**i for i in range(depth + 1)]
        dec = [max(w, min_decoder_width) for w in widths]  # decoder widths; == widths without a floor
        self.size_divisor = 2**depth
        self.down = nn.ModuleList([DoubleConv(in_channels, widths[0], padding=pad)])
        self.down.extend(DoubleConv(widths[i], widths[i + 1], padding=pad) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(nn.ConvTranspose2d(dec[i + 1], dec[i], 2, stride=2) for i in reversed(range(depth)))
        self.dec = nn.ModuleList(DoubleConv(widths[i] + dec[i], dec[i], padding=pad) for i in reversed(range(depth)))
        self.classifier = nn.Conv2d(dec[0], num_classes, 1)
        self.feature_dim = dec[0]

    def _valid_output(self, n: int) -> int | None:
        """Output side of the unpadded network for input side ``n``, or None if pooling hits an odd size."""
        depth = len(self.up)
        for _ in range(depth):
            n -= 4
            if n <= 0 or n % 2:
                return None
            n //= 2
        n -= 4
        for _ in range(depth):
            n = 2 * n - 4
        return n if n > 0 else None

    def _valid_pad(self, side: int) -> tuple[int, int]:
        """(before, after) mirror padding that makes the unpadded network's output cover ``side``."""
        n = side
        while (out := self._valid_output(n)) is None or out < side or (n - out) % 2:
            n += 1
        before = (n - out) // 2
        return before, n - side - before

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        f = self._decode(x)  # (B, w_0, Hp, Wp)
        return {"out": self.classifier(f), "features": f}

    def _decode(self, x: Tensor) -> Tensor:
        hw = x.shape[-2:]
        if self.valid_padding:
            (top, bottom), (left, right) = self._valid_pad(hw[0]), self._valid_pad(hw[1])
            mode = "reflect" if max(top, bottom) < hw[0] and max(left, right) < hw[1] else "replicate"
            x = nn.functional.pad(x, (left, right, top, bottom), mode=mode)  # overlap-tile mirroring
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))  # (B, w_i, H / 2^i, W / 2^i)
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = up(x)  # (B, w_i, 2h, 2w)
            skip = skips.pop()
            if self.valid_padding:
                skip = center_crop(skip, x.shape[-2:])
            x = dec(torch.cat([skip, x], dim=1))
        if self.valid_padding:
            x = x[..., : hw[0], : hw[1]]  # (B, w_0, Hp, Wp)
        return x


@register_model("unet", task=SegmentationTask)
def unet(
    *,
    num_classes: int,
    in_channels: int = 3,
    base_width: int = 64,
    depth: int = 4,
    valid_padding: bool = False,
    min_decoder_width: int = 0,
) -> UNet:
    """U-Net; ``base_width=64, depth=4`` is the published 64-128-256-512-1024 network (31M parameters).
    ``min_decoder_width`` floors the decoder widths (0: the decoder mirrors the encoder)."""
    if min_decoder_width < 0:
        raise ValueError(f"unet: min_decoder_width must be >= 0, got {min_decoder_width}")
    return UNet(
        num_classes=num_classes,
        in_channels=in_channels,
        base_width=base_width,
        depth=depth,
        valid_padding=valid_padding,
        min_decoder_width=min_decoder_width,
    )
