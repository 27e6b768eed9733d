"""core/tasks.py is the one place that knows what differs between tasks; everything else asks the task object."""

from __future__ import annotations

import ast

import pytest

from core.data import dataset_task
from core.models import list_models, model_task
from core.tasks import ClassificationTask, SegmentationTask, all_tasks, task_names, task_type
from tests.conftest import ROOT


def test_task_names_read_from_files_resolve_to_the_task_classes():
    assert task_type("segmentation") is SegmentationTask and task_type("classification") is ClassificationTask
    assert task_type(SegmentationTask) is SegmentationTask
    assert [t.name for t in all_tasks()] == task_names() == ["segmentation", "classification"]
    with pytest.raises(ValueError, match="unknown task 'detection'; valid: segmentation, classification"):
        task_type("detection")


def test_what_differs_is_declared_by_each_task():
    seg, cls = SegmentationTask, ClassificationTask
    assert (seg.monitor, seg.dense, seg.class_metric, seg.unit) == ("miou", True, "iou", "pixels")
    assert (cls.monitor, cls.dense, cls.class_metric, cls.unit) == ("top1", False, "class_acc", "images")
    assert dict(seg.epoch_line)["miou"] == "mIoU" and dict(cls.epoch_line)["top1"] == "top1"
    assert model_task("unet") is seg and model_task("small_cnn") is cls
    assert dataset_task("camvid") is seg and dataset_task("crops:camvid") is cls
    assert "unet" in list_models(seg) and "unet" not in list_models(cls)


def _task_name_literals(path) -> list[int]:
    """Lines of ``path`` where a task name appears as a string in code (docstrings and messages aside: a
    comparison, a membership test, a dict key or a default argument)."""
    tree = ast.parse(path.read_text())
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Compare, ast.Dict, ast.arguments, ast.Subscript, ast.keyword, ast.Call)):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Constant) and sub.value in ("segmentation", "classification"):
                    lines.append(sub.lineno)
    return sorted(set(lines))


def test_no_code_outside_core_tasks_compares_or_looks_up_task_names():
    sources = [p for folder in ("core", "app", "bench") for p in (ROOT / folder).rglob("*.py") if p != ROOT / "core" / "tasks.py"]
    found = {str(p.relative_to(ROOT)): lines for p in sources if (lines := _task_name_literals(p))}
    assert found == {}, f"task names used as keys or in comparisons outside core/tasks.py: {found}"
