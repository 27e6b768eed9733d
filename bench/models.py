"""Parameters, CPU inference latency and CPU training throughput of every segmentation model.

Run from the repo root: ``python bench/models.py [--models fcn8s,unet] [--sizes cpu,published]
[--threads 2] [--repeats 5] [--train-steps 3] [--warmup 1] [--params-only]``.

Latency: eval mode under ``torch.inference_mode``, batch 1 at 360x480, median (and minimum)
of ``--repeats`` runs after ``--warmup`` runs. Training: images/s of the median (and fastest)
SGD step (cross-entropy, plus 0.4 x aux) on random data at batch 8, 176x240, after ``--warmup``
steps; published-size models take at most 1 timed step (``--published-train-steps``). Ends
with the published parameter counts checked against the literature (within 2%).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from core.models import count_parameters, get_model, list_models  # noqa: E402
from core.tasks import SegmentationTask  # noqa: E402

# The CPU-sized variant of each model (the published size is each builder's defaults).
CPU_SIZES: dict[str, dict] = {
    "cgnet": {},
    "dabnet": {},
    "deeplabv3": {"backbone": "mobilenet_v3_large", "width_mult": 0.5},
    "fcn16s": {"width_mult": 0.25},
    "fcn32s": {"width_mult": 0.25},
    "fcn8s": {"width_mult": 0.25},
    "fcn_baseline": {"base_width": 16},
    "lraspp": {"width_mult": 0.5},
    "pspnet": {"backbone": "resnet18", "width_mult": 0.5},
    "resnet_fcn": {"backbone": "resnet18", "width_mult": 0.5},
    "resunet": {},
    "simple_segnet": {"width_mult": 0.5},
    "unet": {"base_width": 16},
    "unet_simple": {"base_width": 16},
}
# (label, model, num_classes, config, published parameter count)
REFERENCES = [
    ("FCN-8s (Long et al.)", "fcn8s", 21, {}, 134e6),
    ("U-Net with BatchNorm", "unet", 2, {}, 31.0e6),
    ("deeplabv3_resnet50 (torchvision, aux)", "deeplabv3", 21, {}, 42.0e6),
    ("deeplabv3_resnet50 (torchvision, no aux)", "deeplabv3", 21, {"aux_head": False}, 39.6e6),
    ("lraspp_mobilenet_v3_large (torchvision)", "lraspp", 21, {}, 3.2e6),
    ("CGNet-M3N21 (Wu et al., Cityscapes)", "cgnet", 19, {}, 0.5e6),
    ("DABNet (Li et al., Cityscapes)", "dabnet", 19, {}, 0.76e6),
]
LATENCY_HW, TRAIN_HW, TRAIN_BATCH = (360, 480), (176, 240), 8


def latency_ms(model: torch.nn.Module, repeats: int, warmup: int) -> tuple[float, float]:
    """Median and minimum over ``repeats`` runs, in milliseconds."""
    model.eval()
    x = torch.randn(1, 3, *LATENCY_HW)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            t0 = time.perf_counter()
            model(x)
            if i >= warmup:  # warm-up runs pay for oneDNN kernel selection and allocations
                times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times), 1000 * min(times)


def train_images_per_s(model: torch.nn.Module, steps: int, warmup: int, num_classes: int) -> tuple[float, float]:
    """Images/s of the median and of the fastest step."""
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    x = torch.randn(TRAIN_BATCH, 3, *TRAIN_HW)
    y = torch.randint(num_classes, (TRAIN_BATCH, *TRAIN_HW))
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        out = model(x)
        loss = F.cross_entropy(out["out"], y) + (0.4 * F.cross_entropy(out["aux"], y) if "aux" in out else 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return TRAIN_BATCH / statistics.median(times), TRAIN_BATCH / min(times)


def reference_check() -> bool:
    print("\n## Reference check (published sizes)\n")
    print("| reference | model | params (M) | published (M) | diff | within 2% |")
    print("|---|---|---:|---:|---:|:---:|")
    ok = True
    for label, name, k, cfg, ref in REFERENCES:
        with torch.device("meta"):  # shapes only
            n = count_parameters(get_model(name, num_classes=k, **cfg))
        diff = 100 * (n - ref) / ref
        ok &= abs(diff) <= 2
        desc = f"{name}(num_classes={k}{''.join(f', {a}={v}' for a, v in cfg.items())})"
        verdict = "yes" if abs(diff) <= 2 else "NO"
        print(f"| {label} | `{desc}` | {n / 1e6:.{2 if n >= 1e6 else 3}f} | {ref / 1e6:g} | {diff:+.2f}% | {verdict} |")
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="comma-separated names (default: every segmentation model)")
    ap.add_argument("--sizes", default="cpu,published", help="comma-separated subset of cpu,published")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5, help="timed latency runs (after one warm-up)")
    ap.add_argument("--train-steps", type=int, default=3, help="timed training steps (after one warm-up)")
    ap.add_argument("--published-train-steps", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs/steps before timing")
    ap.add_argument("--num-classes", type=int, default=21)
    ap.add_argument("--params-only", action="store_true", help="skip the timings")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    names = args.models.split(",") if args.models else list_models(task=SegmentationTask)
    sizes = args.sizes.split(",")
    if unknown := set(sizes) - {"cpu", "published"}:
        ap.error(f"unknown size(s) {sorted(unknown)}; valid: cpu, published")

    print(f"torch {torch.__version__}, {args.threads} threads, {args.num_classes} classes\n")
    print("Timings: median (best). On a shared machine other jobs only ever add time, so the best run")
    print("is the closer estimate of the model's own cost; the median is what a user sees.\n")
    print(
        f"| model | size | config | params (M) | latency {LATENCY_HW[0]}x{LATENCY_HW[1]} b1 (ms) "
        f"| train {TRAIN_HW[0]}x{TRAIN_HW[1]} b{TRAIN_BATCH} (img/s) |"
    )
    print("|---|---|---|---:|---:|---:|")
    for name in names:
        for size in sizes:
            if size == "cpu" and name not in CPU_SIZES:
                print(f"| {name} | cpu | (no entry in CPU_SIZES) | | | |", flush=True)
                continue
            cfg = CPU_SIZES[name] if size == "cpu" else {}
            model = get_model(name, num_classes=args.num_classes, **cfg)
            params = count_parameters(model) / 1e6
            lat = tput = "-"
            if not args.params_only:
                lat = "{:.0f} ({:.0f})".format(*latency_ms(model, args.repeats, args.warmup))
                steps = args.train_steps if size == "cpu" else min(args.train_steps, args.published_train_steps)
                tput = "{:.2f} ({:.2f})".format(*train_images_per_s(model, steps, args.warmup, args.num_classes))
            desc = ", ".join(f"{k}={v}" for k, v in cfg.items()) or "defaults"
            print(f"| {name} | {size} | {desc} | {params:.2f} | {lat} | {tput} |", flush=True)
            del model
    if not reference_check():
        sys.exit(1)


if __name__ == "__main__":
    main()
