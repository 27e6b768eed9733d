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
        self.device = self.predictors[0].device
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

    def predict(
        self, images: Sequence[ImageLike], *, probs: bool = True, entropy: bool = False, confidence: bool = False
    ) -> list[SegmentationPrediction] | list[ClassificationPrediction]:
        """One prediction per image, at its own size, from the weighted mean of the members' probabilities.

        ``probs=False`` (segmentation) keeps only the label map of that mean (and its entropy with ``entropy=True``,
        its top probability with ``confidence=True``), as ``Predictor.predict`` does. A dense member's probabilities are
        added to the running mean and dropped.
        """
        images = list(images)
        mean: list[np.ndarray] = []  # [image] (K, H, W) or (K,) float64
        features: list[list] = [[] for _ in images]  # [image][member] embeddings (classification)
        for w, p in zip(self.weights, self.predictors):
            for j, m in enumerate(p.predict(images)):
                if len(mean) <= j:
                    mean.append(w * m.probs.astype(np.float64))
                else:
                    mean[j] += w * m.probs.astype(np.float64)  # the same sums, in the same order, as before
                if not self.task.dense:
                    features[j].append(m.features)
        return [self._one(acc.astype(np.float32), f, probs, entropy, confidence) for acc, f in zip(mean, features)]

    def _one(self, mean: np.ndarray, parts: list, probs: bool, entropy: bool, confidence: bool = False):
        """The prediction of the mean probabilities ``mean`` ((K, H, W) or (K,)), with the members' embeddings ``parts``."""
        if self.task.dense:
            pred = SegmentationPrediction(labels=mean.argmax(0).astype(np.int64), probs=mean)
            if not probs:
                pred = SegmentationPrediction(
                    pred.labels,
                    None,
                    uncertainty=pred.entropy() if entropy else None,
                    confidence=mean.max(0) if confidence else None,
                )
            return pred
        features = None if any(f is None for f in parts) else np.concatenate(parts)  # a member without any (ONNX): none
        return ClassificationPrediction(logits=np.log(np.clip(mean, 1e-12, None)), probs=mean, features=features)
