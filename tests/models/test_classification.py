"""Every registered classification model at 32x32, batch 2: shapes, finiteness, gradients, features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torchvision.models import DenseNet121_Weights, ResNet18_Weights, VGG19_BN_Weights

from core.models import get_model, list_models
from core.models.pretrained import weights_path

NUM_CLASSES = 7
# name -> small configurations (the first is the model itself, the rest exercise options).
# The huge torchvision nets run at their real size: at 32x32 and batch 2 that takes a few seconds.
# A newly registered model without an entry here fails the suite instead of going untested.
SMALL: dict[str, list[dict]] = {
    "densenet121": [{"width_mult": 0.25}, {"width_mult": 0.25, "small_input": True, "in_channels": 1}],
    "densenet161": [{}],
    "densenet169": [{"width_mult": 0.25, "small_input": True}],
    "resnet152": [{}],
    "resnet18": [{"width_mult": 0.25}, {"width_mult": 0.25, "small_input": True}, {"width_mult": 0.25, "in_channels": 1}],
    "resnet50": [{"width_mult": 0.25, "small_input": True}],
    "resnext101_32x8d": [{}],
    "resnext50_32x4d": [{"small_input": True}],
    "small_cnn": [{"base_width": 8}, {"base_width": 4, "convs_per_block": 2, "dropout": 0.0}],
    "vgg16": [{"width_mult": 0.125}, {"width_mult": 0.125, "small_input": True}],
    "vgg19_bn": [{"width_mult": 0.125, "head": "mlp"}, {"width_mult": 0.125, "head": "mlp", "small_input": True}],
}
CASES = [(name, cfg) for name in list_models(task="classification") for cfg in SMALL.get(name, [None])]


@pytest.mark.parametrize(("name", "cfg"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_classification_model(name: str, cfg: dict | None) -> None:
    assert cfg is not None, f"add a small configuration for {name!r} to SMALL in {__file__}"
    torch.manual_seed(0)
    model = get_model(name, num_classes=NUM_CLASSES, **cfg)
    cin = cfg.get("in_channels", 3)
    assert model.task.name == "classification" and model.num_classes == NUM_CLASSES and model.in_channels == cin
    assert model.feature_dim > 0
    x = torch.randn(2, cin, 32, 32)

    model.eval()
    with torch.no_grad():
        logits, feats = model(x), model.features(x)
    assert logits.shape == (2, NUM_CLASSES) and feats.shape == (2, model.feature_dim)
    assert torch.isfinite(logits).all() and torch.isfinite(feats).all()
    torch.testing.assert_close(model.head(feats), logits)  # forward == head(features)

    model.train()
    model(x).sum().backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    for n, p in trainable:
        assert p.grad is not None, f"{n} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{n} has a non-finite gradient"


def test_small_input_keeps_spatial_resolution() -> None:
    """At 32x32 the ImageNet stem leaves 1x1 before layer4; the small-input stem leaves 4x4."""
    for small, side in ((False, 1), (True, 4)):
        model = get_model("resnet18", num_classes=3, width_mult=0.25, small_input=small).eval()
        seen = {}
        model.backbone.layer4.register_forward_hook(lambda m, i, o: seen.update(hw=o.shape[-2:]))
        with torch.no_grad():
            model(torch.randn(1, 3, 32, 32))
        assert tuple(seen["hw"]) == (side, side)
    vgg = get_model("vgg16", num_classes=3, width_mult=0.125, small_input=True).eval()
    assert vgg.backbone(torch.randn(1, 3, 32, 32)).shape[-2:] == (4, 4)


def test_vgg_custom_head_features_are_the_first_head_layer() -> None:
    model = get_model("vgg16", num_classes=4, width_mult=0.25).eval()
    assert model.feature_dim == 64  # 256 * 0.25
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        pooled = model.backbone(x).mean((2, 3))
        expected = torch.relu(model.pre_logits[0](pooled))
        torch.testing.assert_close(model.features(x), expected)
    assert not any(getattr(m, "pretrained_weights", False) for m in model.modules())  # built without weights
    assert get_model("vgg16", num_classes=4, width_mult=0.25, head="mlp").feature_dim == 1024


# ------------------------------------------------------------------- ImageNet weights (stand-ins)


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))

    def no_network(url: str, *args: object, **kwargs: object) -> None:
        raise ConnectionError(f"network disabled in tests (tried {url})")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path


def _place(weights, state: dict[str, torch.Tensor]) -> None:
    path = weights_path(weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def test_resnet_loads_imagenet_weights_and_small_input_replaces_only_the_stem(torch_home: Path) -> None:
    stand_in = torchvision.models.resnet18().state_dict()
    _place(ResNet18_Weights.IMAGENET1K_V1, stand_in)
    model = get_model("resnet18", num_classes=3, pretrained=True, small_input=True)
    for k, v in model.backbone.state_dict().items():
        if k == "conv1.weight":
            assert v.shape == (64, 3, 3, 3)
        else:
            assert torch.equal(v, stand_in[k]), k
    assert model.fc.out_features == 3
    assert getattr(model.backbone.layer1[0].conv1, "pretrained_weights", False)
    assert not getattr(model.backbone.conv1, "pretrained_weights", False)  # the replaced stem was not loaded
    assert not getattr(model.fc, "pretrained_weights", False)


def test_densenet_loads_torchvisions_old_key_names(torch_home: Path) -> None:
    stand_in = torchvision.models.densenet121().state_dict()
    # the published file says "norm.1" where the modules say "norm1"
    # and, written by an old PyTorch, holds no num_batches_tracked
    old = {
        k.replace("norm1", "norm.1").replace("conv1", "conv.1") if "denselayer" in k else k: v
        for k, v in stand_in.items()
        if not (k.endswith("num_batches_tracked") and "denselayer" in k)
    }
    assert old.keys() != stand_in.keys()
    _place(DenseNet121_Weights.IMAGENET1K_V1, old)
    model = get_model("densenet121", num_classes=3, pretrained=True)
    for k, v in model.backbone.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(v, stand_in["features." + k]), k


def test_vgg_loads_imagenet_features(torch_home: Path) -> None:
    stand_in = {k: v for k, v in torchvision.models.vgg19_bn().state_dict().items() if k.startswith("features.")}
    _place(VGG19_BN_Weights.IMAGENET1K_V1, stand_in)
    model = get_model("vgg19_bn", num_classes=3, pretrained=True, small_input=True)  # pools removed, weights still fit
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, stand_in["features." + k]), k


def test_pretrained_is_refused_where_weights_cannot_fit() -> None:
    with pytest.raises(ValueError, match="width_mult"):
        get_model("resnet50", num_classes=3, width_mult=0.5, pretrained=True)
