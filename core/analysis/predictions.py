"""Models and their predictions: built lazily, cached per (model, epoch, dataset split, image) or per
uploaded image's content; uploads decoded safely; embedding maps read, computed and placed."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.analysis.history import closest_epoch
from core.analysis.cache import EMBEDDINGS, MODELS, PREDICTIONS, UPLOADS
from core.analysis.workspace import DatasetRef
from core.data.images import too_large_message
from core.inference import ClassificationPrediction, Predictor, SegmentationPrediction, to_rgb_array
from core.runs import Run, RunError
from core.visualize import fit_within

Progress = Callable[[float, str], None]
MAX_UPLOAD_SIDE = 1024  # uploads are downscaled to this longest side before inference
MAX_UPLOAD_PIXELS = 64_000_000  # larger files are refused before decoding (decompression bombs)
Member = tuple[Run, int]  # a run at a resolved epoch


# --- models and dataset predictions --------------------------------------------------------------------------
def nearest_epoch(run: Run, epoch: int | str | float | None) -> int:
    """A saved epoch of ``run``: "best", "last", or the saved epoch closest to a number."""
    if epoch is None or epoch in ("best", "last"):
        return run.resolve_epoch(epoch or "best")
    saved = run.epochs or ([run.last_epoch] if run.last_epoch else [])
    if not saved:
        raise RunError(f"run {run.name} has no saved weights yet")
    return closest_epoch(saved, round(float(epoch)))


def _member_key(members: Sequence[Member]) -> tuple:
    return tuple((str(r.path), int(e)) for r, e in members)


def get_predictor(members: Sequence[Member]):
    """A model for one run at an epoch (``Predictor``) or several (``core.ensemble.Ensemble``), cached."""
    members = [(r, int(e)) for r, e in members]
    key = ("model",) + _member_key(members)
    if len(members) == 1:
        run, epoch = members[0]
        return MODELS.get_or_create(key, lambda: Predictor(run, epoch))
    from core.ensemble import Ensemble  # built by the ensemble module; imported only when used

    return MODELS.get_or_create(key, lambda: Ensemble(list(members)))


def _compact(pred: SegmentationPrediction | ClassificationPrediction, num_classes: int) -> Any:
    """What is kept of a prediction over a dataset: the label map (small ints) or the class scores."""
    if isinstance(pred, SegmentationPrediction):
        dtype = np.uint8 if num_classes <= 255 else np.int16
        return pred.labels.astype(dtype)
    return pred


def predict_items(members: Sequence[Member], ref: DatasetRef, indices: Sequence[int], *, progress: Progress | None = None,
                  batch_size: int = 8) -> list[Any]:  # fmt: skip
    """Cached predictions of ``members`` (one run, or an ensemble) on items of a dataset split.

    Segmentation: an (H, W) label map per item; classification: a ``ClassificationPrediction``.
    Only items missing from the cache are run, in batches.
    """
    mkey = _member_key(members)
    num_classes = members[0][0].num_classes
    out: dict[int, Any] = {}
    missing = []
    for i in indices:
        hit = PREDICTIONS.get((mkey, ref, int(i)))
        if hit is None:
            missing.append(int(i))
        else:
            out[int(i)] = hit
    if missing:
        model = get_predictor(members)
        for start in range(0, len(missing), batch_size):
            chunk = missing[start : start + batch_size]
            images = [ref.load(i)[0] for i in chunk]
            try:
                preds = model.predict(images)
            except ValueError:  # images of different sizes for a native-size run: one at a time
                preds = [model.predict([im])[0] for im in images]
            for i, p in zip(chunk, preds):
                out[i] = _compact(p, num_classes)
                PREDICTIONS.put((mkey, ref, i), out[i])
            if progress is not None:
                progress(min(start + batch_size, len(missing)) / len(missing), f"predicting {len(missing)} images")
    return [out[int(i)] for i in indices]


# --- uploaded images -------------------------------------------------------------------------------------
def read_image(source: str | Path | bytes, *, max_side: int = MAX_UPLOAD_SIDE) -> np.ndarray:
    """An uploaded file as (H, W, 3) uint8 RGB: EXIF orientation applied, downscaled to ``max_side``.

    Anything that is not a readable image is a ``ValueError`` with a message for the user.
    """
    try:
        fh = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
    except OSError as e:
        raise ValueError(f"cannot read the uploaded file ({e.strerror})") from e
    with fh:
        try:
            with Image.open(fh) as im:
                if im.width * im.height > MAX_UPLOAD_PIXELS:
                    raise ValueError(too_large_message(size=(im.width, im.height), limit_pixels=MAX_UPLOAD_PIXELS))
                im.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale when much larger
                array = to_rgb_array(im)
        except Image.DecompressionBombError as e:
            raise ValueError(too_large_message(e, limit_pixels=MAX_UPLOAD_PIXELS)) from e
        except UnidentifiedImageError as e:
            raise ValueError("this file is not an image that can be read (supported: JPEG, PNG, WebP, BMP, GIF, TIFF)") from e
        except (OSError, SyntaxError) as e:
            raise ValueError(f"the image file is damaged or truncated ({e})") from e
    return fit_within(array, max_side)


def predict_image(members: Sequence[Member], image: np.ndarray) -> SegmentationPrediction | ClassificationPrediction:
    """Prediction of a run (or ensemble) on one image, cached by the image's content."""
    digest = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest() + str(image.shape)
    key = (_member_key(members), digest)
    return UPLOADS.get_or_create(key, lambda: get_predictor(members).predict([image])[0])


# --- embedding maps (core.embeddings, kept in memory once read or computed) ----------------------------------
def embedding_methods() -> list[str]:
    """Methods ``core.embeddings`` offers here (empty if the module is unavailable)."""
    try:
        from core.embeddings import available_methods
    except ImportError:
        return []
    return available_methods()


def embedding(run: Run, epoch: int, split: str, method: str, *, data_root: str | None = None,
              progress: Progress | None = None, cached_only: bool = False) -> Any:  # fmt: skip
    """The run's 2-D map at ``epoch`` on ``split``: from memory, then the run's disk cache, else computed.

    With ``cached_only`` nothing is computed and ``None`` is returned on a miss.
    """
    from core.embeddings import cached_embedding, compute_embedding

    key = ("embedding", str(run.path), int(epoch), split, method)
    hit = EMBEDDINGS.get(key)
    if hit is not None:
        return hit
    emb = cached_embedding(run, epoch=epoch, split=split, method=method, data_root=data_root)
    if emb is None and not cached_only:
        emb = compute_embedding(run, epoch=epoch, split=split, method=method, data_root=data_root, progress=progress)
    if emb is not None:
        EMBEDDINGS.put(key, emb)
    return emb


def place_on_embedding(run: Run, emb: Any, image: np.ndarray, *, data_root: str | None = None) -> dict[str, Any]:
    """Where a new image falls on a map, and its nearest map points (``core.embeddings.place_image``)."""
    from core.embeddings import place_image

    return place_image(run, emb, image, data_root=data_root)
