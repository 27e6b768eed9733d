"""Device choice, CPU threads and torch.distributed set-up (torchrun)."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(requested: str = "auto", local_rank: int = 0) -> torch.device:
    """CUDA (this process's GPU under torchrun), then Apple MPS, then the CPU."""
    if requested != "auto":
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda was requested but CUDA is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def init_distributed(device: torch.device | None = None) -> DistInfo:
    """Join the process group when started by torchrun (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and (device is None or device.type == "cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def set_threads(threads: int | None, world_size: int = 1) -> int:
    """Intra-op threads: the given number, else the cores divided among the ranks; 1 inter-op thread."""
    n = threads or max(1, (os.cpu_count() or 1) // world_size)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)  # one op at a time is what small CNN graphs use; extra pools only contend
    except RuntimeError:
        pass  # already set (it can only be set once per process)
    return n


T, R = TypeVar("T"), TypeVar("R")


def side_by_side(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[fn(x) for x in items]``, in threads when cores are spare: torch and numpy release the GIL, so on 2 cores
    and 1 torch thread two models run at once. In order; an exception propagates as in the loop."""
    workers = min(len(items), max(1, (os.cpu_count() or 1) // torch.get_num_threads()))
    if workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers, thread_name_prefix="side-by-side") as pool:
        return list(pool.map(fn, items))


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_max(values: list[float]) -> list[float]:
    """The element-wise maximum of ``values`` over every rank (the values themselves without DDP)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


class SharedClock:
    """Training seconds so far (``before``: earlier sessions of a resumed run), agreed by every rank.

    Each process reads its own clock, and clocks differ (skew, a slower rank). Decisions that every
    rank must take alike, the learning rate under a time budget and "does another epoch fit", use
    ``shared()``: the all-reduced maximum, identical on all ranks. Call it on every rank at once.
    """

    def __init__(self, before: float = 0.0) -> None:
        self.before = before
        self.start = time.perf_counter()

    def local(self) -> float:
        return self.before + time.perf_counter() - self.start

    def shared(self, *extra: float) -> list[float]:
        """[elapsed, *extra], each the maximum over ranks."""
        return all_reduce_max([self.local(), *extra])


def broadcast_object(obj, src: int = 0):
    """The main rank's value on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def channels_last_trains_safely(model: torch.nn.Module, device: torch.device) -> bool:
    """False where channels-last training is known to crash the process on this device.

    torch 2.14 and 2.15's CPU backward of a 1x1 stride-2 convolution with fewer than 16 input channels in
    channels-last format segfaults (for example a ResNet downsample in a narrow CPU-sized model):
    ``nn.Conv2d(8, 16, 1, stride=2)`` on a channels-last input, then ``.backward()``.
    """
    if device.type != "cpu":
        return True
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) and m.stride != (1, 1) and m.in_channels < 16:
            return False
    return True
