"""The dataset registry: ``register_dataset``, ``get_dataset``, ``list_datasets``."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from core.data.base import VisionDataset
from core.data.sources import DatasetSource
from core.tasks import Task, task_type
from core.utils.registry import Registry

DATASETS: Registry[Callable[..., VisionDataset]] = Registry("dataset")


def register_dataset(
    name: str, *, task: type[Task], sample_split: str | None = None, source: DatasetSource | None = None
) -> Callable:
    """Register ``builder(split, root=None, *, option=..., transform=None) -> VisionDataset`` of a task (``core.tasks``).

    ``sample_split`` names a split shipped with the project, served without the dataset's files (the
    explorer falls back to it when the dataset is not on this machine). ``source`` says where the dataset
    is obtained and what its tree looks like (``python -m core.data.download`` reads it).
    """
    return DATASETS.register(name, task=task_type(task), sample_split=sample_split, source=source)


def dataset_source(name: str) -> DatasetSource | None:
    """Where dataset ``name`` comes from and its expected tree, or None for one without files of its own
    (``synthstreets``) or with a layout the user describes (``folder``)."""
    return DATASETS.meta(_split_name(name)[0]).get("source")


def sample_split(name: str) -> str | None:
    """The shipped sample split of dataset ``name`` (see ``register_dataset``), or None; a derived dataset
    (``crops:camvid``) has its source's."""
    base, implied = _split_name(name)
    if base not in DATASETS:
        return None
    own = DATASETS.meta(base).get("sample_split")
    return own if own or "source" not in implied else sample_split(implied["source"])


def list_datasets(task: type[Task] | str | None = None) -> list[str]:
    """Registered dataset names. Derived datasets are written ``prefix:source``, e.g. ``crops:camvid``."""
    return DATASETS.names(task=None if task is None else task_type(task))


def _split_name(name: str) -> tuple[str, dict[str, Any]]:
    # "crops:camvid" -> builder "crops" with source="camvid"
    if ":" in name:
        base, source = name.split(":", 1)
        return base, {"source": source}
    return name, {}


def dataset_task(name: str) -> type[Task]:
    """The task of a registered dataset (a derived one, ``crops:camvid``, has its builder's)."""
    return DATASETS.meta(_split_name(name)[0])["task"]


def _passes_options_on(builder: Callable) -> bool:
    """A derived dataset's builder (``crops``) takes ``**options`` for its source and checks them there."""
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(builder).parameters.values())


def dataset_options(name: str) -> list[str]:
    """The keyword options dataset ``name`` accepts (for ``crops:camvid`` also camvid's own)."""
    base, implied = _split_name(name)
    builder = DATASETS.get(base)
    params = inspect.signature(builder).parameters
    options = {k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY} - set(implied)
    if _passes_options_on(builder) and implied.get("source") in DATASETS:
        options |= set(dataset_options(implied["source"]))
    return sorted(options)


def get_dataset(name: str, split: str, root: str | None = None, **options: Any) -> VisionDataset:
    """Build dataset ``name`` for ``split``, e.g. ``get_dataset("camvid", "val", root="data/camvid")``.

    ``None`` options are dropped so unset command-line flags keep the dataset's defaults;
    an unknown option is an error listing the valid ones.
    """
    base, implied = _split_name(name)
    builder = DATASETS.get(base)
    options = {k: v for k, v in options.items() if v is not None}
    valid = dataset_options(base)
    unknown = sorted(set(options) - set(valid))
    if unknown and not _passes_options_on(builder):  # a derived dataset checks them against its source
        raise TypeError(f"dataset {base!r} got unknown option(s) {', '.join(unknown)}; valid options: {', '.join(valid)}")
    return builder(split, root, **implied, **options)


def check_split(dataset: str, split: str, valid: tuple[str, ...]) -> None:
    if split not in valid:
        raise ValueError(f"dataset {dataset!r} has no split {split!r}; valid splits: {', '.join(valid)}")
