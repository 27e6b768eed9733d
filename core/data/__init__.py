"""Datasets: one registry, ``get_dataset(name, split, root=None, **options)`` and ``list_datasets()``."""

from core.data import ade20k, camvid, cifar, cityscapes, crops, cvat, folder, image_folders, synthstreets, voc  # noqa: F401  (registers)
from core.data.base import DatasetNotFoundError, VisionDataset
from core.data.registry import dataset_options, dataset_task, get_dataset, list_datasets, register_dataset
from core.data.transforms import AugmentConfig, eval_transforms, train_transforms

__all__ = [
    "AugmentConfig",
    "DatasetNotFoundError",
    "VisionDataset",
    "dataset_options",
    "dataset_task",
    "eval_transforms",
    "get_dataset",
    "list_datasets",
    "register_dataset",
    "train_transforms",
]
