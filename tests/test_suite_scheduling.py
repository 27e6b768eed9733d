"""How the suite is spread over pytest-xdist workers (tests/conftest.py): each module whole on one worker, and the
modules that start the app on the shipped runs together, since they write the same caches in checkpoints/."""

from __future__ import annotations

from tests.conftest import ROOT, SHIPPED_RUNS_MODULES, pytest_xdist_auto_num_workers, work_unit


def test_a_module_is_one_unit_and_the_shipped_run_modules_share_one():
    assert work_unit("tests/train/test_train.py::test_val_every_and_time_budget") == "tests/train/test_train.py"
    assert work_unit("tests/models/test_segmentation.py::test_odd_sizes[unet-33x47]") == "tests/models/test_segmentation.py"
    units = {work_unit(f"tests/app/{m}::test_x") for m in SHIPPED_RUNS_MODULES}
    assert units == {"shipped-runs"}
    assert all((ROOT / "tests" / "app" / m).is_file() for m in SHIPPED_RUNS_MODULES), "a renamed module left the group"


def test_auto_workers_are_the_usable_cores_at_most_four(monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert pytest_xdist_auto_num_workers(None) == 4
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert pytest_xdist_auto_num_workers(None) == 1
