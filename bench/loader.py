"""Is the data loader the bottleneck? Training step time with the real CamVid loader vs tensors in memory.

    python bench/loader.py [--arch resunet] [--workers 0 1 2] [--steps 30] [--threads 2]

The real loader is the one ``bench/camvid.py`` trains with: CamVid decoded and resized once into
memory as uint8 (core.data.cache.InMemory), then the recipe's joint v2 augmentation per item in
DataLoader workers. The reference feeds the same model pre-made batches that already sit in
memory. The ratio (in-memory step time / real step time) is the share of time spent computing;
the target is >= 0.9, i.e. the loader costs under 10%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from bench.camvid import DEFAULT_ROOT, RECIPES  # noqa: E402
from core.data import get_dataset  # noqa: E402
from core.data.cache import InMemory  # noqa: E402
from core.data.transforms import AugmentConfig, train_transforms  # noqa: E402
from core.models import get_model  # noqa: E402


def step_times(model, batches, steps: int) -> list[float]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times, it = [], iter(batches)
    for _ in range(steps):
        t0 = time.perf_counter()
        x, y = next(it)  # the wait for the loader is part of the step
        x = x.contiguous(memory_format=torch.channels_last)  # as the engine trains
        loss = F.cross_entropy(model(x)["out"], y, ignore_index=11)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resunet", choices=sorted(RECIPES))
    p.add_argument("--data-root", default=str(DEFAULT_ROOT))
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    r = RECIPES[args.arch]
    t0 = time.perf_counter()
    base = get_dataset("camvid", "train", args.data_root)
    ds = InMemory(base, r["size"], progress=False)
    cache_s = time.perf_counter() - t0
    aug = AugmentConfig(hflip=r["hflip"], scale=r["scale"], crop=r["crop"], color_jitter=r.get("color_jitter", 0.0))
    ds.transform = train_transforms(size=r["size"], augment=aug, mean=ds.mean, std=ds.std, ignore_index=ds.ignore_index)
    t0 = time.perf_counter()
    for i in range(50):
        ds[i]
    per_item_ms = (time.perf_counter() - t0) / 50 * 1000

    model = get_model(r["arch"], num_classes=11, **r["model_args"]).train().to(memory_format=torch.channels_last)
    n = args.warmup + args.steps
    g = torch.Generator().manual_seed(0)
    fixed = [next(iter(DataLoader(ds, batch_size=r["batch_size"], shuffle=True, generator=g))) for _ in range(4)]
    in_memory = [fixed[i % 4] for i in range(n)]
    ref = statistics.median(step_times(model, in_memory, n)[args.warmup :])
    print(
        f"{args.arch}: batch {r['batch_size']}, crop {r['crop']}, {args.threads} threads; caching the 367 train images "
        f"took {cache_s:.1f} s; augmenting one item takes {per_item_ms:.1f} ms"
    )
    print("| loader | median step s | ratio (in-memory / loader) |")
    print("| --- | --- | --- |")
    print(f"| tensors in memory | {ref:.3f} | 1.00 |")
    for w in args.workers:
        loader = DataLoader(
            ds, batch_size=r["batch_size"], shuffle=True, drop_last=True, num_workers=w, persistent_workers=w > 0, generator=g
        )

        def cycle():
            while True:
                yield from loader

        t = statistics.median(step_times(model, cycle(), n)[args.warmup :])
        print(f"| InMemory + v2 augmentation, {w} workers | {t:.3f} | {ref / t:.2f} |")


if __name__ == "__main__":
    main()
