"""Shared contract of every model in the registry.

Segmentation models subclass :class:`SegmentationModel` and implement ``forward_padded`` for
inputs whose sides are multiples of ``size_divisor``, returning the logits and the per-pixel
features they came from in one pass; the base class pads any H x W, runs it, and crops back, so
callers may pass any size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.tasks import ClassificationTask, SegmentationTask


class EmbeddingsUnavailableError(ValueError):
    """Features were asked of a model that serves none; the message says why (its ``embeddings_unavailable``)."""


def embeddings_unavailable(model: nn.Module) -> str | None:
    """Why ``model`` serves no embedding, or None if it does: the capability a model declares (FiftyOne's
    ``has_embeddings``), read instead of testing types, so a caller can say so before any work."""
    return getattr(model, "embeddings_unavailable", None)


def pad_to_multiple(x: Tensor, divisor: int) -> Tensor:
    """Zero-pad the bottom and right of ``x`` (B, C, H, W) so H and W are multiples of ``divisor``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % divisor, (-w) % divisor
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph))


def crop_to_input(y: Tensor, padded_hw: tuple[int, int], hw: tuple[int, int], *, resize: bool) -> Tensor:
    """Undo ``pad_to_multiple`` on a map ``y`` (B, C, h, w) computed from a padded input.

    With ``resize`` the map is first upsampled (bilinear) to the padded size, then cropped to
    ``hw``: the result is (B, C, H, W). Without it the map keeps its own resolution and only the
    part that covers the real input is kept: (B, C, ceil(h * H / Hp), ceil(w * W / Wp)).
    """
    (hp, wp), (h, w) = padded_hw, hw
    if resize:
        if y.shape[-2:] != (hp, wp):
            y = F.interpolate(y, size=(hp, wp), mode="bilinear", align_corners=False)
        return y[..., :h, :w]
    fh, fw = y.shape[-2:]
    return y[..., : -(-fh * h // hp), : -(-fw * w // wp)]


class SegmentationModel(nn.Module):
    """Base class: ``forward(x) -> {"out": (B, K, H, W)[, "aux": ...]}``; with ``features=True`` also
    ``"features"``: (B, C, h, w), the embedding the classifier read, from the same pass.

    Subclasses set ``num_classes``, ``in_channels``, ``feature_dim`` and ``size_divisor``. Modules
    that received ImageNet weights carry ``pretrained_weights = True`` (``core.models.pretrained.load_pretrained``),
    so the training engine's initialiser leaves them alone. A model that has no features to serve (an ONNX graph
    without a features output) says why in ``embeddings_unavailable`` and returns no ``"features"``.
    """

    task = SegmentationTask
    size_divisor: int = 32
    embeddings_unavailable: str | None = None  # why this model serves no features (None: it does)

    def __init__(self, *, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feature_dim = 0  # set by the subclass

    def forward_padded(self, x: Tensor) -> dict[str, Tensor]:
        """For ``x`` (B, C, Hp, Wp) with sides divisible by ``size_divisor``: ``"out"`` logits at any
        resolution, ``"features"`` (B, feature_dim, h, w) the per-pixel embedding just before the
        classifier, and ``"aux"`` logits in training for models with an auxiliary head."""
        raise NotImplementedError

    def prepare(self, x: Tensor) -> Tensor:
        """What a model does to its input before padding (nothing by default; see ``ResUNet(input_norm=...)``)."""
        return x

    def forward(self, x: Tensor, *, features: bool = False) -> dict[str, Tensor]:
        if features and self.embeddings_unavailable:
            raise EmbeddingsUnavailableError(self.embeddings_unavailable)
        x = self.prepare(x)
        hw = (x.shape[-2], x.shape[-1])
        xp = pad_to_multiple(x, self.size_divisor)  # (B, C, Hp, Wp)
        out = self.forward_padded(xp)
        f = out.pop("features", None)
        result = {k: crop_to_input(v, xp.shape[-2:], hw, resize=True) for k, v in out.items()}
        if features:  # (B, feature_dim, h, w) covering exactly the input (padding cropped away)
            if f is None:
                raise EmbeddingsUnavailableError(f"{type(self).__name__}.forward_padded returned no features")
            result["features"] = crop_to_input(f, xp.shape[-2:], hw, resize=False)
        return result

    def features(self, x: Tensor) -> Tensor:
        """(B, feature_dim, h, w) covering exactly the input's H x W (padding cropped away).

        Pixel (y, x) of the input lies in feature cell (y * h // H, x * w // W).
        """
        return self.forward(x, features=True)["features"]


class ClassificationModel(nn.Module):
    """Base class: ``forward(x) -> logits (B, K)``, ``features(x) -> (B, D)`` (the pre-logit embedding).

    A model without an embedding to serve says why in ``embeddings_unavailable``; it still gives logits.
    """

    task = ClassificationTask
    embeddings_unavailable: str | None = None  # why this model serves no embedding (None: it does)

    def __init__(self, *, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feature_dim = 0  # set by the subclass

    def features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def head(self, f: Tensor) -> Tensor:
        """Logits (B, K) from the embedding (B, D)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def logits_and_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Logits (B, K) and the embedding (B, D) from one pass. A model whose head cannot be run on its own (an
        ONNX graph) overrides this; the others need not."""
        if self.embeddings_unavailable:
            raise EmbeddingsUnavailableError(self.embeddings_unavailable)
        f = self.features(x)
        return self.head(f), f


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def bilinear_kernel(channels: int, kernel_size: int) -> Tensor:
    """Weights (C, C, k, k) that make a ConvTranspose2d a bilinear upsampler (Long et al.)."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float32)
    filt1d = 1 - (og - center).abs() / factor
    filt = filt1d[:, None] * filt1d[None, :]  # (k, k)
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    weight[range(channels), range(channels)] = filt
    return weight
