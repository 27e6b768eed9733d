"""Models of other libraries end to end, beside the project's own: trained with the engine or logged from a
loop, reloaded in a fresh process from the run directory alone (no --plugins), and shown by /compare and
/embedding; faulty models fail in their own column.

About 40 s: it trains or logs five tiny runs of four sources once for the module."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from torch import nn

from core.data import eval_transforms, get_dataset
from core.models import SegmentationModel, register_model
from core.models._api import MODELS
from core.runs import load_run
from core.tasks import SegmentationTask
from core.train import TrainConfig, train
from core.train.writer import RunWriter
from tests.app.test_e2e import figure, value
from tests.app_server import app_client
from tests.conftest import ROOT, subprocess_env

gradio_client = pytest.importorskip("gradio_client")
smp = pytest.importorskip("segmentation_models_pytorch")
timm = pytest.importorskip("timm")
torchvision = pytest.importorskip("torchvision")

SEG_DATA = {"num_images": 8, "size": [48, 64]}
CROPS = {"num_images": 6, "size": [48, 64], "max_per_class": 6}
SMP_UNET = {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": [16, 8, 8]}
PROBE_SEG, PROBE_CLS = torch.randn(2, 3, 48, 64, generator=torch.Generator().manual_seed(1)), torch.randn(2, 3, 32, 32)


class Faulty(SegmentationModel):
    """A plugin model that raises (``mode="raise"``) or returns NaN logits (``mode="nan"``)."""

    def __init__(self, *, num_classes: int, mode: str) -> None:
        super().__init__(num_classes=num_classes, in_channels=3)
        self.conv, self.mode, self.feature_dim = nn.Conv2d(3, num_classes, 1), mode, num_classes

    def forward_padded(self, x):
        if self.mode == "raise":
            raise RuntimeError("this plugin model is broken")
        out = self.conv(x) * float("nan")
        return {"out": out, "features": out}


def faulty_raise(*, num_classes: int) -> Faulty:
    """Raises on every forward."""
    return Faulty(num_classes=num_classes, mode="raise")


def faulty_nan(*, num_classes: int) -> Faulty:
    """Returns NaN logits."""
    return Faulty(num_classes=num_classes, mode="nan")


@pytest.fixture(scope="module")
def faulty_models():
    """The two plugin models, registered for this module only: the registry is global, and other modules
    parametrise over every registered model."""
    for builder in (faulty_raise, faulty_nan):
        register_model(builder.__name__, task=SegmentationTask)(builder)
    yield
    for builder in (faulty_raise, faulty_nan):
        MODELS.unregister(builder.__name__)


def _engine(out, probe, **kw) -> dict[int, torch.Tensor]:
    """Train with the engine; the in-memory model's logits on ``probe`` after each epoch."""
    logits = {}

    def record(epoch, model):
        model.eval()
        with torch.inference_mode():
            o = model(probe)
            logits[epoch] = (o["out"] if isinstance(o, dict) else o).clone()

    base = dict(epochs=2, batch_size=4, lr=3e-3, workers=0, threads=1, progress=False, out=str(out))
    train(TrainConfig(**{**base, **kw}), on_epoch_end=record)
    return logits


def _logged(out, model, dataset, options, size, probe) -> dict[int, torch.Tensor]:
    """Two epochs of a loop of one's own, logged with RunWriter given the library's raw model (no arch=)."""
    ds = get_dataset(dataset, "train", **options)
    ds.transform = eval_transforms(size=size, mean=ds.mean, std=ds.std)
    x, y = torch.stack([ds[i][0] for i in range(4)]), torch.as_tensor([ds[i][1] for i in range(4)])
    opt, logits = torch.optim.Adam(model.parameters(), lr=1e-3), {}
    writer = RunWriter(
        out,
        model=model,
        classes=ds.classes,
        palette=ds.palette,
        ignore_index=ds.ignore_index,
        input_size=size,
        dataset=dataset,
        data_options=options,
    )
    for epoch in (1, 2):
        model.train()
        loss = nn.functional.cross_entropy(model(x), y, ignore_index=ds.ignore_index)
        opt.zero_grad(), loss.backward(), opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(x)
            logits[epoch] = model(probe).clone()
        writer.log_epoch(epoch, train_loss=float(loss), preds=pred, targets=y)
    writer.close()
    return logits


@pytest.fixture(scope="module")
def source_runs(tiny_seg_run, faulty_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    shutil.copytree(tiny_seg_run[0], root / "registry-unet")  # 48x64 synthstreets, 16 images
    seg = dict(dataset="synthstreets", data_options={"num_images": 16, "size": [48, 64]}, size=(48, 64))
    logits = {"smp-unet": _engine(root / "smp-unet", PROBE_SEG, arch="smp:Unet", model_args=SMP_UNET, **seg)}
    crops = dict(dataset="crops:synthstreets", data_options=CROPS, size=(32, 32), batch_size=8)
    logits["timm-convnext"] = _engine(root / "timm-convnext", PROBE_CLS, arch="timm:convnext_atto", **crops)
    _engine(root / "registry-cnn", PROBE_CLS, arch="small_cnn", model_args={"base_width": 4}, **crops)
    torch.manual_seed(0)
    tv_cls = torchvision.models.resnet18(num_classes=11)
    logits["tv-resnet18"] = _logged(root / "tv-resnet18", tv_cls, "crops:synthstreets", CROPS, (32, 32), PROBE_CLS)
    for name in ("faulty_raise", "faulty_nan"):  # plugin models, registered by the faulty_models fixture
        w = RunWriter(
            root / name,
            model=globals()[name](num_classes=11),
            arch=name,
            classes=tiny_ds().classes,
            palette=tiny_ds().palette,
            ignore_index=11,
            input_size=(48, 64),
            dataset="synthstreets",
            data_options={"num_images": 16, "size": [48, 64]},
        )
        w.log_epoch(1, train_loss=1.0)
        w.close()
    return root, logits


def tiny_ds():
    return get_dataset("synthstreets", "val", num_images=16, size=(48, 64))


RELOAD = """
import json, sys, torch
from core.inference import Predictor
from core.runs import load_run
out = {}
for folder, probe_file in json.loads(sys.argv[1]).items():
    probe = torch.load(probe_file, weights_only=True)
    run = load_run(folder)
    for epoch in run.epochs:
        model = Predictor(run, epoch, device="cpu").model
        with torch.inference_mode():
            o = model(probe)
        out[f"{folder}@{epoch}"] = (o["out"] if isinstance(o, dict) else o).tolist()
print(json.dumps(out))
"""


def test_a_fresh_process_rebuilds_every_source_from_the_run_directory_alone(source_runs, tmp_path):
    root, logits = source_runs
    probes = {"seg": PROBE_SEG, "cls": PROBE_CLS}
    for kind, t in probes.items():
        torch.save(t, tmp_path / f"{kind}.pt")
    todo = {str(root / n): str(tmp_path / ("seg.pt" if n == "smp-unet" else "cls.pt")) for n in logits}
    done = subprocess.run(
        [sys.executable, "-c", RELOAD, json.dumps(todo)],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    assert "segmentation_models_pytorch" not in sys.argv  # nothing named on a command line: the run says it all
    for name, per_epoch in logits.items():
        assert load_run(root / name).epochs == [1, 2]
        for epoch, expected in per_epoch.items():
            torch.testing.assert_close(torch.tensor(got[f"{root / name}@{epoch}"]), expected, rtol=0, atol=1e-5)
    cfg = json.loads((root / "smp-unet" / "run.json").read_text())["model"]
    assert cfg["source"] == "smp" and cfg["name"] == "Unet" and cfg["args"]["encoder_name"] == "resnet18"
    assert load_run(root / "tv-resnet18").arch == "tv:resnet18" and load_run(root / "timm-convnext").arch == "timm:convnext_atto"


@pytest.fixture(scope="module")
def client(source_runs, tmp_path_factory):
    with app_client(source_runs[0], tmp_path_factory) as served:
        yield served


def test_compare_and_embedding_show_other_libraries_beside_a_registry_run(client):
    ws, c = client
    source = ws.dataset("registry-unet").source
    runs = ["registry-unet", "smp-unet"]
    gallery, scores, status, legend, topk = c.predict(
        source, "val", 0, runs, ["best"] * 2, 0.5, False, 0.5, 0.5, 1.0, api_name="/compare"
    )
    assert [r["run"] for r in scores["runs"]] == runs and not any("error" in r for r in scores["runs"])
    assert len(value(gallery)) == 4  # image, ground truth, two predictions
    crops = ws.dataset("registry-cnn").source
    cls_runs = ["registry-cnn", "timm-convnext", "tv-resnet18"]
    _, scores, _, _, topk = c.predict(crops, "val", 0, cls_runs, ["best"] * 3, 0.5, False, 0.5, 0.5, 1.0, api_name="/compare")
    assert [r["run"] for r in scores["runs"]] == cls_runs and all(len(r["top5"]) == 5 for r in scores["runs"])
    for name in ("smp-unet", "timm-convnext", "tv-resnet18"):
        plot, status = c.predict(name, 2, "val", "pca", api_name="/embedding")
        assert len(figure(plot)["data"]) > 0 and name in status


def test_faulty_plugin_models_fail_in_their_own_column_and_the_others_render(client):
    ws, c = client
    source = ws.dataset("registry-unet").source
    runs = ["registry-unet", "faulty_raise", "faulty_nan"]
    gallery, scores, status, *_ = c.predict(source, "val", 0, runs, ["best"] * 3, 0.5, False, 0.5, 0.5, 1.0, api_name="/compare")
    rows = {r["run"]: r for r in scores["runs"]}
    assert "error" not in rows["registry-unet"] and 0 <= rows["registry-unet"]["miou"] <= 1
    assert "this plugin model is broken" in rows["faulty_raise"]["error"]
    assert "NaN" in rows["faulty_nan"]["error"]
    captions = [item["caption"] for item in value(gallery)]
    assert len(captions) == 5 and sum("failed" in cap for cap in captions) == 2 and "error" in status
