import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from core.data import get_dataset
from core.inference import Predictor
from core.runs import discover_runs, load_run, read_history
from core.train import main as train_main
from core.train import train
from core.train.config import TrainConfig
from core.utils.device import pick_device
from tests.conftest import ROOT, subprocess_env

TINY = [
    "--arch",
    "unet",
    "--model-arg",
    "base_width=4",
    "--model-arg",
    "depth=3",
    "--dataset",
    "synthstreets",
    "--data-opt",
    "size=[48,64]",
    "--size",
    "48",
    "64",
    "--batch-size",
    "4",
    "--workers",
    "0",
    "--threads",
    "1",
    "--no-progress",
]


def test_reloaded_run_reproduces_in_memory_predictions(tiny_seg_run):
    out, x, outputs = tiny_seg_run
    run = load_run(out)
    assert run.epochs == [1, 2] and run.last_epoch == 2 and run.best_epoch in (1, 2)
    for epoch, expected in outputs.items():
        model = run.build_model(epoch)
        with torch.inference_mode():
            got = model(x)["out"]
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert not torch.equal(outputs[1], outputs[2]), "the two epochs differ, so the comparison has teeth"


def test_predictor_applies_the_runs_preprocessing(tiny_seg_run):
    out, _, _ = tiny_seg_run
    run = load_run(out)
    ds = get_dataset("synthstreets", "val", num_images=2, size=(48, 64))
    image, _ = ds.load(0)
    pred = Predictor(run, epoch=2, device="cpu").predict([image])[0]
    assert pred.labels.shape == (48, 64) and pred.probs.shape == (11, 48, 64)
    np.testing.assert_allclose(pred.probs.sum(0), 1.0, atol=1e-5)
    # the same thing by hand: the run's normalisation, the model at epoch 2
    mean, std = torch.tensor(run.data["mean"])[:, None, None], torch.tensor(run.data["std"])[:, None, None]
    x = ((torch.from_numpy(image).permute(2, 0, 1).float() / 255 - mean) / std)[None]
    with torch.inference_mode():
        expected = run.build_model(2)(x)["out"].argmax(1)[0].numpy()
    assert (pred.labels == expected).mean() > 0.999


def test_run_directory_is_self_describing(tiny_seg_run):
    out, _, _ = tiny_seg_run
    cfg = json.loads((out / "run.json").read_text())
    assert cfg["task"] == "segmentation" and cfg["model"]["name"] == "unet"
    assert cfg["model"]["args"] == {
        "num_classes": 11,
        "in_channels": 3,
        "base_width": 4,
        "depth": 3,
        "valid_padding": False,
        "min_decoder_width": 0,
    }
    data = cfg["data"]
    assert data["classes"][3] == "Road" and len(data["palette"]) == 11 and data["ignore_index"] == 11
    assert data["input_size"] == [48, 64] and len(data["mean"]) == 3
    assert cfg["train"]["seed"] == 0 and cfg["train"]["lr"] == 3e-3 and len(cfg["train"]["class_weights"]) == 11
    # what ran: the automatic device, one process, channels-last (3x3 convolutions only: the guard leaves it on)
    device = pick_device("auto").type
    precision = "float16" if device == "cuda" else "float32"  # --amp auto: float16 autocast on CUDA only
    assert cfg["runtime"] == {"device": device, "world_size": 1, "memory_format": "channels_last", "precision": precision}
    assert {"torch", "torchvision", "vision_explorer"} <= set(cfg["versions"])
    assert cfg["status"]["state"] == "finished" and cfg["status"]["best_epoch"] in (1, 2)
    history = read_history(out)
    assert [r["epoch"] for r in history] == [1, 2]
    for r in history:
        assert {"train_loss", "val_loss", "pixel_acc", "mean_acc", "miou", "fwiou", "lr", "epoch_time"} <= set(r)
        assert len(r["iou"]) == 11 and np.array(r["confusion"]).shape == (11, 11)
        assert np.array(r["confusion"]).sum() > 0
    assert not list(out.rglob("*.tmp-*"))


def test_history_metrics_match_a_fresh_evaluation(tiny_seg_run):
    """The confusion matrix in history equals one recomputed from the saved weights."""
    from core.data.transforms import eval_transforms
    from core.tasks import SegmentationTask
    from core.train.engine import evaluate

    out, _, _ = tiny_seg_run
    run = load_run(out)
    ds = get_dataset("synthstreets", "val", num_images=16, size=(48, 64))
    ds.transform = eval_transforms(size=(48, 64), mean=ds.mean, std=ds.std)
    loader = torch.utils.data.DataLoader(ds, batch_size=5)
    m = evaluate(run.build_model(2), loader, SegmentationTask(11, 11), torch.device("cpu"), progress=False)
    assert m["confusion"] == run.record(2)["confusion"]
    assert m["miou"] == pytest.approx(run.record(2)["miou"])


def test_snapshot_rule_early_stopping_and_best_kept(tmp_path):
    out = tmp_path / "run"
    # lr 0: nothing improves after epoch 1, so patience 2 stops at epoch 3 of 6
    code = train_main(
        TINY
        + [
            "--data-opt",
            "num_images=8",
            "--epochs",
            "6",
            "--lr",
            "0",
            "--patience",
            "2",
            "--snapshot-epochs",
            "2,last",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    run = load_run(out)
    assert [r["epoch"] for r in run.history] == [1, 2, 3]
    assert run.status["state"] == "early_stopped" and run.status["stopped_epoch"] == 3
    assert run.best_epoch == 1 and run.epochs == [1, 2, 3]  # 1 = best (always kept), 2 = asked, 3 = last


def test_named_snapshot_epochs_are_scored_even_between_val_epochs(tmp_path):
    """--snapshot-epochs asks for those epochs to be kept for the across-epochs views; each gets its val
    metrics too, so the tables and curves have a score for every saved epoch."""
    out = tmp_path / "run"
    assert (
        train_main(
            TINY
            + [
                "--data-opt",
                "num_images=8",
                "--epochs",
                "4",
                "--val-every",
                "3",
                "--snapshot-epochs",
                "1,last",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    run = load_run(out)
    scored = [r["epoch"] for r in run.history if "miou" in r]
    assert scored == [1, 3, 4] and {1, 4} <= set(run.epochs)


def test_cli_errors_are_clear(tmp_path, capsys):
    assert train_main(TINY + ["--arch", "nonet", "--out", str(tmp_path / "r")]) == 2
    assert "valid names" in capsys.readouterr().err
    assert train_main(TINY + ["--model-arg", "widht=3", "--out", str(tmp_path / "r2")]) == 2
    assert "valid arguments" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_main(["--help"])
    assert "--snapshot-epochs" in capsys.readouterr().out


def test_kill_mid_epoch_then_resume(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "core.train", *TINY, "--data-opt", "num_images=48", "--epochs", "3", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    state = out / "state" / "last.pt"
    while not state.exists():  # epoch 1 committed
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline
        time.sleep(0.05)
    epoch1_time = read_history(out)[0]["epoch_time"]
    time.sleep(min(0.4 * epoch1_time, 2.0))  # well inside epoch 2
    assert proc.poll() is None and len(read_history(out)) == 1, "the kill must land mid-epoch 2"
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    result = subprocess.run(
        [sys.executable, "-m", "core.train", "--resume", str(out), "--no-progress", "--threads", "1"],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "resuming" in result.stdout and "epoch 2/3" in result.stdout and "epoch 1/3" not in result.stdout
    run = load_run(out)
    assert [r["epoch"] for r in run.history] == [1, 2, 3]
    assert run.epochs == [1, 2, 3] and run.last_epoch == 3 and run.status["state"] == "finished"
    assert not list(out.rglob("*.tmp-*")), "no partial files"
    run.build_model("last")


def test_resume_after_crash_between_history_and_state(tiny_seg_run, tmp_path):
    """A crash after epoch 3's history line but before its resume state: resume must not duplicate it."""
    import shutil

    out = tmp_path / "run"
    shutil.copytree(tiny_seg_run[0], out)
    cfg = json.loads((out / "run.json").read_text())
    cfg["train"]["epochs"] = 3
    cfg["status"] = {"state": "running"}  # what a crash mid-training leaves
    (out / "run.json").write_text(json.dumps(cfg))
    history = (out / "history.jsonl").read_text().splitlines()
    fake = json.loads(history[-1]) | {"epoch": 3}
    (out / "history.jsonl").write_text("\n".join(history + [json.dumps(fake)]) + "\n")
    (out / "weights" / ".last.safetensors.tmp-abc").write_bytes(b"partial")
    train(
        TrainConfig(**{**TrainConfig.from_dict({k: v for k, v in cfg["train"].items() if k != "class_weights"}).__dict__}),
        resume=out,
    )
    run = load_run(out)
    assert [r["epoch"] for r in run.history] == [1, 2, 3]
    assert run.history[2]["train_loss"] != fake["train_loss"] or run.history[2]["epoch_time"] != fake["epoch_time"]
    assert not list(out.rglob("*.tmp-*"))


def test_torchrun_two_processes_agree(tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "core.train",
        *TINY,
        "--data-opt",
        "num_images=12",
        "--epochs",
        "2",
        "--out",
        str(out),
    ]
    result = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    rank0 = [line for line in lines if re.match(r"^epoch \d/2 ", line)]
    rank1 = [line.removeprefix("rank 1: ") for line in lines if line.startswith("rank 1: epoch")]
    strip_time = lambda line: line.rsplit(" ", 1)[0]  # noqa: E731  (epoch time differs per rank)
    assert len(rank0) == 2 and [strip_time(line) for line in rank0] == [strip_time(line) for line in rank1]
    run = load_run(out)
    assert [r["epoch"] for r in run.history] == [1, 2]
    # every validation image was scored exactly once: the summed matrix counts 12 images of 48 x 64,
    # minus void pixels
    ds = get_dataset("synthstreets", "val", num_images=12, size=(48, 64))
    labelled = sum(int((ds.load(i)[1] != 11).sum()) for i in range(len(ds)))
    assert np.array(run.history[-1]["confusion"]).sum() == labelled
    runs, problems = discover_runs(tmp_path)
    assert [r.path for r in runs] == [out] and not problems


def test_val_every_and_time_budget(tmp_path):
    out = tmp_path / "run"
    assert train_main(TINY + ["--data-opt", "num_images=8", "--epochs", "5", "--val-every", "2", "--out", str(out)]) == 0
    history = load_run(out).history
    assert [("miou" in r) for r in history] == [False, True, False, True, True]  # every 2nd, and the last
    # a budget far too small for 50 epochs: training stops early, the stopping epoch is evaluated and kept
    out = tmp_path / "budget"
    assert (
        train_main(
            TINY
            + ["--data-opt", "num_images=8", "--epochs", "50", "--budget-min", "0.05", "--val-every", "10", "--out", str(out)]
        )
        == 0
    )
    run = load_run(out)
    assert run.status["state"] == "budget" and len(run.history) < 50
    assert "miou" in run.history[-1] and run.last_epoch == run.history[-1]["epoch"]
    assert run.history[-1]["lr"] < 0.2 * 1e-3, "the schedule runs on the clock, so it has annealed by the end"


SKEWED_LAUNCHER = """
import os, sys, time
import torch
if os.environ.get("RANK") == "1":  # this rank's clock runs four times fast
    _real = time.perf_counter
    _t0 = _real()
    time.perf_counter = lambda: _t0 + 4 * (_real() - _t0)
import core.train.session as T
_finish = T._finish
def finish_and_dump(s, status):  # each rank leaves its final weights for the test to compare
    # (BatchNorm statistics are rank 0's, broadcast by DDP before every forward, so only parameters are compared)
    torch.save({k: v.detach().cpu() for k, v in s.model.named_parameters()}, sys.argv[1] + f"/rank{s.dist.rank}.pt")
    _finish(s, status)
T._finish = finish_and_dump
sys.exit(T.main(sys.argv[2:]))
"""


def test_torchrun_budget_with_skewed_clocks_stops_every_rank_after_the_same_epoch(tmp_path):
    """Defect: each rank read its own clock for the schedule and the "one more epoch?" decision."""
    script = tmp_path / "launch_skewed.py"
    script.write_text(SKEWED_LAUNCHER)
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
        str(tmp_path),
        *TINY,
        "--data-opt",
        "num_images=12",
        "--epochs",
        "200",
        "--budget-min",
        "0.3",  # 18 s: at least two epochs even when the ranks start slowly on a busy machine (0.15 gave one, once)
        "--out",
        str(out),
    ]
    result = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = load_run(out)
    assert run.status["state"] == "budget" and 1 < len(run.history) < 200
    lines = result.stdout.splitlines()
    rank1 = [line for line in lines if line.startswith("rank 1: epoch")]
    assert len(rank1) == len(run.history), "rank 1 trained exactly the epochs rank 0 recorded"
    w0, w1 = torch.load(tmp_path / "rank0.pt", weights_only=True), torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
