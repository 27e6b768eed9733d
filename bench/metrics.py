"""Confusion-matrix update time for a batch of 16 at 360x480, against torchmetrics and scikit-learn.

Run from the repo root: ``python bench/metrics.py [--threads 2] [--repeats 20]``.
Prints the median time of each and the ratios (>1 means the project's update is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.evaluation.metrics import ConfusionMatrix  # noqa: E402

K, IGNORE, SHAPE = 11, 11, (16, 360, 480)


def timed(fn, repeats: int, warmup: int = 2) -> float:
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        fn()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, K + 1, SHAPE, generator=g)  # includes void (11)
    pred = torch.where(torch.rand(SHAPE, generator=g) < 0.7, target.clamp(max=K - 1), torch.randint(0, K, SHAPE, generator=g))
    ours = ConfusionMatrix(K, IGNORE)
    t_ours = timed(lambda: ours.update(pred, target), args.repeats)

    from torchmetrics.classification import MulticlassJaccardIndex

    tm = MulticlassJaccardIndex(num_classes=K, average="none", ignore_index=IGNORE)
    t_tm = timed(lambda: tm.update(pred, target), args.repeats)

    from sklearn.metrics import confusion_matrix

    t_np, p_np = target.numpy().ravel(), pred.numpy().ravel()

    def sk():
        keep = t_np != IGNORE
        confusion_matrix(t_np[keep], p_np[keep], labels=list(range(K)))

    t_sk = timed(sk, max(3, args.repeats // 4))
    # the three agree (checked here, and in tests/test_metrics.py on random data)
    ref = ConfusionMatrix(K, IGNORE)
    ref.update(pred, target)
    keep = t_np != IGNORE
    assert np.array_equal(ref.mat.numpy(), confusion_matrix(t_np[keep], p_np[keep], labels=list(range(K))))

    print(f"confusion-matrix update, batch {SHAPE[0]} at {SHAPE[1]}x{SHAPE[2]}, {K} classes, {args.threads} threads")
    print("| implementation | median ms | ratio (their time / ours) |")
    print("| --- | --- | --- |")
    print(f"| core.evaluation.metrics.ConfusionMatrix | {1000 * t_ours:.1f} | 1.00 |")
    print(f"| torchmetrics MulticlassJaccardIndex | {1000 * t_tm:.1f} | {t_tm / t_ours:.2f} |")
    print(f"| sklearn confusion_matrix | {1000 * t_sk:.1f} | {t_sk / t_ours:.2f} |")


if __name__ == "__main__":
    main()
