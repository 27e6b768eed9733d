"""Model sources (tv, smp, timm): each adapter gives exactly the library's logits, the embedding through the
library's own feature API, the library's own state dict, and recognises the library's model objects."""

from __future__ import annotations

import pytest
import torch

from core.models import arch_arguments, arch_task, build_arch, describe_model, load_stored_state, stored_state
from core.models.sources import SOURCES, split_arch
from core.tasks import ClassificationTask, SegmentationTask
from core.utils.registry import UnknownNameError

smp = pytest.importorskip("segmentation_models_pytorch")
timm = pytest.importorskip("timm")
torchvision = pytest.importorskip("torchvision")

SMP_UNET = {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 8]}


def tiny(arch: str, extra: dict | None = None, k: int = 5) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_arch(arch, arch_arguments(arch, extra or {}, num_classes=k)).eval()


@pytest.mark.parametrize(
    ("arch", "extra"),
    [
        ("smp:Unet", SMP_UNET),
        ("smp:FPN", {"encoder_name": "resnet18"}),
        ("tv:lraspp_mobilenet_v3_large", {}),
        ("tv:deeplabv3_mobilenet_v3_large", {"aux_loss": True}),
    ],
)
def test_segmentation_adapters_give_the_library_logits_at_any_size(arch, extra):
    model = tiny(arch, extra)
    x = torch.randn(2, 3, 64, 96)  # divisible by 32: the library's model takes it as it is
    with torch.no_grad():
        out = model(x, features=True)
        raw = model.net(x)
    raw = raw["out"] if isinstance(raw, dict) else raw
    torch.testing.assert_close(out["out"], raw, rtol=0, atol=1e-5)
    assert out["features"].shape[:2] == (2, model.feature_dim)
    with torch.no_grad():  # any H x W: padded for the encoder, the logits cropped back
        odd = model(torch.randn(1, 3, 61, 83))["out"]
    assert odd.shape == (1, 5, 61, 83) and torch.isfinite(odd).all()
    assert arch_task(arch) is SegmentationTask


@pytest.mark.parametrize(
    ("arch", "extra"),
    [
        ("timm:convnext_atto", {}),
        ("timm:resnet18", {}),
        ("tv:resnet18", {}),
        ("tv:mobilenet_v3_small", {}),
        ("tv:googlenet", {"init_weights": True}),
    ],
)
def test_classifier_adapters_split_the_library_model_into_embedding_and_head(arch, extra):
    model = tiny(arch, extra)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        f = model.features(x)
        logits = model.head(f)
        full = model(x)
    assert f.shape == (2, model.feature_dim) and logits.shape == (2, 5)
    torch.testing.assert_close(logits, full, rtol=0, atol=1e-5)
    assert arch_task(arch) is ClassificationTask


@pytest.mark.parametrize(
    ("arch", "extra", "raw"),
    [
        ("tv:resnet18", {}, lambda: torchvision.models.resnet18(num_classes=5)),
        (
            "tv:lraspp_mobilenet_v3_large",
            {},
            lambda: torchvision.models.segmentation.lraspp_mobilenet_v3_large(num_classes=5, weights_backbone=None),
        ),
        ("smp:Unet", SMP_UNET, lambda: smp.Unet(encoder_weights=None, classes=5, **SMP_UNET)),
        ("timm:convnext_atto", {}, lambda: timm.create_model("convnext_atto", num_classes=5)),
    ],
)
def test_stored_weights_are_the_library_state_dict_and_models_describe_themselves(arch, extra, raw):
    model = raw()
    found = describe_model(model)
    assert found is not None and found[0] == arch
    rebuilt = tiny(arch, found[1])
    load_stored_state(rebuilt, model.state_dict())  # the library's own state dict: no prefix to add or strip
    assert stored_state(rebuilt).keys() == model.state_dict().keys()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = model.eval()(x), rebuilt(x)
    a, b = (a["out"] if isinstance(a, dict) else a), (b["out"] if isinstance(b, dict) else b)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


def test_names_are_resolved_by_the_source_and_bad_ones_are_refused():
    assert split_arch("smp:Unet") == ("smp", "Unet") and split_arch("unet") == ("registry", "unet")
    with pytest.raises(UnknownNameError, match="unknown model source 'keras'; valid names: hf, onnx, registry, smp, timm, tv"):
        split_arch("keras:Unet")
    with pytest.raises(ValueError, match="smp: no architecture 'UNet3'"):
        arch_task("smp:UNet3")
    with pytest.raises(ValueError, match="tv: no model 'resnet7'"):
        arch_task("tv:resnet7")
    with pytest.raises(ValueError, match="checkpoint_path.*never names a file"):
        arch_arguments("timm:resnet18", {"checkpoint_path": "/etc/passwd"}, num_classes=3)
    assert set(SOURCES.names()) >= {"registry", "tv", "smp", "timm", "hf", "onnx"}


def test_a_rebuilt_model_never_fetches_weights(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a model rebuilt from a run directory fetched weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    args = arch_arguments("tv:deeplabv3_mobilenet_v3_large", {"weights_backbone": "DEFAULT"}, num_classes=3)
    build_arch("tv:deeplabv3_mobilenet_v3_large", args)  # pretrained=False: the recorded weights are ignored
    args = arch_arguments("smp:Unet", {**SMP_UNET, "encoder_weights": "imagenet"}, num_classes=3)
    build_arch("smp:Unet", args)
