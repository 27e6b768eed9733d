"""Embedding maps for the explorer: read from memory or the run's disk cache, computed on demand with
the cached Predictor, and new images placed on them."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from core.explorer.cache import EMBEDDINGS, cached
from core.explorer.predictions import Progress, get_predictor
from core.explorer.workspace import DatasetRef
from core.inference import EmbeddingsUnavailableError
from core.runs import Run


def embedding_methods() -> list[str]:
    """Methods ``core.inference.embeddings`` offers here (empty if the module is unavailable)."""
    try:
        from core.inference.embeddings import available_methods
    except ImportError:
        return []
    return available_methods()


def embedding(
    run: Run,
    epoch: int,
    split: str,
    method: str,
    *,
    data_root: str | None = None,
    progress: Progress | None = None,
    cached_only: bool = False,
) -> Any:
    """The run's 2-D map at ``epoch`` on ``split``, by the one road of cached results: memory, then the run's
    disk cache (maps in ``embeddings/``, feature samples in the evaluation result of ``evaluation/``), then
    computed (the features by the shared evaluation pass, with the explorer's cached model). With
    ``cached_only`` nothing is computed and ``None`` is returned on a miss."""
    from core.inference.embeddings import cached_embedding

    ref = DatasetRef.of_run(run, split, data_root)  # the opened split's fingerprint keys the map (by content)

    def disk() -> Any:
        return cached_embedding(run, epoch=epoch, split=split, method=method, data_root=data_root, dataset=ref.open())

    key = ("embedding", str(run.path), int(epoch), split, method, data_root)
    if cached_only:
        return cached(EMBEDDINGS, key, disk, lambda: None)
    return cached(EMBEDDINGS, key, disk, lambda: _compute(run, epoch, ref, method, progress))


def _compute(run: Run, epoch: int, ref: DatasetRef, method: str, progress: Progress | None) -> Any:
    """The map from the evaluation result's feature sample when one is stored (no model runs), else sampled now."""
    from core.explorer.results import target_of
    from core.inference.embeddings import compute_embedding

    store = target_of((run, epoch), ref).store()
    points = store.sample() if store.meta() else None
    predictor = None if points else get_predictor([(run, epoch)])
    return compute_embedding(
        run,
        epoch=epoch,
        split=ref.split,
        method=method,
        data_root=ref.root,
        progress=progress,
        predictor=predictor,
        points=points or None,
        dataset=ref.open(),
    )


def embeddings_unavailable(run: Run, epoch: int) -> str | None:
    """Why ``run``'s model at ``epoch`` serves no features (an ONNX graph imported without a features output), None
    if it does: the model's own capability, read from the explorer's cached Predictor."""
    return get_predictor([(run, epoch)]).embeddings_unavailable


def map_steps(
    run: Run, epoch: int, split: str, method: str, *, data_root: str | None = None, progress: Progress | None = None
) -> Iterator[tuple[Any, bool]]:
    """What to show while a map is built, as ``(embedding, is_preview)`` steps: a cached map at once;
    otherwise, for a slow method, a quick PCA preview first (about a tenth of the time), then the map. A run whose
    model serves no features raises ``EmbeddingsUnavailableError`` with the reason before any work."""
    emb = embedding(run, epoch, split, method, data_root=data_root, cached_only=True)
    if emb is None:
        reason = embeddings_unavailable(run, epoch)
        if reason:  # before any work: the model itself says it has no features
            raise EmbeddingsUnavailableError(f"embeddings are unavailable for this run: {reason}")
    if emb is None and method != "pca":
        sub = None if progress is None else (lambda f, m: progress(0.3 * f, f"PCA preview: {m}"))
        yield embedding(run, epoch, split, "pca", data_root=data_root, progress=sub), True
    if emb is None:
        emb = embedding(run, epoch, split, method, data_root=data_root, progress=progress)
    yield emb, False


def place_on_embedding(run: Run, emb: Any, image: np.ndarray) -> dict[str, Any]:
    """Where a new image falls on a map, and its nearest map points (``core.inference.embeddings.place_image``)."""
    from core.inference.embeddings import place_image

    return place_image(run, emb, image, predictor=get_predictor([(run, emb.epoch)]))


def point_view(emb: Any, run: Run, ref: Any, point: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """A point of a built map: its image as shown (the pixel marked, for segmentation) and what it is."""
    from core import visualize as V
    from core.explorer.compare import display

    if point is None or not 0 <= int(point) < len(emb.coords):
        raise IndexError(f"point must be between 0 and {len(emb.coords) - 1}")
    j = int(point)
    i = int(emb.image_index[j])
    image, _ = ref.load(i)
    info: dict[str, Any] = {
        "point": j,
        "image": i,
        "item_id": ref.open().item_id(i),
        "true": run.classes[int(emb.labels[j])],
        "predicted": run.classes[int(emb.preds[j])],
        "pixel": None,
    }
    if emb.yx is not None:
        y, x = (int(v) for v in emb.yx[j])
        image = V.mark_pixel(image, (y, x))
        info["pixel"] = [y, x]
    return display(image), info


def placement_split(ws: Any, name: str) -> tuple[str, bool]:
    """The split a new image is placed among for run ``name``: its training split, or where those images are not
    on this machine, the first split that is (its shipped sample). Also whether it is the training split."""
    train = ws.run(name).data.get("train_split", "train")
    here = ws.splits(ws.dataset(name))
    return (train, True) if train in here else (here[0], False)
