"""A small CNN classifier that trains in CPU-minutes on 32x32 to 64x64 inputs."""

from __future__ import annotations

from torch import Tensor, nn

from core.models._api import register_model
from core.models.base import ClassificationModel
from core.tasks import ClassificationTask


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallCNN(ClassificationModel):
    """Four stages of ``convs_per_block`` conv3x3-BN-ReLU, widths ``base_width * (1, 2, 4, 8)``.

    A 2x2 max-pool follows each of the first three stages, so a 48x48 input ends at 6x6; a
    global average pool gives the ``8 * base_width``-d embedding, then dropout and a linear layer.
    It is built for small inputs (no strided stem), so it needs no ``small_input`` option.
    """

    def __init__(self, *, num_classes: int, in_channels: int, base_width: int, convs_per_block: int, dropout: float) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        widths = [base_width * m for m in (1, 2, 4, 8)]
        layers: list[nn.Module] = []
        cin = in_channels
        for i, w in enumerate(widths):
            for j in range(convs_per_block):
                layers += _conv_bn_relu(cin if j == 0 else w, w)
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            cin = w
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(widths[-1], num_classes)
        self.feature_dim = widths[-1]

    def features(self, x: Tensor) -> Tensor:
        x = self.body(x)  # (B, 8w, H/8, W/8)
        return self.pool(x).flatten(1)  # (B, 8w)

    def head(self, f: Tensor) -> Tensor:
        return self.fc(self.dropout(f))  # (B, K)


@register_model("small_cnn", task=ClassificationTask)
def small_cnn(
    *, num_classes: int, in_channels: int = 3, base_width: int = 32, convs_per_block: int = 1, dropout: float = 0.2
) -> SmallCNN:
    """``base_width=32`` gives stages of 32-64-128-256 channels and a 256-d embedding."""
    if base_width < 1 or convs_per_block < 1:
        raise ValueError(f"small_cnn: base_width and convs_per_block must be >= 1, got {base_width}, {convs_per_block}")
    return SmallCNN(
        num_classes=num_classes, in_channels=in_channels, base_width=base_width, convs_per_block=convs_per_block, dropout=dropout
    )
