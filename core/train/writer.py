"""Log your own training loop into a run directory the explorer reads like any other.

The same idea as TensorBoard's ``SummaryWriter``, but what it writes is a full run: run.json (the model's
registry name and arguments, the classes, palette, ignore index, normalisation and input size),
history.jsonl (the engine's metrics, from ``core.evaluation.metrics``) and safetensors snapshots::

    writer = RunWriter("runs/my-unet", model=model, arch="unet", model_args={"base_width": 16},
                       classes=CLASSES, palette=PALETTE, ignore_index=11, input_size=(360, 480), dataset="camvid")
    for epoch in range(1, epochs + 1):
        ...                                               # your loop
        writer.log_epoch(epoch, train_loss=loss, model=model, loader=val_loader)   # or preds=/targets=, or confusion=
    writer.close()

A model that is not in the registry is registered in your own module with ``core.models.register_model``;
start the app with ``--plugins yourpackage.models`` so it can rebuild it. A run directory alone never makes
the app import anything.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torchvision
from torch import Tensor, nn

import core
from core import runs
from core.data.base import IMAGENET_MEAN, IMAGENET_STD
from core.evaluation.metrics import ConfusionMatrix, topk_correct
from core.models import count_parameters, rebuild_model
from core.models import model_args as full_model_args
from core.tasks import SegmentationTask, Task, task_type


class RunWriter:
    """Writes one run directory as a training loop goes; see the module docstring.

    ``snapshot_epochs``: the epochs whose weights are kept (None: every epoch); the best epoch and the
    last one are always kept. ``hparams`` are recorded under run.json's "train" section.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        model: nn.Module,
        arch: str,
        model_args: dict[str, Any] | None = None,
        classes: Sequence[str],
        palette: Sequence[Sequence[int]],
        ignore_index: int = 255,
        task: type[Task] | str | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        input_size: tuple[int, int] | None = None,
        dataset: str | None = None,
        data_options: dict[str, Any] | None = None,
        data_root: str | None = None,
        train_split: str = "train",
        val_split: str = "val",
        snapshot_epochs: Iterable[int] | None = None,
        hparams: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.model = model
        self.task = task_type(task) if task is not None else getattr(model, "task", SegmentationTask)
        self.num_classes, self.ignore_index = len(classes), int(ignore_index)
        if len(palette) != len(classes):
            raise ValueError(f"{len(classes)} classes but {len(palette)} palette colours")
        args = full_model_args(arch, num_classes=len(classes), **(model_args or {}))
        self._check_rebuildable(arch, args)
        self.snapshot_epochs = None if snapshot_epochs is None else {int(e) for e in snapshot_epochs}
        self.history: list[dict[str, Any]] = []
        self.start = time.perf_counter()
        config = {
            "task": self.task.name,
            "model": {"name": arch, "args": args, "num_params": count_parameters(model)},
            "data": {
                "name": dataset or "custom",
                "options": data_options or {},
                "root": data_root,
                "train_split": train_split,
                "val_split": val_split,
                "task": self.task.name,
                "classes": list(classes),
                "palette": [list(c) for c in palette],
                "ignore_index": self.ignore_index,
                "mean": list(mean),
                "std": list(std),
                "input_size": list(input_size) if input_size else None,
                "eval_native": False,
            },
            "train": {"logged_by": "core.train.writer.RunWriter", **(hparams or {})},
            "versions": {
                "vision_explorer": core.__version__,
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "python": platform.python_version(),
            },
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        runs.create_run(self.path, config)

    def _check_rebuildable(self, arch: str, args: dict[str, Any]) -> None:
        """The registry must rebuild exactly this model from (arch, args), or the run would not be self-describing."""
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in rebuild_model(arch, args).state_dict().items()}
        given = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        if given != expected:
            diff = sorted(set(given) ^ set(expected))[:3] or [k for k in given if given[k] != expected.get(k)][:3]
            raise ValueError(
                f"the model does not match get_model({arch!r}, **{args}) (differs at {diff}); pass the registry "
                "name and arguments it was built with, or register its builder (core.models.register_model)"
            )

    # --- metrics -------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def evaluate(self, model: nn.Module, loader: Iterable) -> dict[str, Any]:
        """Loss and metrics of ``model`` over ``loader`` (normalised images, targets), as the engine computes them."""
        from core.train.engine import evaluate

        device = next(model.parameters()).device
        task = self.task(self.num_classes, self.ignore_index)
        was_training = model.training
        metrics = evaluate(model, loader, task, device, progress=False)
        model.train(was_training)
        return metrics

    def scores(
        self,
        *,
        preds: Tensor | Sequence[Tensor] | None = None,
        targets: Tensor | Sequence[Tensor] | None = None,
        confusion: Any = None,
    ) -> dict[str, Any]:
        """Metrics from predictions and targets (labels, or logits/probabilities with the class on dim 1), or a
        confusion matrix."""
        cm = ConfusionMatrix(self.num_classes, self.ignore_index)
        hits = {1: 0, 5: 0}
        if confusion is not None:
            cm.mat = torch.as_tensor(confusion, dtype=torch.int64).reshape(self.num_classes, self.num_classes)
            hits = {1: int(cm.mat.diag().sum()), 5: None}
        else:
            if preds is None or targets is None:
                raise ValueError("log_epoch needs preds and targets, a confusion matrix, or a model and a loader")
            pairs = zip(preds, targets) if isinstance(preds, (list, tuple)) else [(preds, targets)]
            for p, t in pairs:
                p, t = torch.as_tensor(p), torch.as_tensor(t)
                labels = p.argmax(1) if p.dim() == t.dim() + 1 else p
                cm.update(labels.long(), t.long())
                if not self.task.dense:
                    if p.dim() == 2:
                        got = topk_correct(p, t.long(), (1, 5))
                        hits = {1: hits[1] + got[1], 5: None if hits[5] is None else hits[5] + got[5]}
                    else:
                        hits = {1: hits[1] + int((labels == t).sum()), 5: None}
        metrics = self.task.scores(cm.mat, hits)
        return {**metrics, "confusion": cm.mat.tolist()}

    # --- epochs ----------------------------------------------------------------------------------------------
    def log_epoch(
        self,
        epoch: int,
        *,
        train_loss: float | None = None,
        val_loss: float | None = None,
        preds=None,
        targets=None,
        confusion: Any = None,
        model: nn.Module | None = None,
        loader: Iterable | None = None,
        lr: float | None = None,
        metrics: dict[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Record epoch ``epoch``: the training loss, validation metrics (from ``model`` evaluated on ``loader``,
        from ``preds``/``targets``, from a ``confusion`` matrix, or already computed ``metrics`` such as
        ``core.inference.evaluate_predictor``'s) and a snapshot of ``model`` (default: the writer's).
        Returns the history line written."""
        if self.history and epoch <= self.history[-1]["epoch"]:
            raise ValueError(f"epoch {epoch} is not after the last logged epoch {self.history[-1]['epoch']}")
        model = model or self.model
        if metrics is not None:
            metrics = dict(metrics)
        elif loader is not None:
            metrics = self.evaluate(model, loader)
        elif preds is not None or confusion is not None:
            metrics = {"val_loss": val_loss, **self.scores(preds=preds, targets=targets, confusion=confusion)}
        else:
            metrics = {}
        elapsed = time.perf_counter() - self.start
        previous = self.history[-1]["train_time"] if self.history else 0.0
        record = {
            "epoch": int(epoch),
            "train_loss": train_loss,
            **metrics,
            "lr": lr,
            "epoch_time": elapsed - previous,
            "train_time": elapsed,
            **extra,
        }
        weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        wanted = self.snapshot_epochs is None or int(epoch) in self.snapshot_epochs
        runs.commit_epoch(
            self.path,
            self.history,
            record,
            weights,
            monitor=self.task.monitor,
            snapshot=wanted,
            keep=lambda e, final: self.snapshot_epochs is None or e in self.snapshot_epochs,
        )
        return record

    def close(self, state: str = "finished") -> None:
        """Mark the run ended (``state``: "finished", or e.g. "early_stopped"); the last epoch stays saved."""
        runs.finish_run(self.path, state, self.history)

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:  # after an exception the run stays "running" and shows as interrupted
            self.close()
