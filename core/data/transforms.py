"""Joint image/mask transforms on ``torchvision.transforms.v2`` with ``tv_tensors.Mask``.

One pipeline moves the image and its mask together; v2 resamples ``Mask`` with nearest
neighbour in every geometric op, so labels are never blended.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2


@dataclass
class AugmentConfig:
    """Training-time augmentation. Every option can be switched off."""

    hflip: float = 0.5  # probability of a horizontal flip
    scale: tuple[float, float] | None = (0.75, 1.25)  # random rescale of the base size; None = off
    crop: tuple[int, int] | None = None  # random (H, W) crop after rescaling (default: the base size); void-padded
    rotation: float = 0.0  # maximum rotation in degrees (0 = off); uncovered corners become void
    color_jitter: float = 0.0  # brightness/contrast/saturation strength (0 = off); hue moves by a quarter of it
    gamma_jitter: float = 0.0  # random gamma in [1 - g, 1 + g] (0 = off): darker or brighter mid-tones, e.g. dusk
    blur: float = 0.0  # probability of a Gaussian blur (sigma 0.1-1.5 px), as from motion or focus (0 = off)
    rare_crop: float = 0.0  # probability that the crop is centred on a pixel of a rare class present (0 = plain crop)
    rare_classes: list[int] | None = None  # the classes ``rare_crop`` looks for (needed when rare_crop > 0)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "AugmentConfig":
        d = dict(d or {})
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown augmentation option(s) {unknown}; valid: {[f.name for f in fields(cls)]}")
        for key in ("scale", "crop"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


class RandomGamma(v2.Transform):
    """Gamma correction with a factor drawn from [1 - strength, 1 + strength]; images only, masks untouched."""

    _transformed_types = (tv_tensors.Image,)

    def __init__(self, strength: float) -> None:
        super().__init__()
        if not 0 <= strength < 1:
            raise ValueError(f"gamma strength must be in [0, 1), got {strength}")
        self.strength = strength

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"gamma": float(torch.empty(1).uniform_(1 - self.strength, 1 + self.strength))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return v2.functional.adjust_gamma(inpt, params["gamma"])


class RareClassCrop(v2.RandomCrop):
    """A random crop that favours rare classes: with probability ``p``, centred on a pixel of one of
    ``classes`` present in the mask (a class drawn uniformly among those present, then one of its pixels),
    moved by up to a quarter of the crop each way and clamped to the (padded) image, so that pixel is always
    inside; otherwise, or when the mask holds none of them, the plain random crop.

    Thin and rare classes (poles, signs, cyclists) cover a few percent of the pixels, so a plain crop often
    misses them altogether; this shows them in more of the batches without reweighting the loss. Like
    ``RandomCrop(pad_if_needed=True, fill=fill)`` it pads images smaller than the crop (the mask with void),
    and ``tv_tensors.Mask`` is only ever padded and cut, never resampled. At ``p = 0`` it is that crop exactly.
    """

    def __init__(self, size: tuple[int, int], *, classes: list[int], p: float, fill: dict) -> None:
        super().__init__(size, pad_if_needed=True, fill=fill)
        if not 0 <= p <= 1:
            raise ValueError(f"the rare-class crop probability must be in [0, 1], got {p}")
        self.classes, self.p = [int(c) for c in classes], p

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        params = super().make_params(flat_inputs)  # the plain crop, drawn first: p = 0 leaves the random stream as it is
        if self.p == 0 or not self.classes or float(torch.rand(())) >= self.p:
            return params
        mask = next((x for x in flat_inputs if isinstance(x, tv_tensors.Mask)), None)
        pixel = None if mask is None else _rare_pixel(mask.as_subclass(torch.Tensor), self.classes)
        if pixel is None:
            return params
        left_pad, top_pad, right_pad, bottom_pad = params["padding"]
        h, w = mask.shape[-2:]
        ch, cw = params["height"], params["width"]
        params["top"] = _centred_start(pixel[0] + top_pad, ch, h + top_pad + bottom_pad)
        params["left"] = _centred_start(pixel[1] + left_pad, cw, w + left_pad + right_pad)
        return params


def _rare_pixel(mask: torch.Tensor, classes: list[int]) -> tuple[int, int] | None:
    """(y, x) of a random pixel of a random one of ``classes`` present in ``mask`` (..., H, W); None if none is."""
    mask = mask.reshape(mask.shape[-2:])  # (H, W)
    present = [c for c in classes if bool((mask == c).any())]
    if not present:
        return None
    ys, xs = (mask == present[int(torch.randint(len(present), ()))]).nonzero(as_tuple=True)
    i = int(torch.randint(len(ys), ()))
    return int(ys[i]), int(xs[i])


def _centred_start(centre: int, crop: int, extent: int) -> int:
    """Start of a ``crop``-long window around ``centre``, jittered by up to crop / 4, inside [0, extent)."""
    jitter = int(torch.randint(-(crop // 4), crop // 4 + 1, ()))
    return min(max(centre - crop // 2 + jitter, 0), extent - crop)


def photometric(augment: AugmentConfig) -> list[torch.nn.Module]:
    """Colour jitter, gamma and blur: they change the image's appearance, never its labels."""
    ops: list[torch.nn.Module] = []
    if augment.color_jitter > 0:
        s = augment.color_jitter
        ops.append(v2.ColorJitter(brightness=s, contrast=s, saturation=s, hue=min(0.5, s / 4)))
    if augment.gamma_jitter > 0:
        ops.append(RandomGamma(augment.gamma_jitter))
    if augment.blur > 0:
        # v2 passes tv_tensors.Mask through GaussianBlur untouched: labels are never blurred
        ops.append(v2.RandomApply([v2.GaussianBlur(kernel_size=5, sigma=(0.1, 1.5))], p=augment.blur))
    return ops


class ToPlainTensors(v2.Transform):
    """Final step: plain tensors out, image float (3, H, W), mask int64 (H, W)."""

    _transformed_types = (tv_tensors.Image, tv_tensors.Mask)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask):
            return inpt.as_subclass(torch.Tensor).long()
        return inpt.as_subclass(torch.Tensor)


def _normalize(mean: tuple[float, ...], std: tuple[float, ...]) -> list[torch.nn.Module]:
    return [v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True), v2.Normalize(mean, std), ToPlainTensors()]


def train_transforms(
    *,
    size: tuple[int, int] | None,
    augment: AugmentConfig,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    ignore_index: int,
) -> v2.Compose:
    """Random joint augmentation. ``size`` (H, W) is the base resolution every image is resized to first."""
    fill = {tv_tensors.Image: 0, tv_tensors.Mask: ignore_index}
    ops: list[torch.nn.Module] = []
    if size is not None:
        ops.append(v2.Resize(size, antialias=True))
    if augment.hflip > 0:
        ops.append(v2.RandomHorizontalFlip(p=augment.hflip))
    if augment.scale is not None:
        lo, hi = augment.scale
        if size is None:
            raise ValueError("scale augmentation needs a base size")
        short = min(size)
        ops.append(v2.RandomResize(max(1, round(short * lo)), round(short * hi) + 1, antialias=True))
    if augment.rotation > 0:
        ops.append(v2.RandomRotation(augment.rotation, interpolation=v2.InterpolationMode.BILINEAR, fill=fill))
    # Rescaled images vary in size; crop back to a fixed one (the base size unless told) so they batch.
    crop = augment.crop if augment.crop is not None else (size if augment.scale is not None else None)
    if augment.rare_crop > 0:
        if crop is None:
            raise ValueError("the rare-class crop needs a crop: give --crop H W (or a --scale range, cropped to the base size)")
        if augment.rare_classes is None:
            raise ValueError("the rare-class crop needs its rare classes (core.train resolves them from the training labels)")
        ops.append(RareClassCrop(crop, classes=augment.rare_classes, p=augment.rare_crop, fill=fill))
    elif crop is not None:
        ops.append(v2.RandomCrop(crop, pad_if_needed=True, fill=fill))
    return v2.Compose(ops + photometric(augment) + _normalize(mean, std))


class ResizeImageOnly(v2.Transform):
    """Resize the image but keep the label map at its native size (for native-size scoring)."""

    _transformed_types = (tv_tensors.Image,)

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = list(size)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return v2.functional.resize(inpt, self.size, antialias=True)


def eval_transforms(
    *, size: tuple[int, int] | None, mean: tuple[float, ...], std: tuple[float, ...], image_only: bool = False
) -> v2.Compose:
    """Deterministic: resize to ``size`` (H, W) if given, then normalise.

    With ``image_only`` the mask keeps its native size, and scores are taken after upsampling
    the logits to it, as published results are.
    """
    ops: list[torch.nn.Module] = []
    if size is not None:
        ops.append(ResizeImageOnly(size) if image_only else v2.Resize(size, antialias=True))
    return v2.Compose(ops + _normalize(mean, std))


def classification_train_transforms(
    *, size: tuple[int, int], augment: AugmentConfig, mean: tuple[float, ...], std: tuple[float, ...]
) -> v2.Compose:
    """Random resized crop (from ``augment.scale`` as an area range), flip and colour jitter."""
    area = augment.scale if augment.scale is not None else (1.0, 1.0)
    ops: list[torch.nn.Module] = [v2.RandomResizedCrop(size, scale=(min(area[0], 1.0), min(area[1], 1.0)), antialias=True)]
    if augment.hflip > 0:
        ops.append(v2.RandomHorizontalFlip(p=augment.hflip))
    if augment.rotation > 0:
        ops.append(v2.RandomRotation(augment.rotation))
    return v2.Compose(ops + photometric(augment) + _normalize(mean, std))
