"""Where a dataset comes from and what its unpacked tree looks like, declared once per reader.

A reader passes a ``DatasetSource`` to ``register_dataset(..., source=...)``. The reader resolves its root
and words its "not found" errors through it, and ``python -m core.data.download <name> [ROOT]`` prints
where to get the dataset and checks a tree by building the source's splits with the reader itself, so
the command needs nothing written per dataset and a check can never disagree with what the reader reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from core.data.base import DatasetNotFoundError

DATA_ENV = "VISION_EXPLORER_DATA"  # parent of every dataset's default root: $VISION_EXPLORER_DATA/<subdir>


@dataclass(frozen=True)
class DatasetSource:
    title: str  # as messages name it: "Cityscapes"
    obtain: str  # where and how to get it (site, archives, login), a sentence or two
    layout: str  # the expected tree, one indented line per folder; printed with every "not found" error
    env_var: str  # e.g. "CITYSCAPES_ROOT": the root when no root is passed
    subdir: str  # the default root is $VISION_EXPLORER_DATA/<subdir>, else ./data/<subdir>
    splits: tuple[str, ...]  # splits a complete tree has: a check fails without them
    optional_splits: tuple[str, ...] = ()  # splits a check reports when present (e.g. a test split without labels)
    sizes: dict[str, int] = field(default_factory=dict)  # items per split in the official release, for the check
    fetch: Callable[[Path], Path] | None = None  # downloads the dataset into a root, where it is public

    def resolve_root(self, root: str | os.PathLike | None) -> Path:
        """``root`` if given, else ``$<env_var>``, else ``$VISION_EXPLORER_DATA/<subdir>``, else ``./data/<subdir>``."""
        if root is not None:
            return Path(root)
        if os.environ.get(self.env_var):
            return Path(os.environ[self.env_var])
        return Path(os.environ.get(DATA_ENV, "data")) / self.subdir

    def not_found(self, problem: str) -> DatasetNotFoundError:
        """The error for a wrong tree: what is wrong, the expected layout, how to point at it and where to get it."""
        hint = f"Pass root=... (--data-root) or set ${self.env_var}. {self.obtain}"
        return DatasetNotFoundError(f"{self.title}: {problem}\n{self.layout}\n{hint}", problem=problem)

    def require(self, root: Path, paths: Iterable[str]) -> None:
        """Raise ``not_found`` naming the first of ``paths`` (relative to ``root``; "x/" is a folder) that is missing."""
        for rel in paths:
            path = root / rel
            if not (path.is_dir() if rel.endswith("/") else path.exists()):
                raise self.not_found(f"{rel} is missing under {root}")
