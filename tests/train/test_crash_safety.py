"""Crash safety: training killed (SIGKILL) again and again, at random points and in the middle of
checkpoint writes, always resumes from the last complete epoch; a full disk or a read-only run folder is
a clear error that corrupts nothing."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.runs import load_run, load_state, read_history
from tests.conftest import ROOT, subprocess_env
from tests.train.test_train import TINY

# Runs core.train with every atomic write paused after its temporary file is complete and before the
# rename, announcing the target in $VE_WRITE_MARK: the test kills the process right there.
SLOW_WRITES = """
import os, sys, time
import core.utils.io, core.runs.store
_atomic = core.utils.io.atomic_write
def paused(path, write):
    def slow(tmp):
        write(tmp)
        if os.environ.get("VE_PAUSE_ON") and os.environ["VE_PAUSE_ON"] in str(path):
            with open(os.environ["VE_WRITE_MARK"], "w") as f:
                f.write(str(path))
            time.sleep(60)
    return _atomic(path, slow)
core.utils.io.atomic_write = core.runs.store.atomic_write = paused
import core.train
sys.exit(core.train.main(sys.argv[1:]))
"""


def launch(args: list[str], tmp: Path, pause_on: str | None = None) -> subprocess.Popen:
    script = tmp / "slow_writes.py"
    script.write_text(SLOW_WRITES)
    env = {**subprocess_env(), "VE_WRITE_MARK": str(tmp / "mark"), "VE_PAUSE_ON": pause_on or ""}
    return subprocess.Popen(
        [sys.executable, str(script), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def check_consistent(out: Path) -> list[int]:
    """What a resume relies on: the history parses with consecutive epochs, the state loads (weights_only),
    every snapshot and ``last`` load; nothing half-written is taken for a checkpoint."""
    epochs = [r["epoch"] for r in read_history(out)]
    assert epochs == list(range(1, len(epochs) + 1)), epochs
    if (out / "state" / "last.pt").exists():
        state = load_state(out)
        assert int(state["epoch"]) <= max(epochs, default=0)
    run = load_run(out)
    for e in run.epochs:
        run.build_model(e)
    return epochs


def test_sigkill_five_times_including_mid_checkpoint_then_resume(tmp_path):
    out = tmp_path / "run"
    rng = random.Random(7)
    first = TINY + ["--data-opt", "num_images=48", "--epochs", "6", "--out", str(out)]
    resume = ["--resume", str(out), "--no-progress", "--threads", "1"]
    kills = [
        ("random", None),
        ("mid-write", "epoch_0"),
        ("random", None),
        ("mid-write", "last.pt"),
        ("mid-write", "history"),
        ("random", None),
    ]
    log = []
    for k, (how, target) in enumerate(kills):
        args = first if not (out / "state" / "last.pt").exists() and not (out / "run.json").exists() else resume
        (tmp_path / "mark").unlink(missing_ok=True)
        proc = launch(args, tmp_path, pause_on=target)
        if how == "mid-write":
            end = time.time() + 120
            while not (tmp_path / "mark").exists():
                assert proc.poll() is None, proc.stdout.read()[-2000:]
                assert time.time() < end, "no checkpoint write reached"
                time.sleep(0.02)
            assert list(out.rglob("*.tmp-*")), "killed with a temporary file in place"
        else:
            time.sleep(rng.uniform(3.0, 7.0))  # interpreter start-up is ~3 s: anywhere in the first epochs
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (out / "run.json").exists():
            log.append((how, target, check_consistent(out)))
    result = subprocess.run(
        [sys.executable, "-m", "core.train", *resume], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert check_consistent(out) == [1, 2, 3, 4, 5, 6], log
    run = load_run(out)
    assert run.status["state"] == "finished" and run.last_epoch == 6 and not list(out.rglob("*.tmp-*"))
    assert len([h for h, _, _ in log if h == "mid-write"]) == 3 and len(log) >= 5


@contextmanager
def small_tmpfs(where: Path, size: str):
    """A size-limited tmpfs at ``where`` (needs root; the test is skipped without it)."""
    where.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_disk_and_read_only_folder_are_clear_errors_and_corrupt_nothing(tiny_seg_run, tmp_path):
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        out = disk / "run"
        shutil.copytree(tiny_seg_run[0], out)
        run_json = json.loads((out / "run.json").read_text())
        run_json["status"]["state"] = "running"  # an interrupted run, to be resumed
        (out / "run.json").write_text(json.dumps(run_json))
        filler = disk / "filler"
        with open(filler, "wb", buffering=0) as f:  # fill the disk to the last byte
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        before = _snapshot(out)
        result = subprocess.run(
            [sys.executable, "-m", "core.train", "--resume", str(out), "--epochs", "4", "--no-progress", "--threads", "1"],
            cwd=ROOT,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert "No space left on device" in result.stderr and "--resume" in result.stderr and "Traceback" not in result.stderr
        after = _snapshot(out)
        assert after == before  # every file intact, no temporary file left

        check_consistent(out)
        filler.unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        result = subprocess.run(
            [sys.executable, "-m", "core.train", "--resume", str(out), "--epochs", "4", "--no-progress", "--threads", "1"],
            cwd=ROOT,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 2 and "Read-only file system" in result.stderr and "Traceback" not in result.stderr
        assert _snapshot(out) == after
