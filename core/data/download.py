"""``python -m core.data.download <name> [ROOT]``: where a dataset comes from, and whether ROOT holds it.

Without ROOT it prints where the dataset is obtained and the tree it unpacks to. With ROOT it checks that
tree by building every split with the dataset's own reader, so whatever a reader would miss is named here
(e.g. "gtFine/val/ is missing under ROOT"). A public dataset (CamVid) is downloaded into ROOT first when
ROOT is missing or empty, unless --check. Everything per dataset comes from the ``DatasetSource`` its
reader registered. Exit status: 0 the tree is fine, 1 it is not, 2 a download failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.data.base import DatasetNotFoundError
from core.data.fetch import DownloadError
from core.data.registry import dataset_source, get_dataset, list_datasets
from core.data.sources import DatasetSource

PROG = "python -m core.data.download"


def sourced_datasets() -> dict[str, DatasetSource]:
    """Every registered dataset that declares where it comes from."""
    return {name: source for name in list_datasets() if (source := dataset_source(name)) is not None}


def describe(name: str, source: DatasetSource) -> str:
    """Where to get dataset ``name``, the tree to unpack it to, and how to check and use that tree."""
    return "\n".join(
        [
            f"{source.title} ({name}): {source.obtain}",
            source.layout,
            f"Check an unpacked tree with `{PROG} {name} ROOT`, then use it with --data-root ROOT or ${source.env_var}=ROOT.",
        ]
    )


def check_tree(name: str, source: DatasetSource, root: Path) -> tuple[bool, list[str]]:
    """(whether every required split loads, one line per split) with ``name``'s own reader on ``root``."""
    ok, lines = True, []
    width = max(map(len, source.splits + source.optional_splits))
    for split in source.splits + source.optional_splits:
        try:
            n = len(get_dataset(name, split, root=str(root)))
        except (DatasetNotFoundError, ValueError) as e:  # what a reader says about a wrong tree
            problem = e.problem if isinstance(e, DatasetNotFoundError) else str(e)
            if split in source.splits:
                ok = False
                lines.append(f"  {split:<{width}}  {problem}")
            else:
                lines.append(f"  {split:<{width}}  absent (optional): {problem}")
            continue
        official = source.sizes.get(split)
        note = f" (the official release has {official})" if official is not None and n != official else ""
        lines.append(f"  {split:<{width}}  {n} images{note}")
    return ok, lines


def main(argv: list[str] | None = None) -> int:
    """Describe a dataset, or check (and for a public one, fetch) its tree under ROOT."""
    sources = sourced_datasets()
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("dataset", choices=sorted(sources))
    p.add_argument("root", nargs="?", help="the folder the dataset was unpacked to (or is to be downloaded to)")
    public = ", ".join(name for name, source in sources.items() if source.fetch is not None)
    p.add_argument("--check", action="store_true", help=f"only check ROOT, never download into it (downloadable: {public})")
    a = p.parse_args(argv)
    source = sources[a.dataset]
    if a.root is None:
        print(describe(a.dataset, source))
        return 0
    root = Path(a.root)
    if source.fetch is not None and not a.check and not (root.is_dir() and any(root.iterdir())):
        # Only into a missing or empty folder: a download replaces the folder, and a tree the user
        # unpacked (even an incomplete one) is theirs to fix, with the check below saying what is missing.
        print(f"{root} is missing or empty: downloading {source.title} there")
        try:
            source.fetch(root)
        except (DownloadError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    ok, lines = check_tree(a.dataset, source, root)
    if ok:
        print("\n".join([f"{source.title} under {root} is fine:", *lines]))
        print(f"Use it with --data-root {root} or set ${source.env_var}={root}.")
        return 0
    print("\n".join([f"error: {source.title} under {root} is not complete:", *lines, source.layout]), file=sys.stderr)
    print(source.obtain, file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
