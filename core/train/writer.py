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
from core.models import arch_arguments, arch_task, build_arch, count_parameters, describe_model, split_arch, stored_state
from core.models.sources import check_trainable, join_arch
from core.models.sources.base import shapes_of, state_mismatch
from core.tasks import Task, task_type
from core.train.config import check_tags

RESUME_ADVICE = "pass resume=True to RunWriter to continue it, or choose another path"


def model_spec(
    model: nn.Module, arch: str | None, model_args: dict[str, Any] | None, *, num_classes: int, folder: Path | None = None
):
    """``(arch, recorded args)`` of ``model``: worked out from the object for a model of a library with a source
    (smp, torchvision, timm, transformers, or one ``core.models.build_arch`` made), else from ``arch``/``model_args``.
    The source must rebuild exactly this model from them, or the run would not be self-describing: from the run
    directory ``folder`` alone for a model that is a file of it (an ONNX graph)."""
    described = describe_model(model)
    if arch is None and described is None:
        raise ValueError(
            f"RunWriter cannot tell which model a {type(model).__name__} is: pass arch= (a registry name such as "
            "'unet', or 'smp:Unet', 'tv:resnet18', 'timm:convnext_atto', 'hf:segformer') and model_args= with its "
            "constructor arguments"
        )
    if arch is None:
        arch, model_args = described[0], {**described[1], **(model_args or {})}
    args = arch_arguments(arch, dict(model_args or {}), num_classes=num_classes)
    with torch.device("meta"):
        expected = shapes_of(stored_state(build_arch(arch, args, folder=folder)))
    problem = state_mismatch(expected, shapes_of(stored_state(model)))
    if problem:
        raise ValueError(
            f"the model does not match {arch} with {args}: {problem}. Pass arch= and model_args= as it was built, "
            "or register its builder with core.models.register_model"
        )
    return arch, args


def _task(arch: str, task: type[Task] | str | None) -> type[Task]:
    """The task of the model's architecture; a ``task`` given as well must agree with it."""
    kind = arch_task(arch)
    if task is not None and task_type(task) is not kind:
        raise ValueError(f"{arch} is a {kind.name} model, not {task_type(task).name}")
    return kind


def _config(task: type[Task], model_info: dict[str, Any], data: dict[str, Any], hparams: dict[str, Any] | None, tags) -> dict:
    return {
        "task": task.name,
        "model": model_info,
        "data": data,
        "train": {"logged_by": "core.train.writer.RunWriter", **(hparams or {})},
        "tags": tags,
        "versions": {
            "vision_explorer": core.__version__,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "python": platform.python_version(),
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


class RunWriter:
    """Writes one run directory as a training loop goes; see the module docstring.

    ``snapshot_epochs``: the epochs whose weights are kept (None: every epoch); the best epoch and the
    last one are always kept. ``hparams`` are recorded under run.json's "train" section, ``tags`` (free labels:
    text, numbers or booleans) under its "tags" section; the explorer's runs table shows both as columns. On
    ``resume`` the tags are added to the run's own.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        model: nn.Module,
        arch: str | None = None,
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
        tags: dict[str, Any] | None = None,
        resume: bool = False,
    ) -> None:
        self.path = Path(path)
        self.model = model
        if len(palette) != len(classes):
            raise ValueError(f"{len(classes)} classes but {len(palette)} palette colours")
        arch, args = model_spec(model, arch, model_args, num_classes=len(classes), folder=self.path)
        if resume:
            check_trainable(arch)  # a model without torch weights has one imported epoch; nothing to continue
        self.task = _task(arch, task)
        self.num_classes, self.ignore_index = len(classes), int(ignore_index)
        self.snapshot_epochs = None if snapshot_epochs is None else {int(e) for e in snapshot_epochs}
        self.history: list[dict[str, Any]] = []
        self.start = time.perf_counter()
        data = {
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
        }
        source, name = split_arch(arch)
        model_info = {"source": source, "name": name, "args": args, "num_params": count_parameters(model)}
        tags = check_tags(tags)
        if resume and (self.path / runs.RUN_FILE).exists():
            self._resume(model_info)
            if tags:
                runs.update_run(self.path, tags=tags)
        else:
            runs.create_run(self.path, _config(self.task, model_info, data, hparams, tags), advice=RESUME_ADVICE)

    def _resume(self, model_info: dict[str, Any]) -> None:
        """Continue the run in ``path``: its history is kept and the next epoch must come after its last."""
        run = runs.load_run(self.path)
        recorded = {k: run.config["model"].get(k) for k in ("name", "args")}
        if (run.source, recorded["name"], recorded["args"]) != (model_info["source"], model_info["name"], model_info["args"]):
            raise ValueError(
                f"{self.path} holds a run of {run.arch} {recorded['args']}, not of this model "
                f"({join_arch(model_info['source'], model_info['name'])} {model_info['args']}); choose another path"
            )
        self.history = runs.read_history(self.path)
        self.start -= float(self.history[-1].get("train_time") or 0.0) if self.history else 0.0
        runs.update_status(self.path, **runs.running_status())

    # --- metrics -------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def evaluate(self, model: nn.Module, loader: Iterable) -> dict[str, Any]:
        """Loss and metrics of ``model`` over ``loader`` (normalised images, targets), as the engine computes them."""
        from core.train.engine import evaluate

        device = next(model.parameters(), torch.empty(0)).device  # a model without parameters (ONNX) runs on the CPU
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
        weights = {k: v.detach().cpu() for k, v in stored_state(model).items()}
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
