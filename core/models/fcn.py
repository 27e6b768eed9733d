"""FCN-32s, FCN-16s and FCN-8s (Long, Shelhamer and Darrell, 2015) on a VGG16 backbone.

Follows the reference Caffe models (fcn.berkeleyvision.org, "at-once" FCN-8s): fc6/fc7 are
convolutions holding VGG16's fully connected weights, the class-scoring layers start at zero,
pool4 and pool3 are scaled by 0.01 and 0.0001 before scoring, the skip upsamplings are transposed
convolutions that start bilinear, and the final upsampling is a fixed bilinear one. Instead of the
paper's 100-pixel input padding, fc6 is padded (7x7, padding 3) and the base class pads the input to
a multiple of 32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.models._api import register_model
from core.models.backbones import VGG16_POOLS, VGG16_WEIGHTS, scale_channels, vgg16_features
from core.models.base import SegmentationModel, bilinear_kernel
from core.models.pretrained import check_pretrained_args, load_imagenet_weights, load_pretrained
from core.tasks import SegmentationTask

POOL_SCALES = {"pool4": 0.01, "pool3": 0.0001}  # at-once FCN-8s: keeps the skips small at the start


class FixedBilinear(nn.Module):
    """The final upsampling of the reference FCNs ("upscore", lr_mult 0): a fixed per-class bilinear
    transposed convolution. The kernel is a non-persistent buffer: nothing to learn, nothing to store."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.register_buffer("weight", bilinear_kernel(channels, 2 * stride), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        # (B, K, H, W) -> (B, K, sH, sW) in the kernel's precision (float32) even under autocast: oneDNN's bfloat16
        # transposed convolution with these large kernels is slow on a CPU (64x64 at stride 32: 40x float32's time)
        with torch.autocast(x.device.type, enabled=False):
            return F.conv_transpose2d(x.to(self.weight.dtype), self.weight, stride=self.stride, padding=self.stride // 2)


def _upsample(channels: int, stride: int) -> nn.ConvTranspose2d:
    """Transposed convolution that multiplies H and W by exactly ``stride``, bilinear at start."""
    up = nn.ConvTranspose2d(channels, channels, 2 * stride, stride=stride, padding=stride // 2, bias=False)
    up.weight.data.copy_(bilinear_kernel(channels, 2 * stride))
    up.keep_init = True  # the training engine's re-initialisation leaves it bilinear
    return up


class FCN(SegmentationModel):
    """``skips=0`` is FCN-32s, 1 adds pool4 (FCN-16s), 2 adds pool3 (FCN-8s)."""

    size_divisor = 32

    def __init__(self, *, num_classes: int, in_channels: int, width_mult: float, skips: int) -> None:
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        self.skips = skips
        k, fc = num_classes, scale_channels(4096, width_mult)
        c3, c4, c5 = (scale_channels(c, width_mult) for c in (256, 512, 512))
        self.backbone = vgg16_features(width_mult=width_mult, in_channels=in_channels)
        self.fc6 = nn.Sequential(nn.Conv2d(c5, fc, 7, padding=3), nn.ReLU(inplace=True), nn.Dropout(0.5))
        self.fc7 = nn.Sequential(nn.Conv2d(fc, fc, 1), nn.ReLU(inplace=True), nn.Dropout(0.5))
        for conv in (self.fc6[0], self.fc7[0]):  # VGG's convolution init (the ImageNet weights replace it)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        self.score_fr = nn.Conv2d(fc, k, 1)
        if skips >= 1:
            self.upscore2 = _upsample(k, 2)
            self.score_pool4 = nn.Conv2d(c4, k, 1)
        if skips >= 2:
            self.upscore_pool4 = _upsample(k, 2)
            self.score_pool3 = nn.Conv2d(c3, k, 1)
        self.upscore = FixedBilinear(k, 32 // 2**skips)  # as the reference: fixed, not learned
        for name in ("score_fr", "score_pool4", "score_pool3")[: skips + 1]:  # zero-initialised, as in the paper
            score = getattr(self, name)
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)
            score.keep_init = True
        self.feature_dim = fc

    def _trunk(self, x: Tensor) -> dict[str, Tensor]:
        pools = {}
        for i, layer in enumerate(self.backbone):
            x = layer(x)
            if i == VGG16_POOLS["pool3"]:
                pools["pool3"] = x  # (B, c3, H/8, W/8)
            elif i == VGG16_POOLS["pool4"]:
                pools["pool4"] = x  # (B, c4, H/16, W/16)
        pools["fc7"] = self.fc7(self.fc6(x))  # (B, fc, H/32, W/32)
        return pools

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        f = self._trunk(x)
        score = self.score_fr(f["fc7"])  # (B, K, H/32, W/32)
        if self.skips >= 1:
            score = self.upscore2(score) + self.score_pool4(f["pool4"] * POOL_SCALES["pool4"])  # (B, K, H/16, W/16)
        if self.skips >= 2:
            score = self.upscore_pool4(score) + self.score_pool3(f["pool3"] * POOL_SCALES["pool3"])  # (B, K, H/8, W/8)
        return {"out": self.upscore(score), "features": f["fc7"]}  # (B, K, H, W); fc7 (B, fc, H/32, W/32) is the embedding


@torch.no_grad()
def load_vgg16_imagenet(model: FCN, state_dict: dict[str, Tensor]) -> None:
    """Copy a torchvision VGG16 state dict into ``model``: conv layers as they are, fc6/fc7 reshaped.

    VGG flattens pool5 (C, 7, 7) in C-major order, so fc6's (4096, C*7*7) Linear weight viewed
    as (4096, C, 7, 7) is the same function applied as a 7x7 convolution at every position.
    """
    features = {k.removeprefix("features."): v for k, v in state_dict.items() if k.startswith("features.")}
    missing, unexpected = load_pretrained(model.backbone, features)
    if missing or unexpected:
        raise RuntimeError(f"VGG16 ImageNet weights do not fit: missing {missing}, unexpected {unexpected}")
    for conv, key in ((model.fc6[0], "classifier.0"), (model.fc7[0], "classifier.3")):
        conv.weight.copy_(state_dict[f"{key}.weight"].view(conv.weight.shape))
        conv.bias.copy_(state_dict[f"{key}.bias"])
        conv.pretrained_weights = True  # the engine's --init leaves it alone


def _fcn(name: str, skips: int, *, num_classes: int, in_channels: int, width_mult: float, pretrained_backbone: bool) -> FCN:
    check_pretrained_args(name, pretrained=pretrained_backbone, width_mult=width_mult, in_channels=in_channels)
    model = FCN(num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, skips=skips)
    if pretrained_backbone:
        load_vgg16_imagenet(model, load_imagenet_weights(VGG16_WEIGHTS))
    return model


@register_model("fcn32s", task=SegmentationTask)
def fcn32s(*, num_classes: int, in_channels: int = 3, width_mult: float = 1.0, pretrained_backbone: bool = False) -> FCN:
    """FCN-32s: fc7 scores upsampled 32x."""
    return _fcn(
        "fcn32s",
        0,
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        pretrained_backbone=pretrained_backbone,
    )


@register_model("fcn16s", task=SegmentationTask)
def fcn16s(*, num_classes: int, in_channels: int = 3, width_mult: float = 1.0, pretrained_backbone: bool = False) -> FCN:
    """FCN-16s: FCN-32s plus a pool4 skip, upsampled 16x."""
    return _fcn(
        "fcn16s",
        1,
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        pretrained_backbone=pretrained_backbone,
    )


@register_model("fcn8s", task=SegmentationTask)
def fcn8s(*, num_classes: int, in_channels: int = 3, width_mult: float = 1.0, pretrained_backbone: bool = False) -> FCN:
    """FCN-8s: FCN-16s plus a pool3 skip, upsampled 8x (134M parameters at width 1, 21 classes)."""
    return _fcn(
        "fcn8s",
        2,
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
        pretrained_backbone=pretrained_backbone,
    )
