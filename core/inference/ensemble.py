"""Ensembles: a virtual run that averages the softmax probabilities of several runs' models.

``Ensemble([(run_a, "best"), (run_b, 3)], weights=[2, 1])`` behaves like a ``Predictor``:
``predict(images)`` returns the same prediction types, and ``core.inference.evaluate_predictor``
scores either. Members may differ in architecture and input size (each applies its own run's
preprocessing) but must share one label set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from core.inference.predictor import ClassificationPrediction, ImageLike, Predictor, SegmentationPrediction
from core.runs import Run, load_run
from core.tasks import Task


class EnsembleError(ValueError):
    """Members that cannot be combined (different tasks or label sets, bad weights)."""


def _label_set_problem(runs: list[Run]) -> str | None:
    first = runs[0]
    for run in runs[1:]:
        if run.task is not first.task:
            return f"run {run.name} is {run.task.name} but {first.name} is {first.task.name}"
        if run.classes != first.classes:
            return f"run {run.name} has classes {run.classes}, {first.name} has {first.classes}: an ensemble needs one label set"
    return None


class Ensemble:
    """The (weighted) mean of the members' softmax probabilities.

    Attributes: ``task``, ``classes``, ``palette``, ``ignore_index``, ``name`` (e.g.
    ``"ensemble(a@best+b@3)"``), ``members`` [(Run, resolved epoch)], ``weights`` (normalised to sum 1).
    For classification, ``logits`` of a prediction are log(mean probabilities) and ``features``
    the concatenation of the members' embeddings.
    """

    def __init__(
        self,
        members: list[tuple[Run | str | Path, int | str]],
        weights: list[float] | None = None,
        *,
        device: torch.device | str | None = None,
        batch_size: int = 8,
    ) -> None:
        if not members:
            raise EnsembleError("an ensemble needs at least one member")
        runs = [r if isinstance(r, Run) else load_run(r) for r, _ in members]
        problem = _label_set_problem(runs)
        if problem:
            raise EnsembleError(problem)
        if weights is None:
            raw = [1.0] * len(runs)
        else:
            raw = [float(w) for w in weights]
            if len(raw) != len(runs):
                raise EnsembleError(f"{len(raw)} weights for {len(runs)} members")
            if any(not np.isfinite(w) or w < 0 for w in raw) or sum(raw) <= 0:
                raise EnsembleError(f"weights must be non-negative with a positive sum, got {raw}")
        self.weights = [w / sum(raw) for w in raw]
        self.predictors = [Predictor(run, epoch, device=device, batch_size=batch_size) for run, (_, epoch) in zip(runs, members)]
        self.members = [(p.run, p.epoch) for p in self.predictors]
        first = runs[0]
        self.task: type[Task] = first.task
        self.classes: list[str] = first.classes
        self.palette = first.palette
        self.ignore_index: int = first.ignore_index
        parts = [f"{run.name}@{epoch}" for run, (_, epoch) in zip(runs, members)]
        if weights is not None:
            parts = [f"{p}*{w:g}" for p, w in zip(parts, raw)]
        self.name = f"ensemble({'+'.join(parts)})"

    def __repr__(self) -> str:
        return self.name

    def predict(self, images: Sequence[ImageLike]) -> list[SegmentationPrediction] | list[ClassificationPrediction]:
        """One prediction per image, at its own size, from the weighted mean of the members' probabilities."""
        images = list(images)
        per_member = [p.predict(images) for p in self.predictors]  # [member][image]
        out: list = []
        for j in range(len(images)):
            probs = sum(w * m[j].probs.astype(np.float64) for w, m in zip(self.weights, per_member)).astype(np.float32)
            if self.predictors[0].run.task.dense:
                out.append(SegmentationPrediction(labels=probs.argmax(0).astype(np.int64), probs=probs))
            else:
                parts = [m[j].features for m in per_member]  # a member without embeddings (ONNX) leaves the ensemble none
                features = None if any(f is None for f in parts) else np.concatenate(parts)
                out.append(ClassificationPrediction(logits=np.log(np.clip(probs, 1e-12, None)), probs=probs, features=features))
        return out
