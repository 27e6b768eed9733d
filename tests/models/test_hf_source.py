"""The hf source: transformers models built from a config (never from the Hub) give exactly the library's logits,
upsampled to the input's size; features from output_hidden_states; the library's own state dict; a run records
the config itself; configs that need custom code or a download are refused."""

from __future__ import annotations

import json
import socket

import pytest
import torch
import torch.nn.functional as F

from core.models import arch_arguments, arch_task, build_arch, describe_model, load_stored_state, stored_state
from core.models.sources import SOURCES
from core.tasks import ClassificationTask, SegmentationTask
from tests.tiny_models import RESNET, SEGFORMER, UPERNET, VIT, hf_model

transformers = pytest.importorskip("transformers")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every test here runs offline: a connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the hf source opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def tiny(arch: str, config: dict, k: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_arch(arch, arch_arguments(arch, {"config": config}, num_classes=k)).eval()


@pytest.mark.parametrize(("arch", "config", "stages"), [("hf:segformer", SEGFORMER, 2), ("hf:upernet", UPERNET, 5)])
def test_segmentation_logits_are_the_library_upsampled_and_features_come_from_hidden_states(arch, config, stages):
    model = tiny(arch, config, 11)
    x = torch.randn(2, 3, 61, 83)  # any size: passed unpadded, as transformers' processors pass it
    with torch.no_grad():
        out = model(x, features=True)
        raw = model.net(pixel_values=x, output_hidden_states=True)
    expected = F.interpolate(raw.logits, size=(61, 83), mode="bilinear", align_corners=False)  # SegFormer's are at 1/4
    torch.testing.assert_close(out["out"], expected, rtol=0, atol=1e-6)
    maps = [h for h in raw.hidden_states if h.dim() == 4]
    assert len(maps) == stages and out["features"].shape == (2, sum(h.shape[1] for h in maps), *maps[0].shape[-2:])
    assert model.feature_dim == out["features"].shape[1] and arch_task(arch) is SegmentationTask
    assert "features" not in model(x) and model.embeddings_unavailable is None


@pytest.mark.parametrize(
    ("arch", "model_type", "config", "size"),
    [("hf:resnet", "resnet", RESNET, 48), ("hf:vit", "vit", VIT, 32), ("hf:segformer", "segformer", SEGFORMER, 48)],
)
def test_models_describe_themselves_and_store_the_library_state_dict(arch, model_type, config, size):
    raw = hf_model(model_type, config, 5, dense=arch_task(arch).dense)
    found = describe_model(raw)  # from model.config: no arch= needed
    assert found is not None and found[0] == arch and "num_labels" not in found[1]["config"]
    rebuilt = build_arch(arch, arch_arguments(arch, found[1], num_classes=5)).eval()
    load_stored_state(rebuilt, raw.state_dict())  # the library's own state dict: no prefix to add or strip
    assert stored_state(rebuilt).keys() == raw.state_dict().keys()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        a, b = raw(pixel_values=x).logits, rebuilt(x)
    if arch_task(arch).dense:
        a, b = F.interpolate(a, size=(size, size), mode="bilinear", align_corners=False), b["out"]
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("arch", "config"), [("hf:resnet", RESNET), ("hf:vit", VIT)])
def test_a_classifier_splits_into_embedding_and_head(arch, config):
    model = tiny(arch, config, 5)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        f = model.features(x)
        logits, f2 = model.logits_and_features(x)
        full = model(x)
    assert f.shape == (2, model.feature_dim) and logits.shape == (2, 5) and arch_task(arch) is ClassificationTask
    torch.testing.assert_close(logits, full, rtol=0, atol=1e-6)
    torch.testing.assert_close(f, f2, rtol=0, atol=0)


def test_a_run_records_the_config_itself_never_a_path(tmp_path):
    folder = tmp_path / "saved"
    hf_model("segformer", SEGFORMER, 3, dense=True).config.save_pretrained(folder)
    from_json = arch_arguments("hf:segformer", {"config": SEGFORMER}, num_classes=11)
    for given in (str(folder), str(folder / "config.json")):
        recorded = arch_arguments("hf:segformer", {"config": given}, num_classes=11)
        assert recorded == from_json  # the folder's config (its 3 labels replaced by the dataset's 11), as a dict
        assert str(tmp_path) not in json.dumps(recorded)
    assert json.loads(json.dumps(from_json)) == from_json and from_json["config"]["num_labels"] == 11
    again = arch_arguments("hf:segformer", from_json, num_classes=11)  # what a resumed RunWriter compares
    assert again == from_json
    assert arch_arguments("hf:segformer-classifier", {}, num_classes=3)["config"]["model_type"] == "segformer"
    assert arch_task("hf:segformer-classifier") is ClassificationTask and "segformer-classifier" in SOURCES.get("hf").names()


@pytest.mark.parametrize(
    ("config", "phrase"),
    [
        ({"auto_map": {"AutoModelForSemanticSegmentation": "my_code.MySeg"}}, "auto_map names custom code"),
        ({"backbone": "microsoft/resnet-50"}, "names a backbone to fetch"),
        ({"use_pretrained_backbone": True}, "would download weights"),
        ({"hiden_sizes": [8, 16]}, "segformer configs have no key(s) ['hiden_sizes']"),
        ({"num_labels": 3}, "the dataset sets the classes (11)"),
        ({"model_type": "vit"}, "of model type 'vit', not 'segformer'"),
        ("nvidia/mit-b0", "Hub names are not fetched"),
    ],
)
def test_configs_that_need_custom_code_or_a_download_are_refused(config, phrase):
    with pytest.raises(ValueError, match=phrase.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        arch_arguments("hf:segformer", {"config": config}, num_classes=11)


def test_a_run_json_with_custom_code_is_refused_when_rebuilt():
    """run.json is untrusted: the recorded config is checked again, and trust_remote_code is never passed."""
    args = arch_arguments("hf:segformer", {"config": SEGFORMER}, num_classes=11)
    remote = {"config": {**args["config"], "auto_map": {"AutoModelForSemanticSegmentation": "evil--model.Seg"}}}
    with pytest.raises(ValueError, match="trust_remote_code, never used here"):
        build_arch("hf:segformer", remote)
    custom = {"config": {**args["config"], "model_type": "my_segformer"}}
    with pytest.raises(ValueError, match="'my_segformer' is not a model type of transformers"):
        build_arch("hf:segformer", custom)
    nested = {"config": {**arch_arguments("hf:upernet", {"config": UPERNET}, num_classes=3)["config"]}}
    nested["config"]["backbone_config"] = {**nested["config"]["backbone_config"], "model_type": "my_convnext"}
    with pytest.raises(ValueError, match="config.backbone_config.model_type 'my_convnext'"):
        build_arch("hf:upernet", nested)
    with pytest.raises(ValueError, match="recorded as a dict"):
        build_arch("hf:segformer", {"config": "/elsewhere/config.json"})
    with pytest.raises(ValueError, match="hf: no model 'segformr'"):
        arch_task("hf:segformr")


def test_a_processor_config_gives_the_normalisation_and_size(tmp_path):
    source = SOURCES.get("hf")
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "size": {"height": 64, "width": 96}})
    )
    found = source.preprocessing(tmp_path)
    assert (found.mean, found.std, found.size, found.notes) == ([0.5] * 3, [0.25] * 3, (64, 96), [])
    raw_pixels = {"image_mean": [127.5] * 3, "image_std": [63.75] * 3, "rescale_factor": 1.0, "size": {"shortest_edge": 224}}
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(raw_pixels))  # a model fed 0..255 pixels
    found = source.preprocessing(tmp_path)
    assert found.mean == pytest.approx([0.5] * 3) and found.std == pytest.approx([0.25] * 3) and found.size is None
    assert "not one fixed (H, W)" in found.notes[0]
    assert source.preprocessing(tmp_path / "missing") is None
