"""Live runs: a training started while the app is open appears, then gains its epochs, without a restart;
a killed training shows as interrupted; best and last are resolved again on every request."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from core.explorer.live import live_state
from core.runs import load_run
from tests.app_server import running_app
from tests.conftest import ROOT, subprocess_env
from tests.train.test_train import TINY

gradio_client = pytest.importorskip("gradio_client")


def wait_for(check, timeout: float, what: str):
    end = time.time() + timeout
    while time.time() < end:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def rows(client) -> dict[str, dict]:
    return {r["run"]: r for r in client.predict(api_name="/runs")[2]["rows"]}


def test_a_training_appears_and_grows_while_the_app_is_open(explorer_runs, tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    (runs_dir / "seg-a").symlink_to(explorer_runs / "seg-a", target_is_directory=True)
    out = runs_dir / "live"
    cmd = [sys.executable, "-m", "core.train", *TINY, "--data-opt", "num_images=24", "--epochs", "3", "--out", str(out)]
    with running_app(runs_dir, tmp_path / "cache") as (demo, url):
        client = gradio_client.Client(url, verbose=False)
        assert set(rows(client)) == {"seg-a"}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: (out / "history.jsonl").exists(), 120, "epoch 1 being written")
            t1 = time.time()
            first = wait_for(lambda: rows(client).get("live"), 5, "the new run appearing")
            assert time.time() - t1 < 5 and first["state"] == "running" and first["of"] == 3
            wait_for(lambda: len(load_run(out).history) >= 2, 120, "epoch 2 being written")
            t2 = time.time()
            second = wait_for(
                lambda: (rows(client).get("live") or {}).get("epoch") == 2 and rows(client)["live"], 5, "epoch 2 appearing"
            )
            assert time.time() - t2 < 5 and second["snapshots"] >= 2
            assert "live" in demo.explorer_context.ws.runs  # selectable in every tab
        finally:
            proc.wait(timeout=180)
        assert proc.returncode == 0, proc.stderr.read()[-2000:]
        done = wait_for(lambda: rows(client)["live"]["state"] == "finished" and rows(client)["live"], 5, "the run finishing")
        assert done["epoch"] == 3 and done["time left (min)"] is None


def test_a_killed_training_is_interrupted_and_a_run_without_weights_is_pending(tmp_path):
    out = tmp_path / "runs" / "killed"
    cmd = [sys.executable, "-m", "core.train", *TINY, "--data-opt", "num_images=48", "--epochs", "50", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (out / "run.json").exists(), 120, "the run starting")
        from core.explorer import Workspace

        ws = Workspace.discover(tmp_path / "runs")
        if "killed" in ws.pending:  # before its first epoch: listed, not an error
            from core.explorer.live import run_summary

            assert run_summary("killed", ws.pending["killed"], pending=True)["state"] == "training, no weights yet"
            assert not ws.problems
        wait_for(lambda: (out / "history.jsonl").exists(), 120, "epoch 1")
        assert live_state(load_run(out)) == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    run = load_run(out)
    assert run.status["state"] == "running" and live_state(run) == "interrupted"
    assert live_state(run, now=time.time()) == "interrupted"
