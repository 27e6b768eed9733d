"""ImageNet weights for backbones, fetched the way torchvision fetches them but failing clearly.

``load_imagenet_weights(ResNet18_Weights.IMAGENET1K_V1)`` reads the file torchvision itself would
cache (``torch.hub.get_dir()/checkpoints/<name of the URL>``, i.e. ``$TORCH_HOME/hub/checkpoints``
unless ``torch.hub.set_dir`` was called), downloading it first if it is missing. Offline machines
can copy the file there by hand; when neither works, :class:`PretrainedWeightsUnavailable` says
exactly which file to put where. Nothing here is specific to segmentation.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torchvision.models import WeightsEnum


class PretrainedWeightsUnavailable(RuntimeError):
    """The weights file is neither cached nor downloadable; the message says where to put it."""


def weights_path(weights: WeightsEnum) -> Path:
    """Where torchvision caches ``weights``: ``<torch hub dir>/checkpoints/<file name in the URL>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def _download(url: str, path: Path, *, progress: bool) -> None:
    """Download to a temporary name beside ``path``, then rename, so a broken download never looks cached."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.partial")
    match = torch.hub.HASH_REGEX.search(path.name)  # torchvision names files <name>-<sha256 prefix>.pth
    try:
        torch.hub.download_url_to_file(url, str(tmp), hash_prefix=match.group(1) if match else None, progress=progress)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_imagenet_weights(weights: WeightsEnum, *, progress: bool = False) -> dict[str, Tensor]:
    """The state dict of a torchvision weights enum, e.g. ``VGG16_Weights.IMAGENET1K_V1``.

    Raises :class:`PretrainedWeightsUnavailable` if the file is not cached and cannot be downloaded.
    """
    path = weights_path(weights)
    if not path.is_file():
        try:
            _download(weights.url, path, progress=progress)
        except Exception as err:  # no network, HTTP error, bad hash, read-only cache, ...
            raise PretrainedWeightsUnavailable(
                f"pretrained weights {weights} are not available: expected the file {path} "
                f"(downloaded from {weights.url}), and downloading it failed ({type(err).__name__}: {err}). "
                f"Download the file on a machine with internet access and place it at {path}, "
                "or set TORCH_HOME to a directory whose hub/checkpoints/ folder holds it."
            ) from err
    # weights_only: a checkpoint is data, never code to execute.
    return torch.load(path, map_location="cpu", weights_only=True)


def load_pretrained(module: nn.Module, state_dict: dict[str, Tensor]) -> tuple[list[str], list[str]]:
    """``module.load_state_dict(state_dict, strict=False)``, then flag each submodule whose own
    parameters all came from ``state_dict`` with ``pretrained_weights = True``.

    The training engine's ``--init xavier|kaiming`` leaves flagged modules alone and re-initialises
    everything else, so a layer is skipped exactly when ImageNet weights were loaded into it (a stem
    replaced afterwards, or a model built without weights, is re-initialised). Returns (missing, unexpected).
    """
    missing, unexpected = module.load_state_dict(state_dict, strict=False)
    for name, m in module.named_modules():
        own = [f"{name}.{p}" if name else p for p, _ in m.named_parameters(recurse=False)]
        if own and all(k in state_dict for k in own):
            m.pretrained_weights = True
    return missing, unexpected


def check_pretrained_args(name: str, *, pretrained: bool, width_mult: float = 1.0, in_channels: int = 3) -> None:
    """Refuse builder arguments that ImageNet weights cannot fit (they exist only at width 1, RGB input)."""
    if not pretrained:
        return
    if width_mult != 1.0:
        raise ValueError(
            f"{name}: ImageNet weights exist only for width_mult=1.0, got width_mult={width_mult}; "
            "use pretrained_backbone=False for a width-scaled model"
        )
    if in_channels != 3:
        raise ValueError(
            f"{name}: ImageNet weights expect 3 input channels (RGB), got in_channels={in_channels}; "
            "use pretrained_backbone=False"
        )
