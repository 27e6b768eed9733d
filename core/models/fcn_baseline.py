"""The report's baseline FCN: five stride-2 convolutions down, five stride-2 transposed convolutions up."""

from __future__ import annotations

from torch import Tensor, nn

from core.models._api import register_model
from core.models.base import SegmentationModel
from core.tasks import SegmentationTask


def _down(cin: int, cout: int) -> nn.Sequential:
    # ReLU before BatchNorm, the order the report uses.
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(cout))


def _up(cin: int, cout: int) -> nn.Sequential:
    # output_padding=1 makes the 3x3 stride-2 transposed convolution exactly double H and W.
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(inplace=True),
        nn.BatchNorm2d(cout),
    )


class FCNBaseline(SegmentationModel):
    """Encoder widths ``base_width * (1, 2, 4, 8, 16)``, decoder ``base_width * (16, 8, 4, 2, 1)``; no skips."""

    size_divisor = 32

    def __init__(self, *, num_classes: int, in_channels: int, base_width: int) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        widths = [base_width * 2**i for i in range(5)]  # 32, 64, 128, 256, 512
        self.encoder = nn.Sequential(*(_down(cin, cout) for cin, cout in zip([in_channels, *widths], widths)))
        dec = [widths[-1], *reversed(widths)]  # 512, 512, 256, 128, 64, 32
        self.decoder = nn.Sequential(*(_up(cin, cout) for cin, cout in zip(dec, dec[1:])))
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)
        self.feature_dim = widths[0]

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        x = self.encoder(x)  # (B, 16 * base_width, H/32, W/32)
        f = self.decoder(x)  # (B, base_width, H, W)
        return {"out": self.classifier(f), "features": f}  # (B, K, H, W)


@register_model("fcn_baseline", task=SegmentationTask)
def fcn_baseline(*, num_classes: int, in_channels: int = 3, base_width: int = 32) -> FCNBaseline:
    """Baseline FCN (3-32-64-128-256-512 and back at ``base_width=32``), Xavier-initialised."""
    model = FCNBaseline(num_classes=num_classes, in_channels=in_channels, base_width=base_width)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model
