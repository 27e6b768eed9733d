"""The ImageNet-weights path, with stand-in weight files in a temporary TORCH_HOME. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models import MobileNet_V3_Large_Weights, ResNet18_Weights

from core.models import get_model
from core.models.backbones import VGG16_POOLS, scale_channels, vgg16_features
from core.models.fcn import load_vgg16_imagenet
from core.models.pretrained import PretrainedWeightsUnavailable, load_imagenet_weights, weights_path


def _no_network(url: str, dst: str, *args: object, **kwargs: object) -> None:
    raise ConnectionError(f"network disabled in tests (tried {url})")


@pytest.fixture(autouse=True)
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TORCH_HOME. torch.hub.get_dir() (which torchvision uses) prefers a set_dir() value
    over $TORCH_HOME/hub, so both are pointed at the temporary directory and restored afterwards."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))  # what torch.hub.set_dir() sets
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    return tmp_path


def _place(weights: torchvision.models.WeightsEnum, state_dict: dict[str, torch.Tensor]) -> Path:
    path = weights_path(weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict, path)
    return path


def test_weights_path_is_where_torchvision_looks(torch_home: Path) -> None:
    weights = ResNet18_Weights.IMAGENET1K_V1
    assert weights_path(weights) == torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    stand_in = {"x": torch.arange(3.0)}
    _place(weights, stand_in)
    assert torch.equal(weights.get_state_dict()["x"], stand_in["x"])  # torchvision finds the same file


def test_simple_segnet_loads_the_stand_in_weights() -> None:
    stand_in = torchvision.models.resnet18().state_dict()  # fresh random values, the right keys and shapes
    _place(ResNet18_Weights.IMAGENET1K_V1, stand_in)
    model = get_model("simple_segnet", num_classes=4, pretrained_backbone=True)
    loaded = model.backbone.state_dict()
    assert set(loaded) == {k for k in stand_in if not k.startswith("fc.")}
    for k, v in loaded.items():
        assert torch.equal(v, stand_in[k]), k
    flagged = {n for n, m in model.named_modules() if getattr(m, "pretrained_weights", False)}
    assert "backbone.conv1" in flagged and "backbone.layer4.1.conv2" in flagged
    assert "classifier" not in flagged  # the new head keeps --init's re-initialisation


def test_lraspp_loads_the_stand_in_weights() -> None:
    stand_in = torchvision.models.mobilenet_v3_large(dilated=True).state_dict()
    _place(MobileNet_V3_Large_Weights.IMAGENET1K_V1, stand_in)
    model = get_model("lraspp", num_classes=4, pretrained_backbone=True)
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, stand_in[f"features.{k}"]), k


def test_missing_weights_error_names_the_file_and_torch_home(torch_home: Path) -> None:
    path = weights_path(ResNet18_Weights.IMAGENET1K_V1)
    with pytest.raises(PretrainedWeightsUnavailable) as err:
        get_model("simple_segnet", num_classes=4, pretrained_backbone=True)
    message = str(err.value)
    assert str(path) in message and "TORCH_HOME" in message and ResNet18_Weights.IMAGENET1K_V1.url in message
    assert "network disabled" in message
    assert not any(path.parent.glob("*.partial"))


def test_download_goes_to_a_temporary_name_then_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def fake_download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        seen.append((url, Path(dst), hash_prefix))
        torch.save({"w": torch.ones(2)}, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    weights = ResNet18_Weights.IMAGENET1K_V1
    assert torch.equal(load_imagenet_weights(weights)["w"], torch.ones(2))
    ((url, dst, hash_prefix),) = seen
    assert url == weights.url and dst != weights_path(weights) and hash_prefix == "f37072fd"
    assert weights_path(weights).is_file() and not dst.exists()


@pytest.mark.parametrize(
    ("name", "cfg", "match"),
    [
        ("simple_segnet", {"width_mult": 0.5}, "width_mult"),
        ("fcn8s", {"width_mult": 0.25}, "width_mult"),
        ("lraspp", {"width_mult": 0.5}, "width_mult"),
        ("pspnet", {"in_channels": 4}, "in_channels"),
        ("deeplabv3", {"in_channels": 1, "backbone": "mobilenet_v3_large"}, "in_channels"),
    ],
)
def test_pretrained_refuses_arguments_imagenet_weights_cannot_fit(name: str, cfg: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        get_model(name, num_classes=3, pretrained_backbone=True, **cfg)


def test_vgg16_fully_connected_weights_become_fc6_fc7_convolutions() -> None:
    """Checked at a tiny width with a fake VGG16 state dict (the real one is 528 MB)."""
    width = 1 / 16
    fc, c5 = scale_channels(4096, width), scale_channels(512, width)
    features = vgg16_features(width_mult=width).state_dict()
    state_dict = {f"features.{k}": torch.randn_like(v) for k, v in features.items()}
    state_dict |= {
        "classifier.0.weight": torch.randn(fc, c5 * 7 * 7),
        "classifier.0.bias": torch.randn(fc),
        "classifier.3.weight": torch.randn(fc, fc),
        "classifier.3.bias": torch.randn(fc),
    }
    model = get_model("fcn8s", num_classes=3, width_mult=width)
    load_vgg16_imagenet(model, state_dict)
    assert torch.equal(model.backbone[0].weight, state_dict["features.0.weight"])
    pool5 = torch.randn(2, c5, 7, 7)  # what VGG's classifier sees after its 7x7 average pool
    expected = F.linear(pool5.flatten(1), state_dict["classifier.0.weight"], state_dict["classifier.0.bias"])
    fc6 = model.fc6[0](pool5)[:, :, 3, 3]  # the centre position covers the whole 7x7 map
    assert torch.allclose(fc6, expected, atol=1e-4)
    assert VGG16_POOLS["pool5"] == len(model.backbone) - 1
