"""2-D maps of a run's feature space: t-SNE, PCA (and UMAP when ``umap-learn`` is installed).

``compute_embedding(run, epoch="best", split="val", method="tsne")`` extracts the model's
pre-logit features at a saved epoch (one vector per image for classification; for segmentation
up to ``per_class`` pixels of each class, with each point's image and (y, x) in the original
image), reduces them to 2-D, and caches the result in the run directory::

    <run>/embeddings/<key>.npz     coords, labels, preds, image_index, yx, features, meta (JSON)

keyed by content (the snapshot's hash, the dataset, the split's fingerprint), method and every
parameter, never by a path or a time, written atomically and read with ``np.load(allow_pickle=False)``.
A second request is a file read; ``cached_embedding`` only ever reads. ``place_image`` puts a new image into an existing map:
by the exact projection for PCA, by its k nearest neighbours in feature space otherwise
(a weighted mean of their 2-D positions), which needs nothing but the cached features.

t-SNE is openTSNE (Barnes-Hut below 4,000 points, FFT-accelerated above) after a PCA to
``pca_dims``, with exact neighbours on those dimensions and 100 + 200 iterations;
``bench/embeddings.py`` measures it against stock openTSNE and scikit-learn for speed and
neighbourhood quality, which is how these defaults were chosen.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from core.inference.passes import SampleSpec, sample_points
from core.inference.predictor import EmbeddingsUnavailableError, ImageLike, Predictor, to_rgb_array
from core.runs import Run
from core.runs.results import content_hash
from core.utils.io import atomic_write

FORMAT = 2  # 2: keyed by content (snapshot hash, split fingerprint), not by paths and times
CACHE_DIR = "embeddings"
Progress = Callable[[float, str], None]

# Parameters of each reducer, with defaults. n_jobs only changes speed, so it is not in the cache key.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    # bench/embeddings.py: these keep stock openTSNE's neighbourhood quality at 3-5x its speed
    "tsne": {
        "perplexity": 30.0,
        "pca_dims": 50,
        "n_iter": 200,
        "early_exaggeration_iter": 100,
        "neighbors": "auto",
        "gradient": "auto",
        "n_jobs": 2,
    },
    "pca": {},
    "umap": {"n_neighbors": 15, "min_dist": 0.1, "n_jobs": 2},
}
NOT_IN_KEY = ("n_jobs",)


def available_methods() -> list[str]:
    """``["tsne", "pca"]``, plus ``"umap"`` if umap-learn is importable."""
    # find_spec, not import: importing umap compiles numba code, tens of seconds the first time
    return ["tsne", "pca"] + (["umap"] if importlib.util.find_spec("umap") is not None else [])


@dataclass
class Embedding:
    coords: np.ndarray  # (N, 2) float32
    labels: np.ndarray  # (N,) int, true class
    preds: np.ndarray  # (N,) int, predicted class
    image_index: np.ndarray  # (N,) int, index into run.open_dataset(split, data_root)
    yx: np.ndarray | None  # (N, 2) int pixel coordinates in the original image (segmentation), else None
    method: str
    split: str
    epoch: int
    params: dict
    features: np.ndarray | None = field(default=None, repr=False)  # (N, D) float32, for placing new points
    projection: np.ndarray | None = field(default=None, repr=False)  # PCA only: (3, D) = mean, 2 components
    key: str = ""

    def __len__(self) -> int:
        return len(self.coords)


# ------------------------------------------------------------------------------------- cache


def _options(method: str, per_class: int, max_items: int | None, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    if method not in METHOD_DEFAULTS:
        raise ValueError(f"unknown embedding method {method!r}; valid: {', '.join(METHOD_DEFAULTS)}")
    if method not in available_methods():
        raise ValueError(f"method {method!r} needs an optional package (pip install umap-learn)")
    unknown = sorted(set(params) - set(METHOD_DEFAULTS[method]))
    if unknown:
        raise TypeError(f"{method} got unknown parameter(s) {unknown}; valid: {sorted(METHOD_DEFAULTS[method])}")
    return {**METHOD_DEFAULTS[method], **params, "per_class": int(per_class), "max_items": max_items, "seed": int(seed)}


SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _cache_path(run: Run, epoch: int, split: str, method: str, options: dict[str, Any], fingerprint: str) -> Path:
    """The cache file for a map, keyed by content, never by an absolute path or a time (as evaluation results
    are, ``core.runs.results``): the snapshot's hash, the dataset's name and options, the split and its
    ``fingerprint`` (files' names and sizes), the method and its options. A run folder copied to another
    machine, with its dataset at another root, finds its maps.

    ``split`` and ``method`` become part of a file name, so anything but a plain name (a path
    separator, ``..``) is refused.
    """
    for what, value in (("split", split), ("method", method)):
        if not isinstance(value, str) or not SAFE_NAME.match(value) or ".." in value:
            raise ValueError(f"invalid {what} name {value!r}: letters, digits, '-', '_' and '.' only")
    ident = {
        "format": FORMAT,
        "epoch": epoch,
        "snapshot": content_hash(run.weights_path(epoch)),
        "dataset": {"name": run.data["name"], "options": run.data.get("options", {})},
        "split": split,
        "fingerprint": fingerprint,
        "method": method,
        "options": {k: v for k, v in options.items() if k not in NOT_IN_KEY},
    }
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return run.path / CACHE_DIR / f"{epoch:04d}-{split}-{method}-{digest}.npz"


def _save(path: Path, emb: Embedding) -> None:
    meta = {"format": FORMAT, "method": emb.method, "split": emb.split, "epoch": emb.epoch, "params": emb.params}
    arrays = {
        "coords": emb.coords.astype(np.float32),
        "labels": emb.labels.astype(np.int64),
        "preds": emb.preds.astype(np.int64),
        "image_index": emb.image_index.astype(np.int64),
        "yx": (emb.yx if emb.yx is not None else np.zeros((0, 2))).astype(np.int64),
        "features": emb.features.astype(np.float32),
        "projection": (emb.projection if emb.projection is not None else np.zeros((0, 0))).astype(np.float32),
        "meta": np.array(json.dumps(meta)),  # a unicode scalar, readable without pickle
    }

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a path
            np.savez(f, **arrays)

    atomic_write(path, write)


def _load(path: Path) -> Embedding:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        yx, projection = z["yx"], z["projection"]
        return Embedding(
            coords=z["coords"],
            labels=z["labels"],
            preds=z["preds"],
            image_index=z["image_index"],
            yx=yx if len(yx) else None,
            method=meta["method"],
            split=meta["split"],
            epoch=int(meta["epoch"]),
            params=meta["params"],
            features=z["features"],
            projection=projection if projection.size else None,
            key=path.stem,
        )


def cached_embedding(run: Run, **kwargs: Any) -> Embedding | None:
    """The cached map for exactly these arguments (those of ``compute_embedding``), or None. Never computes anything."""
    return compute_embedding(run, cached_only=True, **kwargs)


# --------------------------------------------------------------------------------- features


def _report(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(float(min(max(fraction, 0.0), 1.0)), message)


# --------------------------------------------------------------------------------- reducers


def pca_projection(x: np.ndarray, dims: int = 2) -> np.ndarray:
    """(dims + 1, D): the mean, then the top ``dims`` principal axes (signs fixed for determinism).

    Up to 1,024 dimensions from the eigenvectors of the D x D covariance (exact, and ~20x faster
    than an SVD of the data at 5,000 x 256); above, by a randomized SVD. BLAS runs on one thread:
    on a busy 2-core machine its second thread spin-waits, and the 20,000-point preview takes
    1.5 s instead of 0.1 s.
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    with threadpool_limits(1):
        return _pca_projection(np.asarray(x, dtype=np.float64), dims)


def _pca_projection(x: np.ndarray, dims: int) -> np.ndarray:
    mean = x.mean(0)
    xc = x - mean
    d = x.shape[1]
    if d <= 1024:
        values, vectors = np.linalg.eigh(xc.T @ xc)  # ascending
        axes = vectors[:, ::-1][:, :dims].T
    else:
        from sklearn.utils.extmath import randomized_svd

        _, _, axes = randomized_svd(xc, n_components=min(dims, min(x.shape)), random_state=0)
    axes = axes * np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(1)])[:, None]
    if len(axes) < dims:  # fewer dimensions than asked: pad with zero axes
        axes = np.vstack([axes, np.zeros((dims - len(axes), d))])
    return np.vstack([mean[None], axes]).astype(np.float32)


def project(x: np.ndarray, projection: np.ndarray) -> np.ndarray:
    return ((x - projection[0]) @ projection[1:].T).astype(np.float32)


def tsne(
    x: np.ndarray,
    *,
    perplexity: float = 30.0,
    pca_dims: int = 50,
    n_iter: int = 200,
    early_exaggeration_iter: int = 100,
    neighbors: str = "auto",
    gradient: str = "auto",
    n_jobs: int = 2,
    seed: int = 0,
    progress: Progress | None = None,
) -> np.ndarray:
    """openTSNE (PCA initialisation, automatic learning rate) on the first ``pca_dims`` principal components of ``x``.

    ``neighbors``: "exact", "annoy", "pynndescent" or "auto" (exact up to 30,000 points: on 50
    PCA dimensions scikit-learn's exact search is 2-10x faster than building an Annoy index).
    ``gradient``: "fft" (interpolation), "bh" (Barnes-Hut) or "auto": Barnes-Hut below 4,000
    points, FFT from there (openTSNE switches at 10,000, but at 5,000 points FFT is as fast on two
    free cores and 1.6x faster when the machine is busy and only one is free). 100 exaggerated +
    200 normal iterations replace openTSNE's 250 + 500: with the learning rate set to N / 12 the
    map has settled by then.
    """
    if neighbors == "auto":
        neighbors = "exact" if len(x) <= 30_000 else "annoy"
    if gradient == "auto":
        gradient = "bh" if len(x) < 4_000 else "fft"
    from openTSNE import TSNE

    if len(x) < 5:
        raise ValueError(f"t-SNE needs at least 5 points, got {len(x)}")
    if pca_dims and x.shape[1] > pca_dims:
        x = project(x, pca_projection(x, min(pca_dims, len(x) - 1)))
    total = early_exaggeration_iter + n_iter

    class Report:  # openTSNE counts iterations from 0 again in its second (non-exaggerated) phase
        def __init__(self) -> None:
            self.offset, self.last = 0, 0

        def __call__(self, iteration: int, error: float, embedding) -> bool:
            if iteration < self.last:
                self.offset = early_exaggeration_iter
            self.last = iteration
            _report(progress, (self.offset + iteration) / total, f"t-SNE iteration {self.offset + iteration}/{total}")
            return False  # True would stop the optimisation

    report = Report()
    model = TSNE(
        n_components=2,
        perplexity=min(perplexity, max(1.0, (len(x) - 1) / 3)),
        initialization="pca",
        negative_gradient_method=gradient,
        neighbors=neighbors,
        n_jobs=n_jobs,
        random_state=seed,
        early_exaggeration_iter=early_exaggeration_iter,
        n_iter=n_iter,
        verbose=False,
        callbacks=report if progress is not None else None,
        callbacks_every_iters=25,
    )
    return np.asarray(model.fit(np.ascontiguousarray(x, dtype=np.float32)), dtype=np.float32)


def reduce(
    x: np.ndarray, method: str, params: dict[str, Any], seed: int, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, 2) coordinates and, for PCA, the projection that places new points exactly."""
    if method == "pca":
        projection = pca_projection(x)
        return project(x, projection), projection
    if method == "tsne":
        return tsne(x, seed=seed, progress=progress, **params), None
    if method == "umap":
        import umap

        return umap.UMAP(n_components=2, random_state=seed, **params).fit_transform(x).astype(np.float32), None
    raise ValueError(f"unknown embedding method {method!r}")


# ------------------------------------------------------------------------------------ public


def compute_embedding(
    run: Run,
    *,
    epoch: int | str = "best",
    split: str | None = None,
    method: str = "tsne",
    data_root: str | None = None,
    per_class: int = 300,
    max_items: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    predictor: Predictor | None = None,
    points: dict[str, np.ndarray] | None = None,
    dataset: Any = None,
    cached_only: bool = False,
    **params: Any,
) -> Embedding | None:
    """The 2-D map of ``run``'s features at ``epoch`` on ``split`` (cached in the run directory).

    ``per_class`` caps the points of each class; ``max_items`` caps the images scanned (default:
    all for classification, 60 for segmentation). ``params`` go to the reducer (see
    ``METHOD_DEFAULTS``). ``progress(fraction, message)`` is called as the work advances.
    ``points``: the features to map, as an evaluation pass sampled them (``core.inference.passes``: the
    explorer reads them from the run's evaluation result, so no model runs); otherwise they are sampled now by
    the same pass over the images they come from, with ``predictor`` if the caller holds the run's
    ``Predictor`` at ``epoch``. ``dataset``: the split opened already (``run.open_dataset(split, data_root)``
    otherwise); its fingerprint keys the cache. With ``cached_only``, a map that is not cached is None instead of
    being computed.
    """
    e = run.resolve_epoch(epoch)
    split = split or run.data["val_split"]
    options = _options(method, per_class, max_items, seed, params)
    ds = dataset if dataset is not None else run.open_dataset(split, data_root)
    path = _cache_path(run, e, split, method, options, ds.fingerprint())
    if path.is_file():
        try:
            emb = _load(path)
            _report(progress, 1.0, "loaded from the cache")
            return emb
        except (OSError, ValueError, KeyError):
            pass  # damaged: recompute and overwrite
    if cached_only:
        return None
    if points is None:
        _report(progress, 0.0, "loading the model")
        predictor = predictor if predictor is not None and predictor.epoch == e else Predictor(run, e)
        if predictor.embeddings_unavailable:  # said before any image is read (an ONNX graph without a features output)
            raise EmbeddingsUnavailableError(f"embeddings are unavailable for this run: {predictor.embeddings_unavailable}")
        first_half = lambda f, m: _report(progress, 0.5 * f, f"features: {m}")  # noqa: E731
        points = sample_points(predictor, ds, SampleSpec(per_class, max_items, seed), first_half)
    reducer_params = {k: v for k, v in options.items() if k in METHOD_DEFAULTS[method]}
    _report(progress, 0.5, f"{method} of {len(points['labels'])} points")
    second_half = lambda f, m: _report(progress, 0.5 + 0.5 * f, m)  # noqa: E731
    coords, projection = reduce(points["features"], method, reducer_params, seed, second_half)
    emb = Embedding(
        coords=coords,
        labels=points["labels"],
        preds=points["preds"],
        image_index=points["image_index"],
        yx=points.get("yx"),
        method=method,
        split=split,
        epoch=e,
        params={k: v for k, v in options.items() if k not in NOT_IN_KEY},
        features=points["features"],
        projection=projection,
        key=path.stem,
    )
    _save(path, emb)
    _report(progress, 1.0, "done")
    return emb


def knn_place(features: np.ndarray, coords: np.ndarray, queries: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(M, 2) positions (inverse-distance-weighted mean of the k nearest points' coords) and (M, k) neighbours."""
    k = min(k, len(features))
    d2 = (queries**2).sum(1)[:, None] - 2 * queries @ features.T + (features**2).sum(1)[None]  # (M, N)
    idx = np.argpartition(d2, k - 1, axis=1)[:, :k]
    # exact distances of the candidates (the expansion above loses the small ones to rounding)
    dist = np.linalg.norm(queries[:, None, :] - features[idx], axis=2)  # (M, k)
    order = dist.argsort(1)
    idx, dist = np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)  # nearest first
    w = 1.0 / (dist + 1e-9 * (dist.mean(1, keepdims=True) + 1e-12))
    xy = (coords[idx] * w[..., None]).sum(1) / w.sum(1, keepdims=True)
    return xy.astype(np.float32), idx


def place_image(
    run: Run,
    embedding: Embedding,
    image: ImageLike,
    *,
    k: int = 8,
    max_points: int = 200,
    seed: int = 0,
    predictor: Predictor | None = None,
) -> dict[str, Any]:
    """Where ``image`` falls in ``embedding``.

    Classification: ``{"xy": (2,), "neighbors": [k nearest map points, nearest first], "pred": int}``.
    Segmentation: up to ``max_points`` of its pixels, spread over the predicted classes:
    ``{"xy": (M, 2), "yx": (M, 2) original-image pixels, "preds": (M,), "neighbors": the k map points
    most often among their nearest neighbours}``. PCA maps place points exactly; the others by their
    k nearest neighbours in feature space. ``predictor``: the run's ``Predictor`` at the map's epoch,
    if the caller holds one.
    """
    if embedding.features is None or len(embedding.features) == 0:
        raise ValueError("this embedding holds no features to place new points against")
    if predictor is None or predictor.epoch != embedding.epoch:
        predictor = Predictor(run, embedding.epoch)
    image = to_rgb_array(image)
    if not run.task.dense:
        pred = predictor.predict([image])[0]
        queries = pred.features[None].astype(np.float32)  # (1, D)
        xy, idx = knn_place(embedding.features, embedding.coords, queries, k)
        if embedding.projection is not None:
            xy = project(queries, embedding.projection)
        return {"xy": xy[0], "neighbors": [int(i) for i in idx[0]], "pred": int(pred.probs.argmax())}
    pred = predictor.predict([image], features=True)[0]  # labels (H, W) and the feature map (C, h, w), one pass
    labels, feats = pred.labels, torch.from_numpy(pred.features)
    (height, width), (fh, fw) = labels.shape, feats.shape[1:]
    rng = np.random.default_rng(seed)
    present = np.unique(labels)
    per = max(1, max_points // len(present))
    yx = []
    for c in present:
        ys, xs = np.nonzero(labels == c)
        pick = rng.choice(len(ys), size=min(per, len(ys)), replace=False)
        yx.append(np.stack([ys[pick], xs[pick]], 1))
    yx = np.concatenate(yx)
    queries = feats[:, yx[:, 0] * fh // height, yx[:, 1] * fw // width].T.numpy().astype(np.float32)  # (M, C)
    xy, idx = knn_place(embedding.features, embedding.coords, queries, k)
    if embedding.projection is not None:
        xy = project(queries, embedding.projection)
    counts = np.bincount(idx.ravel(), minlength=len(embedding.coords))
    neighbors = [int(i) for i in np.argsort(-counts, kind="stable")[:k] if counts[i] > 0]
    return {"xy": xy, "yx": yx, "preds": labels[yx[:, 0], yx[:, 1]], "neighbors": neighbors}
