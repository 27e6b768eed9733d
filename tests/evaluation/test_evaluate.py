"""python -m core.evaluate: sharded with torchrun it gives what one process gives, a killed pass continues, a
copied run is served from its results without any model, and a measure registered by a plugin is computed and
shown like the built-in ones.

About 60 s: two torchrun launches and three fresh processes, each importing torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core import explorer as A
from core.evaluate import Target, main, result
from core.evaluation.measures import MEASURES, Item, Measure, Part, View, register_measure
from core.models import get_model
from core.runs import load_run
from core.runs.results import load_npz
from core.train.writer import RunWriter
from tests.app_server import free_port, running_app
from tests.conftest import ROOT, subprocess_env
from tests.data.test_datasets import camvid_layout

gradio_client = pytest.importorskip("gradio_client")
EVALUATE = ["--split", "val", "--epochs", "best", "--max-images", "11", "--chunk", "2"]  # 6 chunks, an odd count


class LabelledPixels(Measure):
    """A measure defined only in this test module: labelled pixels per true class."""

    name, title = "labelled_pixels_test", "Labelled pixels (test)"
    dense_only = True
    view = View("per_class", series=(("share", "share of pixels"),), summary=(("total", "pixels"),))

    def parts(self, num_classes: int) -> dict[str, Part]:
        return {"pixels": Part((num_classes,), "int64")}

    def update(self, state, item: Item) -> None:
        state["pixels"] += item.confusion().sum(1)

    def finish(self, state, classes, task) -> dict:
        total = int(state["pixels"].sum())
        return {"share": (state["pixels"] / max(1, total)).tolist(), "total": total}


@pytest.fixture(scope="module", autouse=True)
def labelled_pixels_registered():
    """The measure above, registered for this module only: the registry is global, and every later evaluation in
    this process (e.g. of the shipped runs) would compute it and store it in their caches."""
    register_measure(LabelledPixels)
    yield
    MEASURES.unregister(LabelledPixels.name)


def result_arrays(run_dir: Path) -> dict[str, np.ndarray]:
    [folder] = [p for p in (run_dir / "evaluation").iterdir() if (p / "meta.json").is_file()]
    out = {f"{m.stem}/{k}": v for m in (folder / "measures").glob("*.npz") for k, v in load_npz(m).items()}
    out.update({f"labels/{k}": v for k, v in load_npz(folder / "labels.npz").items()})
    out.update({f"sample/{k}": v for k, v in load_npz(folder / "sample.npz").items()})
    return out


def assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if a[k].dtype.kind in "iub":
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)  # integer states: exactly
        else:
            # float sums over many pixels: the ranks batch images differently, so float32 rounding differs
            np.testing.assert_allclose(a[k], b[k], rtol=1e-7, atol=1e-6, err_msg=k)


@pytest.fixture(scope="module")
def one_process(tiny_seg_run, tmp_path_factory):
    runs = tmp_path_factory.mktemp("one")
    shutil.copytree(tiny_seg_run[0], runs / "r")
    assert main(["--runs", str(runs), *EVALUATE]) == 0
    # this process also computes measures registered by tests (above, and the README's); a fresh process has
    # only the built-in ones
    builtin = ("confusion/", "per_image/", "boundary/", "calibration/", "segment_sizes/", "labels/", "sample/")
    return {k: v for k, v in result_arrays(runs / "r").items() if k.startswith(builtin)}


def test_two_processes_give_what_one_gives(one_process, tiny_seg_run, tmp_path):
    shutil.copytree(tiny_seg_run[0], tmp_path / "r")
    port = f"--master_port={free_port()}"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", port, "-m", "core.evaluate"]
    args = [*cmd, "--runs", str(tmp_path), *EVALUATE]
    done = subprocess.run(args, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    meta = (next((tmp_path / "r" / "evaluation").iterdir()) / "meta.json").read_text()
    assert '"processes": 2' in meta and '"images": 11' in meta
    assert_same(result_arrays(tmp_path / "r"), one_process)


KILLED = """
import os, sys
import core.runs.results as R
written = []
real = R.ResultStore.write_chunk
def write_then_die(self, chunk):
    real(self, chunk)
    written.append(chunk.start)
    if len(written) == 2:
        os._exit(137)  # as a SIGKILL would, after two whole chunks
R.ResultStore.write_chunk = write_then_die
from core.evaluate import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_pass_continues_where_it_stopped(one_process, tiny_seg_run, tmp_path):
    shutil.copytree(tiny_seg_run[0], tmp_path / "r")
    args = ["--runs", str(tmp_path), *EVALUATE]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED, *args], cwd=ROOT, env=subprocess_env(), capture_output=True, timeout=300
    )
    assert killed.returncode == 137
    [folder] = list((tmp_path / "r" / "evaluation").iterdir())
    assert len(list((folder / "chunks").glob("*.npz"))) == 2 and not (folder / "meta.json").exists()
    rerun = [sys.executable, "-m", "core.evaluate", *args]
    again = subprocess.run(rerun, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_same(result_arrays(tmp_path / "r"), one_process)
    assert not list((folder / "chunks").glob("*.npz"))  # merged and cleaned up


def camvid_runs(root: Path, data: Path) -> Path:
    """Two tiny CamVid-layout runs (random U-Nets, one logged epoch each) recording ``data`` as their root."""
    from core.data.camvid import CLASSES, PALETTE

    for name, seed in (("a", 0), ("b", 1)):
        torch.manual_seed(seed)
        model = get_model("unet", num_classes=11, base_width=4, depth=2)
        info = dict(classes=CLASSES, palette=PALETTE, ignore_index=11, dataset="camvid", data_root=str(data))
        with RunWriter(root / name, model=model, **info) as w:
            w.log_epoch(1, train_loss=1.0)
    return root


def test_a_copied_run_is_served_from_its_results_without_a_model(tmp_path, monkeypatch):
    camvid_layout(tmp_path / "data-here", n=5, h=24, w=32)
    runs = camvid_runs(tmp_path / "runs-here", tmp_path / "data-here")
    assert main(["--runs", str(runs), "--split", "val", "--epochs", "best"]) == 0  # computed "on the cluster"
    shutil.copytree(runs, tmp_path / "runs-home")  # copied home, beside the dataset at another root
    shutil.copytree(tmp_path / "data-here", tmp_path / "data-home")
    shutil.rmtree(runs)
    shutil.rmtree(tmp_path / "data-here")

    def no_model(*args, **kwargs):
        raise AssertionError("a Predictor was built although the results were there")

    monkeypatch.setattr(A.results, "get_predictor", no_model)
    monkeypatch.setattr(A.predictions, "get_predictor", no_model)
    A.clear_caches()
    with running_app(tmp_path / "runs-home", tmp_path / "cache", str(tmp_path / "data-home")) as (demo, url):
        client = gradio_client.Client(url, verbose=False)
        _, _, table, text = client.predict(["a", "b"], "best", "val", api_name="/boundary")
        assert [r["run"] for r in table["runs"]] == ["a", "b"] and "computed" in text and "error" not in str(table)
        source = demo.explorer_context.ws.dataset("a").source
        hardest, first, msg = client.predict(source, "val", ["a", "b"], ["best", "best"], api_name="/hardest")
        order = [int(g["caption"].split(":")[0]) for g in hardest]
        assert sorted(order) == list(range(5)) and first == order[0] and "Hardest first" in msg
        verdict, *_, data = client.predict("a", "best", "b", "best", "val", api_name="/significance")
        assert data["images"] == 5 and data["verdict"] in verdict


def test_a_measure_registered_in_a_plugin_is_computed_and_shown(tiny_seg_run, tmp_path):
    shutil.copytree(tiny_seg_run[0], tmp_path / "r")
    assert "labelled_pixels_test" in MEASURES
    assert main(["--runs", str(tmp_path), *EVALUATE]) == 0
    run = load_run(tmp_path / "r")
    target = Target(run, run.best_epoch, "val", max_images=11)
    assert "labelled_pixels_test" in target.store().meta()["measures"]  # in core.evaluate's output

    def labelled(n: int) -> int:
        return sum(int((np.asarray(target.dataset.load(i)[1]) != 11).sum()) for i in range(n))

    assert result(target, "labelled_pixels_test")["total"] == labelled(11)
    A.clear_caches()
    with running_app(tmp_path, tmp_path / "cache") as (_, url):  # the app evaluates the whole split (16 images)
        client = gradio_client.Client(url, verbose=False)
        plot, table, shown, text = client.predict(["r"], "best", "val", "labelled_pixels_test", api_name="/measure")
    [row] = shown["runs"]
    assert row["total"] == labelled(len(target.dataset)) and shown["view"]["kind"] == "per_class"
    assert f"pixels {row['total']:.3f}" in text and len(table["data"]) == 11  # one row per class


def test_a_large_cold_split_is_never_computed_on_a_click_but_in_the_background(tiny_seg_run, tmp_path, monkeypatch):
    import time

    shutil.copytree(tiny_seg_run[0], tmp_path / "r")
    monkeypatch.setattr(A.results, "COLD_LIMIT", 10)  # the 16 val images are "large" here
    A.clear_caches()
    with running_app(tmp_path, tmp_path / "cache") as (_, url):
        client = gradio_client.Client(url, verbose=False)
        _, _, _, text = client.predict(["r"], "best", "val", api_name="/boundary")
        assert (
            "16 images of 1 run(s) are not evaluated yet" in text
            and f"python -m core.evaluate --runs {tmp_path} --run-name r" in text
        )
        status, job = client.predict(["r"], "best", "val", api_name="/evaluate_background")
        assert job["status"] == "running" and "core.evaluate" in status
        deadline = time.time() + 120
        while any(j.process.poll() is None for j in A.JOBS.values()) and time.time() < deadline:
            time.sleep(0.5)
        _, table, result, text = client.predict(["r"], "best", "val", api_name="/boundary")
        assert [r["run"] for r in result["runs"]] == ["r"] and "boundary" in text and len(table["data"]) == 11


def test_two_jobs_on_one_result_compute_it_once(tiny_seg_run, tmp_path):
    """Two evaluations of one result at once (two app requests, or the app and ``core.evaluate``): the second
    waits for the first's lock, then finds the result done; no chunk file is merged or dropped under the other."""
    import threading
    import time

    from core.evaluate import evaluate_target
    from core.inference import Predictor

    shutil.copytree(tiny_seg_run[0], tmp_path / "r")
    run = load_run(tmp_path / "r")
    predicted, waited, errors = [], [], []

    class Slow(Predictor):  # long enough for the other job to start meanwhile
        def predict(self, images, **kw):
            predicted.extend(images)
            time.sleep(0.2)
            return super().predict(images, **kw)

    def job() -> None:
        try:
            target = Target(run, run.best_epoch, "val", max_images=6)
            evaluate_target(target, chunk=2, predictor=Slow(run, "best"), progress=lambda f, msg: waited.append(msg))
        except Exception as e:  # noqa: BLE001  (reported by the assertion below)
            errors.append(e)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(predicted) == 6  # not 12: the second job found the result done
    assert "waiting for another evaluation of this result" in waited
    assert result(Target(run, run.best_epoch, "val", max_images=6), "per_image")["images"] == 6
