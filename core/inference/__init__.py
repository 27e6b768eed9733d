"""Serving runs: the ``Predictor`` (a run at an epoch, with its own preprocessing), ``Ensemble`` (several
runs' probabilities averaged), ``evaluate_predictor`` (either scored on a split) and feature embeddings."""

from core.inference.ensemble import Ensemble, EnsembleError
from core.inference.evaluate import evaluate_predictor
from core.inference.predictor import (
    ClassificationPrediction,
    EmbeddingsUnavailableError,
    ImageLike,
    ModelError,
    Predictor,
    SegmentationPrediction,
    to_rgb_array,
)

__all__ = [
    "ClassificationPrediction",
    "EmbeddingsUnavailableError",
    "Ensemble",
    "EnsembleError",
    "ImageLike",
    "ModelError",
    "Predictor",
    "SegmentationPrediction",
    "evaluate_predictor",
    "to_rgb_array",
]
