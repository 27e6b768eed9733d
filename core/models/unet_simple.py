"""The report's simplified U-Net: the U-Net of ``unet.py`` at depth 3.

Three double-convolution encoder stages (3-64-128-256) with max-pooling, a 512-channel
bottleneck, three transposed-convolution decoder stages (512-256-128-64) with concatenated
skips, and a 1x1 classifier: exactly ``UNet(depth=3)``, so the class is shared, not copied.
"""

from __future__ import annotations

from core.models._api import register_model
from core.models.unet import UNet
from core.tasks import SegmentationTask


@register_model("unet_simple", task=SegmentationTask)
def unet_simple(*, num_classes: int, in_channels: int = 3, base_width: int = 64) -> UNet:
    """Simplified U-Net, widths ``base_width * (1, 2, 4, 8)`` (7.7M parameters at 64)."""
    return UNet(num_classes=num_classes, in_channels=in_channels, base_width=base_width, depth=3, valid_padding=False)
