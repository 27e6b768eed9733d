"""``python -m core.data.download camvid DIR``: fetch a dataset that can be downloaded (needs internet)."""

from __future__ import annotations

import argparse
import sys

from core.data.camvid import download_camvid
from core.data.fetch import DownloadError


def main(argv: list[str] | None = None) -> int:
    """Fetch a dataset into a folder, resumably and atomically."""
    p = argparse.ArgumentParser(prog="python -m core.data.download", description=__doc__.splitlines()[0])
    p.add_argument("dataset", choices=["camvid"])
    p.add_argument("root", help="folder to put it in")
    a = p.parse_args(argv)
    try:
        print(f"CamVid in {download_camvid(a.root)}; use it with --data-root {a.root}")
    except (DownloadError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
