"""t-SNE maps: the project's path (core.inference.embeddings.tsne) against stock openTSNE and scikit-learn.

Run from the repo root: ``python bench/embeddings.py [--sizes 5000 20000] [--dims 256]
[--classes 15] [--threads 2] [--skip-sklearn-above N]``.

Data: clustered points in ``--dims`` dimensions (each class a Gaussian around its own centre,
all stretched along one shared 12-dimensional subspace, the centres close enough that classes
overlap: about 0.9 10-NN class agreement in the input space), standing in for a CNN's
pre-logit features. For each size it times

* the PCA preview (``core.inference.embeddings.pca_projection`` + ``project``), shown while t-SNE runs;
* the project's t-SNE (``core.inference.embeddings.tsne`` with its defaults);
* stock openTSNE (``openTSNE.TSNE(n_jobs=threads).fit``, its defaults otherwise);
* scikit-learn's ``TSNE(init="pca", n_jobs=threads)``, Barnes-Hut, its defaults otherwise,

and scores each map the same way:

* ``knn_class``: leave-one-out 10-NN class agreement in the 2-D map (how well classes separate);
* ``nn_keep@10``: for 2,000 random points, the share of their 10 nearest neighbours in the input
  space that are also among their 10 nearest in the map (local structure kept);
* ``trust@10``: scikit-learn's trustworthiness on a 2,000-point subsample.

The machine is shared: the load average is printed before and after; compare ratios from one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from sklearn.manifold import trustworthiness  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402

from core.inference.embeddings import METHOD_DEFAULTS, pca_projection, project, tsne  # noqa: E402


def clustered_data(n: int, dims: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes whose centres sit a little apart, all stretched along one shared 12-d subspace
    by a per-class amount, plus isotropic noise: about 0.9 10-NN class agreement in the input space."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.2, (classes, dims)) * 0.75
    labels = rng.integers(0, classes, n)
    basis = rng.normal(0, 1, (12, dims)) / np.sqrt(12)
    z = rng.normal(0, 1, (n, 12)) * rng.uniform(1.5, 3.0, (classes, 12))[labels]
    x = centres[labels] + z @ basis + rng.normal(0, 1.0, (n, dims))
    return x.astype(np.float32), labels


def knn_class_agreement(coords: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    idx = NearestNeighbors(n_neighbors=k + 1).fit(coords).kneighbors(coords, return_distance=False)[:, 1:]
    votes = labels[idx]
    majority = np.array([np.bincount(v).argmax() for v in votes])
    return float((majority == labels).mean())


def neighbour_keep(x: np.ndarray, coords: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    hi = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x).kneighbors(x[queries], return_distance=False)[:, 1:]
    lo = NearestNeighbors(n_neighbors=k + 1).fit(coords).kneighbors(coords[queries], return_distance=False)[:, 1:]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(hi, lo)]))


def scores(x: np.ndarray, labels: np.ndarray, coords: np.ndarray, sample: np.ndarray) -> dict[str, float]:
    return {
        "knn_class": knn_class_agreement(coords, labels),
        "nn_keep@10": neighbour_keep(x, coords, sample),
        "trust@10": float(trustworthiness(x[sample], coords[sample], n_neighbors=10)),
    }


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    p.add_argument("--dims", type=int, default=256)
    p.add_argument("--classes", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-sklearn-above", type=int, default=None, help="leave scikit-learn out above this many points")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from openTSNE import TSNE as OpenTSNE
    from sklearn.manifold import TSNE as SkTSNE

    ours = {**METHOD_DEFAULTS["tsne"], "n_jobs": args.threads}
    # one small run of each first, so imports and first-call set-up are not timed
    warm, _ = clustered_data(600, args.dims, args.classes, seed=1)
    project(warm, pca_projection(warm))
    tsne(warm, **{**ours, "n_iter": 10, "early_exaggeration_iter": 10})
    OpenTSNE(n_jobs=args.threads, n_iter=10, early_exaggeration_iter=10, random_state=0).fit(warm)
    SkTSNE(init="pca", n_jobs=args.threads, max_iter=250, random_state=0).fit_transform(warm)
    print(f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()}); threads: {args.threads}")
    print(f"project t-SNE settings: {ours}")
    for n in args.sizes:
        x, labels = clustered_data(n, args.dims, args.classes)
        sample = np.random.default_rng(1).choice(n, min(2000, n), replace=False)
        print(
            f"\n== {n} points x {args.dims} dims, {args.classes} classes; input-space 10-NN class agreement "
            f"{knn_class_agreement(x[sample], labels[sample]):.3f} (2,000-point sample)"
        )
        _, t_pca = timed(lambda: project(x, pca_projection(x)))
        rows = [("PCA preview", t_pca, scores(x, labels, project(x, pca_projection(x)), sample))]
        coords, t = timed(lambda: tsne(x, **ours))
        rows.append(("project t-SNE", t, scores(x, labels, coords, sample)))
        coords, t = timed(lambda: np.asarray(OpenTSNE(n_jobs=args.threads, random_state=0).fit(x)))
        rows.append(("stock openTSNE", t, scores(x, labels, coords, sample)))
        if args.skip_sklearn_above is None or n <= args.skip_sklearn_above:
            coords, t = timed(lambda: SkTSNE(init="pca", n_jobs=args.threads, random_state=0).fit_transform(x))
            rows.append(("scikit-learn TSNE", t, scores(x, labels, coords, sample)))
        base = rows[1][1]
        print(f"{'method':<20}{'seconds':>9}{'x project':>11}{'knn_class':>11}{'nn_keep@10':>12}{'trust@10':>10}")
        for name, t, s in rows:
            print(f"{name:<20}{t:>9.2f}{t / base:>11.2f}{s['knn_class']:>11.3f}{s['nn_keep@10']:>12.3f}{s['trust@10']:>10.3f}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
