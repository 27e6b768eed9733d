"""Run folders from someone else: a pickle payload in the weights or the resume state never runs, and a
damaged folder (truncated weights, half a run.json, unknown architecture, wrong class count, garbage in
the history) marks only that run unavailable, with the reason, while every other run keeps working."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.explorer import Workspace, clear_caches
from tests.app_server import running_app
from tests.conftest import ROOT, subprocess_env

gradio_client = pytest.importorskip("gradio_client")


class Payload:
    """Unpickling this creates a file: the proof that a checkpoint ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant_payloads(run: Path, marker: Path) -> None:
    for name in ("weights/epoch_0001.safetensors", "state/last.pt"):
        (run / name).parent.mkdir(exist_ok=True)
        torch.save({"model": {"w": Payload(marker)}, "epoch": 1}, run / name)


def damage(runs: Path, good: Path) -> dict[str, str]:
    """One copy of ``good`` per defect; returns run name -> a phrase its reason must contain."""
    cases = {}

    def copy(name: str) -> Path:
        shutil.copytree(good, runs / name)
        return runs / name

    weights = copy("truncated") / "weights" / "epoch_0002.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    cases["truncated"] = "not a readable safetensors file"
    cfg = copy("half-json") / "run.json"
    cfg.write_text(cfg.read_text()[: len(cfg.read_text()) // 2])
    cases["half-json"] = "not valid JSON"
    run_json = json.loads((good / "run.json").read_text())
    (copy("unknown-arch") / "run.json").write_text(json.dumps({**run_json, "model": {**run_json["model"], "name": "hypernet"}}))
    cases["unknown-arch"] = "unknown architecture 'hypernet'"
    data = {**run_json["data"], "classes": run_json["data"]["classes"][:5], "palette": run_json["data"]["palette"][:5]}
    (copy("five-classes") / "run.json").write_text(
        json.dumps(
            {**run_json, "data": data, "model": {**run_json["model"], "args": {**run_json["model"]["args"], "num_classes": 5}}}
        )
    )
    cases["five-classes"] = "5 classes (run.json) needs [5,"
    for name, source in (("module-source", "os.system"), ("plugin-source", "mypkg.models"), ("unknown-source", "keras")):
        (copy(name) / "run.json").write_text(json.dumps({**run_json, "model": {**run_json["model"], "source": source}}))
        cases[name] = f"names the model source '{source}', which is not one of hf, onnx, registry, smp, timm, tv"
    pip = {**run_json["model"], "source": "smp", "name": "Unet", "args": {"encoder_name": "resnet18", "classes": 11}}
    (copy("smp-unet") / "run.json").write_text(json.dumps({**run_json, "model": pip}))
    cases["smp-unet"] = "tensors "  # a real source: rebuilt, and its weights checked against it (a U-Net of this project's)
    history = copy("garbage-history") / "history.jsonl"
    history.write_text(history.read_text() + "{this is not json\n")
    cases["garbage-history"] = "line 3: not valid JSON"
    return cases


def test_pickle_payloads_never_run_and_damaged_runs_are_isolated(tiny_seg_run, tmp_path):
    runs = tmp_path / "runs"
    good = tiny_seg_run[0]
    shutil.copytree(good, runs / "good")
    evil = runs / "evil"
    shutil.copytree(good, evil)
    cfg = json.loads((evil / "run.json").read_text())
    (evil / "run.json").write_text(
        json.dumps({**cfg, "status": {"state": "running"}})
    )  # as if interrupted: --resume reads its state
    marker = tmp_path / "PAYLOAD_RAN"
    plant_payloads(evil, marker)
    cases = damage(runs, good)

    before = set(sys.modules)
    ws = Workspace.discover(runs)
    assert not {"mypkg", "mypkg.models", "keras"} & (set(sys.modules) - before)  # a run directory imported nothing
    reasons = dict(ws.problems)
    assert list(ws.runs) == ["good"]
    assert "not a readable safetensors file" in reasons["evil"]
    for name, phrase in cases.items():
        assert phrase in reasons[name], (name, reasons[name])

    clear_caches()
    with running_app(runs, tmp_path / "cache") as (_, url):
        client = gradio_client.Client(url, verbose=False)
        listed = client.predict(api_name="/runs")[2]
        assert [r["run"] for r in listed["rows"]] == ["good"]
        assert {u["run"]: u["reason"] for u in listed["unavailable"]} == reasons  # shown in the app with the reason
        source = ws.dataset("good").source
        _, scores, status, _, _ = client.predict(
            source, "val", 0, ["good"], ["best"], 0.5, False, 0.5, 0.5, 1, api_name="/compare"
        )
        assert scores["runs"][0]["run"] == "good"  # the other runs keep working
        _, _, status, _, _ = client.predict(source, "val", 0, ["evil"], ["best"], 0.5, False, 0.5, 0.5, 1, api_name="/compare")
        assert "unknown run 'evil'" in status
    result = subprocess.run(
        [sys.executable, "-m", "core.train", "--resume", str(evil), "--no-progress"],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "last.pt is damaged or was not written by this engine" in result.stderr
    assert not marker.exists(), "a planted pickle ran"
