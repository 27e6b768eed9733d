"""transformers save_pretrained folders and ONNX graphs come in with import_run; hf models train with the engine.

An imported run's preprocessing comes from the command line, then from what the model fixes or its checkpoint
declares, then from the dataset, and says which; an ONNX graph is kept inside its run, which no one can train or
resume, which ships and loads like any run, and whose run.json can never point outside its folder."""

from __future__ import annotations

import json
import shutil
import socket

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from core.data import get_dataset
from core.inference import Predictor
from core.models import arch_arguments, build_arch
from core.models.sources.onnx import ONNX_FILE
from core.runs import load_run, read_run, snapshot_path, weights_problem
from core.runs.ship import ship
from core.train import TrainConfig, train
from core.train import main as train_main
from core.train.import_run import main as import_main
from core.train.writer import RunWriter
from tests.tiny_models import RESNET, SEGFORMER, export_onnx, hf_model

transformers = pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

DATA = ["--dataset", "synthstreets", "--data-opt", "num_images=4", "--data-opt", "size=[48,64]"]
CROPS = ["--dataset", "crops:synthstreets", "--data-opt", "num_images=3", "--data-opt", "size=[48,64]", "--size", "32", "32"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Imports and trainings here run offline: a connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("an import or a training opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def val_images(n: int = 2) -> list[np.ndarray]:
    ds = get_dataset("synthstreets", "val", num_images=4, size=(48, 64))
    return [ds.load(i)[0] for i in range(n)]


# --- transformers ---------------------------------------------------------------------------------------------
def test_a_save_pretrained_folder_brings_its_processor_and_the_command_line_wins(tmp_path, capsys):
    net = hf_model("segformer", SEGFORMER, 11, dense=True)
    net.save_pretrained(tmp_path / "seg")
    processor = {"image_mean": [0.5] * 3, "image_std": [0.25] * 3, "size": {"height": 32, "width": 48}, "rescale_factor": 1 / 255}
    (tmp_path / "seg" / "preprocessor_config.json").write_text(json.dumps(processor))
    assert import_main([str(tmp_path / "seg"), *DATA, "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    assert "input size: 32x48 (from preprocessor_config.json; --size would win)" in printed
    assert "normalisation: mean [0.5, 0.5, 0.5], std [0.25, 0.25, 0.25] (from preprocessor_config.json" in printed
    run = load_run(tmp_path / "run")
    assert run.arch == "hf:segformer" and run.input_size == (32, 48) and run.data["mean"] == [0.5] * 3
    assert str(tmp_path) not in json.dumps(run.config["model"])  # the config itself, no path
    x = torch.randn(2, 3, 32, 48)
    predictor = Predictor(run, 1, device="cpu")
    with torch.no_grad():  # the run's model, rebuilt from its directory, gives the library's logits upsampled
        want = F.interpolate(net(pixel_values=x).logits, size=(32, 48), mode="bilinear", align_corners=False)
        torch.testing.assert_close(predictor.model(x)["out"], want, rtol=0, atol=1e-5)
    white, _ = predictor.preprocess([np.full((48, 64, 3), 255, np.uint8)])  # the processor's resize and normalisation
    assert white.shape == (1, 3, 32, 48) and torch.allclose(white, torch.full_like(white, 2.0))  # (1 - 0.5) / 0.25
    args = ["--size", "48", "64", "--mean", "0.4", "0.4", "0.4", "--std", "0.2", "0.2", "0.2", "--out", str(tmp_path / "cli")]
    assert import_main([str(tmp_path / "seg"), *DATA, *args]) == 0
    printed = capsys.readouterr().out
    assert "input size: 48x64 (from --size)" in printed and "(from --mean/--std)" in printed
    run = load_run(tmp_path / "cli")
    assert run.input_size == (48, 64) and run.data["std"] == [0.2] * 3
    assert run.config["train"]["preprocessing"]["normalisation"] == "from --mean/--std"


def test_a_pytorch_model_bin_classifier_folder_is_read_without_unpickling_code(tmp_path):
    net = hf_model("resnet", RESNET, 11, dense=False)
    net.config.save_pretrained(tmp_path / "cls")
    torch.save(net.state_dict(), tmp_path / "cls" / "pytorch_model.bin")  # read by transformers with weights_only=True
    assert import_main([str(tmp_path / "cls"), *CROPS, "--out", str(tmp_path / "run")]) == 0
    run = load_run(tmp_path / "run")
    assert run.arch == "hf:resnet" and run.config["model"]["args"]["config"]["num_labels"] == 11
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(run.build_model(1)(x), net(pixel_values=x).logits, rtol=0, atol=1e-5)


def test_a_folder_that_needs_custom_code_is_refused_and_nothing_is_written(tmp_path, capsys):
    net = hf_model("segformer", SEGFORMER, 11, dense=True)
    net.save_pretrained(tmp_path / "remote")
    config = json.loads((tmp_path / "remote" / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSemanticSegmentation": "modeling_evil.EvilSegformer"}
    (tmp_path / "remote" / "config.json").write_text(json.dumps(config))
    assert import_main([str(tmp_path / "remote"), *DATA, "--out", str(tmp_path / "run")]) == 2
    assert "auto_map names custom code" in capsys.readouterr().err and not (tmp_path / "run").exists()
    config.pop("auto_map")
    (tmp_path / "remote" / "config.json").write_text(json.dumps({**config, "model_type": "evil_segformer"}))
    assert import_main([str(tmp_path / "remote"), *DATA, "--out", str(tmp_path / "run")]) == 2
    assert "not a model type of transformers" in capsys.readouterr().err


def test_the_engine_trains_an_hf_model_from_a_config_dict_or_folder(tmp_path):
    logits = {}
    probe = torch.randn(2, 3, 48, 64)

    def record(epoch, model):
        with torch.inference_mode():
            logits[epoch] = model.eval()(probe)["out"].clone()

    common = dict(dataset="synthstreets", data_options={"num_images": 8, "size": [48, 64]}, size=(48, 64), epochs=1)
    machine = dict(batch_size=4, lr=3e-3, workers=0, threads=1, progress=False)
    cfg = TrainConfig(arch="hf:segformer", model_args={"config": SEGFORMER}, out=str(tmp_path / "dict"), **common, **machine)
    run = load_run(train(cfg, on_epoch_end=record))
    assert run.arch == "hf:segformer" and run.model_args["config"]["hidden_sizes"] == [8, 16]
    with torch.inference_mode():
        torch.testing.assert_close(run.build_model(1)(probe)["out"], logits[1], rtol=0, atol=1e-5)
    hf_model("segformer", SEGFORMER, 3, dense=True).config.save_pretrained(tmp_path / "config-folder")
    argv = ["--arch", "hf:segformer", "--model-arg", f"config={tmp_path / 'config-folder'}", "--dataset", "synthstreets"]
    argv += ["--data-opt", "num_images=8", "--data-opt", "size=[48,64]", "--size", "48", "64", "--epochs", "1"]
    argv += ["--batch-size", "4", "--workers", "0", "--threads", "1", "--no-progress", "--out", str(tmp_path / "folder")]
    assert train_main(argv) == 0
    shutil.rmtree(tmp_path / "config-folder")  # the run holds the config itself
    folder_run = load_run(tmp_path / "folder")
    assert folder_run.model_args == run.model_args and weights_problem(folder_run) is None


# --- ONNX -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lraspp(tmp_path_factory):
    """torchvision's LR-ASPP (11 classes, random weights): its state dict, and its ONNX export at dynamic sizes."""
    root = tmp_path_factory.mktemp("lraspp")
    torch.manual_seed(0)
    model = build_arch("tv:lraspp_mobilenet_v3_large", arch_arguments("tv:lraspp_mobilenet_v3_large", {}, num_classes=11))
    torch.save(model.net.state_dict(), root / "lraspp.pt")
    return root, model.eval(), export_onnx(model, root / "lraspp.onnx", hw=(48, 64))


def test_an_onnx_graph_is_kept_in_its_run_and_labels_like_the_torchvision_model(lraspp, tmp_path, capsys):
    root, model, graph = lraspp
    assert import_main([str(graph), *DATA, "--out", str(tmp_path / "onnx")]) == 0
    printed = capsys.readouterr().out
    assert "input size: native (not given with --size: each image at synthstreets's own size)" in printed
    assert "(the dataset synthstreets's: not given with --mean/--std)" in printed  # said, not silently guessed
    run = load_run(tmp_path / "onnx")
    assert run.config["model"] == {
        "source": "onnx",
        "name": "segmentation",
        "args": {"file": ONNX_FILE, "input": "image", "output": "logits", "features_output": None, "num_classes": 11},
        "num_params": 0,
    }
    assert (tmp_path / "onnx" / ONNX_FILE).read_bytes() == graph.read_bytes() and run.epochs == [1]
    with safe_open(snapshot_path(run.path, 1), "pt") as f:
        assert list(f.keys()) == []  # the graph is the weights: the epoch's snapshot holds no tensors
    assert weights_problem(run) is None
    x = torch.randn(2, 3, 61, 83)
    with torch.no_grad():
        torch.testing.assert_close(run.build_model(1)(x)["out"], model(x)["out"], rtol=0, atol=1e-4)
    assert (
        import_main([str(root / "lraspp.pt"), "--arch", "tv:lraspp_mobilenet_v3_large", *DATA, "--out", str(tmp_path / "tv")])
        == 0
    )
    images = val_images(3)
    onnx_preds = Predictor(run, 1, device="cpu").predict(images)
    tv_preds = Predictor(load_run(tmp_path / "tv"), 1, device="cpu").predict(images)
    agree = np.mean([np.mean(a.labels == b.labels) for a, b in zip(onnx_preds, tv_preds)])
    assert agree >= 0.999, agree


def test_an_onnx_graph_that_does_not_fit_the_dataset_is_refused_naming_the_shapes(lraspp, tmp_path, capsys):
    _, model, _ = lraspp
    static = export_onnx(model, tmp_path / "static.onnx", hw=(48, 64), dynamic=False)
    assert import_main([str(static), *DATA, "--size", "32", "32", "--out", str(tmp_path / "a")]) == 2
    assert "input 'image' is 1x3x48x64, so it cannot take 32x32 images; use --size 48 64" in capsys.readouterr().err
    assert import_main([str(static), *DATA, "--out", str(tmp_path / "b")]) == 0  # the static size, and it says so
    assert "input size: 48x64 (from the model's static input)" in capsys.readouterr().out
    torch.manual_seed(0)
    five = build_arch("tv:lraspp_mobilenet_v3_large", arch_arguments("tv:lraspp_mobilenet_v3_large", {}, num_classes=5))
    export_onnx(five.eval(), tmp_path / "five.onnx", hw=(48, 64))
    assert import_main([str(tmp_path / "five.onnx"), *DATA, "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "output 'logits' is 1x5x48x64 on a 1x3x48x64 image: 5 classes, but the dataset has 11" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()  # a failed import leaves nothing behind
    assert import_main([str(tmp_path / "five.onnx"), *DATA, "--features-output", "nope", "--out", str(tmp_path / "d")]) == 2
    assert "has no output 'nope' (features_output); its outputs: logits" in capsys.readouterr().err


def test_an_onnx_run_is_never_trained_or_resumed_but_ships(lraspp, tmp_path, capsys):
    graph = lraspp[2]
    assert import_main([str(graph), *DATA, "--out", str(tmp_path / "onnx")]) == 0
    capsys.readouterr()
    assert train_main(["--arch", "onnx:segmentation", "--dataset", "synthstreets", "--out", str(tmp_path / "t")]) == 2
    assert "onnx:segmentation cannot be trained: an ONNX graph is served by onnxruntime" in capsys.readouterr().err
    assert train_main(["--resume", str(tmp_path / "onnx"), "--epochs", "3"]) == 2
    assert "cannot be trained" in capsys.readouterr().err and load_run(tmp_path / "onnx").epochs == [1]
    ds = get_dataset("synthstreets", "val", num_images=4, size=(48, 64))
    model = load_run(tmp_path / "onnx").build_model(1)
    with pytest.raises(ValueError, match="cannot be trained"):
        RunWriter(tmp_path / "onnx", model=model, classes=ds.classes, palette=ds.palette, ignore_index=11, resume=True)
    before, after = ship(tmp_path / "onnx")  # the graph is kept as it is; the run still loads
    assert after <= before and (tmp_path / "onnx" / ONNX_FILE).is_file() and load_run(tmp_path / "onnx").epochs == [1]


def test_a_run_json_that_points_outside_its_folder_is_refused_with_the_reason(lraspp, tmp_path):
    graph = lraspp[2]
    assert import_main([str(graph), *DATA, "--out", str(tmp_path / "good")]) == 0
    config = json.loads((tmp_path / "good" / "run.json").read_text())
    cases = {"absolute": str(graph), "parent": "../good/weights/model.onnx", "missing": "weights/other.onnx"}
    for name, file in cases.items():
        shutil.copytree(tmp_path / "good", tmp_path / name)
        args = {**config["model"]["args"], "file": file}
        (tmp_path / name / "run.json").write_text(json.dumps({**config, "model": {**config["model"], "args": args}}))
    reasons = {name: read_run(tmp_path / name)[1] for name in cases}
    assert "points outside the run directory" in reasons["absolute"] and "points outside" in reasons["parent"]
    assert "has no weights/other.onnx" in reasons["missing"]
    assert read_run(tmp_path / "good")[1] is None
