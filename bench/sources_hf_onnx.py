"""What the onnx and hf sources cost at serving time, on the CPU.

Run from the repo root: ``python bench/sources_hf_onnx.py [--threads 2] [--repeats 10] [--warmup 2]``
(about a minute on an idle 2-core machine; needs ``onnx``, ``onnxruntime`` and ``transformers``).

1. ONNX Runtime against torch eager on the same model: torchvision's LR-ASPP (MobileNetV3-Large, 11 classes)
   exported with ``torch.onnx.export`` (TorchScript exporter, dynamic H x W). Batch 1 at 360x480, median (and
   minimum) latency of the torch module under ``inference_mode`` and of an onnxruntime session opened as the
   onnx source opens it (CPU provider, ``--threads`` intra-op threads), their ratio, and the largest logit
   difference between the two.
2. The Predictor's overhead on an hf model: SegFormer-B0 (transformers' default SegformerConfig, 3.7 M
   parameters) logged into a temporary run. The Predictor's per-image latency (a uint8 360x480 image
   normalised, forward, logits upsampled, softmax and argmax, as numpy) against the raw transformers model's
   forward + bilinear upsampling + softmax + argmax on the already normalised tensor.

Weights are random (latency does not depend on them); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from core.models import arch_arguments, build_arch  # noqa: E402

HW = (360, 480)
K = 11


def timed(fn: Callable[[], object], repeats: int, warmup: int) -> tuple[float, float]:
    """Median and minimum of ``repeats`` calls after ``warmup`` ones, in milliseconds."""
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        fn()
        if i >= warmup:  # warm-up calls pay for kernel selection and allocations
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times), 1000 * min(times)


def onnx_against_torch(folder: Path, repeats: int, warmup: int) -> None:
    from core.models.sources.onnx import OnnxGraph

    torch.manual_seed(0)
    arch = "tv:lraspp_mobilenet_v3_large"
    model = build_arch(arch, arch_arguments(arch, {}, num_classes=K)).net.eval()

    class Logits(torch.nn.Module):  # torchvision's model returns a dict; a graph returns tensors
        def __init__(self) -> None:
            super().__init__()
            self.model = model  # a submodule: its weights become the graph's initialisers

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.model(x)["out"]

    path = folder / "lraspp.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            Logits().eval(),
            (torch.randn(1, 3, *HW),),
            str(path),
            dynamo=False,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}},
        )
    graph = OnnxGraph(path)  # the onnx source's session: CPU (or CUDA), torch's thread count
    x = torch.randn(1, 3, *HW)
    array = x.numpy()
    with torch.inference_mode():
        eager = timed(lambda: model(x), repeats, warmup)
        diff = float((model(x)["out"] - torch.from_numpy(graph.run(["logits"], {"image": array})[0])).abs().max())
    ort = timed(lambda: graph.run(["logits"], {"image": array}), repeats, warmup)
    print(f"LR-ASPP (MobileNetV3-Large), batch 1 at {HW[0]}x{HW[1]}, {torch.get_num_threads()} threads")
    print(f"  torch eager        {eager[0]:7.1f} ms (min {eager[1]:.1f})")
    print(f"  onnxruntime        {ort[0]:7.1f} ms (min {ort[1]:.1f})   {', '.join(graph.session.get_providers())}")
    print(
        f"  eager / onnxruntime {eager[0] / ort[0]:6.2f}x (above 1: onnxruntime is faster)   largest logit difference {diff:.1e}"
    )


def predictor_against_raw(folder: Path, repeats: int, warmup: int) -> None:
    from transformers import AutoModelForSemanticSegmentation, SegformerConfig

    from core.data.synthstreets.render import CLASSES, PALETTE
    from core.inference import Predictor
    from core.runs import load_run
    from core.train.writer import RunWriter

    torch.manual_seed(0)
    net = AutoModelForSemanticSegmentation.from_config(SegformerConfig(num_labels=K)).eval()
    writer = RunWriter(folder / "segformer", model=net, classes=CLASSES[:K], palette=PALETTE[:K], input_size=None)
    writer.log_epoch(1, metrics={})
    writer.close()
    predictor = Predictor(load_run(folder / "segformer"), 1, device="cpu")
    image = np.random.default_rng(0).integers(0, 256, (*HW, 3), dtype=np.uint8)
    x = predictor.preprocess([image])[0]  # (1, 3, H, W) normalised as the run says

    def raw() -> np.ndarray:
        with torch.inference_mode():
            logits = F.interpolate(net(pixel_values=x).logits, size=HW, mode="bilinear", align_corners=False)
            return logits.softmax(1).argmax(1).numpy()

    served = timed(lambda: predictor.predict([image]), repeats, warmup)
    plain = timed(raw, repeats, warmup)
    same = float(np.mean(predictor.predict([image])[0].labels == raw()[0]))
    params = sum(p.numel() for p in net.parameters()) / 1e6
    print(f"SegFormer-B0 (hf:segformer, {params:.1f} M parameters), one {HW[0]}x{HW[1]} image, {torch.get_num_threads()} threads")
    print(f"  raw forward + upsample + softmax + argmax  {plain[0]:7.1f} ms (min {plain[1]:.1f})")
    print(f"  Predictor.predict (uint8 image in)        {served[0]:7.1f} ms (min {served[1]:.1f})")
    print(f"  Predictor / raw {served[0] / plain[0]:5.2f}x   same labels on {100 * same:.2f}% of pixels")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)  # before any session opens: the onnx source gives onnxruntime the same count
    with tempfile.TemporaryDirectory(prefix="bench-sources-") as tmp:
        onnx_against_torch(Path(tmp), args.repeats, args.warmup)
        predictor_against_raw(Path(tmp), args.repeats, args.warmup)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
