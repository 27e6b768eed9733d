"""Every registered segmentation model, at a tiny width: shapes, finiteness, gradients, features."""

from __future__ import annotations

import math

import pytest
import torch

from core.models import count_parameters, get_model, list_models
from core.utils.registry import UnknownNameError

NUM_CLASSES = 5
# name -> tiny configurations (the first is the model itself, the rest exercise options).
# A newly registered model without an entry here fails the suite instead of going untested.
SMALL: dict[str, list[dict]] = {
    "cgnet": [{"widths": [8, 16, 32], "blocks": [2, 2]}, {"widths": [8, 16, 32], "blocks": [1, 1], "dropout": 0.1}],
    "dabnet": [{"widths": [8, 16, 32], "block1_modules": 1, "block2_dilations": [2, 4]}],
    "deeplabv3": [
        {"width_mult": 0.125},
        {"backbone": "mobilenet_v3_large", "width_mult": 0.25, "aux_head": False},
    ],
    "fcn16s": [{"width_mult": 1 / 16}],
    "fcn32s": [{"width_mult": 1 / 16}],
    "fcn8s": [{"width_mult": 1 / 16}],
    "fcn_baseline": [{"base_width": 4}],
    "lraspp": [{"width_mult": 0.25}],
    "pspnet": [
        {"backbone": "resnet18", "width_mult": 0.125},
        {"width_mult": 0.0625, "use_ppm": False, "aux_head": False},
    ],
    "resunet": [
        {"widths": [4, 8, 8, 16, 16], "blocks": [1, 1, 1, 1]},
        {"widths": [4, 4, 8, 8, 8], "context": False},
        {"widths": [4, 4, 8, 8, 8], "input_norm": "image"},
    ],
    "resnet_fcn": [
        {"backbone": "resnet18", "width_mult": 0.125},
        {"backbone": "resnet50", "width_mult": 0.0625, "freeze_encoder": True},
        {"backbone": "resnet18", "width_mult": 0.125, "min_decoder_width": 8},
    ],
    "simple_segnet": [{"width_mult": 0.125}],
    "unet": [{"base_width": 4, "depth": 3}, {"base_width": 4, "depth": 3, "min_decoder_width": 8, "valid_padding": True}],
    "unet_simple": [{"base_width": 4}],
}
CASES = [(name, cfg) for name in list_models(task="segmentation") for cfg in SMALL.get(name, [None])]
INPUTS = [(2, 3, 61, 83), (1, 3, 64, 64)]


@pytest.mark.parametrize(("name", "cfg"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_segmentation_model(name: str, cfg: dict | None) -> None:
    assert cfg is not None, f"add a tiny configuration for {name!r} to SMALL in {__file__}"
    torch.manual_seed(0)
    model = get_model(name, num_classes=NUM_CLASSES, **cfg)
    assert model.num_classes == NUM_CLASSES and model.in_channels == 3 and model.feature_dim > 0

    model.eval()  # forward checks in eval: train-mode BatchNorm after a 1x1 pooled bin needs B > 1
    for shape in INPUTS:
        b, _, h, w = shape
        x = torch.randn(shape)
        with torch.no_grad():
            out = model(x)
            feats = model.features(x)
        assert out["out"].shape == (b, NUM_CLASSES, h, w)
        assert torch.isfinite(out["out"]).all()
        assert feats.shape[:2] == (b, model.feature_dim) and feats.shape[2] <= h and feats.shape[3] <= w
        assert torch.isfinite(feats).all()

    model.train()  # one training step on the batch-2 input
    x = torch.randn(INPUTS[0])
    out = model(x)
    for key, y in out.items():
        assert key in ("out", "aux") and y.shape == (2, NUM_CLASSES, *x.shape[-2:]), key
    sum(y.sum() for y in out.values()).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    for n, p in trainable:
        assert p.grad is not None, f"{n} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{n} has a non-finite gradient"
    if cfg.get("freeze_encoder"):
        assert all(not p.requires_grad for p in model.backbone.parameters())


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="valid names: .*fcn8s.*pspnet"):
        get_model("fcn7s", num_classes=3)


def test_unknown_argument_lists_valid_arguments() -> None:
    with pytest.raises(TypeError, match="widht_mult.*valid arguments: .*width_mult"):
        get_model("pspnet", num_classes=3, widht_mult=0.5)


def test_bad_backbone_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="resnet18, resnet34 or resnet50"):
        get_model("resnet_fcn", num_classes=3, backbone="vgg16")


def test_resnet_fcn_min_decoder_width_floors_only_the_thin_layers() -> None:
    def widths(**cfg) -> list[int]:
        model = get_model("resnet_fcn", num_classes=3, backbone="resnet18", width_mult=0.2, **cfg)
        return [up[0].out_channels for up in model.decoder]

    assert widths() == [51, 26, 13, 6, 6]  # round(0.2 * (256, 128, 64, 32, 32)): the default is unchanged
    assert widths(min_decoder_width=16) == [51, 26, 16, 16, 16]
    with pytest.raises(ValueError, match="min_decoder_width must be >= 0"):
        get_model("resnet_fcn", num_classes=3, min_decoder_width=-1)


def test_unet_min_decoder_width_floors_only_the_decoder() -> None:
    plain = get_model("unet", num_classes=3, base_width=8)
    floored = get_model("unet", num_classes=3, base_width=8, min_decoder_width=16)
    assert [d[0].out_channels for d in plain.dec] == [64, 32, 16, 8]  # the decoder mirrors the encoder
    assert [d[0].out_channels for d in floored.dec] == [64, 32, 16, 16]
    assert [d[0].in_channels for d in floored.dec] == [128, 64, 32, 24]  # skip (8) + upsampled (16) at full size
    assert [b[0].out_channels for b in floored.down] == [b[0].out_channels for b in plain.down]  # encoder unchanged
    assert floored.feature_dim == 16 and floored.classifier.in_channels == 16
    with pytest.raises(ValueError, match="min_decoder_width must be >= 0"):
        get_model("unet", num_classes=3, min_decoder_width=-1)


@pytest.mark.parametrize(
    ("name", "num_classes", "cfg", "reference"),
    [
        ("fcn8s", 21, {}, 134e6),  # Long et al.
        ("unet", 2, {}, 31.0e6),  # U-Net with BatchNorm
        ("deeplabv3", 21, {}, 42.0e6),  # torchvision deeplabv3_resnet50 with aux head
        ("deeplabv3", 21, {"aux_head": False}, 39.6e6),
        ("lraspp", 21, {}, 3.2e6),  # torchvision lraspp_mobilenet_v3_large
        ("cgnet", 19, {}, 0.5e6),  # Wu et al., CGNet-M3N21 on Cityscapes: "0.5M"
        ("dabnet", 19, {}, 0.76e6),  # Li et al., DABNet on Cityscapes: "0.76M"
    ],
)
def test_published_parameter_counts(name: str, num_classes: int, cfg: dict, reference: float) -> None:
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = get_model(name, num_classes=num_classes, **cfg)
    assert math.isclose(count_parameters(model), reference, rel_tol=0.02)


@pytest.mark.parametrize(("name", "exact", "official"), [("cgnet", 496_306, 0.496e6), ("dabnet", 756_643, 0.756e6)])
def test_light_models_match_their_official_code(name: str, exact: int, official: float) -> None:
    """At 19 classes, the count of the authors' code layer for layer (worked out by hand for DABNet: 756,643), which
    later papers report to three decimals, truncated: 0.496M and 0.756M."""
    with torch.device("meta"):
        model = get_model(name, num_classes=19)
    assert count_parameters(model) == exact
    assert 0 <= exact - official < 1000


def test_light_models_refuse_widths_their_blocks_cannot_halve() -> None:
    with pytest.raises(ValueError, match="cgnet's widths"):
        get_model("cgnet", num_classes=3, widths=[8, 4, 32])
    with pytest.raises(ValueError, match="2 block counts >= 1"):
        get_model("cgnet", num_classes=3, blocks=[0, 3])
    with pytest.raises(ValueError, match="the last two even"):
        get_model("dabnet", num_classes=3, widths=[8, 15, 32])


def test_lraspp_logits_are_linear_in_features() -> None:
    """The concatenated features give exactly torchvision's LR-ASPP head output."""
    model = get_model("lraspp", num_classes=NUM_CLASSES, width_mult=0.25).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = model.classifier(model.backbone(x))  # torchvision's LRASPPHead.forward
        assert torch.allclose(model.forward_padded(x)["out"], expected, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "cfg", "torchvision_builder"),
    [
        ("deeplabv3", {"backbone": "resnet50"}, "deeplabv3_resnet50"),
        ("deeplabv3", {"backbone": "mobilenet_v3_large"}, "deeplabv3_mobilenet_v3_large"),
        ("lraspp", {}, "lraspp_mobilenet_v3_large"),
    ],
)
def test_torchvision_state_dict_layout(name: str, cfg: dict, torchvision_builder: str) -> None:
    """At width 1 the wrappers hold torchvision's module tree, so its COCO checkpoints load as they are."""
    from torchvision.models import segmentation

    kwargs = {"aux_loss": True} if name == "deeplabv3" else {}
    with torch.device("meta"):
        ours = get_model(name, num_classes=21, **cfg)
        builder = getattr(segmentation, torchvision_builder)
        theirs = builder(weights=None, weights_backbone=None, num_classes=21, **kwargs)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


def test_engine_reinitialisation_keeps_the_fcn_paper_init() -> None:
    """Bilinear upsampling and zero scoring layers are flagged ``keep_init`` for ``core.train.optim.init_weights``."""
    from core.models.base import bilinear_kernel
    from core.train.optim import init_weights

    model = get_model("fcn8s", num_classes=3, width_mult=1 / 16)
    init_weights(model, "kaiming")
    assert torch.equal(model.upscore.weight, bilinear_kernel(3, 16))
    assert torch.equal(model.upscore2.weight, bilinear_kernel(3, 4))
    assert not model.score_fr.weight.any() and not model.score_pool3.weight.any()
    assert model.fc6[0].weight.any()


def test_fcn_fixed_upsampling_stays_float32_under_bfloat16_autocast() -> None:
    """The FCNs' fixed bilinear upsampling runs in float32 under autocast (oneDNN's bfloat16 transposed
    convolution with FCN-32s' 64x64 kernel is about 40x slower on a CPU): same result as float32 on the same
    scores, and a constant score map stays that constant away from the border."""
    from core.models.base import bilinear_kernel
    from core.models.fcn import FixedBilinear

    up, x = FixedBilinear(3, 32), torch.randn(1, 3, 3, 4).bfloat16()  # (B, K, h, w) bfloat16 scores
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = up(x)  # (1, 3, 96, 128)
        flat = up(torch.full((1, 3, 3, 4), 0.5, dtype=torch.bfloat16))
    assert y.dtype == torch.float32 and y.shape == (1, 3, 96, 128)
    assert torch.equal(y, torch.nn.functional.conv_transpose2d(x.float(), bilinear_kernel(3, 64), stride=32, padding=16))
    assert torch.equal(flat[..., 16:80, 16:112], torch.full((1, 3, 64, 96), 0.5))
    model = get_model("fcn32s", num_classes=3, width_mult=1 / 16).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(1, 3, 64, 96))
    out = out["out"] if isinstance(out, dict) else out
    assert out.dtype == torch.float32 and out.shape == (1, 3, 64, 96)


def test_resunet_input_norm_sees_a_darker_flatter_image_as_the_same_image():
    """``input_norm="image"``: each channel standardised by the image's own statistics, so a global change of
    brightness and contrast (dusk, winter light) changes nothing downstream; "none" is the plain network."""
    torch.manual_seed(0)
    model = get_model("resunet", num_classes=NUM_CLASSES, widths=[4, 4, 8, 8, 8], input_norm="image").eval()
    x = torch.rand(2, 3, 61, 83)
    dusk = x * torch.tensor([0.3, 0.35, 0.4]).view(1, 3, 1, 1) - 0.5  # per channel: darker, flatter, shifted
    with torch.no_grad():
        torch.testing.assert_close(model(dusk)["out"], model(x)["out"], rtol=1e-4, atol=1e-4)
    plain = get_model("resunet", num_classes=NUM_CLASSES, widths=[4, 4, 8, 8, 8]).eval()
    with torch.no_grad():
        assert not torch.allclose(plain(dusk)["out"], plain(x)["out"], atol=1e-3)
    with pytest.raises(ValueError, match="input_norm must be one of none, image"):
        get_model("resunet", num_classes=NUM_CLASSES, input_norm="batch")
