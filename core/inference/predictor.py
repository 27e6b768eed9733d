"""Serving: a ``Predictor`` built from a run directory and an epoch.

It applies the run's own preprocessing (the same ``eval_transforms`` the training engine
validated with), batches its inputs, runs under ``torch.inference_mode()`` and returns results
at each input's own size. The app and the benchmarks use it; nothing else re-implements
preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torchvision import tv_tensors

from core.data.images import array_to_rgb, pil_to_rgb
from core.data.transforms import eval_transforms
from core.inference.upsample import labels_and_confidence, upsampled_labels
from core.models.base import EmbeddingsUnavailableError, embeddings_unavailable
from core.runs import Run, load_run
from core.tasks import main_logits, merge_flipped, merge_scales, single_scale
from core.utils.device import pick_device

ImageLike = Union[Image.Image, np.ndarray]


@dataclass
class SegmentationPrediction:
    labels: np.ndarray  # (H, W) int64 class map at the input's size
    probs: np.ndarray | None  # (K, H, W) float32 softmax probabilities; None from ``predict(probs=False)``
    features: np.ndarray | None = None  # (C, h, w) the embedding the classifier read (``predict(features=True)``)
    uncertainty: np.ndarray | None = None  # (H, W) float32 entropy, kept by ``predict(probs=False, entropy=True)``
    confidence: np.ndarray | None = None  # (H, W) float32 top probability, kept by ``predict(probs=False, confidence=True)``

    def entropy(self) -> np.ndarray:
        """(H, W) per-pixel entropy in nats: the model's uncertainty."""
        if self.probs is None:
            if self.uncertainty is None:
                raise ValueError("this prediction kept neither probabilities nor entropy: predict with entropy=True")
            return self.uncertainty
        p = np.clip(self.probs, 1e-12, 1.0)
        return -(p * np.log(p)).sum(0)


@dataclass
class ClassificationPrediction:
    logits: np.ndarray  # (K,)
    probs: np.ndarray  # (K,) softmax
    features: np.ndarray | None  # (D,) pre-logit embedding; None for a model that serves none (``embeddings_unavailable``)

    def topk(self, k: int = 5) -> list[tuple[int, float]]:
        order = np.argsort(-self.probs)[:k]
        return [(int(i), float(self.probs[i])) for i in order]


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """(H, W, 3) uint8 from a PIL image of any mode (EXIF orientation applied, 16-bit and float scaled,
    transparency composited) or an array; bad input is a ValueError."""
    if isinstance(image, Image.Image):
        return pil_to_rgb(image)
    return array_to_rgb(image)


class ModelError(RuntimeError):
    """A model that raised, or returned outputs of the wrong shape, class count or NaN; the message names the run."""


class Predictor:
    """``Predictor(run_dir, epoch="best").predict([image, ...])``.

    ``model=`` serves an in-memory model with the run's preprocessing instead of a saved epoch (e.g. to
    score a model before its first snapshot is written).

    ``tta_flip`` averages the probabilities of each image and its mirror; ``None`` follows the run
    (its ``--tta-flip`` training option, under which its recorded scores were measured). ``tta_scales``
    (segmentation) also averages those of the image resized by each factor, e.g. ``(0.75, 1, 1.25)``, each
    mirrored too with ``tta_flip``; ``None`` follows the run's ``--tta-scales``, ``()`` switches it off.
    """

    def __init__(
        self,
        run: Run | str | Path,
        epoch: int | str | None = "best",
        *,
        device: torch.device | str | None = None,
        batch_size: int = 8,
        tta_flip: bool | None = None,
        tta_scales: Sequence[float] | None = None,
        model: torch.nn.Module | None = None,
    ) -> None:
        self.run = run if isinstance(run, Run) else load_run(run)
        self.epoch = None if model is not None and epoch is None else self.run.resolve_epoch(epoch)
        trained = self.run.config.get("train", {})
        self.tta_flip = bool(trained.get("tta_flip", False)) if tta_flip is None else bool(tta_flip)
        scales = trained.get("tta_scales") if tta_scales is None else tta_scales
        self.tta_scales: tuple[float, ...] = () if single_scale(scales) else tuple(float(s) for s in scales)
        if self.tta_scales and not self.run.task.dense:
            raise ValueError(f"tta_scales resizes images for per-pixel predictions; a {self.run.task.name} run cannot use it")
        self.device = pick_device() if device is None else torch.device(device)
        if model is None:  # the usual road: the run's weights at ``epoch``
            model = self.run.build_model(self.epoch, self.device)
        # channels-last, as the engine trains: faster convolutions and the same numbers as in training
        self.model = model.to(self.device).eval().to(memory_format=torch.channels_last)
        # why the model serves no features (an ONNX graph without a features output), None if it does: said up front
        self.embeddings_unavailable: str | None = embeddings_unavailable(self.model)
        self.batch_size = batch_size
        data = self.run.data
        self.transform = eval_transforms(size=self.run.input_size, mean=tuple(data["mean"]), std=tuple(data["std"]))

    @property
    def task(self) -> str:
        return self.run.task

    def preprocess(self, images: Sequence[ImageLike]) -> tuple[Tensor, list[tuple[int, int]]]:
        """(B, 3, h, w) normalised batch and each input's (H, W)."""
        arrays = [to_rgb_array(im) for im in images]
        tensors = [self.transform(tv_tensors.Image(torch.from_numpy(a).permute(2, 0, 1))) for a in arrays]
        if self.run.input_size is None and len({t.shape for t in tensors}) > 1:
            raise ValueError("this run keeps images at native size, so a batch must hold images of one size")
        return torch.stack(tensors), [a.shape[:2] for a in arrays]

    @torch.inference_mode()
    def _batches(self, images: Sequence[ImageLike]):
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            x, sizes = self.preprocess(chunk)
            yield x.to(self.device, memory_format=torch.channels_last), sizes

    @torch.inference_mode()
    def predict(
        self,
        images: Sequence[ImageLike],
        *,
        features: bool = False,
        probs: bool = True,
        entropy: bool = False,
        confidence: bool = False,
    ) -> list[SegmentationPrediction] | list[ClassificationPrediction]:
        """One prediction per input image, at that image's size.

        Segmentation with ``probs=False`` keeps the label map only (and the (H, W) entropy with
        ``entropy=True``), not K float32 probability maps: what a view of labels needs, at a fraction of
        the memory on large images (152 MB per 2048x1024 image at 19 classes). Classification ignores both.

        Classification predictions carry the pre-logit embedding; segmentation ones carry the per-pixel
        features with ``features=True``, from the same forward pass as the labels. A model that serves no
        features (``embeddings_unavailable``) gives classifications without them, and ``features=True`` is an
        ``EmbeddingsUnavailableError`` saying why.
        """
        if features and self.embeddings_unavailable:
            raise EmbeddingsUnavailableError(
                f"{self.label}: embeddings are unavailable for this run: {self.embeddings_unavailable}"
            )
        out: list = []
        for x, sizes in self._batches(list(images)):
            if self.run.task.dense:
                out.extend(self._segment(x, sizes, features, probs=probs, entropy=entropy, confidence=confidence))
            else:
                logits, feats = self._classify(x)  # (B, K), (B, D) or None
                if self.tta_flip:
                    logits = merge_flipped(logits, self._checked(main_logits(self._call(lambda: self.model(x.flip(-1)), x)), x))
                probs = logits.softmax(1)
                rows = feats.cpu().numpy() if feats is not None else [None] * len(logits)
                for lg, p, f in zip(logits.cpu().numpy(), probs.cpu().numpy(), rows):
                    out.append(ClassificationPrediction(lg, p, f))
        return out

    def _classify(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Logits (B, K) and embeddings (B, D) from one pass; no embeddings from a model that serves none."""
        if self.embeddings_unavailable:
            return self._checked(main_logits(self._call(lambda: self.model(x), x)), x), None
        both = getattr(self.model, "logits_and_features", None)  # ClassificationModel's; a graph runs whole (ONNX)
        if both is not None:
            logits, feats = self._call(lambda: both(x), x)
        else:
            feats = self._call(lambda: self.model.features(x), x)
            logits = self._call(lambda: self.model.head(feats), x)
        return self._checked(logits, x), feats.float()

    def _call(self, forward, x: Tensor):
        """``forward()``; a model that raises fails with its run named, so a caller can set this one run aside."""
        try:
            return forward()
        except EmbeddingsUnavailableError:
            raise  # not a failure: the model says it has no features, and why
        except Exception as e:  # noqa: BLE001  (any failure of user code means the same to the caller)
            raise ModelError(f"{self.label}: the model failed on a batch of {tuple(x.shape)}: {type(e).__name__}: {e}") from e

    def _checked(self, logits: Tensor, x: Tensor) -> Tensor:
        """``logits`` as float32 if they have one score per class (per pixel) of every image and are finite."""
        k, b = self.run.num_classes, x.shape[0]
        dense = self.run.task.dense
        shape = tuple(logits.shape)
        if (len(shape) != (4 if dense else 2)) or shape[:2] != (b, k):
            want = f"({b}, {k}, H, W)" if dense else f"({b}, {k})"
            raise ModelError(f"{self.label}: the model returned logits of shape {shape}, expected {want} for {k} classes")
        logits = logits.float()
        if not all_finite(logits):
            raise ModelError(f"{self.label}: the model returned NaN or infinite logits")
        return logits

    @property
    def label(self) -> str:
        return f"run {self.run.name}" + (f" @ {self.epoch}" if self.epoch is not None else "")

    def _segment(
        self,
        x: Tensor,
        sizes: list[tuple[int, int]],
        features: bool,
        *,
        probs: bool = True,
        entropy: bool = False,
        confidence: bool = False,
    ) -> list[SegmentationPrediction]:
        result: dict[str, Tensor] = {}
        logits = None
        if features or not self.tta_scales or 1.0 in self.tta_scales:  # the plain pass, unless no scale needs it
            result = self._call(lambda: self.model(x, features=features), x)
            # (B, K, h, w); contiguous: channels-last would make the per-pixel softmax and numpy's argmax crawl
            logits = self._checked(result["out"], x)
            logits = logits if not (probs or entropy) else logits.contiguous()
        if self.tta_scales:  # reuses the plain pass as the scale-1 one; features come from it
            merged = self._call(lambda: merge_scales(self.model, x, self.tta_scales, flip=self.tta_flip, at_one=logits), x)
            logits = self._checked(merged, x).contiguous()
        elif self.tta_flip:
            logits = merge_flipped(logits, self._checked(main_logits(self._call(lambda: self.model(x.flip(-1)), x)), x))
        preds = []
        for j, (lg, hw) in enumerate(zip(logits, sizes)):
            f = result["features"][j].float().cpu().numpy() if features else None  # (C, h, w)
            if not (probs or entropy or confidence):  # labels only: resized only where they are in question
                preds.append(SegmentationPrediction(upsampled_labels(lg, hw).cpu().numpy(), None, f))  # (H, W)
                continue
            if not (probs or entropy):  # labels and top probability, one (H, W) map at a time
                labels, conf = labels_and_confidence(lg, hw)  # (H, W) each
                preds.append(SegmentationPrediction(labels.cpu().numpy(), None, f, confidence=conf.cpu().numpy()))
                continue
            lg = F.interpolate(lg[None], size=hw, mode="bilinear", align_corners=False)[0]  # (K, H, W)
            if not probs:
                preds.append(_labels_only(lg, f, confidence))
                continue
            p = lg.softmax(0).cpu().numpy()  # (K, H, W)
            preds.append(
                SegmentationPrediction(p.argmax(0), p, f, confidence=p.max(0) if confidence else None)
            )  # numpy's argmax over K is ~4x torch's here
        return preds


def all_finite(t: Tensor) -> bool:
    """Whether every value of ``t`` is finite. A sum is one quick pass and is finite when every value is, unless
    huge finite values overflow it: then the element-wise test decides (alone it costs ~20x more on 2048x1024
    logits)."""
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())


def _labels_only(logits: Tensor, features: np.ndarray | None, confidence: bool = False) -> SegmentationPrediction:
    """The label map and the (H, W) entropy of the (K, H, W) logits, as the full prediction computes them, without
    keeping its K probability maps (their (H, W) maximum with ``confidence``)."""
    full = SegmentationPrediction(np.empty(0), logits.softmax(0).cpu().numpy(), features)  # (K, H, W)
    conf = full.probs.max(0) if confidence else None
    return SegmentationPrediction(full.probs.argmax(0), None, features, full.entropy(), conf)
