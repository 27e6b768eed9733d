"""Device helpers: the guard against torch's channels-last CPU crash keeps narrow models trainable."""

import json
import subprocess
import sys

import pytest
import torch

from core.models import get_model
from core.utils.device import channels_last_trains_safely
from tests.conftest import ROOT, subprocess_env

NARROW = {"widths": [8, 16, 24, 32, 48], "blocks": [1, 1, 1, 1]}  # 1x1 stride-2 downsample convs from 8 channels


def test_guard_flags_narrow_strided_1x1_convolutions_on_cpu_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not channels_last_trains_safely(get_model("resunet", num_classes=11, **NARROW), cpu)
    assert channels_last_trains_safely(get_model("resunet", num_classes=11), cpu)  # the CamVid recipe's widths
    assert channels_last_trains_safely(get_model("resunet", num_classes=11, **NARROW), cuda)
    assert not channels_last_trains_safely(torch.nn.Conv2d(15, 32, 1, stride=2), cpu)
    assert channels_last_trains_safely(torch.nn.Conv2d(8, 32, 3, stride=2), cpu)


def test_narrow_resnet_blocks_train_with_channels_last_requested(tmp_path):
    """Without the guard this process aborts in the backward pass (torch 2.14 and 2.15, CPU; checked at this size)."""
    out = tmp_path / "narrow"
    cmd = [
        sys.executable,
        "-m",
        "core.train",
        "--arch",
        "resunet",
        "--model-arg",
        "widths=[8,16,24,32,48]",
        "--model-arg",
        "blocks=[1,1,1,1]",
        "--dataset",
        "synthstreets",
        "--data-opt",
        "num_images=8",
        "--data-opt",
        "size=[120,160]",
        "--size",
        "120",
        "160",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--workers",
        "0",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "channels-last off" in proc.stdout
    assert (out / "weights" / "last.safetensors").exists()
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["train"]["channels_last"] is True  # asked for ...
    assert recorded["runtime"]["memory_format"] == "contiguous"  # ... and what ran


def test_side_by_side_keeps_the_order_and_raises_as_the_loop_would(monkeypatch):
    import time

    from core.utils import device

    monkeypatch.setattr(device.os, "cpu_count", lambda: 4)  # 4 cores, 1 torch thread: up to 4 workers
    monkeypatch.setattr(device.torch, "get_num_threads", lambda: 1)
    assert device.side_by_side(lambda x: (time.sleep(0.01 * (5 - x)), x * x)[1], range(5)) == [0, 1, 4, 9, 16]

    def fail_on_two(x):
        if x == 2:
            raise ValueError("two")
        return x

    with pytest.raises(ValueError, match="two"):
        device.side_by_side(fail_on_two, [1, 2, 3])
