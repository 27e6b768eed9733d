"""Where the explorer's time goes: cProfile of compare on six segmentation runs (a new image with the models in
memory, then the same image cached) and of a 12-megapixel upload, in process (no HTTP), on 1 torch thread.

    python bench/profile_app.py [--runs checkpoints/camvid] [--top 18]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from core.explorer import Workspace  # noqa: E402
from core.explorer.compare import compare, resolve_members  # noqa: E402
from core.explorer.renders import Renders  # noqa: E402
from core.explorer.uploads import analyze, read_image  # noqa: E402


def profiled(title: str, fn, top: int, repeats: int = 1) -> None:
    """Run ``fn`` ``repeats`` times under cProfile; print the mean time and the top functions by cumulative time."""
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    for _ in range(repeats):
        fn()
    prof.disable()
    print(f"### {title}: {(time.perf_counter() - start) / repeats * 1000:.0f} ms each")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(ROOT / "checkpoints" / "camvid"))
    ap.add_argument("--top", type=int, default=18)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ws = Workspace.discover(args.runs)
    names = [n for n in ws.names if ws.run(n).task.dense][:6]
    if not names:
        print(f"no segmentation run under {args.runs}")
        return 2
    ref = ws.dataset(names[0])
    ref = ref.with_split(ws.splits(ref)[0])
    with tempfile.TemporaryDirectory(prefix="profile_app-") as name:  # renders and the photo, removed after
        tmp = Path(name)
        renders = Renders(tmp)
        print(f"runs: {', '.join(names)} on {ref.source} {ref.split}")
        compare(ws, renders, ref, 0, names, None)  # the models are built outside the profile
        images = iter(range(1, 100))
        profiled(
            "compare, new image (models in memory)", lambda: compare(ws, renders, ref, next(images), names, None), args.top, 3
        )
        profiled("compare, same image again (cached)", lambda: compare(ws, renders, ref, 1, names, None), args.top)
        big = tmp / "photo.jpg"
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (3000, 4000, 3), dtype=np.uint8)).save(big, quality=90)
        members = list(zip(names, resolve_members(ws, names, None)))
        profiled("upload of a 12-megapixel photo", lambda: analyze(renders, read_image(big), members), args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
