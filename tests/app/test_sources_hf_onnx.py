"""transformers and ONNX models in the explorer, beside a registry run: a SegFormer logged from one's own loop with
RunWriter (given the raw transformers model) and LR-ASPP graphs imported with import_run, reloaded in a fresh
process from their run directories alone, compared on /compare, and on /embedding a graph without a features
output says its embeddings are unavailable, and why, instead of failing.

About 25 s: two logged epochs, two imports, one app."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from core.data import eval_transforms, get_dataset
from core.models import arch_arguments, build_arch
from core.models.sources.onnx import ONNX_FILE
from core.runs import load_run
from core.train.import_run import main as import_main
from core.train.writer import RunWriter
from tests.app.test_e2e import figure, value
from tests.app_server import app_client
from tests.conftest import ROOT, subprocess_env
from tests.tiny_models import SEGFORMER, export_onnx, hf_model

gradio_client = pytest.importorskip("gradio_client")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

OPTIONS = {"num_images": 16, "size": [48, 64]}  # the registry run's dataset, so the runs compare on the same images
DATA = ["--dataset", "synthstreets", "--data-opt", "num_images=16", "--data-opt", "size=[48,64]", "--size", "48", "64"]
PROBE = torch.randn(2, 3, 48, 64, generator=torch.Generator().manual_seed(7))


def upsampled(net, x: torch.Tensor) -> torch.Tensor:
    """What a transformers segmenter's own post-processing does: the logits at the input's size."""
    return F.interpolate(net(pixel_values=x).logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def log_segformer(out) -> dict[int, torch.Tensor]:
    """Two epochs of one's own loop on the raw transformers model, logged with RunWriter (no arch=: it describes
    the model from model.config); the probe's logits after each epoch."""
    ds = get_dataset("synthstreets", "train", **OPTIONS)
    ds.transform = eval_transforms(size=(48, 64), mean=ds.mean, std=ds.std)
    x, y = torch.stack([ds[i][0] for i in range(4)]), torch.stack([torch.as_tensor(ds[i][1]) for i in range(4)])
    net = hf_model("segformer", SEGFORMER, len(ds.classes), dense=True)
    opt, logits = torch.optim.Adam(net.parameters(), lr=1e-3), {}
    data = dict(classes=ds.classes, palette=ds.palette, ignore_index=ds.ignore_index, input_size=(48, 64))
    writer = RunWriter(out, model=net, dataset="synthstreets", data_options=OPTIONS, **data)
    for epoch in (1, 2):
        net.train()
        loss = F.cross_entropy(upsampled(net, x), y.long(), ignore_index=ds.ignore_index)
        opt.zero_grad(), loss.backward(), opt.step()
        net.eval()
        with torch.no_grad():
            preds, logits[epoch] = upsampled(net, x), upsampled(net, PROBE).clone()
        writer.log_epoch(epoch, train_loss=loss.item(), preds=preds, targets=y)
    writer.close()
    return logits


@pytest.fixture(scope="module")
def runs(tiny_seg_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("hf-onnx")
    shutil.copytree(tiny_seg_run[0], root / "registry-unet")
    logits = {"hf-segformer": log_segformer(root / "hf-segformer")}
    torch.manual_seed(0)
    arch = "tv:lraspp_mobilenet_v3_large"
    lraspp = build_arch(arch, arch_arguments(arch, {}, num_classes=11)).eval()
    export_onnx(lraspp, root / "lraspp.onnx", hw=(48, 64), features=True)
    for name, extra in (("onnx-lraspp", []), ("onnx-features", ["--features-output", "features"])):
        assert import_main([str(root / "lraspp.onnx"), *DATA, *extra, "--out", str(root / name)]) == 0
    (root / "lraspp.onnx").unlink()  # the runs keep their own copies
    with torch.no_grad():
        logits["onnx-lraspp"] = {1: lraspp(PROBE)["out"]}
    outside = root / "onnx-outside"  # a run.json that names a graph outside its folder: refused, with the reason
    shutil.copytree(root / "onnx-lraspp", outside)
    config = json.loads((outside / "run.json").read_text())
    config["model"]["args"]["file"] = "../onnx-lraspp/weights/model.onnx"
    (outside / "run.json").write_text(json.dumps(config))
    return root, logits


RELOAD = """
import json, sys, torch
from core.inference import Predictor
from core.runs import load_run
probe = torch.load(sys.argv[2], weights_only=True)
out = {}
for folder in json.loads(sys.argv[1]):
    run = load_run(folder)
    for epoch in run.epochs:
        with torch.inference_mode():
            out[f"{folder}@{epoch}"] = Predictor(run, epoch, device="cpu").model(probe)["out"].tolist()
print(json.dumps(out))
"""


def test_a_fresh_process_rebuilds_hf_and_onnx_runs_from_their_directories_alone(runs, tmp_path):
    root, logits = runs
    torch.save(PROBE, tmp_path / "probe.pt")
    folders = [str(root / name) for name in logits]
    done = subprocess.run(
        [sys.executable, "-c", RELOAD, json.dumps(folders), str(tmp_path / "probe.pt")],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    tolerance = {"hf-segformer": 1e-5, "onnx-lraspp": 1e-4}
    for name, per_epoch in logits.items():
        assert load_run(root / name).epochs == sorted(per_epoch)
        for epoch, expected in per_epoch.items():
            torch.testing.assert_close(torch.tensor(got[f"{root / name}@{epoch}"]), expected, rtol=0, atol=tolerance[name])
    hf = json.loads((root / "hf-segformer" / "run.json").read_text())["model"]
    assert hf["source"] == "hf" and hf["name"] == "segformer" and hf["args"]["config"]["hidden_sizes"] == [8, 16]
    onnx = json.loads((root / "onnx-lraspp" / "run.json").read_text())["model"]
    assert onnx["source"] == "onnx" and onnx["args"]["file"] == ONNX_FILE and (root / "onnx-lraspp" / ONNX_FILE).is_file()


@pytest.fixture(scope="module")
def client(runs, tmp_path_factory):
    with app_client(runs[0], tmp_path_factory) as served:
        yield served


def test_compare_shows_hf_and_onnx_runs_beside_a_registry_run(client):
    ws, c = client
    names = ["registry-unet", "hf-segformer", "onnx-lraspp"]
    gallery, scores, *_ = c.predict(
        ws.dataset("registry-unet").source, "val", 0, names, ["best"] * 3, 0.5, False, 0.5, 0.5, 1.0, api_name="/compare"
    )
    assert [r["run"] for r in scores["runs"]] == names and not any("error" in r for r in scores["runs"])
    assert all(0 <= r["miou"] <= 1 for r in scores["runs"]) and len(value(gallery)) == 5  # image, truth, three
    listed = c.predict(api_name="/runs")[2]  # table, parallel coordinates, JSON, status
    unavailable = {u["run"]: u["reason"] for u in listed["unavailable"]}
    assert "onnx-outside" not in [r["run"] for r in listed["rows"]]
    assert "points outside the run directory" in unavailable["onnx-outside"]


def test_an_onnx_run_without_a_features_output_says_its_embeddings_are_unavailable(client):
    _, c = client
    plot, status = c.predict("onnx-lraspp", 1, "val", "pca", api_name="/embedding")
    assert plot is None and "onnx-lraspp @ 1: embeddings are unavailable for this run:" in status
    assert "imported without --features-output" in status and "outputs: logits, features" in status
    for name in ("onnx-features", "hf-segformer"):  # the others map their features
        plot, status = c.predict(name, 1, "val", "pca", api_name="/embedding")
        assert len(figure(plot)["data"]) > 0 and name in status and "unavailable" not in status
