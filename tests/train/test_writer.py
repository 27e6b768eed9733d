"""core.train.writer.RunWriter: the README's own training loop, run for 2 epochs on tiny data, writes a run the
app lists and the Predictor serves exactly as the in-memory model; and each way of logging metrics."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from core.evaluation.metrics import confusion_matrix, scores
from core.explorer import Workspace
from core.inference import Predictor
from core.models import get_model
from core.runs import RunError, load_run, read_history
from core.train.writer import RunWriter
from tests.conftest import ROOT


def readme_loop() -> str:
    section = (ROOT / "README.md").read_text().split("## Log your own training loop", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_loop_logs_a_run_the_explorer_reads(tmp_path):
    code = readme_loop()
    assert len(code.strip().splitlines()) <= 40
    constants = 'EPOCHS, SIZE, WIDTH, N_TRAIN, N_VAL, OUT = 10, (180, 240), 16, 200, 50, "runs/my-loop"'
    assert constants in code
    out = tmp_path / "runs" / "my-loop"
    code = code.replace(constants, f'EPOCHS, SIZE, WIDTH, N_TRAIN, N_VAL, OUT = 2, (48, 64), 4, 16, 6, "{out}"')
    snapshots = {}
    real = RunWriter.log_epoch

    def spy(self, epoch, **kw):  # the in-memory model's outputs on the validation loader's images, at each logged epoch
        model = kw["model"]
        model.eval()
        images = torch.stack([kw["loader"].dataset[i][0] for i in range(3)])  # (3, 3, 48, 64), the loop's own transform
        with torch.no_grad():
            snapshots[epoch] = (images, model(images)["out"])
        return real(self, epoch, **kw)

    RunWriter.log_epoch = spy
    try:
        torch.manual_seed(0)
        exec(compile(code, "README.md (loop)", "exec"), {"__name__": "readme"})  # noqa: S102
    finally:
        RunWriter.log_epoch = real
    run = load_run(out)
    assert [r["epoch"] for r in run.history] == [1, 2] and run.epochs == [1, 2] and run.status["state"] == "finished"
    assert {"train_loss", "val_loss", "pixel_acc", "mean_acc", "miou", "fwiou", "iou", "confusion"} <= set(run.history[0])
    ws = Workspace.discover(tmp_path / "runs")
    assert list(ws.runs) == ["my-loop"] and not ws.problems
    val = ws.dataset("my-loop").open()
    for epoch, (images, logits) in snapshots.items():
        with torch.no_grad():
            torch.testing.assert_close(run.build_model(epoch)(images)["out"], logits, rtol=0, atol=1e-5)
        for i in range(3):  # the Predictor on the raw image: the run's preprocessing, logits upsampled to the image
            image, _ = val.load(i)
            expected = torch.nn.functional.interpolate(
                logits[i : i + 1], size=image.shape[:2], mode="bilinear", align_corners=False
            )
            pred = Predictor(run, epoch, device="cpu").predict([image])[0].labels
            assert (pred == expected.argmax(1)[0].numpy()).mean() > 0.999


def test_log_epoch_from_predictions_or_a_confusion_matrix(tmp_path):
    model = get_model("small_cnn", num_classes=3, base_width=4)
    writer = RunWriter(
        tmp_path / "cls",
        model=model,
        arch="small_cnn",
        model_args={"base_width": 4},
        classes=["a", "b", "c"],
        palette=[(0, 0, 0), (1, 1, 1), (2, 2, 2)],
        input_size=(32, 32),
        snapshot_epochs=[2],
    )
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 1.0, 2.0], [2.0, 0.0, 1.0]])
    targets = torch.tensor([0, 1, 1, 2])
    r1 = writer.log_epoch(1, train_loss=1.0, preds=logits, targets=targets)
    assert r1["top1"] == pytest.approx(0.5) and r1["top5"] == pytest.approx(1.0)  # top-5 of 3 classes: every label
    assert r1["confusion"] == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    r2 = writer.log_epoch(2, confusion=[[2, 0, 0], [0, 2, 0], [0, 0, 0]])
    assert r2["top1"] == 1.0 and r2["class_acc"][2] is None or np.isnan(r2["class_acc"][2])
    with pytest.raises(ValueError, match="not after"):
        writer.log_epoch(2, confusion=[[1, 0, 0], [0, 0, 0], [0, 0, 0]])
    writer.close()
    run = load_run(tmp_path / "cls")
    assert run.epochs == [2] and run.best_epoch == 2  # epoch 1 was not asked for and is not the best
    assert [r["epoch"] for r in read_history(tmp_path / "cls")] == [1, 2]


def test_segmentation_preds_match_core_metrics(tmp_path):
    model = get_model("unet", num_classes=3, base_width=4, depth=2)
    writer = RunWriter(
        tmp_path / "seg",
        model=model,
        arch="unet",
        model_args={"base_width": 4, "depth": 2},
        classes=["a", "b", "c"],
        palette=[(0, 0, 0), (1, 1, 1), (2, 2, 2)],
        ignore_index=255,
    )
    target = torch.tensor([[[0, 1, 2, 255]]])
    pred = torch.tensor([[[0, 1, 1, 2]]])
    rec = writer.log_epoch(1, preds=[pred], targets=[target])
    expected = scores(confusion_matrix(pred, target, 3, 255))
    assert rec["miou"] == pytest.approx(expected["miou"]) and rec["iou"] == pytest.approx(expected["iou"], nan_ok=True)


def test_a_model_that_does_not_match_its_registry_name_is_refused(tmp_path):
    model = get_model("unet", num_classes=11, base_width=8)
    with pytest.raises(
        ValueError,
        match=r"does not match unet with .*of another shape \(down.0.0.weight: \[8, 3, 3, 3\] instead of \[16, 3, 3, 3\]",
    ):
        RunWriter(
            tmp_path / "x",
            model=model,
            arch="unet",
            model_args={"base_width": 16},
            classes=list("abcdefghijk"),
            palette=[(0, 0, 0)] * 11,
        )
    assert not (tmp_path / "x").exists()


def test_import_a_state_dict_trained_elsewhere(tmp_path):
    from core.data import eval_transforms, get_dataset
    from core.inference import evaluate_predictor
    from core.train.import_run import main as import_main

    torch.manual_seed(0)
    model = get_model("unet", num_classes=11, base_width=4, depth=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    ds = get_dataset("synthstreets", "train", num_images=8, size=(48, 64))
    ds.transform = eval_transforms(size=(48, 64), mean=ds.mean, std=ds.std)
    x = torch.stack([ds[i][0] for i in range(8)])
    y = torch.stack([ds[i][1] for i in range(8)])
    for _ in range(5):  # "trained elsewhere"
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x)["out"], y, ignore_index=11).backward()
        opt.step()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    out = tmp_path / "imported"
    args = [
        str(tmp_path / "model.pt"),
        "--arch",
        "unet",
        "--model-arg",
        "base_width=4",
        "--model-arg",
        "depth=2",
        "--dataset",
        "synthstreets",
        "--data-opt",
        "num_images=6",
        "--data-opt",
        "size=[48,64]",
        "--size",
        "48",
        "64",
        "--out",
        str(out),
    ]
    assert import_main(args) == 0
    run = load_run(out)
    assert run.epochs == [1] and run.status["state"] == "finished"
    recorded = run.history[0]
    fresh = evaluate_predictor(Predictor(run, 1, device="cpu"), run.open_dataset("val"), progress=False)
    assert recorded["confusion"] == fresh["confusion"] and recorded["miou"] == pytest.approx(fresh["miou"])
    model.eval()
    val = run.open_dataset("val")
    image, _ = val.load(0)
    with torch.no_grad():
        direct = model(Predictor(run, 1, device="cpu").preprocess([image])[0])["out"].argmax(1)[0].numpy()
    assert (Predictor(run, 1, device="cpu").predict([image])[0].labels == direct).mean() > 0.999  # the same weights
    assert import_main(args) == 2  # the folder holds a run now: refused, nothing overwritten
    torch.save({"not": "tensors"}, tmp_path / "bad.pt")
    assert import_main([str(tmp_path / "bad.pt")] + args[1:-1] + [str(tmp_path / "other")]) == 2


PLUGIN = """
from torch import nn
from core.models import register_model
from core.models.base import SegmentationModel
from tests.conftest import ROOT

class Tiny(SegmentationModel):
    size_divisor = 1
    def __init__(self, *, num_classes, in_channels):
        super().__init__(num_classes=num_classes, in_channels=in_channels)
        self.body = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.head = nn.Conv2d(4, num_classes, 1)
        self.feature_dim = 4
    def forward_padded(self, x):
        f = self.body(x).relu()
        return {"out": self.head(f), "features": f}

@register_model("plugin_tiny_net", task="segmentation")
def plugin_tiny_net(*, num_classes: int, in_channels: int = 3) -> Tiny:
    return Tiny(num_classes=num_classes, in_channels=in_channels)
"""


def test_a_run_of_a_plugin_model_needs_the_plugin_named_at_start_up(tmp_path, monkeypatch):
    from app.main import build_app

    runs = tmp_path / "runs"
    runs.mkdir()
    run_json = (
        '{"format": 1, "task": "segmentation", '
        '"model": {"name": "plugin_tiny_net", "args": {"num_classes": 2, "in_channels": 3}},'
    )
    (runs / "p").mkdir()
    (runs / "p" / "run.json").write_text(
        run_json + ' "data": {"name": "custom", "classes": ["a", "b"], "palette": [[0,0,0],[1,1,1]], '
        '"ignore_index": 255, "mean": [0,0,0], "std": [1,1,1]}, "train": {}, "status": {"state": "finished"}}'
    )
    from core.runs import save_weights

    # weights as the plugin's model has them (4x3x3x3 + 4 + 2x4x1x1 + 2), written without the plugin loaded
    save_weights(
        runs / "p" / "weights" / "epoch_0001.safetensors",
        {
            "body.weight": torch.zeros(4, 3, 3, 3),
            "body.bias": torch.zeros(4),
            "head.weight": torch.zeros(2, 4, 1, 1),
            "head.bias": torch.zeros(2),
        },
        {"epoch": 1},
    )
    ws = Workspace.discover(runs)
    assert not ws.runs and "--plugins" in dict(ws.problems)["p"]  # nothing was imported to find out
    (tmp_path / "myplugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    demo = build_app(runs, cache_dir=tmp_path / "cache", plugins=["myplugin"])
    assert list(demo.explorer_context.ws.runs) == ["p"]
    with pytest.raises(SystemExit, match="cannot import"):
        build_app(runs, cache_dir=tmp_path / "cache", plugins=["no_such_plugin_module"])


def test_run_writer_resumes_and_its_refusals_name_the_python_api(tmp_path):
    model = get_model("unet", num_classes=3, base_width=4, depth=2)
    info = dict(classes=["a", "b", "c"], palette=[(0, 0, 0), (1, 1, 1), (2, 2, 2)], ignore_index=255)
    w = RunWriter(tmp_path / "r", model=model, **info)  # a model build_arch made needs no arch=
    w.log_epoch(1, train_loss=1.0)  # then the process dies: no close()
    with pytest.raises(RunError, match="pass resume=True to RunWriter to continue it, or choose another path"):
        RunWriter(tmp_path / "r", model=model, **info)
    w = RunWriter(tmp_path / "r", model=model, resume=True, **info)
    with pytest.raises(ValueError, match="epoch 1 is not after the last logged epoch 1"):
        w.log_epoch(1, train_loss=0.5)
    w.log_epoch(2, train_loss=0.5)
    w.close()
    run = load_run(tmp_path / "r")
    assert [r["epoch"] for r in run.history] == [1, 2] and run.status["state"] == "finished" and run.epochs == [1, 2]
    other = get_model("unet", num_classes=3, base_width=8, depth=2)
    with pytest.raises(ValueError, match="holds a run of unet .* not of this model"):
        RunWriter(tmp_path / "r", model=other, resume=True, **info)
    with pytest.raises(ValueError, match="pass arch= .*'smp:Unet'"):
        RunWriter(tmp_path / "s", model=torch.nn.Conv2d(3, 3, 1), **info)
