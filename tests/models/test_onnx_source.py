"""The onnx source: a graph of the run directory, served through onnxruntime, gives torch's logits; features come
from a named output or are unavailable with the reason; shapes that do not fit are refused, naming them; a file
named outside the run directory is never read."""

from __future__ import annotations

import os

import pytest
import torch

from core.models import arch_arguments, arch_task, build_arch
from core.models.base import EmbeddingsUnavailableError
from core.models.sources import SOURCES
from core.models.sources.onnx import ONNX_FILE, inside, relative_file
from core.tasks import ClassificationTask, SegmentationTask
from tests.tiny_models import export_onnx

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")  # torch.onnx.export writes through it


def project_model(arch: str, k: int = 11) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_arch(arch, arch_arguments(arch, {"base_width": 4} if arch == "small_cnn" else {}, num_classes=k)).eval()


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """Run folders holding graphs: LR-ASPP with dynamic H x W (logits and features), the same at a static
    1x3x48x64, and a small classifier; with the torch models they came from."""
    root = tmp_path_factory.mktemp("onnx")
    seg, cls = project_model("tv:lraspp_mobilenet_v3_large"), project_model("small_cnn")
    for name, model, kw in (
        ("dynamic", seg, dict(hw=(48, 64), features=True)),
        ("static", seg, dict(hw=(48, 64), dynamic=False)),
        ("classifier", cls, dict(hw=(32, 32), features=True)),
    ):
        (root / name / "weights").mkdir(parents=True)
        export_onnx(model, root / name / ONNX_FILE, **kw)
    return root, seg, cls


def onnx_model(folder, name: str = "segmentation", k: int = 11, **args) -> torch.nn.Module:
    return build_arch(f"onnx:{name}", arch_arguments(f"onnx:{name}", args, num_classes=k), folder=folder)


def test_a_graph_gives_torch_logits_and_its_named_features_at_any_size(graphs):
    root, seg, _ = graphs
    model = onnx_model(root / "dynamic", features_output="features")
    x = torch.randn(3, 3, 61, 83)
    with torch.no_grad():
        got, want = model(x, features=True), seg(x, features=True)
    torch.testing.assert_close(got["out"], want["out"], rtol=0, atol=1e-4)
    torch.testing.assert_close(got["features"], want["features"], rtol=0, atol=1e-4)
    assert model.feature_dim == 0 and model.embeddings_unavailable is None  # dynamic: the channel count is not declared
    assert list(model.state_dict()) == [] and arch_task("onnx:segmentation") is SegmentationTask


def test_without_a_features_output_embeddings_are_unavailable_with_the_reason(graphs):
    model = onnx_model(graphs[0] / "dynamic")
    assert (
        "imported without --features-output" in model.embeddings_unavailable
        and "logits, features" in model.embeddings_unavailable
    )
    with pytest.raises(EmbeddingsUnavailableError, match="--features-output NAME"):
        model(torch.randn(1, 3, 48, 64), features=True)
    assert model(torch.randn(1, 3, 48, 64))["out"].shape == (1, 11, 48, 64)  # the logits still come


def test_a_classifier_graph_runs_whole(graphs):
    root, _, cls = graphs
    model = onnx_model(root / "classifier", "classification", features_output="features")
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        logits, feats = model.logits_and_features(x)
        torch.testing.assert_close(logits, cls(x), rtol=0, atol=1e-4)
        torch.testing.assert_close(feats, cls.features(x), rtol=0, atol=1e-4)
    assert model.feature_dim == 32 and arch_task("onnx:classification") is ClassificationTask  # declared by the graph
    with pytest.raises(NotImplementedError, match="runs whole"):
        model.head(feats)
    plain = onnx_model(root / "classifier", "classification")
    assert plain.embeddings_unavailable and plain(x).shape == (4, 11)


def test_a_static_graph_takes_its_size_image_by_image_and_refuses_others(graphs):
    root, seg, _ = graphs
    model = onnx_model(root / "static")
    assert model.input_hw == (48, 64)
    x = torch.randn(3, 3, 48, 64)  # a static batch of 1: run one image at a time
    with torch.no_grad():
        torch.testing.assert_close(model(x)["out"], seg(x)["out"], rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="input 'image' is 1x3x48x64; got a batch of 1x3x32x32"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match="input 'image' is 1x3x48x64, so it cannot take 32x40 images; use --size 48 64"):
        model.check_fits((32, 40))
    with pytest.raises(ValueError, match="output 'logits' is 1x11x48x64: 11 classes, but the run has 5"):
        onnx_model(root / "static", k=5)  # a static class count is checked when the graph is opened
    with pytest.raises(ValueError, match=r"output 'logits' is .* on a 1x3x48x64 image: 11 classes, but the dataset has 5"):
        onnx_model(root / "dynamic", k=5).check_fits((48, 64))  # a dynamic one on a probe image


def test_outputs_and_inputs_that_do_not_exist_or_do_not_fit_are_refused(graphs):
    root = graphs[0]
    with pytest.raises(ValueError, match="has no output 'embeddings' \\(features_output\\); its outputs: logits, features"):
        onnx_model(root / "dynamic", features_output="embeddings")
    with pytest.raises(ValueError, match="cannot be both the logits and the features"):
        onnx_model(root / "dynamic", output="logits", features_output="logits")
    with pytest.raises(ValueError, match="not the \\(batch, classes\\) logits of a classification model"):
        onnx_model(root / "dynamic", "classification")
    with pytest.raises(ValueError, match="unknown argument\\(s\\) \\['providers'\\]"):
        arch_arguments("onnx:segmentation", {"providers": ["CUDAExecutionProvider"]}, num_classes=11)
    name, args, state = SOURCES.get("onnx").read_checkpoint(root / "classifier" / ONNX_FILE)
    assert (name, args, state) == (
        "classification",
        {"file": ONNX_FILE, "input": "image", "output": "logits", "features_output": None},
        {},
    )
    assert SOURCES.get("onnx").read_checkpoint(root / "dynamic") is None  # a folder is not a graph


@pytest.mark.parametrize(
    "file", ["/etc/model.onnx", "../other/weights/model.onnx", "weights/../../x.onnx", "C:\\m.onnx", "", None]
)
def test_a_file_outside_the_run_directory_is_refused(file):
    with pytest.raises(ValueError, match="outside the run directory|relative to the run directory"):
        relative_file(file)


def test_a_symlink_that_leads_out_of_the_run_directory_is_refused(graphs, tmp_path):
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    os.symlink(graphs[0] / "dynamic" / ONNX_FILE, run / ONNX_FILE)
    with pytest.raises(ValueError, match="leads outside the run directory"):
        inside(run, ONNX_FILE)
    with pytest.raises(ValueError, match="has no weights/other.onnx"):
        inside(run, "weights/other.onnx")
    with pytest.raises(ValueError, match="needs the run's folder"):
        build_arch("onnx:segmentation", {"file": ONNX_FILE, "num_classes": 11})
